"""Configuration: one TOML file plus environment overrides, with defaults that need nothing.

Lookup order for each setting: environment variable STOPLINE_<NAME> (e.g.
STOPLINE_TEMPORAL_ADDRESS), then the file (STOPLINE_CONFIG, else ./stopline.toml if present),
then the default below. The defaults are the embedded city-centre set-up: a dev Temporal server on
a SQLite file in the data folder, one worker, one gateway, the sandbox institutions.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import get_type_hints

from stopline.domain import (
    ESCALATION_CURRENCY,
    ESCALATION_THRESHOLD_MINOR,
    TASK_QUEUE_DEFAULT,
    Amount,
    AnswerDeadlines,
    EscalationPolicy,
    EstimateRate,
    RequestType,
)
from stopline.money import parse_estimate_rates


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    # Where keys, the registry, the Temporal database and the sandbox ledgers live.
    data_dir: Path = Path(".stopline")
    # Temporal frontend. `stopline up` starts an embedded dev server here when embedded_temporal.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    embedded_temporal: bool = True
    task_queue: str = TASK_QUEUE_DEFAULT
    # HubService listens here.
    gateway_address: str = "127.0.0.1:50051"
    # The sandbox scenario: a name shipped in sandbox/scenarios or a path to a JSON file.
    scenario: str = "layered"
    # "scenario": sandbox institutions listen on the scenario's ports; "auto": the OS picks free
    # ports and the registry's endpoints are updated (tests, several stacks on one machine).
    sandbox_ports: str = "scenario"
    # Audit log: its checkpoints name this log (C2SP origin), and are signed every N entries,
    # every T seconds when entries came in, and on shutdown.
    audit_origin: str = "stopline.local/audit"
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: int = 60
    # How many hops the chase follows from the victim's receiving accounts.
    chase_max_depth: int = 8
    # The centre's operators' console: `stopline case|cases` read as this registry identity.
    operator_id: str = "centre-operators"
    # Local debugging only: no TLS on any server or channel (envelopes are still signed and
    # checked). Never on a network anyone else can reach.
    plaintext: bool = False
    # Cases of this much or more (linked cases counted together) are escalated to the city-level
    # leader's unit, which must acknowledge within the minutes given; otherwise to the province.
    # `stopline up` makes both units' keys and registry entries. 0 turns escalation off.
    escalation_threshold_minor: int = ESCALATION_THRESHOLD_MINOR
    escalation_currency: str = ESCALATION_CURRENCY
    escalation_city_unit: str = "city-leader"
    escalation_province_unit: str = "province-centre"
    escalation_acknowledge_minutes: int = 120
    # Answer deadlines per request type, after which the institution is reported to its
    # regulator: "stop_payment=10m, freeze=24h" (s, m, h, d); unnamed types keep their defaults
    # (stopline.domain.AnswerDeadlines).
    answer_deadlines: str = ""
    # Rates for the estimates shown beside money recalled from abroad, which stays in its own
    # currency: "EUR=7.6120@2026-11-20, USD=7.1030@2026-11-20" (units of estimate_currency per
    # unit, and the date of the rate). An estimate is always labelled with both.
    estimate_rates: str = "EUR=7.6120@2026-11-20, USD=7.1030@2026-11-20"
    estimate_currency: str = "CNY"
    # A recall channel that says nothing (or cannot be reached) for this many days is given up
    # for; what did not come back then counts lost once every channel has ended.
    recall_give_up_days: int = 90
    # ReportCase per caller (its TLS identity): this many a second on average, bursts of
    # report_burst at once; past that RESOURCE_EXHAUSTED, nothing recorded or started. A busy
    # unit's real reports come minutes apart; a batch upload of a night's reports fits the burst.
    report_rate_per_second: float = 5.0
    report_burst: int = 50
    # Logs: "auto" (JSON unless a terminal), "json" or "console".
    log_format: str = "auto"
    log_level: str = "INFO"

    @property
    def report_limit(self):
        """The gateway's per-caller ReportCase limit."""
        from gateway.ratelimit import CallerRateLimit

        return CallerRateLimit(self.report_rate_per_second, self.report_burst)

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.json"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def nonces_db(self) -> Path:
        return self.data_dir / "nonces.db"

    @property
    def audit_db(self) -> Path:
        return self.data_dir / "audit.db"

    @property
    def temporal_db(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def case_index_db(self) -> Path:
        return self.data_dir / "cases.db"

    def key_path(self, institution_id: str) -> Path:
        return self.keys_dir / f"{institution_id}.pem"

    @property
    def deadlines(self) -> AnswerDeadlines:
        return parse_deadlines(self.answer_deadlines)

    @property
    def rates(self) -> tuple[EstimateRate, ...]:
        try:
            return parse_estimate_rates(self.estimate_rates, self.estimate_currency.upper())
        except ValueError as e:
            raise ConfigError(f"estimate_rates: {e}") from None

    @property
    def escalation(self) -> EscalationPolicy | None:
        if self.escalation_threshold_minor <= 0:
            return None
        return EscalationPolicy(
            threshold=Amount(self.escalation_threshold_minor, self.escalation_currency),
            city_unit=self.escalation_city_unit,
            province_unit=self.escalation_province_unit,
            acknowledge_seconds=self.escalation_acknowledge_minutes * 60,
        )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_deadlines(text: str) -> AnswerDeadlines:
    """"stop_payment=10m, freeze=24h" -> AnswerDeadlines with those two changed."""
    values: dict[str, int] = {}
    known = {t.value for t in RequestType} - {RequestType.RETURN_FUNDS.value}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if name not in known:
            raise ConfigError(f"answer_deadlines: {name!r} is not a request type (known: {', '.join(sorted(known))})")
        unit = _UNITS.get(value[-1:], None)
        number = value[:-1] if unit else value
        if not number.isdigit() or int(number) <= 0:
            raise ConfigError(f"answer_deadlines: {part!r} needs a positive whole number of s, m, h or d")
        values[name] = int(number) * (unit or 1)
    return AnswerDeadlines(**values)


def _coerce(name: str, kind: type, value, source: str):
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is Path:
            return Path(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} = {value!r} is not a valid {kind.__name__}") from None


def load(path: Path | None = None, env: dict[str, str] | None = None, **overrides) -> Settings:
    env = os.environ if env is None else env
    if path is None:
        if env.get("STOPLINE_CONFIG"):
            path = Path(env["STOPLINE_CONFIG"])
        elif Path("stopline.toml").exists():
            path = Path("stopline.toml")
    values: dict = {}
    hints = get_type_hints(Settings)
    types = {f.name: hints[f.name] for f in fields(Settings)}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from None
        for name, value in data.items():
            if name not in types:
                raise ConfigError(f"{path}: unknown setting {name!r} (known: {', '.join(sorted(types))})")
            values[name] = _coerce(name, types[name], value, str(path))
    for name, kind in types.items():
        env_name = f"STOPLINE_{name.upper()}"
        if env_name in env:
            values[name] = _coerce(name, kind, env[env_name], env_name)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, types[name], value, "command line")
    settings = replace(Settings(), **values)
    if settings.log_format not in {"auto", "json", "console"}:
        raise ConfigError(f"log_format = {settings.log_format!r}: use auto, json or console")
    if settings.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"log_level = {settings.log_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if settings.audit_checkpoint_every < 1 or settings.audit_checkpoint_seconds < 1:
        raise ConfigError("audit_checkpoint_every and audit_checkpoint_seconds must be at least 1")
    if not 1 <= settings.chase_max_depth <= 64:
        raise ConfigError(f"chase_max_depth = {settings.chase_max_depth}: use 1 to 64")
    if settings.sandbox_ports not in {"scenario", "auto"}:
        raise ConfigError(f"sandbox_ports = {settings.sandbox_ports!r}: use scenario or auto")
    if not 0 < settings.report_rate_per_second < float("inf") or settings.report_burst < 1:
        raise ConfigError("report_rate_per_second must be a number above 0 and report_burst at least 1")
    if settings.escalation_acknowledge_minutes < 1:
        raise ConfigError("escalation_acknowledge_minutes must be at least 1")
    settings.deadlines  # noqa: B018 - parsed now, so a bad value fails at start, not at the first case
    return settings
