"""The whole hub on one machine (embedded defaults): Temporal dev server, sandbox institutions,
worker and gateway, started in order and stopped in reverse. `stopline up` and `stopline demo`
run it; each part also runs alone (`stopline worker|gateway|sandbox`)."""

from __future__ import annotations

import asyncio
import fcntl
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.service import RPCError

from adapters.channels import ChannelPool
from audit.checkpointer import Checkpointer
from audit.log import AuditLog
from audit.note import NoteSigner
from audit.store import SqliteAuditStore
from gateway.server import start_gateway
from gateway.service import HubServicer
from stopline.config import Settings
from stopline.embedded import DevServer, register_search_attributes
from stopline.setup import HUB_ID, initialise, record_endpoints, registry_file, tls_identity
from trust.keys import SigningKey, SigningKeyFile
from trust.replay import SqliteNonceCache
from worker import build_worker

log = structlog.get_logger("stack")


def load_scenario_and_keys(settings: Settings):
    from sandbox.server import load_scenario  # the sandbox's public API only

    scenario = load_scenario(settings.scenario)  # a shipped name ("boxing") or a JSON file
    return scenario, initialise(settings, scenario)


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


async def ensure_search_attributes(client: Client) -> None:
    """On a Temporal the hub did not start itself, make sure operators can search cases. Where
    the operator API is closed to us, say so and go on: an operator registers them once."""
    try:
        await register_search_attributes(client)
    except RPCError as e:
        log.warning("could not register search attributes; register them on the cluster", error=str(e))


def hub_key_file(settings: Settings) -> SigningKeyFile:
    """The hub's signing key, followed across `stopline keys rotate hub` without a restart."""
    return SigningKeyFile(HUB_ID, settings.key_path(HUB_ID))


def open_audit(settings: Settings, hub_key: SigningKey) -> AuditLog:
    """The hub's audit log; its checkpoints are C2SP signed notes under the hub's key."""
    return AuditLog(
        SqliteAuditStore(settings.audit_db),
        NoteSigner(settings.audit_origin, hub_key.private_key),
        settings.audit_origin,
        checkpoint_every=settings.audit_checkpoint_every,
    )


@asynccontextmanager
async def checkpointing(audit: AuditLog, every_seconds: float):
    """Sign checkpoints on a background thread while the block runs: soon after appends cross a
    multiple of the log's `checkpoint_every` (appends only flag it, so no stop-payment waits for
    a signature), every `every_seconds` while entries come in, at once for a tail a killed
    process left unsigned, and one last on the way out. A failed attempt is logged and tried
    again next round: the thread never dies silently."""

    def failed(e: Exception) -> None:
        log.error("audit checkpoint failed; will try again", error=f"{type(e).__name__}: {e}")

    checkpointer = Checkpointer(audit, every_seconds, on_error=failed)
    checkpointer.start()
    try:
        yield audit
    finally:
        await asyncio.to_thread(checkpointer.stop)


@contextmanager
def data_dir_lock(data_dir: Path):
    """Exclusive hold on a data folder, so `stopline demo` can never reset the ledgers of a
    running `stopline up`, nor two stacks share one Temporal database."""
    handle = open(data_dir / "lock", "w")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"{data_dir} is in use by another stopline process (is `stopline up` running?)"
            ) from None
        yield
    finally:
        handle.close()


class Stack:
    def __init__(
        self,
        settings: Settings,
        *,
        temporal: bool = True,
        sandbox: bool = True,
        worker: bool = True,
        gateway: bool = True,
        reset_sandbox: bool = False,
        anchor: datetime | None = None,
    ):
        self.settings = settings
        self._reset_sandbox = reset_sandbox
        # The sandbox's history is seeded as if its case were reported at `anchor` (the demo
        # reports it then); None keeps the scenario's own times (operators report its file).
        self._anchor = anchor
        self._want = {"temporal": temporal and settings.embedded_temporal, "sandbox": sandbox,
                      "worker": worker, "gateway": gateway}  # fmt: skip
        self._exit = AsyncExitStack()
        self.dev_server: DevServer | None = None
        self.sandbox = None
        self.client: Client | None = None
        self.gateway_port: int | None = None
        self.scenario = None
        self.keys: dict[str, SigningKey] = {}
        self.audit: AuditLog | None = None
        self.case_index = None

    @property
    def gateway_address(self) -> str:
        host = self.settings.gateway_address.rsplit(":", 1)[0]
        return f"{host}:{self.gateway_port}"

    def addresses(self) -> dict[str, str]:
        out = {"Temporal frontend": self.settings.temporal_address}
        if self.dev_server is not None:
            out["Temporal Web UI"] = self.dev_server.ui_url
        if self.gateway_port is not None:
            out["HubService (gateway)"] = self.gateway_address
        if self.sandbox is not None:
            for inst_id, inst in self.sandbox.institutions.items():
                out[f"sandbox {inst_id}"] = inst.endpoint
        out["data folder"] = str(self.settings.data_dir.resolve())
        out["logs (JSON)"] = str((self.settings.data_dir / "stopline.log").resolve())
        return out

    async def __aenter__(self) -> Stack:
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._exit.aclose()

    def _case_index(self):
        """The case index (links cases, finds every case touching an account or number), shared
        by the gateway and the worker of this process."""
        if self.case_index is None:
            from stopline.caseindex import SqliteCaseIndex

            self.case_index = SqliteCaseIndex(self.settings.case_index_db)
            self._exit.callback(self.case_index.close)
        return self.case_index

    async def _start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if self._want["temporal"] or self._want["sandbox"]:
            # The Temporal database and the sandbox ledgers have one owner at a time.
            self._exit.enter_context(data_dir_lock(s.data_dir))
        if self._reset_sandbox:
            for ledger in (s.data_dir / "sandbox").glob("*.db*"):
                ledger.unlink()
        self.scenario, self.keys = load_scenario_and_keys(s)
        registry = registry_file(s)

        if self._want["temporal"]:
            self.dev_server = DevServer(
                address=s.temporal_address, ui_port=s.temporal_ui_port,
                db_file=s.temporal_db, log_file=s.data_dir / "temporal.log",
            )  # fmt: skip
            await self.dev_server.start(s.temporal_namespace)
            self._exit.push_async_callback(self.dev_server.stop)
            log.info("temporal dev server up", address=s.temporal_address, ui=self.dev_server.ui_url)

        if self._want["sandbox"]:
            from sandbox.server import Sandbox

            self.sandbox = Sandbox(
                self.scenario, s.data_dir, registry,
                {i.id: self.keys[i.id] for i in self.scenario.institutions},
                use_scenario_ports=s.sandbox_ports == "scenario",
                tls=None if s.plaintext else {i.id: tls_identity(s, i.id) for i in self.scenario.institutions},
                anchor=self._anchor,
            )  # fmt: skip
            await self.sandbox.start()
            self._exit.push_async_callback(self.sandbox.stop)
            if s.sandbox_ports == "auto":
                record_endpoints(s, {i: inst.endpoint for i, inst in self.sandbox.institutions.items()})

        if self._want["worker"] or self._want["gateway"]:
            self.client = await connect(s)
            if not self._want["temporal"]:
                await ensure_search_attributes(self.client)

        audit = None
        if self._want["worker"] or self._want["gateway"]:
            audit = await self._exit.enter_async_context(
                checkpointing(open_audit(s, self.keys[HUB_ID]), s.audit_checkpoint_seconds)
            )
            self.audit = audit

        if self._want["worker"]:
            channels = ChannelPool(tls_identity(s, HUB_ID))
            self._exit.push_async_callback(channels.close)
            worker = build_worker(
                self.client, s.task_queue, hub_key=hub_key_file(s), registry=registry, channels=channels,
                audit=audit, replay=SqliteNonceCache(s.nonces_db), case_index=self._case_index(),
            )  # fmt: skip
            task = asyncio.create_task(worker.run())

            async def stop_worker() -> None:
                await worker.shutdown()
                await task

            self._exit.push_async_callback(stop_worker)
            log.info("worker running", task_queue=s.task_queue)

        if self._want["gateway"]:
            hub = HubServicer(
                self.client, registry, hub_key_file(s), s.task_queue, audit, SqliteNonceCache(s.nonces_db),
                chase_max_depth=s.chase_max_depth, case_index=self._case_index(), deadlines=s.deadlines,
                escalation=s.escalation, estimate_rates=s.rates,
                recall_give_up_days=s.recall_give_up_days, report_limit=s.report_limit,
            )  # fmt: skip
            server, self.gateway_port = await start_gateway(s.gateway_address, hub, tls_identity(s, HUB_ID))
            self._exit.push_async_callback(server.stop, 2)
            log.info("gateway listening", address=self.gateway_address)
