"""Running sandbox institutions: one grpc.aio server per institution, each with its own ledger,
health checking and server reflection; and `Sandbox`, which runs every institution of a scenario.

What an institution serves depends on its kind: a bank or payment company runs BankService on a
ledger (sandbox.bank, sandbox.ledger), a carrier TelecomService on its numbers (sandbox.carrier,
sandbox.numbers), the telecom and bank regulators RegulatorService on their file of reports
(sandbox.regulator). Each lists its one service in health checking and reflection.

A test takes an institution down with stop() and brings it back with restart() on the same port
and the same ledger file, as a bank's maintenance window would look to the hub.

`Sandbox(..., anchor=now)` seeds the scenario's history as if its case were reported at `anchor`
(the shift stopline.casefile.rebase_report gives the case), and runs the scenario's mule moves
(sandbox.mules) from start(): in a background task, or by hand with run_mules=False and
`await sandbox.mules.step(until=...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sandbox.bank import BankServicer
from sandbox.carrier import TELECOM_SERVICE, TelecomServicer
from sandbox.faults import Faults
from sandbox.ledger import Ledger
from sandbox.mules import Mules
from sandbox.numbers import NumberStore
from sandbox.regulator import REGULATOR_SERVICE, RegulatorServicer, RegulatorStore
from sandbox.scenario import Scenario, load_scenario
from stopline.v1 import (
    bank_pb2,
    bank_pb2_grpc,
    envelope_pb2,
    hub_pb2,
    hub_pb2_grpc,
    regulator_pb2_grpc,
    telecom_pb2_grpc,
)
from trust.keys import SigningKey
from trust.registry import ACCOUNT_KEEPERS, REGULATORS, InstitutionKind, Registry
from trust.tls import TlsIdentity, target_name_options

BANK_SERVICE = bank_pb2.DESCRIPTOR.services_by_name["BankService"].full_name
# The hub's callback RPCs an institution calls with a result it acknowledged earlier, and the
# request message each carries the signed result in.
HUB_CALLBACKS = {
    "ReportFreezeResult": hub_pb2.ReportFreezeResultRequest,
    "ReportReturnResult": hub_pb2.ReportReturnResultRequest,
}

log = structlog.get_logger("sandbox")

RegistrySource = Registry | Callable[[], Registry]

__all__ = ["BANK_SERVICE", "REGULATOR_SERVICE", "TELECOM_SERVICE", "Sandbox", "SandboxInstitution", "load_scenario"]


def _kind_of(kind: InstitutionKind | str | None, institution_id: str, registry: Callable[[], Registry]) -> InstitutionKind:
    """The kind given, else the registry's entry for the institution, else a bank (as before kinds
    mattered here)."""
    if kind is not None:
        return InstitutionKind(kind)
    inst = registry().get(institution_id)
    return inst.kind if inst is not None else InstitutionKind.BANK


class SandboxInstitution:
    def __init__(
        self,
        institution_id: str,
        signing_key: SigningKey,
        registry: RegistrySource,
        ledger_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: Faults | None = None,
        tls: TlsIdentity | None = None,
        kind: InstitutionKind | str | None = None,
    ):
        """`ledger_path` is the institution's SQLite file: a bank's ledger, a carrier's numbers,
        a regulator's reports. `kind` picks the service (None: the registry's kind for
        `institution_id`, else a bank)."""
        self.institution_id = institution_id
        self.host = host
        self.port = port  # 0 until start() when the OS picks
        self.faults = faults if faults is not None else Faults()
        self.requests_received = 0
        # A callable is asked on every request, so a reloaded registry (new or revoked keys) is
        # picked up without a restart.
        self._registry: Callable[[], Registry] = registry if callable(registry) else (lambda: registry)
        self._signing_key = signing_key
        self.tls = tls  # None: plaintext, only behind the explicit local-debugging flag
        self._server: grpc.aio.Server | None = None
        self.kind = _kind_of(kind, institution_id, self._registry)
        # Its books, by kind (the others stay None).
        self.ledger: Ledger | None = None
        self.numbers: NumberStore | None = None
        self.reports: RegulatorStore | None = None
        if self.kind in ACCOUNT_KEEPERS:
            self.ledger = Ledger(ledger_path, institution_id)
            self.service_name = BANK_SERVICE
            self._add_servicer = bank_pb2_grpc.add_BankServiceServicer_to_server
            self._servicer = BankServicer(
                institution_id, signing_key, self._registry, self.ledger, self.faults, on_request=self._count
            )
            self._servicer.call_hub_back = self._call_hub_back
        elif self.kind is InstitutionKind.CARRIER:
            self.numbers = NumberStore(ledger_path, institution_id)
            self.service_name = TELECOM_SERVICE
            self._add_servicer = telecom_pb2_grpc.add_TelecomServiceServicer_to_server
            self._servicer = TelecomServicer(
                institution_id, signing_key, self._registry, self.numbers, self.faults, on_request=self._count
            )
        elif self.kind in REGULATORS:
            self.reports = RegulatorStore(ledger_path, institution_id)
            self.service_name = REGULATOR_SERVICE
            self._add_servicer = regulator_pb2_grpc.add_RegulatorServiceServicer_to_server
            self._servicer = RegulatorServicer(
                institution_id, signing_key, self._registry, self.reports, self.faults, on_request=self._count
            )
        else:
            raise ValueError(f"{institution_id}: the sandbox runs no service for a {self.kind.value}")

    async def _call_hub_back(self, rpc: str, envelope: envelope_pb2.Envelope, attempts: int = 20) -> None:
        """Call the hub back: HubService `rpc` (a key of HUB_CALLBACKS: ReportFreezeResult with a
        signed FreezeAnswer, ReportReturnResult with a signed ReturnReceipt) at the registry's
        "hub" endpoint, over mutual TLS as this institution. Retry while the hub is unreachable
        (UNAVAILABLE, DEADLINE_EXCEEDED, no hub endpoint yet), as a bank's outbox would, up to
        `attempts` calls; refusals are logged, not retried."""
        request = HUB_CALLBACKS[rpc](envelope=envelope)
        bound = log.bind(institution=self.institution_id, rpc=rpc, payload_type=envelope.payload_type)
        for attempt in range(1, attempts + 1):
            try:
                endpoint = self._registry().endpoint("hub")
                options = [("grpc.enable_retries", 0)]
                channel = (
                    grpc.aio.secure_channel(endpoint, self.tls.channel_credentials(), options=options + target_name_options("hub"))
                    if self.tls is not None
                    else grpc.aio.insecure_channel(endpoint, options=options)
                )
                async with channel:
                    await getattr(hub_pb2_grpc.HubServiceStub(channel), rpc)(request, timeout=5)
                bound.info("callback.reported", attempt=attempt)
                return
            except grpc.aio.AioRpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    bound.warning("callback.refused", code=e.code().name, details=e.details())
                    return
            except Exception as e:  # noqa: BLE001 - a registry without the hub: log and retry
                bound.warning("callback.failed", error=str(e))
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        bound.error("callback.gave_up", attempts=attempts)

    def _count(self) -> None:
        self.requests_received += 1

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"{self.institution_id} is already running on {self.endpoint}")
        # The servicer reads faults through this attribute, so replacing `.faults` wholesale works too.
        self._servicer.faults = self.faults
        # so_reuseport off: a second server on a taken port must fail, not silently share it.
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        self._add_servicer(self._servicer, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (self.service_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{self.host}:{self.port}"
        try:
            port = (
                server.add_secure_port(address, self.tls.server_credentials())
                if self.tls is not None
                else server.add_insecure_port(address)
            )
        except RuntimeError as e:
            raise OSError(f"{self.institution_id}: cannot listen on {address}: {e}") from None
        if port == 0:  # older gRPC reports a failed bind this way
            raise OSError(f"{self.institution_id}: cannot listen on {address}")
        await server.start()
        for service in ("", self.service_name):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        self.port = port
        self._server = server
        log.info("institution.started", institution=self.institution_id, endpoint=self.endpoint)

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving (in-flight calls get `grace` seconds) and close the ledger file. The
        ledger reopens on next use, so it can still be inspected after stop()."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
            log.info("institution.stopped", institution=self.institution_id, endpoint=self.endpoint)
        for books in (self.ledger, self.numbers, self.reports):
            if books is not None:
                books.close()

    async def restart(self) -> None:
        """Come back on the same port with the same ledger (port stays as picked at first start)."""
        await self.stop()
        await self.start()


class Sandbox:
    """Every institution of a scenario, each on its own server and ledger file, and its mules.

    anchor: seed the history as if the case were reported at this (UTC) time; None keeps the
    file's times. A ledger file seeded before (a restart) keeps the history where its first seed
    put it, so it is never written twice.
    run_mules: run the moves in a background task from start(); False leaves them to
    `mules.step()`. clock: the race clock's seconds (monotonic), for tests."""

    def __init__(
        self,
        scenario: Scenario,
        data_dir: Path,
        registry_provider: RegistrySource,
        signing_keys: dict[str, SigningKey],
        host: str = "127.0.0.1",
        use_scenario_ports: bool = True,
        tls: dict[str, TlsIdentity] | None = None,
        *,
        anchor: datetime | None = None,
        run_mules: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        missing = [i.id for i in scenario.institutions if i.id not in signing_keys]
        if missing:
            raise ValueError(f"no signing key for sandbox institution(s): {', '.join(missing)}")
        self.scenario = scenario
        self.anchor = anchor
        self.institutions: dict[str, SandboxInstitution] = {}
        for inst in scenario.institutions:
            sandbox_inst = SandboxInstitution(
                inst.id,
                signing_keys[inst.id],
                registry_provider,
                Path(data_dir) / "sandbox" / f"{inst.id}.db",
                host=host,
                port=(inst.port or 0) if use_scenario_ports else 0,
                faults=dataclasses.replace(inst.faults),  # a copy: tests mutate it per run
                tls=tls[inst.id] if tls is not None else None,
                kind=inst.kind,
            )
            if sandbox_inst.ledger is not None:
                # A ledger file seeded before (a restart) keeps its history where it is.
                seeded = sandbox_inst.ledger.seed_shift()
                shift = seeded if seeded is not None else scenario.seed_shift(anchor)
                sandbox_inst.ledger.seed(inst.accounts, inst.transfers_out, shift=shift)
            if sandbox_inst.numbers is not None:
                sandbox_inst.numbers.seed(inst.subscribers, inst.ported_out)
            self.institutions[inst.id] = sandbox_inst
        ledgers = {i: inst.ledger for i, inst in self.institutions.items() if inst.ledger is not None}
        self.mules = Mules(scenario, ledgers, clock=clock)
        self._run_mules = run_mules
        self._mule_task: asyncio.Task | None = None

    @property
    def endpoints(self) -> dict[str, str]:
        """Institution id -> "host:port" (ports are known after start())."""
        return {i: inst.endpoint for i, inst in self.institutions.items()}

    async def start(self) -> None:
        started: list[SandboxInstitution] = []
        try:
            for inst in self.institutions.values():
                await inst.start()
                started.append(inst)
            await self.mules.recover()  # moves a previous run on these ledgers already made
        except BaseException:
            for inst in started:  # all or nothing: never leave half a sandbox listening
                await inst.stop()
            raise
        self.mules.start()
        if self._run_mules and self.mules.pending():
            self._mule_task = asyncio.create_task(self.mules.run(), name="sandbox-mules")

    async def wait_for_mules(self) -> None:
        """Wait until the background task has run every move (at once when there is none)."""
        if self._mule_task is not None:
            await asyncio.shield(self._mule_task)

    async def stop(self, grace: float | None = None) -> None:
        task, self._mule_task = self._mule_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for inst in self.institutions.values():
            await inst.stop(grace)
