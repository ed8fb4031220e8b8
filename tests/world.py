"""A whole hub on real parts for one test: the Boxing scenario's sandbox institutions on
OS-picked loopback ports with their own SQLite ledgers, real Ed25519 keys, a local CA with a
certificate per party (mutual TLS on every connection), a registry, a worker on a fresh task
queue and the gateway, reached through HubClient over gRPC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client

from adapters.channels import ChannelPool
from audit.log import AuditLog
from audit.note import NoteSigner
from audit.store import SqliteAuditStore
from gateway.server import start_gateway
from gateway.service import HubServicer
from sandbox import SandboxInstitution, load_scenario
from stopline.casefile import rebase_report, report_from_dict
from stopline.caseindex import SqliteCaseIndex
from stopline.cli import CHASE_DONE
from stopline.domain import AnswerDeadlines, EscalationPolicy, EstimateRate
from stopline.hubclient import HubClient
from stopline.v1 import hub_pb2
from tests.conftest import new_task_queue
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA, TlsIdentity
from worker import build_worker

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
POLICE = "police-boxing"
OPERATORS = "centre-operators"
AUDITOR = "court-auditor"
CITY_LEADER = "city-leader"
PROVINCE_CENTRE = "province-centre"
AUDIT_ORIGIN = "stopline.test/audit"


@dataclass
class World:
    client: Client
    task_queue: str
    keys: dict[str, SigningKey]
    institutions: dict[str, SandboxInstitution]
    hub: HubClient
    gateway_address: str
    scenario: object
    audit: AuditLog
    tls: dict[str, TlsIdentity]
    _registry: list[Registry] = field(default_factory=list)
    _clients: list[HubClient] = field(default_factory=list)
    _case_ids: set[str] = field(default_factory=set)

    def registry(self) -> Registry:
        return self._registry[0]

    def hub_as(self, institution_id: str, key: SigningKey | None = None, tls: TlsIdentity | None = None) -> HubClient:
        """A HubService client speaking as `institution_id` over its own certificate (or `tls`),
        signing with its key (or `key`, e.g. an impostor's); closed with the world."""
        client = HubClient(
            self.gateway_address, self.registry, key or self.keys[institution_id], tls or self.tls[institution_id]
        )
        self._clients.append(client)
        return client

    def report(self, case_id: str, **changes) -> hub_pb2.CaseReport:
        """The scenario's case as if reported now, under `case_id`."""
        self._case_ids.add(case_id)  # ended with the world: its holds' timers must not outlive it
        report = rebase_report(report_from_dict(self.scenario.case), datetime.now(UTC), case_id)
        for name, value in changes.items():
            setattr(report, name, value)
        return report

    async def wait_for_case(self, case_id: str, until, within: float = 20.0, every: float = 0.05) -> hub_pb2.CaseView:
        """Poll GetCase until `until(case)` holds (real time: these are real servers)."""
        deadline = time.monotonic() + within
        while True:
            case = await self.hub.get_case(case_id)
            if until(case):
                return case
            if time.monotonic() > deadline:
                raise AssertionError(f"case {case_id} never reached the expected state; last: {case}")
            await asyncio.sleep(every)

    async def answered(self, case_id: str, within: float = 20.0, every: float = 0.05) -> hub_pb2.CaseView:
        return await self.wait_for_case(
            case_id, lambda c: c.status in CHASE_DONE, within, every
        )


def _registry(
    keys: dict[str, SigningKey], kinds: dict[str, InstitutionKind], endpoints: dict[str, str], tls: dict[str, TlsIdentity],
    prefixes: dict[str, tuple[str, ...]] | None = None, scenario: str = "boxing",
) -> Registry:
    prefixes = prefixes if prefixes is not None else {
        i.id: i.number_prefixes for i in load_scenario(scenario).institutions if i.number_prefixes
    }  # fmt: skip
    return Registry(
        [
            Institution(
                id=inst_id,
                name=inst_id,
                kind=kinds[inst_id],
                endpoint=endpoints.get(inst_id),
                keys=(registered_key(key.public_key, key.key_id, EPOCH),),
                tls_cert_sha256=tls[inst_id].cert_sha256,
                number_prefixes=prefixes.get(inst_id, ()),
            )
            for inst_id, key in keys.items()
        ]
    )


async def _end_cases(client: Client, case_ids: set[str]) -> None:
    """Terminate the world's cases still open (a case stays open while its holds' deadlines run,
    up to days): with its worker gone, a case's timers on a shared Temporal would fire into an
    empty task queue, and on the time-skipping server would hold up later tests' skipping."""
    from temporalio.service import RPCError

    for case_id in case_ids:
        case = client.get_workflow_handle(f"case-{case_id}")
        try:
            description = await case.describe()
        except RPCError:
            continue  # never started
        # Children first: the time-skipping server does not apply parent-close policies.
        ids = [child.workflow_id for child in description.raw_description.pending_children] + [case.id]
        for workflow_id in ids:
            try:
                await client.get_workflow_handle(workflow_id).terminate("test world closed")
            except RPCError:
                pass  # already closed


@asynccontextmanager
async def hub_world(
    client: Client, tmp_path: Path, *, bank_timeout_seconds: float | None = None,
    escalation: EscalationPolicy | None = None, deadlines: AnswerDeadlines | None = None, scenario_name: str = "boxing",
    estimate_rates: tuple[EstimateRate, ...] = (), recall_give_up_days: int = 0,
) -> AsyncIterator[World]:  # fmt: skip
    """The scenario's institutions and a hub around them; `w.hub` speaks as the unit that
    reports the scenario's case."""
    scenario = load_scenario(scenario_name)
    police = scenario.case["reporting_unit"] if scenario.case else POLICE
    kinds = {"hub": InstitutionKind.HUB, police: InstitutionKind.POLICE_UNIT,
             OPERATORS: InstitutionKind.OPERATIONS_CENTRE, AUDITOR: InstitutionKind.AUDITOR,
             CITY_LEADER: InstitutionKind.POLICE_UNIT, PROVINCE_CENTRE: InstitutionKind.POLICE_UNIT}  # fmt: skip
    kinds |= {i.id: InstitutionKind(i.kind) for i in scenario.institutions}
    keys = {inst_id: SigningKey.generate(inst_id) for inst_id in kinds}
    ca = LocalCA.create()
    tls = {inst_id: ca.issue(inst_id, ("127.0.0.1",)) for inst_id in kinds}
    holder: list[Registry] = [_registry(keys, kinds, {}, tls, scenario=scenario_name)]

    institutions: dict[str, SandboxInstitution] = {}
    shift = scenario.seed_shift(datetime.now(UTC))  # the history as if the case were reported now
    for spec in scenario.institutions:
        inst = SandboxInstitution(
            spec.id, keys[spec.id], lambda: holder[0], tmp_path / f"{spec.id}.db", tls=tls[spec.id], kind=spec.kind,
            recall_scripts=spec.recalls,
        )
        if inst.ledger is not None:  # banks and payment companies; carriers serve their subscribers
            inst.ledger.seed(spec.accounts, spec.transfers_out, shift=shift)
        if inst.numbers is not None:
            inst.numbers.seed(spec.subscribers, spec.ported_out)
        await inst.start()
        institutions[spec.id] = inst
    holder[0] = _registry(keys, kinds, {i: inst.endpoint for i, inst in institutions.items()}, tls, scenario=scenario_name)

    task_queue = new_task_queue()
    channels = ChannelPool(tls["hub"])
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), NoteSigner(AUDIT_ORIGIN, keys["hub"].private_key), AUDIT_ORIGIN)
    case_index = SqliteCaseIndex(tmp_path / "cases.db")
    worker = build_worker(
        client, task_queue, hub_key=keys["hub"], registry=lambda: holder[0], channels=channels,
        bank_timeout_seconds=bank_timeout_seconds, audit=audit, case_index=case_index,
    )  # fmt: skip
    server = None
    hub = None
    try:
        async with worker:
            hub_servicer = HubServicer(client, lambda: holder[0], keys["hub"], task_queue, audit, case_index=case_index,
                                       escalation=escalation, deadlines=deadlines, estimate_rates=estimate_rates,
                                       recall_give_up_days=recall_give_up_days)  # fmt: skip
            server, port = await start_gateway("127.0.0.1:0", hub_servicer, tls["hub"])
            # Where institutions call the hub back (e.g. a freeze result they acknowledged).
            endpoints = {i: inst.endpoint for i, inst in institutions.items()} | {"hub": f"127.0.0.1:{port}"}
            holder[0] = _registry(keys, kinds, endpoints, tls, scenario=scenario_name)
            hub = HubClient(f"127.0.0.1:{port}", lambda: holder[0], keys[police], tls[police])
            world = World(
                client=client,
                task_queue=task_queue,
                keys=keys,
                institutions=institutions,
                hub=hub,
                gateway_address=f"127.0.0.1:{port}",
                scenario=scenario,
                audit=audit,
                tls=tls,
                _registry=holder,
            )
            yield world
            await _end_cases(client, world._case_ids)
    finally:
        if hub is not None:
            await hub.close()
            for client in world._clients:
                await client.close()
        if server is not None:
            await server.stop(None)
        await channels.close()
        for inst in institutions.values():
            await inst.stop()
        case_index.close()
