"""Throughput: sustained cases per second at 1 and 2 worker processes, with latency while loaded,
against bare Temporal doing the same Temporal work as a case (the target's baseline) and, for
scale, against bare Temporal running only as many activities; where the knee is and what
saturates; the audit log's append and verify rates on the full stack.

How:
  * one private embedded dev server (stopline.embedded.DevServer: the SQLite file and fast pragmas
    `stopline up` uses) on OS-free ports, its own data folder;
  * in this process the sandbox institutions and the gateway (a Stack without Temporal or worker),
    and the load generator: police reports through HubService over gRPC with mutual TLS;
  * N = 1, then 2 `stopline worker` processes on one task queue: the hub as deployed;
  * the boxing scenario copied once per case (every account under its own numbers), so every case
    is an unrelated fraud whose stops really hold money (no suspect phone numbers: this is about
    money, as in tests/test_faults.py; no mule moves: see scenario_copies); after each level every
    case is checked to hold what the first case held, one hold per account;
  * closed loop: at each concurrency level (1, 2, 4, ... cases in flight) a fixed number of cases,
    a new one reported as soon as one finishes; a level that adds under 10% to the best throughput
    so far is past the knee and the last one run;
  * two baselines in the same run, on the same server, interleaved level by level with the cases
    (a noisy machine then moves all three alike), run by 1, then 2 bare worker processes
    (bench/bare_worker.py), with nothing of Stopline in them and no-op activities:
      - same shape (the target is judged on it): bench/bare_shape.py's BareCaseShape, whose input
        is measured from the first case's histories (case_shape): as many child workflows, left
        open on long timers as the holds are, as many calls each watched by a timer, local where
        the case's are local, as many search-attribute upserts (StoplineStatus) and patch
        markers. The ratio to it is the hub's own work: signing, verifying, auditing, validating,
        and the sandbox banks answering;
      - same activities (for scale only): BareFanOut of as many no-op activities as a case runs
        (regular and local, child workflows included), one workflow with no children or timers;
    the table prints the measured Temporal work of a case and of both (workflows, workflow tasks,
    timers, upserts, activities, patches). The first case is seen done in the audit log before it
    is read through GetCase: a query reaching a case while its local activities run ends its
    workflow task early (measured here: 9 or 10 workflow tasks and 8 timers instead of 6 and 5), and the
    measured cases are never queried;
  * open workflows: a case's holds and the same-shape children stay open on the dev server for
    the whole run (neither is terminated: that would be dev-server work of its own, in or between
    levels); they pile up alike and end with the server and its folder;
  * CPU of the dev server, each worker process and this process (gateway + sandbox + load) over
    each level, with psutil: who is at 100% of a core. The machine has 2 cores, so all of them
    compete; the sum is also given against the machine's total.

Latency of a case is report -> every stop of the case answered: from just before ReportCase is
sent to the moment the hub recorded the last signed stop-payment answer in its audit log (the
entry's `recorded_at`, taken as the answer is verified, just before the durable append). Each case
is seen finished by reading the audit log's new entries every POLL_SECONDS in this process: one
indexed range read of the newest rows, no load on Temporal or the workers (polling GetCase would
be a workflow query per case in flight on the very workers being measured). The poll only delays
when the next case is reported, by at most POLL_SECONDS; the latency itself comes from the entry.

    .venv/bin/python -m bench.throughput     # prints the table; bench/results/throughput.json

Knobs: BENCH_THROUGHPUT_CASES (Stopline cases per level, default 100; at least 6 x the
concurrency), BENCH_THROUGHPUT_SHAPE_RUNS (same-shape baseline workflows per level, default as
many as cases), BENCH_THROUGHPUT_BARE_RUNS (same-activities workflows per level, default 200),
BENCH_THROUGHPUT_LEVELS (default 1,2,4,8,16,32), BENCH_THROUGHPUT_WORKERS (default 1,2),
BENCH_THROUGHPUT_EARLY_STOP=0 runs every level.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psutil

from audit.entry import AuditEntry, Direction, EntryKind
from bench.common import RESULTS, machine, summary  # bench.bare_shape runs in bench/bare_worker.py
from sandbox.ledger import Ledger
from stopline import config, logs
from stopline.casefile import rebase_report, report_from_dict
from stopline.cli import CHASE_DONE, hub_client
from stopline.embedded import DevServer, free_port
from stopline.stack import Stack
from stopline.v1 import bank_pb2, envelope_pb2

ROOT = Path(__file__).resolve().parent.parent
STOPLINE = str(Path(sys.prefix) / "bin" / "stopline")
SCENARIO = ROOT / "sandbox" / "scenarios" / "boxing.json"
BANKS = ("qilu-bank", "huaxia-pay")  # the boxing institutions that hold money
STOP_ANSWER = "stopline.v1.StopPaymentAnswer"

CASES = int(os.environ.get("BENCH_THROUGHPUT_CASES", 100))
BARE_RUNS = int(os.environ.get("BENCH_THROUGHPUT_BARE_RUNS", 200))
SHAPE_RUNS = int(os.environ.get("BENCH_THROUGHPUT_SHAPE_RUNS", CASES))
LEVELS = tuple(int(x) for x in os.environ.get("BENCH_THROUGHPUT_LEVELS", "1,2,4,8,16,32").split(","))
WORKERS = tuple(int(x) for x in os.environ.get("BENCH_THROUGHPUT_WORKERS", "1,2").split(","))
EARLY_STOP = os.environ.get("BENCH_THROUGHPUT_EARLY_STOP", "1") != "0"
KNEE_GAIN = 1.10  # a level adding less than this over the best so far is past the knee
KNEE_SHARE = 0.90  # the knee: the lowest concurrency reaching this share of the peak
TARGET = 0.80  # Stopline's peak cases/s against the same-shape baseline's workflows/s
POLL_SECONDS = 0.02
CASE_WITHIN = 120.0  # a case not answered by then fails the run


# --- the parts ---------------------------------------------------------------------------------


def _copy_number(number: str, n: int) -> str:
    """Account `number` in the n-th copy of the scenario. Four digits where every boxing account
    has the same ones ("0000" in bank numbers, "8800" in huaxia-pay's), so copies never collide
    (tests/test_faults.py's two digits allow only 100 copies)."""
    if number.startswith("HXP-"):
        return f"HXP-{n:04d}{number[8:]}"
    return f"{number[:6]}{n:04d}{number[10:]}"


def scenario_copies(
    copies: int, folder: Path, *, case_prefix: str = "TP", keep_moves: bool = False
) -> tuple[Path, list[dict]]:
    """The boxing scenario with `copies` unrelated frauds, each under its own account numbers, and
    a case per copy (the same case reported twice would be linked to the first, not chased). No
    suspect phone numbers: this is about money. (tests/test_faults.py copies it this way too.)"""
    scenario = json.loads(SCENARIO.read_text())
    numbers = re.compile(r'"(62\d{14}|HXP-\d{4}-\d{4}-\d{4})"')

    def copy(value, n: int):
        return json.loads(numbers.sub(lambda m: f'"{_copy_number(m.group(1), n)}"', json.dumps(value)))

    for inst in scenario["institutions"]:
        # No mule moves unless asked: a move runs `after_seconds` after the sandbox starts, so
        # every case reported later than that (all but the first few of a long run) would find
        # that money gone, and cases would differ by when they ran.
        if not keep_moves:
            inst.pop("moves", None)
        for key in ("accounts", "transfers_out", "moves"):
            if inst.get(key):
                inst[key] = [item for n in range(copies) for item in copy(inst[key], n)]
    cases = [
        copy(scenario["case"], n) | {"case_id": f"{case_prefix}-{n:05d}", "suspect_phone_numbers": []}
        for n in range(copies)
    ]
    path = folder / "boxing-copies.json"
    path.write_text(json.dumps(scenario))
    return path, cases


def hub_env(data: Path, address: str, scenario: Path) -> dict[str, str]:
    """Settings for a hub whose parts all point at this bench's dev server and folder."""
    return os.environ | {
        "STOPLINE_SCENARIO": str(scenario),
        "STOPLINE_SANDBOX_PORTS": "auto",
        "STOPLINE_DATA_DIR": str(data / "hub"),
        "STOPLINE_EMBEDDED_TEMPORAL": "false",
        "STOPLINE_TEMPORAL_ADDRESS": address,
        "STOPLINE_GATEWAY_ADDRESS": "127.0.0.1:0",
        "STOPLINE_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "STOPLINE_LOG_LEVEL": "ERROR",
        # The gateway's per-caller limit (5 reports/s, bursts of 50) protects the hub from one
        # runaway unit; here one unit stands in for every unit in a province, so it is lifted to
        # measure the hub's capacity rather than the policy.
        "STOPLINE_REPORT_RATE_PER_SECOND": "10000",
        "STOPLINE_REPORT_BURST": "10000",
    }


class Processes:
    """Subprocesses started here, each with its log in a file (a pipe nobody reads fills up and
    blocks the child mid-write); all of them ended in `stop_all`."""

    def __init__(self) -> None:
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with open(log, "a") as out:
            proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out)
        self.running[name] = proc
        return proc

    async def stop(self, name: str) -> None:
        proc = self.running.pop(name)
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: a worker shuts down cleanly and signs a last checkpoint
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    async def stop_all(self) -> None:
        for name in list(self.running):
            await self.stop(name)


class CpuMeter:
    """CPU time of named processes over an interval, as % of one core. Children are counted only
    where asked (the dev server's): this process is the parent of every other one measured."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.with_children: set[str] = set()

    def _seconds(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                proc = psutil.Process(pid)
                total = 0.0
                family = proc.children(recursive=True) if name in self.with_children else []
                for p in [proc, *family]:
                    t = p.cpu_times()
                    total += t.user + t.system
                out[name] = total
            except psutil.NoSuchProcess:
                out[name] = float("nan")
        return out

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = self._seconds()
        self._machine = psutil.cpu_times()

    def stop(self) -> dict:
        elapsed = time.perf_counter() - self._wall
        now = self._seconds()
        seconds = {name: now[name] - self._cpu.get(name, 0.0) for name in now}
        m0, m1 = self._machine, psutil.cpu_times()
        iowait = getattr(m1, "iowait", 0) - getattr(m0, "iowait", 0)
        idle = (m1.idle - m0.idle) + iowait
        total = sum(m1) - sum(m0)
        cores = psutil.cpu_count() or 1
        percent = {name: round(100 * s / elapsed, 1) for name, s in seconds.items()}
        busy = 100 * (1 - idle / total) if total else 0.0
        # What the machine did besides the processes measured: another job on a shared machine.
        percent["other processes"] = round(
            max(0.0, busy * cores - sum(v for v in percent.values() if v == v)), 1
        )
        return {
            "percent_of_one_core": percent,
            "cpu_seconds": {name: round(s, 3) for name, s in seconds.items()},
            "machine_busy_percent": round(100 * (1 - idle / total), 1) if total else None,  # of all cores
            # Idle while some process waited for the disk (fsync: SQLite commits).
            "machine_iowait_percent": round(100 * iowait / total, 1) if total else None,
            "cores": cores,
        }


class AnswerWatcher:
    """When the hub recorded each case's signed stop-payment answers, read from the audit log:
    every POLL_SECONDS the entries appended since the last look (a primary-key range), keeping the
    IN envelopes that carry a StopPaymentAnswer, by case and idempotency key (a retried request
    answered twice counts once, at its first answer)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._next = 0
        self.answers: dict[str, dict[str, float]] = {}  # case -> key -> recorded_at (epoch s)
        self.envelopes: Counter[str] = Counter()  # per case: signed envelopes recorded
        self._waiting: dict[str, tuple[int, asyncio.Future]] = {}
        self._task: asyncio.Task | None = None

    def size(self) -> int:
        self.poll()
        return self._next

    def poll(self) -> None:
        rows = self._db.execute(
            "SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx", (self._next,)
        ).fetchall()
        for idx, leaf in rows:
            self._next = idx + 1
            entry = AuditEntry.decode(leaf)
            if entry.kind is not EntryKind.ENVELOPE:
                continue
            self.envelopes[entry.case_id] += 1
            if entry.direction is not Direction.IN:
                continue
            envelope = envelope_pb2.Envelope.FromString(entry.payload)
            if envelope.payload_type != STOP_ANSWER:
                continue
            answer = bank_pb2.StopPaymentAnswer.FromString(envelope.payload)
            keys = self.answers.setdefault(entry.case_id, {})
            keys.setdefault(answer.idempotency_key, entry.recorded_at.timestamp())
        for case_id, (n, future) in list(self._waiting.items()):
            if len(self.answers.get(case_id, ())) >= n:
                del self._waiting[case_id]
                future.done() or future.set_result(max(self.answers[case_id].values()))

    async def _run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(POLL_SECONDS)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._db.close()

    async def answered(self, case_id: str, stops: int, within: float = CASE_WITHIN) -> float:
        """When (epoch s) the case's `stops`-th distinct stop answer was recorded (waits for it)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[case_id] = (stops, future)
        self.poll()
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            got = len(self.answers.get(case_id, ()))
            raise AssertionError(f"case {case_id}: {got} of {stops} stop answers after {within} s") from None


def holds_by_case(data_dir: Path) -> dict[str, list]:
    """Every hold the sandbox banks applied, read from their SQLite ledgers, by case."""
    out: dict[str, list] = {}
    for inst_id in BANKS:
        ledger = Ledger(data_dir / "sandbox" / f"{inst_id}.db", inst_id)
        try:
            for hold in ledger.holds():
                out.setdefault(hold.case_id, []).append(hold)
        finally:
            ledger.close()
    return out


async def history_counts(client, workflow_id: str) -> dict:
    """Events of a workflow and, recursively, of the child workflows it started, by type: in all
    (`workflows`, `events`) and as a tree (`tree`: each workflow's type, events and children)."""
    from temporalio.api.enums.v1 import EventType

    total: Counter[str] = Counter()
    workflows = 0

    async def one(wid: str) -> dict:
        nonlocal workflows
        workflows += 1
        counts: Counter[str] = Counter()
        kind, children = "", []
        history = await client.get_workflow_handle(wid).fetch_history()
        sequence = []
        for event in history.events:
            name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            counts[name] += 1
            sequence.append(name)
            if event.HasField("workflow_execution_started_event_attributes"):
                kind = event.workflow_execution_started_event_attributes.workflow_type.name
            if event.HasField("marker_recorded_event_attributes"):
                # A local activity (the case's first calls may be: workflows/case.py _chase_call)
                # leaves a marker, not ACTIVITY_TASK_SCHEDULED; a patch leaves one too.
                counts[f"MARKER:{event.marker_recorded_event_attributes.marker_name}"] += 1
                sequence[-1] = f"MARKER:{event.marker_recorded_event_attributes.marker_name}"
            if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                children.append(event.start_child_workflow_execution_initiated_event_attributes.workflow_id)
        total.update(counts)
        children_ = [await one(c) for c in children]
        return {"type": kind, "events": dict(counts), "sequence": sequence, "children": children_}

    tree = await one(workflow_id)
    return {"workflows": workflows, "events": dict(total), "tree": tree}


def case_shape(tree: dict) -> dict:
    """The input of bench.bare_shape's BareCaseShape for a workflow measured by history_counts:
    per workflow its patches, upserts (besides the one the SDK makes for each patch: it upserts
    TemporalChangeVersion), local and regular calls, timers besides the calls' (a child's: the
    long ones it waits on; the calls' own answer-deadline timers come with the calls), and
    children. A call that fell back from a local try to a regular activity counts as both, as
    it is both in the case's history."""
    e = tree["events"]
    patches = e.get("MARKER:core_patch", 0)
    local, regular = e.get("MARKER:core_local_activity", 0), e.get("ACTIVITY_TASK_SCHEDULED", 0)
    timers = e.get("TIMER_STARTED", 0)
    return {
        "patches": patches,
        "upserts": max(0, e.get("UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", 0) - patches),
        "local_calls": local,
        "regular_calls": regular,
        # Each call is watched by a timer (cancelled, or never sent when the answer comes within
        # the workflow task); timers beyond the calls' are waits (a hold's 48 hours).
        "timers": max(0, timers - local - regular),
        "children": [case_shape(c) for c in tree["children"]],
    }


# --- closed-loop load --------------------------------------------------------------------------


async def closed_loop(concurrency: int, total: int, one, cpu: CpuMeter) -> dict:
    """`total` runs of `one(i)`, `concurrency` at a time, each next one started as one ends."""
    next_index = iter(range(total))
    results: list = []

    async def lane() -> None:
        for i in next_index:
            results.append(await one(i))

    cpu.start()
    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    used = cpu.stop()
    return {"concurrency": concurrency, "runs": total, "seconds": round(elapsed, 2),
            "per_second": round(total / elapsed, 2), "results": results, "cpu": used}  # fmt: skip


def past_knee(levels: list[dict]) -> bool:
    best_before = max((lv["per_second"] for lv in levels[:-1]), default=0.0)
    return bool(best_before) and levels[-1]["per_second"] < KNEE_GAIN * best_before


def knee(levels: list[dict]) -> dict:
    """The lowest concurrency reaching KNEE_SHARE of the peak: more in flight only adds waiting."""
    peak = max(lv["per_second"] for lv in levels)
    return next(lv for lv in levels if lv["per_second"] >= KNEE_SHARE * peak)


# --- signing cost (to say how much of the hub's CPU it is) --------------------------------------


def signing_microseconds(n: int = 500) -> dict:
    """One Ed25519 seal and one signature check as the hub and banks do them, in us (CPU)."""
    from bench.audit import sample_envelope
    from trust.envelope import seal, verify_as_signed

    payload, key, registry = sample_envelope()
    envelope = envelope_pb2.Envelope.FromString(payload)
    order = bank_pb2.StopPaymentOrder(idempotency_key="case-X/stop/qilu-bank/1/1", case_id="X")
    started = time.process_time()
    for _ in range(n):
        seal(order, key)
    sealed = time.process_time() - started
    started = time.process_time()
    for _ in range(n):
        verify_as_signed(envelope, registry)
    checked = time.process_time() - started
    return {"seal_us": round(sealed / n * 1e6, 1), "verify_us": round(checked / n * 1e6, 1)}


# --- the run -----------------------------------------------------------------------------------


async def measure(data: Path, *, quick: bool = False) -> dict:
    logs.configure(json=False, level="ERROR")
    levels = (1, 4) if quick else LEVELS
    worker_counts = (1,) if quick else WORKERS
    early_stop = EARLY_STOP and not quick

    def stopline_runs(c: int) -> int:
        return 8 if quick else max(CASES, 6 * c)  # enough rounds that the ramp-down tail is small

    def bare_runs(c: int) -> int:
        return 16 if quick else max(BARE_RUNS, 6 * c)

    def shape_runs(c: int) -> int:
        return 8 if quick else max(SHAPE_RUNS, 6 * c)

    warm = 2  # cases per worker count before measuring: a new process's first workflows are slow
    copies = 1 + len(worker_counts) * (warm + sum(stopline_runs(c) for c in levels))
    scenario, cases = scenario_copies(copies, data)
    case_iter = iter(cases)
    server = DevServer(address=f"127.0.0.1:{free_port()}", ui_port=free_port(),
                       db_file=data / "temporal.db", log_file=data / "temporal.log")  # fmt: skip
    procs = Processes()
    result: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": quick,
    }
    await server.start()
    try:
        env = hub_env(data, server.address, scenario)
        settings = config.load(env=env)
        anchor = datetime.now(UTC)
        async with Stack(settings, temporal=False, worker=False, anchor=anchor) as stack:
            env["STOPLINE_GATEWAY_ADDRESS"] = stack.gateway_address  # where banks call the hub back
            hub = hub_client(settings, stack.scenario.case["reporting_unit"], stack.gateway_address)
            watcher = AnswerWatcher(settings.audit_db)
            watcher.start()
            cpu = CpuMeter()
            cpu.pids = {"dev server": server.process.pid, "bench process": os.getpid()}
            cpu.with_children = {"dev server"}
            bare_queue = f"bare-{uuid.uuid4().hex[:8]}"
            try:
                result |= await _run(
                    stack, hub, watcher, cpu, procs, env, data, server.address, bare_queue, case_iter, anchor,
                    levels, worker_counts, early_stop, stopline_runs, bare_runs, shape_runs, warm,
                )  # fmt: skip
                await procs.stop_all()  # the workers sign their last checkpoint on the way out
                result["audit"]["verify"] = await _verify(settings)
            finally:
                await procs.stop_all()
                await watcher.stop()
                await hub.close()
    finally:
        await procs.stop_all()
        await server.stop()  # open workflows (holds wait days) end with the server and its folder
    result["signing"] = signing_microseconds()
    result["table"], result["findings"] = _table(result)
    return result


async def _run(stack, hub, watcher, cpu, procs, env, data, address, bare_queue, case_iter, anchor,
               levels, worker_counts, early_stop, stopline_runs, bare_runs, shape_runs, warm) -> dict:  # fmt: skip
    client = stack.client
    out: dict = {"settings": {"levels": list(levels), "worker_processes": list(worker_counts),
                              "stopline_cases_per_level": {c: stopline_runs(c) for c in levels},
                              "bare_runs_per_level": {c: bare_runs(c) for c in levels},
                              "shape_runs_per_level": {c: shape_runs(c) for c in levels},
                              "poll_seconds": POLL_SECONDS, "early_stop": early_stop}}  # fmt: skip
    expected: dict = {}
    checked: list[str] = []

    async def report(case: dict) -> tuple[str, float, float]:
        report_pb = rebase_report(report_from_dict(case), anchor, case["case_id"])
        sent = time.time()
        await hub.report_case(report_pb)
        return case["case_id"], sent, time.time() - sent

    async def wait_views(case_ids: list[str]) -> dict:
        """Each case as the hub itself shows it, once done (the last answer may still be on its
        way into the workflow when the audit log has it)."""
        views = {}
        gate = asyncio.Semaphore(4)

        async def one(case_id: str) -> None:
            async with gate:
                deadline = time.monotonic() + 60
                while True:
                    view = await hub.get_case(case_id)
                    if view.status in CHASE_DONE:
                        views[case_id] = view
                        return
                    if time.monotonic() > deadline:
                        raise AssertionError(f"case {case_id} not done: {view.status}")
                    await asyncio.sleep(0.1)

        await asyncio.gather(*(one(c) for c in case_ids))
        return views

    async def check(case_ids: list[str]) -> None:
        """Guard: every case held what a clean run holds, one hold per account, and says so."""
        views = await wait_views(case_ids)
        holds = await asyncio.to_thread(holds_by_case, stack.settings.data_dir)
        for case_id in case_ids:
            per_account = Counter(h.account for h in holds.get(case_id, []))
            held = sum(h.amount_minor for h in holds.get(case_id, []))
            assert len(per_account) == expected["holds"] and max(per_account.values()) == 1, (
                case_id,
                per_account,
            )
            assert held == expected["held_minor"] == views[case_id].total_held.minor_units, (case_id, held)
        checked.extend(case_ids)

    async def first_case() -> None:
        """One case alone, waited for through the hub: how many stops a case answers, what it
        holds, and how many activities and workflows it runs (the baseline's size)."""
        case_id, _, _ = await report(next(case_iter))
        # Seen answered in the audit log first, not by polling GetCase: a query that reaches the
        # case while its local activities run ends its workflow task early, so its history (the
        # same-shape baseline's input) would have workflow tasks and timers the measured cases,
        # never queried, do not.
        deadline, seen = time.monotonic() + CASE_WITHIN, -1
        while True:
            watcher.poll()
            answered = len(watcher.answers.get(case_id, ()))
            if answered and answered == seen:  # no new answer for a second: the chase is done
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"case {case_id}: {answered} stop answers after {CASE_WITHIN} s")
            seen = answered
            await asyncio.sleep(1)
        views = await wait_views([case_id])
        await asyncio.sleep(1)  # children started as the last stop was answered settle
        watcher.poll()
        holds = holds_by_case(stack.settings.data_dir)[case_id]
        expected.update(
            stops=len(watcher.answers[case_id]),
            holds=len(holds),
            held_minor=views[case_id].total_held.minor_units,
            envelopes=watcher.envelopes[case_id],
            history=await history_counts(client, f"case-{case_id}"),
        )
        assert expected["held_minor"] > 0 and expected["held_minor"] == sum(h.amount_minor for h in holds)
        checked.append(case_id)

    per_workers: dict = {}
    for n_workers in worker_counts:
        for i in range(n_workers):
            procs.start(f"worker-{i + 1}", [STOPLINE, "worker"], env, data / f"worker-{i + 1}.log")
            procs.start(f"bare-{i + 1}", [sys.executable, "-m", "bench.bare_worker", address, bare_queue],
                        env, data / f"bare-worker-{i + 1}.log")  # fmt: skip
        cpu.pids = {k: v for k, v in cpu.pids.items() if k in ("dev server", "bench process")}
        cpu.pids |= {name: proc.pid for name, proc in procs.running.items()}
        if not expected:
            await first_case()
            events = expected["history"]["events"]
            # Every activity the case ran: regular ones and local ones (a call tried locally first).
            regular, local = (
                events.get("ACTIVITY_TASK_SCHEDULED", 0),
                events.get("MARKER:core_local_activity", 0),
            )
            out["stopline_case"] = dict(expected) | {"activities": regular + local, "local_activities": local}
            # The same-shape baseline's input, from the case's histories (follows the hub's changes).
            out["shape"] = case_shape(expected["history"]["tree"])
        activities = out["stopline_case"]["activities"]
        shape = out["shape"]

        async def one_case(i: int) -> dict:
            case_id, sent, accepted = await report(next(case_iter))
            answered = await watcher.answered(case_id, expected["stops"])
            return {"case": case_id, "latency_ms": (answered - sent) * 1000, "report_ms": accepted * 1000}

        async def one_bare(i: int, activities: int = activities) -> dict:
            started = time.perf_counter()
            # The case's activities at once, as a case asks every account's bank at once.
            workflow_id = f"bare-{uuid.uuid4().hex}"
            await client.execute_workflow("BareFanOut", activities, id=workflow_id, task_queue=bare_queue)
            if "bare_workflow" not in out:  # what Temporal does for one, next to a case
                out["bare_workflow"] = await history_counts(client, workflow_id)
            return {"latency_ms": (time.perf_counter() - started) * 1000}

        async def one_shape(i: int, shape: dict = shape) -> dict:
            started = time.perf_counter()
            # A case's Temporal work with no-op calls; its children stay open (ABANDON), on the
            # dev server as the cases' holds do: both pile up alike, and neither is terminated.
            workflow_id = f"shape-{uuid.uuid4().hex}"
            await client.execute_workflow("BareCaseShape", shape, id=workflow_id, task_queue=bare_queue)
            if "shape_workflow" not in out:
                await asyncio.sleep(0.5)  # the children's first workflow tasks, as for the first case
                out["shape_workflow"] = await history_counts(client, workflow_id)
            return {"latency_ms": (time.perf_counter() - started) * 1000}

        # Warm all three: a fresh worker process's first workflows pay for imports and connections.
        warm_cases = [await one_case(i) for i in range(warm)]
        await check([r["case"] for r in warm_cases])
        for i in range(warm):
            await one_bare(i)
            await one_shape(i)

        runs: dict = {"stopline": [], "shape": [], "baseline": []}
        done = {"stopline": False, "shape": False, "baseline": False}
        for c in levels:
            if not done["baseline"]:
                level = await closed_loop(c, bare_runs(c), one_bare, cpu)
                runs["baseline"].append(_level(level, bare=True))
                done["baseline"] = early_stop and past_knee(runs["baseline"])
            if not done["shape"]:
                level = await closed_loop(c, shape_runs(c), one_shape, cpu)
                runs["shape"].append(_level(level, bare=True))
                done["shape"] = early_stop and past_knee(runs["shape"])
            if not done["stopline"]:
                before = watcher.size()
                level = await closed_loop(c, stopline_runs(c), one_case, cpu)
                appended = watcher.size() - before
                await check([r["case"] for r in level["results"]])
                entry = _level(level, bare=False)
                entry["audit_appends_per_second"] = round(appended / level["seconds"], 1)
                entry["audit_entries_per_case"] = round(appended / level["runs"], 1)
                runs["stopline"].append(entry)
                done["stopline"] = early_stop and past_knee(runs["stopline"])
            if all(done.values()):
                break
        per_workers[str(n_workers)] = runs
        for i in range(n_workers):
            await procs.stop(f"worker-{i + 1}")
            await procs.stop(f"bare-{i + 1}")
    out["runs"] = per_workers
    out["cases_checked"] = len(checked)
    all_levels = [lv for runs in per_workers.values() for lv in runs["stopline"]]
    busiest = max(all_levels, key=lambda lv: lv["audit_appends_per_second"])
    out["audit"] = {
        "entries_per_case": out["stopline_case"]["envelopes"],
        "appends_per_second_at_busiest_level": busiest["audit_appends_per_second"],
        "entries_at_end": watcher.size(),
    }
    return out


def _level(level: dict, *, bare: bool) -> dict:
    latencies = [r["latency_ms"] for r in level["results"]]
    out = {k: v for k, v in level.items() if k != "results"}
    out["latency"] = summary(latencies)
    if not bare:
        out["report_rpc"] = summary([r["report_ms"] for r in level["results"]])
    # CPU per case (or bare workflow) by process: what each one costs, whatever the machine's load.
    out["cpu_ms_per_run"] = {
        name: round(1000 * s / level["runs"], 2) for name, s in level["cpu"]["cpu_seconds"].items()
    }
    return out


async def _verify(settings) -> dict:
    """The whole log as `stopline audit verify` checks it: every leaf re-hashed, every checkpoint,
    every envelope's signature against the registry."""
    import resource

    from stopline.auditcli import audit_verify
    from stopline.setup import registry_file

    registry = registry_file(settings)()
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    ok, message = await asyncio.to_thread(audit_verify, settings, registry)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - (b.ru_utime + b.ru_stime) for a, b in zip(after, usage, strict=True))
    assert ok, message
    entries = int(re.search(r"OK: (\d+) entries", message).group(1))
    return {"ok": ok, "message": message, "entries": entries, "seconds": round(seconds, 2),
            "entries_per_second": round(entries / seconds), "cpu_seconds": round(cpu, 2)}  # fmt: skip


# --- the report ---------------------------------------------------------------------------------


def _cpu_text(level: dict) -> str:
    cpu = level["cpu"]["percent_of_one_core"]
    parts = ", ".join(f"{name} {pct:.0f}%" for name, pct in sorted(cpu.items(), key=lambda kv: -kv[1]))
    return f"{parts}; machine {level['cpu']['machine_busy_percent']:.0f}% of {level['cpu']['cores']} cores"


def _table(result: dict) -> tuple[list[dict], list[str]]:
    rows, findings = [], []
    case = result["stopline_case"]
    signing = result["signing"]

    def row(measure, stopline, baseline, ratio_, target, met):
        rows.append({"benchmark": "throughput", "measure": measure, "stopline": stopline, "baseline": baseline,
                     "ratio": ratio_, "target": target, "met": met})  # fmt: skip

    peaks = {}
    for n, runs in result["runs"].items():
        plural = "es" if n != "1" else ""
        s_knee, h_knee, b_knee = knee(runs["stopline"]), knee(runs["shape"]), knee(runs["baseline"])
        s_peak = max(runs["stopline"], key=lambda lv: lv["per_second"])
        h_peak = max(runs["shape"], key=lambda lv: lv["per_second"])
        b_peak = max(runs["baseline"], key=lambda lv: lv["per_second"])
        peaks[n] = (s_peak["per_second"], h_peak["per_second"], b_peak["per_second"])

        def peak_text(peak: dict, knee_: dict, unit: str) -> str:
            return (f"{peak['per_second']:.1f}{unit}/s at {peak['concurrency']} in flight; knee {knee_['concurrency']} "
                    f"({knee_['per_second']:.1f}/s, p50 {knee_['latency']['p50_ms']:.0f} ms)")  # fmt: skip

        r = round(s_peak["per_second"] / h_peak["per_second"], 2)
        row(f"sustained cases/s (peak; knee = fewest in flight reaching {KNEE_SHARE:.0%} of it) against bare "
            f"Temporal doing a case's Temporal work (BareCaseShape), {n} worker process{plural}",
            peak_text(s_peak, s_knee, ""), peak_text(h_peak, h_knee, " same-shape workflows"),
            r, f">= {TARGET}", r >= TARGET)  # fmt: skip
        r = round(s_peak["per_second"] / b_peak["per_second"], 2)
        row(f"sustained cases/s against bare Temporal running only as many activities (BareFanOut; not the same "
            f"Temporal work: for scale, no target), {n} worker process{plural}",
            peak_text(s_peak, s_knee, ""), peak_text(b_peak, b_knee, " fan-out workflows"), r, None, None)  # fmt: skip
        lone_s, lone_h = runs["stopline"][0], runs["shape"][0]
        r = round(lone_s["latency"]["p50_ms"] / lone_h["latency"]["p50_ms"], 2)
        row(f"latency p50 / p95, {lone_s['concurrency']} in flight, against the same-shape baseline, "
            f"{n} worker process{plural}",
            f"{lone_s['latency']['p50_ms']:.0f} / {lone_s['latency']['p95_ms']:.0f} ms",
            f"{lone_h['latency']['p50_ms']:.0f} / {lone_h['latency']['p95_ms']:.0f} ms", r, None, None)  # fmt: skip
        r = round(s_knee["latency"]["p95_ms"] / h_knee["latency"]["p95_ms"], 2)
        row(f"latency p50 / p95 / p99 while loaded (at the knee), against the same-shape baseline, "
            f"{n} worker process{plural}",
            f"{s_knee['latency']['p50_ms']:.0f} / {s_knee['latency']['p95_ms']:.0f} / {s_knee['latency']['p99_ms']:.0f} ms",
            f"{h_knee['latency']['p50_ms']:.0f} / {h_knee['latency']['p95_ms']:.0f} / {h_knee['latency']['p99_ms']:.0f} ms",
            r, None, None)  # fmt: skip
        findings.append(
            f"{n} worker process{plural}: Stopline's knee at {s_knee['concurrency']} cases in flight "
            f"({s_knee['per_second']:.1f} cases/s, peak {s_peak['per_second']:.1f}); the same-shape baseline's at "
            f"{h_knee['concurrency']} ({h_knee['per_second']:.1f}/s, peak {h_peak['per_second']:.1f}); the "
            f"same-activities baseline's at {b_knee['concurrency']} ({b_knee['per_second']:.1f}/s, peak "
            f"{b_peak['per_second']:.1f})."
        )
        for who, peak in (
            ("Stopline", s_peak),
            ("same-shape baseline", h_peak),
            ("same-activities baseline", b_peak),
        ):
            findings.append(
                f"{n} worker process{plural}, {who} at its peak ({peak['concurrency']} in flight), CPU: {_cpu_text(peak)}."
            )
        s_cost, h_cost, b_cost = s_peak["cpu_ms_per_run"], h_peak["cpu_ms_per_run"], b_peak["cpu_ms_per_run"]
        hub_ms = sum(v for k, v in s_cost.items() if k.startswith("worker"))
        shape_ms = sum(v for k, v in h_cost.items() if k.startswith("bare"))
        bare_ms = sum(v for k, v in b_cost.items() if k.startswith("bare"))
        findings.append(
            f"{n} worker process{plural}, CPU per case vs per same-shape vs per same-activities workflow: dev server "
            f"{s_cost['dev server']:.1f} vs {h_cost['dev server']:.1f} vs {b_cost['dev server']:.1f} ms, workers "
            f"{hub_ms:.1f} vs {shape_ms:.1f} vs {bare_ms:.1f} ms, bench process (gateway, sandbox banks, load) "
            f"{s_cost['bench process']:.1f} vs {h_cost['bench process']:.1f} vs {b_cost['bench process']:.1f} ms. "
            "What a case costs beyond the same-shape workflow is the hub's own work (signing, verifying, "
            "auditing, validating) and the sandbox banks'."
        )
        findings.append(f"{n} worker process{plural}: {_saturation(s_peak)}")
    if len(peaks) > 1:
        (s1, h1, b1), (s2, h2, b2) = peaks[min(peaks)], peaks[max(peaks)]
        row(f"scaling from {min(peaks)} to {max(peaks)} worker processes (peak over peak)",
            f"x{s2 / s1:.2f}", f"x{h2 / h1:.2f} same shape; x{b2 / b1:.2f} same activities",
            round((s2 / s1) / (h2 / h1), 2), None, None)  # fmt: skip
    shape_run = result.get("shape_workflow", {"workflows": 0, "events": {}})
    bare = result.get("bare_workflow", {"workflows": 0, "events": {}})
    row("Temporal work per case: workflows / workflow tasks / timers / search-attribute upserts / activities "
        "(local) / patch markers, from the histories; the same-shape baseline's input is measured from the first "
        "case's (bench/bare_shape.py)",
        _temporal_work(case["history"]), f"{_temporal_work(shape_run)} same shape; {_temporal_work(bare)} "
        "same activities (BareFanOut)", None, None, None)  # fmt: skip
    if _temporal_work(shape_run) != _temporal_work(case["history"]):
        findings.append(
            f"The same-shape baseline's measured Temporal work ({_temporal_work(shape_run)}) differs from a case's "
            f"({_temporal_work(case['history'])}): workflows / workflow tasks / timers / upserts / activities "
            "(local) / patches; the ratio against it is that much less exact."
        )
    findings.append(
        "The target (Stopline at least "
        f"{TARGET:.0%} of the baseline) is judged against the same-shape baseline: the same workflows, workflow "
        "tasks, timers, upserts, local and regular activities as a case, with nothing of Stopline, so the ratio "
        "is the hub's own work alone. The same-activities baseline (BareFanOut: one workflow, no children, no "
        "timers) is kept for scale; its ratio also counts the Temporal work the design needs (holds as child "
        "workflows, answer deadlines, status upserts). The end points differ: a case counts as done when the audit "
        "log has its last stop answer (the holds' starts may still be under way), a bare workflow when its result "
        "is in, after its children started; in a closed loop that lets the next case start a little earlier."
    )
    findings.append(
        "Open workflows: a case's holds and the same-shape baseline's children stay open (long timers) on the "
        "dev server for the whole run, neither terminated (a termination would be dev-server work of its own); "
        "they pile up alike across levels and end with the server and its folder."
    )
    audit = result["audit"]
    row("audit appends/s during the busiest loaded level",
        f"{audit['appends_per_second_at_busiest_level']:.0f}/s ({audit['entries_per_case']} entries a case)",
        "-", None, None, None)  # fmt: skip
    v = audit["verify"]
    row("audit verify of the whole log (as `stopline audit verify`)",
        f"{v['entries_per_second']:,} entries/s ({v['entries']:,} entries in {v['seconds']:.1f} s, {v['cpu_seconds']:.1f} CPU s)",
        "-", None, None, None)  # fmt: skip
    sign_ms = case["envelopes"] * (signing["seal_us"] + signing["verify_us"]) / 1000
    findings.append(
        f"Signing: each case carries {case['envelopes']} signed envelopes, each sealed once and checked once "
        f"(seal {signing['seal_us']:.0f} us, check {signing['verify_us']:.0f} us here): about {sign_ms:.1f} CPU ms "
        "a case, split between the workers, the gateway and the sandbox banks."
    )
    findings.append(
        "Audit append latency is not measured here (it is inside the workers); bench/audit.py measures it."
    )
    findings.append(
        "The machine has 2 cores shared by the dev server, the workers, the gateway, the sandbox banks and the "
        "load generator: a process near 100% is one core's worth; the sum is bounded by 200%."
    )
    return rows, findings


def _temporal_work(history: dict) -> str:
    e = history["events"]
    local = e.get("MARKER:core_local_activity", 0)
    return (f"{history['workflows']} / {e.get('WORKFLOW_TASK_COMPLETED', 0)} / {e.get('TIMER_STARTED', 0)} / "
            f"{e.get('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES', 0)} / {e.get('ACTIVITY_TASK_SCHEDULED', 0) + local} "
            f"({local}) / {e.get('MARKER:core_patch', 0)}")  # fmt: skip


def _saturation(level: dict) -> str:
    """What limits a level: one process at a core (a Python worker's one event loop and GIL
    cannot use more), the machine's cores all busy, or neither (waiting: disk, locks, round trips)."""
    cpu = level["cpu"]
    ours = {k: v for k, v in cpu["percent_of_one_core"].items() if k != "other processes"}
    name, top = max(ours.items(), key=lambda kv: kv[1])
    others = cpu["percent_of_one_core"].get("other processes", 0.0)
    busy, iowait = cpu["machine_busy_percent"] or 0, cpu["machine_iowait_percent"] or 0
    where = f"at {level['concurrency']} in flight ({level['per_second']:.1f}/s)"
    if busy >= 90:
        return (f"{where} the machine's {cpu['cores']} cores are {busy:.0f}% busy: CPU shared by every process is "
                f"the limit; the largest share is the {name}'s, {top:.0f}% of a core"
                + (f"; other processes on the machine took {others:.0f}%." if others >= 10 else "."))  # fmt: skip
    if top >= 90 and not name.startswith("dev server"):
        return f"{where} the {name} is at {top:.0f}% of one core: that single process is the limit."
    return (f"{where} no process is at a full core (top: {name} {top:.0f}%) and the machine is {busy:.0f}% busy "
            f"({iowait:.0f}% waiting for the disk): the limit is waiting (round trips, SQLite locks, fsync), not CPU.")  # fmt: skip


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"machine: {m['cpus']} cpus ({m['usable_cpus']} usable), {m['cpu']}, Python {m['python']}, "
          f"load average at start {m['load_average_at_start']}")  # fmt: skip
    for r in result["table"]:
        ratio_ = "" if r["ratio"] is None else f"  ratio {r['ratio']}"
        target = "" if r["target"] is None else f"  target {r['target']}: {'met' if r['met'] else 'NOT met'}"
        print(f"- {r['measure']}\n    stopline {r['stopline']}\n    baseline {r['baseline']}{ratio_}{target}")
    print("findings:")
    for f in result["findings"]:
        print(f"- {f}")


async def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = await measure(Path(tmp), quick=quick)
        result["bench_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    name = "throughput-quick.json" if quick else "throughput.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"({result['bench_seconds']} s; details in {RESULTS / name})")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see stopline/cli.py: skip the Temporal bridge's teardown crash
