"""Running sandbox institutions: one grpc.aio server per institution, each with its own ledger,
health checking and server reflection; and `Sandbox`, which runs every institution of a scenario.

What an institution serves depends on its kind: a bank or payment company runs BankService on a
ledger (sandbox.bank, sandbox.ledger), a carrier TelecomService on its numbers (sandbox.carrier,
sandbox.numbers), the telecom and bank regulators RegulatorService on their file of reports
(sandbox.regulator), and the three recall channels (correspondent, central bank, police)
CrossBorderService on their file of recalls (sandbox.crossborder). Each lists its one service in
health checking and reflection.

Institutions call the hub back (HubService, HUB_CALLBACKS) with what they learned after answering:
a bank's back office with a freeze result or return receipt, a recall channel with the updates its
outbox holds (`deliver_recall_updates`, which `Sandbox(..., deliver_recalls=True)` runs every
RECALL_POLL_SECONDS by the real clock; tests deliver by hand).

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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sandbox.bank import BankServicer
from sandbox.carrier import TELECOM_SERVICE, TelecomServicer
from sandbox.crossborder import (
    CHANNEL_BY_KIND,
    CROSS_BORDER_SERVICE,
    CrossBorderServicer,
    RecallStore,
    ReceivedRecall,
    ScheduledUpdate,
)
from sandbox.faults import Faults
from sandbox.ledger import Ledger
from sandbox.mules import Mules
from sandbox.numbers import NumberStore
from sandbox.regulator import REGULATOR_SERVICE, RegulatorServicer, RegulatorStore
from sandbox.scenario import RecallScript, Scenario, load_scenario
from stopline.v1 import (
    bank_pb2,
    bank_pb2_grpc,
    crossborder_pb2_grpc,
    envelope_pb2,
    hub_pb2,
    hub_pb2_grpc,
    regulator_pb2_grpc,
    telecom_pb2_grpc,
)
from trust.keys import SigningKey
from trust.registry import ACCOUNT_KEEPERS, RECALL_CHANNELS, REGULATORS, InstitutionKind, Registry
from trust.tls import TlsIdentity, target_name_options

BANK_SERVICE = bank_pb2.DESCRIPTOR.services_by_name["BankService"].full_name
# The hub's callback RPCs an institution calls with a result it acknowledged earlier, and the
# request message each carries the signed result in.
HUB_CALLBACKS = {
    "ReportFreezeResult": hub_pb2.ReportFreezeResultRequest,
    "ReportReturnResult": hub_pb2.ReportReturnResultRequest,
    "ReportRecallUpdate": hub_pb2.ReportRecallUpdateRequest,
}
# How often a Sandbox delivers its channels' due recall updates, and the longest it waits after
# finding the hub unreachable (the wait doubles from RECALL_POLL_SECONDS up to this).
RECALL_POLL_SECONDS = 0.25
RECALL_BACKOFF_MAX_SECONDS = 5.0

log = structlog.get_logger("sandbox")

RegistrySource = Registry | Callable[[], Registry]

__all__ = [
    "BANK_SERVICE",
    "CROSS_BORDER_SERVICE",
    "REGULATOR_SERVICE",
    "TELECOM_SERVICE",
    "CallbackOutcome",
    "Sandbox",
    "SandboxInstitution",
    "load_scenario",
]

DELIVERED, REFUSED, UNREACHABLE = "delivered", "refused", "unreachable"


@dataclasses.dataclass(frozen=True)
class CallbackOutcome:
    """What became of a callback to the hub: DELIVERED (the hub answered OK), REFUSED (the hub
    answered with `code`, not retried) or UNREACHABLE (no hub endpoint, UNAVAILABLE or
    DEADLINE_EXCEEDED on every attempt: the caller may try again later)."""

    state: str
    code: grpc.StatusCode | None = None
    details: str = ""


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
        recall_scripts: Iterable[RecallScript] = (),
    ):
        """`ledger_path` is the institution's SQLite file: a bank's ledger, a carrier's numbers,
        a regulator's reports, a recall channel's recalls. `kind` picks the service (None: the
        registry's kind for `institution_id`, else a bank). `recall_scripts`: for a recall
        channel, what its foreign side answers (a scenario institution's `recalls`)."""
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
        self.recalls: RecallStore | None = None
        # One delivery round at a time: the background task and a test's call never send the
        # same update twice at once.
        self._delivering = asyncio.Lock()
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
        elif self.kind in RECALL_CHANNELS:
            self.recalls = RecallStore(ledger_path, institution_id)
            self.service_name = CROSS_BORDER_SERVICE
            self._add_servicer = crossborder_pb2_grpc.add_CrossBorderServiceServicer_to_server
            self._servicer = CrossBorderServicer(
                institution_id, signing_key, self._registry, self.recalls, self.faults, CHANNEL_BY_KIND[self.kind],
                recall_scripts, on_request=self._count,
            )  # fmt: skip
        else:
            raise ValueError(f"{institution_id}: the sandbox runs no service for a {self.kind.value}")

    async def _call_hub_back(self, rpc: str, envelope: envelope_pb2.Envelope, attempts: int = 20) -> CallbackOutcome:
        """Call the hub back: HubService `rpc` (a key of HUB_CALLBACKS: ReportFreezeResult with a
        signed FreezeAnswer, ReportReturnResult with a signed ReturnReceipt, ReportRecallUpdate
        with a signed RecallUpdate) at the registry's "hub" endpoint, over mutual TLS as this
        institution. Retry while the hub is unreachable (UNAVAILABLE, DEADLINE_EXCEEDED, no hub
        endpoint yet), as a bank's outbox would, up to `attempts` calls; refusals are logged, not
        retried. Says what happened, so an outbox can keep what did not go (the bank's
        back-office callbacks ignore it)."""
        request = HUB_CALLBACKS[rpc](envelope=envelope)
        bound = log.bind(institution=self.institution_id, rpc=rpc, payload_type=envelope.payload_type)
        last = ""
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
                return CallbackOutcome(DELIVERED)
            except grpc.aio.AioRpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    bound.warning("callback.refused", code=e.code().name, details=e.details())
                    return CallbackOutcome(REFUSED, e.code(), e.details() or "")
                last = f"{e.code().name}: {e.details()}"
            except Exception as e:  # noqa: BLE001 - a registry without the hub: log and retry
                bound.warning("callback.failed", error=str(e))
                last = str(e)
            if attempt < attempts:
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        # One attempt is an outbox's round (it tries again on the next): not worth an error.
        (bound.error if attempts > 1 else bound.info)("callback.gave_up", attempts=attempts, last=last)
        return CallbackOutcome(UNREACHABLE, details=last)

    # --- a recall channel's outbox ---------------------------------------------------------

    async def deliver_recall_updates(self, due_by: datetime | None = None) -> int:
        """Send every pending recall update due by `due_by` (None: all, whatever their time) to
        HubService.ReportRecallUpdate, in sequence order per recovery, each sealed now; return how
        many the hub accepted. OK, or ALREADY_EXISTS (the hub has it: a lost answer), marks an
        update delivered; any other refusal marks it refused with the hub's code, never retried,
        and withholds its recovery's later updates; an unreachable hub leaves the rest pending for
        the next call. 0 for an institution that is not a recall channel."""
        accepted, _ = await self._deliver_recalls(due_by)
        return accepted

    async def _deliver_recalls(self, due_by: datetime | None) -> tuple[int, bool]:
        """deliver_recall_updates, and whether the hub was reached (False: it was unreachable)."""
        store = self.recalls
        if store is None:
            return 0, True
        accepted = 0
        async with self._delivering:
            for batch in await asyncio.to_thread(store.deliverable, due_by):
                for scheduled in batch:
                    key = (scheduled.recovery_id, scheduled.sequence)
                    bound = log.bind(institution=self.institution_id, recovery_id=key[0], sequence=key[1])
                    payload = await asyncio.to_thread(store.attempt, *key, datetime.now(UTC))
                    outcome = await self._call_hub_back(
                        "ReportRecallUpdate", self._servicer.seal_update(payload), attempts=1
                    )
                    if outcome.state == UNREACHABLE:
                        return accepted, False  # the hub is everyone's: the rest waits too
                    if outcome.state == DELIVERED or outcome.code is grpc.StatusCode.ALREADY_EXISTS:
                        await asyncio.to_thread(store.mark_delivered, *key, datetime.now(UTC))
                        accepted += 1
                        bound.info("recall_update.delivered", already_there=outcome.state != DELIVERED)
                        continue
                    withheld = await asyncio.to_thread(store.mark_refused, *key, outcome.code.name, outcome.details)
                    bound.warning("recall_update.refused", code=outcome.code.name, details=outcome.details,
                                  withheld=withheld)  # fmt: skip
                    break  # the recovery's later updates would be a gap: withheld
        return accepted, True

    def recall_orders(self) -> list[ReceivedRecall]:
        """The recall orders this channel received, oldest first (none for other kinds)."""
        return self.recalls.orders() if self.recalls is not None else []

    def recall_updates(self, recovery_id: str | None = None) -> list[ScheduledUpdate]:
        """This channel's outbox with each update's state, by recovery and sequence (none for
        other kinds)."""
        return self.recalls.updates(recovery_id) if self.recalls is not None else []

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
        for books in (self.ledger, self.numbers, self.reports, self.recalls):
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
    `mules.step()`. clock: the race clock's seconds (monotonic), for tests.
    deliver_recalls: deliver the recall channels' due updates in a background task from start(),
    every RECALL_POLL_SECONDS by the real clock; False leaves them to
    `institutions[id].deliver_recall_updates(due_by)`."""

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
        deliver_recalls: bool = True,
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
                recall_scripts=inst.recalls,
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
        self._deliver_recalls = deliver_recalls
        self._recall_task: asyncio.Task | None = None

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
        channels = [inst for inst in self.institutions.values() if inst.recalls is not None]
        if self._deliver_recalls and channels:
            self._recall_task = asyncio.create_task(self._deliver_recalls_forever(channels), name="sandbox-recalls")

    async def _deliver_recalls_forever(self, channels: list[SandboxInstitution]) -> None:
        """Every RECALL_POLL_SECONDS, each running channel delivers what is due by now. A channel
        that found the hub unreachable waits longer before its next round (doubling up to
        RECALL_BACKOFF_MAX_SECONDS), so a hub that is down is not called four times a second; a
        round that fails is logged and tried again (delivery is safe to repeat)."""
        wait = {inst.institution_id: RECALL_POLL_SECONDS for inst in channels}
        next_round = {inst.institution_id: 0.0 for inst in channels}
        while True:
            for inst in channels:
                key = inst.institution_id
                if not inst.running or time.monotonic() < next_round[key]:
                    continue
                try:
                    _, reached = await inst._deliver_recalls(datetime.now(UTC))
                except Exception as e:
                    log.error("recalls.delivery_failed", institution=key, error=f"{type(e).__name__}: {e}")
                    reached = False
                wait[key] = RECALL_POLL_SECONDS if reached else min(wait[key] * 2, RECALL_BACKOFF_MAX_SECONDS)
                next_round[key] = time.monotonic() + wait[key]
            await asyncio.sleep(RECALL_POLL_SECONDS)

    async def wait_for_mules(self) -> None:
        """Wait until the background task has run every move (at once when there is none)."""
        if self._mule_task is not None:
            await asyncio.shield(self._mule_task)

    async def stop(self, grace: float | None = None) -> None:
        for name in ("_mule_task", "_recall_task"):
            task = getattr(self, name)
            setattr(self, name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for inst in self.institutions.values():
            await inst.stop(grace)
