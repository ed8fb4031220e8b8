"""First start: keys into the data folder and a registry that names every institution.

For the embedded set-up the data folder holds the hub's key, the sandbox police units' keys (the
demo officers sign with them) and, in data/sandbox/keys, the sandbox institutions' keys, as
each bank would keep its own. The registry lists everyone's public keys and endpoints. An
existing key or registry is never overwritten: operators own them once made.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import structlog

from stopline.config import Settings
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, RegistryFile, registered_key

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


def initialise(settings: Settings, scenario) -> dict[str, SigningKey]:
    """Make whatever keys are missing and the registry if there is none; return every key."""
    keys = {HUB_ID: _key(settings.key_path(HUB_ID), HUB_ID)}
    for unit in scenario.police_units:
        keys[unit.id] = _key(settings.key_path(unit.id), unit.id)
    for inst in scenario.institutions:
        keys[inst.id] = _key(sandbox_keys_dir(settings) / f"{inst.id}.pem", inst.id)

    if not settings.registry_path.exists():
        now = datetime.now(UTC)
        host = settings.gateway_address.rsplit(":", 1)[0]

        def entry(inst_id: str, name: str, kind: InstitutionKind, endpoint: str | None) -> Institution:
            key = keys[inst_id]
            return Institution(
                id=inst_id,
                name=name,
                kind=kind,
                endpoint=endpoint,
                keys=(registered_key(key.public_key, key.key_id, now),),
            )

        institutions = [entry(HUB_ID, "Stopline hub", InstitutionKind.HUB, settings.gateway_address)]
        institutions += [
            entry(u.id, u.name, InstitutionKind.POLICE_UNIT, None) for u in scenario.police_units
        ]
        institutions += [
            entry(i.id, i.name, InstitutionKind(i.kind), f"{host}:{i.port}" if i.port else None)
            for i in scenario.institutions
        ]
        Registry(institutions).save(settings.registry_path)
    return keys


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
