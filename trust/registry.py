"""The institution registry: who exists, what kind of institution it is, what it may do (roles),
where it listens, which TLS certificate it presents and which Ed25519 keys it signs with (and
when each key was valid).

Stored as one JSON file that operators edit; it is validated as a whole on load and a bad file is
refused with the entry and field named, so a typo never half-applies.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trust.errors import KeyNotValid, RegistryError, UnknownSigner
from trust.keys import key_id_for, public_key_b64, public_key_from_b64, raw_public_key

REGISTRY_VERSION = 1
INSTITUTION_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# A number range a carrier holds: "+" and the first digits of the E.164 numbers in it (country
# code included), e.g. "+86134". At most 15 digits, as E.164 numbers themselves.
NUMBER_PREFIX_PATTERN = re.compile(r"^\+[1-9][0-9]{0,14}$")


class InstitutionKind(StrEnum):
    HUB = "hub"
    POLICE_UNIT = "police_unit"
    BANK = "bank"
    PAYMENT_COMPANY = "payment_company"
    CARRIER = "carrier"
    TELECOM_REGULATOR = "telecom_regulator"
    CENTRAL_BANK_CHANNEL = "central_bank_channel"
    # The banks' correspondent desk that sends recalls on (SWIFT gpi Stop and Recall).
    CORRESPONDENT_CHANNEL = "correspondent_channel"
    # The police's international channel (INTERPOL's national central bureau, I-GRIP).
    POLICE_CHANNEL = "police_channel"
    BANK_REGULATOR = "bank_regulator"
    AUDITOR = "auditor"
    # The anti-fraud centre's own operators' console: reads every case.
    OPERATIONS_CENTRE = "operations_centre"


class Role(StrEnum):
    """What an institution may ask of the hub. Checked on every HubService call against the
    envelope's signer; a signer without the role gets PERMISSION_DENIED."""

    REPORT = "report"  # report cases
    APPROVE = "approve"  # approve freezes, releases and other decisions on a case
    READ = "read"  # read cases (GetCase, ListCases)
    ANSWER = "answer"  # answer and call back about requests addressed to it
    HUB = "hub"  # the hub itself: signs requests to institutions and the audit checkpoints


# What each kind may do when its registry entry lists no roles of its own.
DEFAULT_ROLES: dict[InstitutionKind, frozenset[Role]] = {
    InstitutionKind.HUB: frozenset({Role.HUB, Role.READ}),
    InstitutionKind.POLICE_UNIT: frozenset({Role.REPORT, Role.APPROVE, Role.READ}),
    InstitutionKind.BANK: frozenset({Role.ANSWER}),
    InstitutionKind.PAYMENT_COMPANY: frozenset({Role.ANSWER}),
    InstitutionKind.CARRIER: frozenset({Role.ANSWER}),
    InstitutionKind.TELECOM_REGULATOR: frozenset({Role.ANSWER}),
    InstitutionKind.CENTRAL_BANK_CHANNEL: frozenset({Role.ANSWER}),
    InstitutionKind.CORRESPONDENT_CHANNEL: frozenset({Role.ANSWER}),
    InstitutionKind.POLICE_CHANNEL: frozenset({Role.ANSWER}),
    InstitutionKind.BANK_REGULATOR: frozenset({Role.ANSWER}),
    InstitutionKind.AUDITOR: frozenset({Role.READ}),
    InstitutionKind.OPERATIONS_CENTRE: frozenset({Role.READ}),
}


# Institutions that keep accounts and so can be asked to stop a payment.
ACCOUNT_KEEPERS = frozenset({InstitutionKind.BANK, InstitutionKind.PAYMENT_COMPANY})
# The channels a recall of money sent abroad travels by (CrossBorderService), in the order the
# hub lists them.
RECALL_CHANNELS = (
    InstitutionKind.CORRESPONDENT_CHANNEL,
    InstitutionKind.CENTRAL_BANK_CHANNEL,
    InstitutionKind.POLICE_CHANNEL,
)
# Regulators, and which regulator supervises each kind of institution when its entry names none.
REGULATORS = frozenset({InstitutionKind.TELECOM_REGULATOR, InstitutionKind.BANK_REGULATOR})
REGULATOR_BY_KIND: dict[InstitutionKind, InstitutionKind] = {
    InstitutionKind.BANK: InstitutionKind.BANK_REGULATOR,
    InstitutionKind.PAYMENT_COMPANY: InstitutionKind.BANK_REGULATOR,
    InstitutionKind.CARRIER: InstitutionKind.TELECOM_REGULATOR,
}


def _parse_time(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RegistryError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise RegistryError(f"{where}: {value!r} has no UTC offset")
    return parsed


def _parse_roles(value, where: str) -> frozenset[Role] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise RegistryError(f"{where}: must be a list of role names")
    roles = set()
    for name in value:
        try:
            roles.add(Role(name))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise RegistryError(f"{where}: {name!r} is not one of {known}") from None
    return frozenset(roles)


def _parse_fingerprint(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise RegistryError(f"{where}: {value!r} is not 64 lowercase hex digits (SHA-256 of the certificate's DER)")
    return value


def _parse_prefixes(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RegistryError(f"{where}: must be a list of number prefixes such as \"+86134\"")
    for i, prefix in enumerate(value):
        if not isinstance(prefix, str) or not NUMBER_PREFIX_PATTERN.match(prefix):
            raise RegistryError(f"{where}[{i}]: {prefix!r} is not \"+\" and 1-15 digits (an E.164 number prefix)")
        if prefix in value[:i]:
            raise RegistryError(f"{where}[{i}]: {prefix!r} is listed twice")
    return tuple(value)


@lru_cache(maxsize=4096)
def _decoded_key(public_key_b64: str) -> Ed25519PublicKey:
    """Each registered key decoded once per process (an auditor's `audit verify` asks for one a
    million times); kept out of RegisteredKey so registries still pickle to worker processes."""
    return public_key_from_b64(public_key_b64)


@lru_cache(maxsize=4096)
def _raw_key(public_key_b64: str) -> bytes:
    return raw_public_key(_decoded_key(public_key_b64))


@dataclass(frozen=True)
class RegisteredKey:
    key_id: str
    public_key_b64: str
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return _decoded_key(self.public_key_b64)

    @property
    def raw_public_key(self) -> bytes:
        return _raw_key(self.public_key_b64)

    def invalid_at(self, at: datetime) -> str | None:
        """Why the key was not good for signing at `at`, or None if it was."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return f"revoked at {self.revoked_at.isoformat()}"
        if at < self.valid_from:
            return f"not valid before {self.valid_from.isoformat()}"
        if self.valid_until is not None and at >= self.valid_until:
            return f"expired at {self.valid_until.isoformat()}"
        return None

    def valid_at(self, at: datetime) -> bool:
        return self.invalid_at(at) is None


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    kind: InstitutionKind
    endpoint: str | None = None
    keys: tuple[RegisteredKey, ...] = field(default_factory=tuple)
    roles: frozenset[Role] | None = None  # None: the kind's DEFAULT_ROLES
    # Hex SHA-256 of the DER of the TLS certificate it must present; None: any certificate our
    # CA issued under its id.
    tls_cert_sha256: str | None = None
    # A carrier's number ranges: E.164 prefixes ("+86134") of the numbers it was allocated. A
    # number may since have been ported to another carrier (TelecomService.QueryNumber says).
    number_prefixes: tuple[str, ...] = ()
    # The id of the institution's regulator; None: the registry's regulator for its kind.
    regulator: str | None = None

    @property
    def keeps_accounts(self) -> bool:
        return self.kind in ACCOUNT_KEEPERS

    @property
    def effective_roles(self) -> frozenset[Role]:
        return DEFAULT_ROLES[self.kind] if self.roles is None else self.roles

    def has_role(self, role: Role) -> bool:
        return role in self.effective_roles


class Registry:
    def __init__(self, institutions: list[Institution]):
        self._by_id: dict[str, Institution] = {}
        for inst in institutions:
            if inst.id in self._by_id:
                raise RegistryError(f"institution {inst.id!r} is listed twice")
            self._by_id[inst.id] = inst
        key_owner: dict[str, str] = {}
        for inst in institutions:
            for key in inst.keys:
                if key.key_id in key_owner:
                    raise RegistryError(
                        f"key id {key.key_id!r} belongs to both {key_owner[key.key_id]!r} and {inst.id!r}"
                    )
                key_owner[key.key_id] = inst.id
        self._prefixes: dict[str, str] = {}  # number prefix -> the carrier holding that range
        for inst in institutions:
            if inst.number_prefixes and inst.kind is not InstitutionKind.CARRIER:
                raise RegistryError(f"institution {inst.id!r}: only a carrier holds number ranges (number_prefixes)")
            for prefix in inst.number_prefixes:
                if not NUMBER_PREFIX_PATTERN.match(prefix):
                    raise RegistryError(f"institution {inst.id!r}: number prefix {prefix!r} is not \"+\" and 1-15 digits")
                if prefix in self._prefixes and self._prefixes[prefix] != inst.id:
                    raise RegistryError(
                        f"number prefix {prefix!r} is held by both {self._prefixes[prefix]!r} and {inst.id!r}"
                    )
                self._prefixes[prefix] = inst.id
        for inst in institutions:
            if inst.regulator is None:
                continue
            regulator = self._by_id.get(inst.regulator)
            if regulator is None:
                raise RegistryError(f"institution {inst.id!r}: its regulator {inst.regulator!r} is not in the registry")
            if regulator.kind not in REGULATORS:
                raise RegistryError(
                    f"institution {inst.id!r}: its regulator {inst.regulator!r} is a {regulator.kind.value}, not a regulator"
                )

    def __contains__(self, institution_id: str) -> bool:
        return institution_id in self._by_id

    def __iter__(self):
        return iter(self._by_id.values())

    def get(self, institution_id: str) -> Institution | None:
        return self._by_id.get(institution_id)

    def institution(self, institution_id: str) -> Institution:
        inst = self._by_id.get(institution_id)
        if inst is None:
            raise UnknownSigner(f"institution {institution_id!r} is not in the registry")
        return inst

    def endpoint(self, institution_id: str) -> str:
        inst = self.institution(institution_id)
        if not inst.endpoint:
            raise RegistryError(f"institution {institution_id!r} has no endpoint in the registry")
        return inst.endpoint

    # --- numbers and regulators ------------------------------------------------------------

    def carrier_for_number(self, number: str) -> str | None:
        """The carrier holding the longest number prefix `number` starts with (the range holder:
        it serves the number unless the number was ported away), or None if no carrier on the
        platform holds its range."""
        for end in range(len(number), 1, -1):
            holder = self._prefixes.get(number[:end])
            if holder is not None:
                return holder
        return None

    def _only_one(self, kind: InstitutionKind) -> str:
        found = [inst.id for inst in self._by_id.values() if inst.kind is kind]
        if not found:
            raise RegistryError(f"the registry lists no {kind.value}")
        if len(found) > 1:
            raise RegistryError(
                f"the registry lists {len(found)} of kind {kind.value} ({', '.join(found)}): "
                "name the right one in each institution's 'regulator'"
            )
        return found[0]

    def telecom_regulator(self) -> str:
        """The one telecom regulator on the registry (told of every number blocked or unblocked;
        carriers' regulator). RegistryError if there is none, or more than one."""
        return self._only_one(InstitutionKind.TELECOM_REGULATOR)

    def bank_regulator(self) -> str:
        """The one bank regulator on the registry (banks' and payment companies' regulator)."""
        return self._only_one(InstitutionKind.BANK_REGULATOR)

    def recall_channels(self) -> dict[InstitutionKind, str]:
        """Each recall channel the registry lists (at most one of each kind), by kind. A kind the
        registry lacks is left out: the recall goes by the others."""
        found = {}
        for kind in RECALL_CHANNELS:
            if any(inst.kind is kind for inst in self._by_id.values()):
                found[kind] = self._only_one(kind)
        return found

    def regulator_of(self, institution_id: str) -> str:
        """Who supervises `institution_id`: its entry's `regulator`, else the registry's regulator
        for its kind (banks and payment companies: the bank regulator; carriers: the telecom
        regulator). RegistryError when it has none."""
        inst = self._by_id.get(institution_id)
        if inst is None:
            raise RegistryError(f"institution {institution_id!r} is not in the registry")
        if inst.regulator is not None:
            return inst.regulator
        kind = REGULATOR_BY_KIND.get(inst.kind)
        if kind is None:
            raise RegistryError(f"institution {institution_id!r} is a {inst.kind.value}: it has no regulator")
        return self._only_one(kind)

    def key_for(self, signer: str, key_id: str, *, at: datetime, now: datetime | None = None) -> RegisteredKey:
        """The registered key `signer` signed with at time `at`. With `now` (live traffic), a key
        revoked by now is refused even for messages claiming an earlier signing time; without it
        (an auditor checking history), only validity at `at` counts."""
        inst = self._by_id.get(signer)
        if inst is None:
            raise UnknownSigner(f"signer {signer!r} is not in the registry")
        for key in inst.keys:
            if key.key_id == key_id:
                if (why := key.invalid_at(at)) is not None:
                    raise KeyNotValid(f"key {key_id!r} of {signer!r}, used at {at.isoformat()}, {why}")
                if now is not None and key.revoked_at is not None and now >= key.revoked_at:
                    raise KeyNotValid(f"key {key_id!r} of {signer!r} was revoked at {key.revoked_at.isoformat()}")
                return key
        raise UnknownSigner(f"key {key_id!r} is not registered for {signer!r}")

    def verification_key(
        self, signer: str, key_id: str, *, at: datetime, now: datetime | None = None
    ) -> Ed25519PublicKey:
        """As key_for, as a cryptography public key."""
        return self.key_for(signer, key_id, at=at, now=now).public_key

    # --- file form -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict) -> Registry:
        if not isinstance(data, dict) or data.get("version") != REGISTRY_VERSION:
            raise RegistryError(f"registry: 'version' must be {REGISTRY_VERSION}")
        entries = data.get("institutions")
        if not isinstance(entries, list):
            raise RegistryError("registry: 'institutions' must be a list")
        institutions = []
        for i, entry in enumerate(entries):
            where = f"institutions[{i}]"
            if not isinstance(entry, dict):
                raise RegistryError(f"{where}: must be an object")
            inst_id = entry.get("id")
            if not isinstance(inst_id, str) or not INSTITUTION_ID_PATTERN.match(inst_id):
                raise RegistryError(f"{where}.id: {inst_id!r} is not 1-64 characters of a-z 0-9 -")
            where = f"institutions[{i}] ({inst_id})"
            try:
                kind = InstitutionKind(entry.get("kind"))
            except ValueError:
                kinds = ", ".join(k.value for k in InstitutionKind)
                raise RegistryError(f"{where}.kind: {entry.get('kind')!r} is not one of {kinds}") from None
            keys = []
            for j, k in enumerate(entry.get("keys", [])):
                kwhere = f"{where}.keys[{j}]"
                try:
                    public_key_from_b64(k["public_key"])
                except (KeyError, TypeError, ValueError) as e:
                    raise RegistryError(f"{kwhere}.public_key: not a base64 Ed25519 public key ({e})") from None
                expected_id = key_id_for(inst_id, public_key_from_b64(k["public_key"]))
                if k.get("key_id") != expected_id:
                    # Key ids are derived from the key, so an id can never point at another key.
                    raise RegistryError(f"{kwhere}.key_id: {k.get('key_id')!r} does not match its public key (expected {expected_id!r})")
                valid_from = _parse_time(k.get("valid_from"), f"{kwhere}.valid_from")
                if valid_from is None:
                    raise RegistryError(f"{kwhere}.valid_from: required")
                keys.append(
                    RegisteredKey(
                        key_id=k["key_id"],
                        public_key_b64=k["public_key"],
                        valid_from=valid_from,
                        valid_until=_parse_time(k.get("valid_until"), f"{kwhere}.valid_until"),
                        revoked_at=_parse_time(k.get("revoked_at"), f"{kwhere}.revoked_at"),
                    )
                )
            endpoint = entry.get("endpoint")
            if endpoint is not None and (not isinstance(endpoint, str) or ":" not in endpoint):
                raise RegistryError(f"{where}.endpoint: {endpoint!r} is not host:port")
            prefixes = _parse_prefixes(entry.get("number_prefixes"), f"{where}.number_prefixes")
            if prefixes and kind is not InstitutionKind.CARRIER:
                raise RegistryError(f"{where}.number_prefixes: only a carrier holds number ranges, this is a {kind.value}")
            regulator = entry.get("regulator")
            if regulator is not None and (not isinstance(regulator, str) or not INSTITUTION_ID_PATTERN.match(regulator)):
                raise RegistryError(f"{where}.regulator: {regulator!r} is not an institution id")
            institutions.append(
                Institution(
                    id=inst_id,
                    name=str(entry.get("name", inst_id)),
                    kind=kind,
                    endpoint=endpoint,
                    keys=tuple(keys),
                    roles=_parse_roles(entry.get("roles"), f"{where}.roles"),
                    tls_cert_sha256=_parse_fingerprint(entry.get("tls_cert_sha256"), f"{where}.tls_cert_sha256"),
                    number_prefixes=prefixes,
                    regulator=regulator,
                )
            )
        return cls(institutions)

    def to_dict(self) -> dict:
        def key_dict(k: RegisteredKey) -> dict:
            d = asdict(k)
            d["public_key"] = d.pop("public_key_b64")
            for name in ("valid_from", "valid_until", "revoked_at"):
                d[name] = d[name].isoformat() if d[name] else None
            return d

        def entry(inst: Institution) -> dict:
            d = {
                "id": inst.id,
                "name": inst.name,
                "kind": inst.kind.value,
                "roles": sorted(role.value for role in inst.effective_roles),
                "endpoint": inst.endpoint,
                "tls_cert_sha256": inst.tls_cert_sha256,
                "keys": [key_dict(k) for k in inst.keys],
            }
            # Written only when set, so registries without them read exactly as before.
            if inst.number_prefixes:
                d["number_prefixes"] = list(inst.number_prefixes)
            if inst.regulator is not None:
                d["regulator"] = inst.regulator
            return d

        return {"version": REGISTRY_VERSION, "institutions": [entry(inst) for inst in self._by_id.values()]}

    @classmethod
    def load(cls, path: Path) -> Registry:
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise RegistryError(f"no registry at {path}: run `stopline init`") from None
        except json.JSONDecodeError as e:
            raise RegistryError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file of our own (two writers never share one), made durable, then renamed
        # over the registry: readers see the old file or the new one, never a half-written one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(self.to_dict(), indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)


def registered_key(public_key: Ed25519PublicKey, key_id: str, valid_from: datetime) -> RegisteredKey:
    return RegisteredKey(key_id=key_id, public_key_b64=public_key_b64(public_key), valid_from=valid_from)


class RegistryFile:
    """The registry as a zero-argument callable that follows the file: an operator's edit takes
    effect on the next call, without a restart. An edit that does not validate is refused (and
    reported through `on_error`) and the last good registry stays in force, so a typo can never
    leave the hub without a registry."""

    def __init__(self, path: Path, on_error=None):
        self._path = Path(path)
        self._on_error = on_error
        self._stamp = self._stat()
        self._registry = Registry.load(self._path)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def __call__(self) -> Registry:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._registry = Registry.load(self._path)
            except RegistryError as e:
                if self._on_error is not None:
                    self._on_error(e)
        return self._registry
