"""First start: keys into the data folder and a registry that names every institution.

For the embedded set-up the data folder holds the hub's key, the operators' key (the CLI reads
cases with it), the sandbox police units' keys (the demo officers sign with them) and, in
data/sandbox/keys, the sandbox institutions' keys, as each bank would keep its own. data/tls
holds a local CA and everyone's TLS certificates (the sandbox's in data/sandbox/tls). The
registry lists everyone's public keys, certificate fingerprints and endpoints. An existing key,
certificate or registry entry is never overwritten: operators own them once made.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import structlog

from stopline.config import Settings
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, RegistryFile, registered_key
from trust.tls import LocalCA, TlsIdentity

HUB_ID = "hub"
log = structlog.get_logger("setup")


def sandbox_keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "sandbox" / "keys"


def _key(path: Path, institution_id: str) -> SigningKey:
    if path.exists():
        return SigningKey.load(institution_id, path)
    key = SigningKey.generate(institution_id)
    key.save(path)
    return key


def tls_dir(settings: Settings) -> Path:
    return settings.data_dir / "tls"


def sandbox_tls_dir(settings: Settings) -> Path:
    return settings.data_dir / "sandbox" / "tls"


def _certificate(ca: LocalCA, directory: Path, institution_id: str, hosts: tuple[str, ...]) -> tuple[TlsIdentity, bool]:
    """The institution's certificate in `directory`, issued by `ca` if missing; and whether new."""
    try:
        return TlsIdentity.load(directory, institution_id, ca.cert_pem), False
    except FileNotFoundError:
        identity = ca.issue(institution_id, hosts)
        identity.save(directory)
        return identity, True


def initialise(settings: Settings, scenario) -> dict[str, SigningKey]:
    """Make whatever keys and certificates are missing, and the registry if there is none (or
    add to it the institutions it lacks); return every key."""
    host = settings.gateway_address.rsplit(":", 1)[0]
    keys = {HUB_ID: _key(settings.key_path(HUB_ID), HUB_ID)}
    keys[settings.operator_id] = _key(settings.key_path(settings.operator_id), settings.operator_id)
    # The units large cases are escalated to (a city-level leader, the province's centre).
    leaders = [u for u in dict.fromkeys((settings.escalation_city_unit, settings.escalation_province_unit))
               if u and u not in {p.id for p in scenario.police_units}]  # fmt: skip
    for unit_id in [*(u.id for u in scenario.police_units), *leaders]:
        keys[unit_id] = _key(settings.key_path(unit_id), unit_id)
    for inst in scenario.institutions:
        keys[inst.id] = _key(sandbox_keys_dir(settings) / f"{inst.id}.pem", inst.id)

    # The local CA and one certificate per party, made once (a deployment brings its own CA).
    ca = LocalCA.load_or_create(tls_dir(settings))
    certs: dict[str, tuple[TlsIdentity, bool]] = {}
    for inst_id in [HUB_ID, settings.operator_id, *(u.id for u in scenario.police_units), *leaders]:
        certs[inst_id] = _certificate(ca, tls_dir(settings), inst_id, (host,) if inst_id == HUB_ID else ())
    for inst in scenario.institutions:
        certs[inst.id] = _certificate(ca, sandbox_tls_dir(settings), inst.id, (host,))

    def entry(
        inst_id: str, name: str, kind: InstitutionKind, endpoint: str | None, number_prefixes: tuple[str, ...] = ()
    ) -> Institution:
        key = keys[inst_id]
        return Institution(
            id=inst_id,
            name=name,
            kind=kind,
            endpoint=endpoint,
            keys=(registered_key(key.public_key, key.key_id, datetime.now(UTC)),),
            tls_cert_sha256=certs[inst_id][0].cert_sha256,
            number_prefixes=number_prefixes,
        )

    wanted = [entry(HUB_ID, "Stopline hub", InstitutionKind.HUB, settings.gateway_address)]
    wanted.append(entry(settings.operator_id, "Anti-fraud centre operators", InstitutionKind.OPERATIONS_CENTRE, None))
    wanted += [entry(u.id, u.name, InstitutionKind.POLICE_UNIT, None) for u in scenario.police_units]
    names = {settings.escalation_city_unit: "City anti-fraud leader", settings.escalation_province_unit: "Province anti-fraud centre"}
    wanted += [entry(u, names.get(u, u), InstitutionKind.POLICE_UNIT, None) for u in leaders]
    # Banks, payment companies, carriers (with the number ranges they hold) and regulators (the
    # registry's telecom and bank regulator, found by kind).
    wanted += [
        entry(i.id, i.name, InstitutionKind(i.kind), f"{host}:{i.port}" if i.port else None, i.number_prefixes)
        for i in scenario.institutions
    ]
    if not settings.registry_path.exists():
        Registry(wanted).save(settings.registry_path)
        return keys
    # Operators own an existing registry: only add who is missing (a new scenario's
    # institutions) and re-pin a certificate this set-up had to issue anew.
    registry = Registry.load(settings.registry_path)
    updated = [
        dataclasses.replace(inst, tls_cert_sha256=certs[inst.id][0].cert_sha256)
        if inst.id in certs and certs[inst.id][1]
        else inst
        for inst in registry
    ]
    added = [inst for inst in wanted if inst.id not in registry]
    if added or updated != list(registry):
        Registry(updated + added).save(settings.registry_path)
    return keys


def tls_identity(settings: Settings, institution_id: str) -> TlsIdentity | None:
    """`institution_id`'s certificate and key for mutual TLS; None under the plaintext flag."""
    if settings.plaintext:
        return None
    ca_pem = (tls_dir(settings) / "ca.crt").read_bytes()
    for directory in (tls_dir(settings), sandbox_tls_dir(settings)):
        if (directory / f"{institution_id}.crt").exists():
            return TlsIdentity.load(directory, institution_id, ca_pem)
    raise FileNotFoundError(
        f"no TLS certificate for {institution_id!r} in {tls_dir(settings)}: run `stopline init`, or "
        "install the certificate your CA issued as <id>.crt and <id>.key"
    )


def record_endpoints(settings: Settings, endpoints: dict[str, str]) -> None:
    """Write where the sandbox institutions actually listen into the registry (atomically), for
    the embedded set-up with OS-picked ports. Running parts pick it up on their next call."""
    registry = Registry.load(settings.registry_path)
    updated = [
        dataclasses.replace(inst, endpoint=endpoints[inst.id]) if inst.id in endpoints else inst
        for inst in registry
    ]
    Registry(updated).save(settings.registry_path)


def registry_file(settings: Settings) -> RegistryFile:
    """The registry as every running part holds it: following the file, refusing bad edits."""
    return RegistryFile(
        settings.registry_path,
        on_error=lambda e: log.error("registry edit refused; the last good registry stays in force", error=str(e)),
    )
