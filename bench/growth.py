"""Growth: the time and memory of one case as its chase grows from 10 to 1,000 accounts, to show
the cost per account stays flat (linear growth), not K log K or K^2.

What runs: the real hub. The embedded dev server exactly as `stopline up` starts it
(bench.common.dev_server), the sandbox institutions and the gateway in this process (a `Stack`
without Temporal or worker, as tests/test_faults.py runs it), and the worker as its own OS
process (`stopline worker`), so its memory can be read honestly from the outside (RSS with
psutil): a worker in this process would share its heap with the sandbox banks, the gateway and
the bare baseline's worker, and tracemalloc would miss the Temporal core's Rust allocations.

The cases: bench/chain.py generates, deterministically, one money tree per size K (default
10, 30, 100, 300, 1,000; BENCH_GROWTH_SIZES="10,30,100,300,1000" changes them): the victim paid a
layer-1 mule, which had already sent most of it on, breadth first over 3-4 layers at three banks
and a payment company; every mule kept a tenth, the last layer cashed out the rest. So for every
account the chase makes one stop-payment (held in part: one HoldWorkflow child watches it) and
one account query, 2K activities and K children per case, and the case view must list exactly
K stops. The scenario is checked with sandbox.scenario.parse_scenario before it runs.

Per K, one case at a time, on a freshly started worker process (so one K's cached workflows and
heap do not flatter or burden the next), after a 5-account warm-up case on that worker (so the
first case's imports and the workflow sandbox's first load are not counted):
  * chase time: from ReportCase returning to the last institution answer of the case the hub's
    audit log recorded (recorded_at; microseconds), checked against the moment the case's
    StoplineStatus search attribute says `stops_answered` (describe polled every 0.1 s: a server
    read, unlike the case query it puts no load on the worker being measured);
  * worker memory: RSS just before the report, 2 s after the chase is done (the hold children
    started and cached), and the peak sampled every 20 ms in between; VmHWM too;
  * worker and dev-server CPU seconds over the chase (robust to a busy machine where wall time
    is not);
  * the case history: events and bytes (describe), activities, children and timers in it;
  * the bare-Temporal baseline: BareFanOut (bench.common) with as many no-op activities as the
    case ran, on the same dev server, its worker in this process; the ratio shows what the
    chase costs beyond Temporal's own per-activity cost. (The chase cannot be a pure fan-out:
    each layer waits for the one above it, and at most 64 calls are in flight per case.)
Between Ks the case is terminated with its hold children, and the next K starts only once no
workflow is running, so their timers do not load the next measurement.

    .venv/bin/python -m bench.growth       # prints the table, writes bench/results/growth.json

BENCH_GROWTH_TIMEOUT (default 900 s) bounds one chase; a K that does not finish is recorded as
such and the larger Ks are not run.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.worker import Worker

from audit.entry import AuditEntry, Direction, EntryKind
from audit.store import SqliteAuditStore
from bench.bare import ACTIVITY_TIMEOUT, BARE_ACTIVITIES, BareFanOut, bare_worker, noop
from bench.chain import POLICE, chain_scenario
from bench.common import RESULTS, dev_server, machine
from bench.report import print_table as print_rows
from sandbox.scenario import parse_scenario
from stopline import config, logs
from stopline.casefile import rebase_report, report_from_dict
from stopline.cli import hub_client
from stopline.domain import SA_STATUS, CaseStatus, case_workflow_id
from stopline.stack import Stack
from stopline.v1 import hub_pb2

DEFAULT_SIZES = (10, 30, 100, 300, 1000)
QUICK_SIZES = (10, 30)
WARM_UP_ACCOUNTS = 5
CHASE_TIMEOUT = float(os.environ.get("BENCH_GROWTH_TIMEOUT", 900))
POLL_SECONDS = 0.1
SAMPLE_SECONDS = 0.02
SETTLE_SECONDS = 2.0  # after the chase: the last hold children's first workflow tasks
STOPLINE = Path(sys.prefix) / "bin" / "stopline"
DONE = {CaseStatus.STOPS_ANSWERED.value, CaseStatus.CONCLUDED.value, CaseStatus.CLOSED.value}
HELD = (hub_pb2.STOP_STATE_HELD, hub_pb2.STOP_STATE_PARTIALLY_HELD)
# Temporal's hard limits on one workflow's history (it is terminated past either).
EVENT_LIMIT = 51_200
EVENT_WARN = 10_240  # past this the server logs a warning on every update of the history
BYTES_LIMIT = 50 * 2**20
LINEAR_RATIO = 1.3  # per-account cost at the largest K vs a K ten times smaller, at most
LINEAR_EXPONENT = 1.15  # time ~ K^p, p at most


# --- a bare-Temporal workflow of the chase's shape ------------------------------------------------
# BareFanOut starts every activity at once and has no children; a case runs its calls at most 64
# at a time, each watched by an answer-deadline timer, and starts a child per account that stays
# open. This workflow does the same with nothing of Stopline in it (no-op activities, children
# that only wait), so the ratio to it is Stopline's own cost, and its growth is Temporal's.
# Not sandboxed: defined here, beside imports the workflow sandbox would refuse (psutil,
# subprocess); it is deterministic all the same.
BARE_IN_FLIGHT = 64  # workflows/case.py MAX_CALLS_IN_FLIGHT


@workflow.defn(name="BareWaitingChild", sandboxed=False)
class BareWaitingChild:
    """A hold's stand-in: open until terminated."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="BareChaseShape", sandboxed=False)
class BareChaseShape:
    """Per account: a no-op "stop", a waiting child, a no-op "query"; calls 64 at a time, each
    under a 10-minute timer as an answer deadline is."""

    @workflow.run
    async def run(self, accounts: int) -> int:
        calls = asyncio.Semaphore(BARE_IN_FLIGHT)

        async def call(step: int) -> None:
            async with calls:
                task = asyncio.ensure_future(
                    workflow.execute_activity(noop, step, start_to_close_timeout=ACTIVITY_TIMEOUT)
                )
                await workflow.wait_condition(task.done, timeout=timedelta(minutes=10))
                await task

        async def account(n: int) -> None:
            await call(2 * n)
            await workflow.start_child_workflow(BareWaitingChild.run, id=f"{workflow.info().workflow_id}/child/{n}")
            await call(2 * n + 1)

        await asyncio.gather(*(account(n) for n in range(accounts)))
        return accounts


def sizes_wanted(quick: bool) -> tuple[int, ...]:
    if quick:
        return QUICK_SIZES
    text = os.environ.get("BENCH_GROWTH_SIZES", "")
    if not text.strip():
        return DEFAULT_SIZES
    return tuple(sorted({int(x) for x in text.replace(" ", "").split(",") if x}))


class Sampler:
    """RSS and CPU of one process, sampled on a thread (psutil calls block briefly)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def cpu(self) -> float:
        t = self.process.cpu_times()
        return t.user + t.system

    def high_water(self) -> int | None:
        """VmHWM: the kernel's own peak RSS of the process since it started (Linux)."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> Sampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def dev_server_process() -> psutil.Process | None:
    """The `temporal` dev server this process started (for its CPU seconds)."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "temporal" in child.name():
                return child
        except psutil.Error:
            continue
    return None


def cpu_seconds(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        t = process.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


async def wait_done(client: Client, workflow_id: str, within: float) -> float:
    """perf_counter when the case's status search attribute first says the chase is done."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + within
    while True:
        description = await handle.describe()
        if description.typed_search_attributes.get(SA_STATUS) in DONE:
            return time.perf_counter()
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise RuntimeError(f"{workflow_id} ended ({description.status.name}) before its chase was done")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workflow_id}: chase not done within {within:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def end_case(client: Client, workflow_id: str) -> None:
    """Terminate the case and its hold children (their deadlines are days away), then wait until
    nothing runs, so no timer of this case loads the next measurement."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
        children = [c.workflow_id for c in description.raw_description.pending_children]
    except RPCError:
        children = []
    gate = asyncio.Semaphore(16)

    async def terminate(wid: str) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(wid).terminate("growth benchmark: measured")
            except RPCError:
                pass  # already closed (the parent's close policy got there first)

    await asyncio.gather(*(terminate(w) for w in children))
    await terminate(workflow_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            running = (await client.count_workflows('ExecutionStatus="Running"')).count
        except RPCError:
            running = -1
        if running == 0:
            return
        await asyncio.sleep(0.5)


def audit_answers(path: Path, start: int, case_id: str) -> list[datetime]:
    """When the audit log recorded each institution's signed answer for the case (entries after
    `start`): direction IN envelopes signed by an institution (the report is the police unit's)."""
    store = SqliteAuditStore(path)
    try:
        times = []
        for _, leaf, _ in store.leaves(start):
            entry = AuditEntry.decode(leaf)
            if entry.case_id == case_id and entry.kind is EntryKind.ENVELOPE and entry.direction is Direction.IN:
                if entry.institution != POLICE:
                    times.append(entry.recorded_at)
        return times
    finally:
        store.close()


def audit_size(path: Path) -> int:
    store = SqliteAuditStore(path)
    try:
        return store.size()
    finally:
        store.close()


async def history_counts(client: Client, workflow_id: str) -> dict:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    counts: dict[str, int] = {}
    local = 0
    for event in history.events:
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        counts[name] = counts.get(name, 0) + 1
        if name == "MARKER_RECORDED" and event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            local += 1  # a local activity leaves a marker, not activity events
    return {
        "events": len(history.events),
        "activities": counts.get("ACTIVITY_TASK_SCHEDULED", 0),
        "local_activities": local,
        "children": counts.get("START_CHILD_WORKFLOW_EXECUTION_INITIATED", 0),
        "timers": counts.get("TIMER_STARTED", 0),
        "workflow_tasks": counts.get("WORKFLOW_TASK_COMPLETED", 0),
        "by_type": dict(sorted(counts.items())),
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    # Its log to a file: a pipe nobody reads fills up and blocks the worker mid-write.
    with open(log, "a") as out:
        return subprocess.Popen([str(STOPLINE), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=out)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=30)


async def bare_fan_out(client: Client, n: int) -> dict:
    """BareFanOut with `n` no-op activities (after a small warm-up run), timed from the client."""
    queue = f"bench-growth-bare-{uuid.uuid4()}"
    async with bare_worker(client, queue):
        await client.execute_workflow(BareFanOut.run, 5, id=f"bare-warm-{uuid.uuid4()}", task_queue=queue)
        wid = f"bare-growth-{n}-{uuid.uuid4()}"
        started = time.perf_counter()
        await client.execute_workflow(BareFanOut.run, n, id=wid, task_queue=queue)
        seconds = time.perf_counter() - started
        description = await client.get_workflow_handle(wid).describe()
    info = description.raw_description.workflow_execution_info
    return {"activities": n, "seconds": round(seconds, 3), "history_events": info.history_length,
            "history_bytes": info.history_size_bytes}  # fmt: skip


async def bare_chase_shape(client: Client, accounts: int) -> dict:
    """BareChaseShape over `accounts` (after a small warm-up run): time, and CPU seconds of this
    process (its worker; nothing else here is busy meanwhile) and of the dev server."""
    queue = f"bench-growth-shape-{uuid.uuid4()}"
    temporal = dev_server_process()
    wid = f"bare-shape-{accounts}-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[BareChaseShape, BareWaitingChild],
                      activities=BARE_ACTIVITIES):  # fmt: skip
        warm = f"bare-shape-warm-{uuid.uuid4()}"
        await client.execute_workflow(BareChaseShape.run, 5, id=warm, task_queue=queue)
        await end_case(client, warm)
        cpu, temporal_cpu = time.process_time(), cpu_seconds(temporal)
        started = time.perf_counter()
        await client.execute_workflow(BareChaseShape.run, accounts, id=wid, task_queue=queue)
        seconds = time.perf_counter() - started
        cpu, temporal_cpu = time.process_time() - cpu, (cpu_seconds(temporal) or 0) - (temporal_cpu or 0)
        description = await client.get_workflow_handle(wid).describe()
        await end_case(client, wid)  # its children: closed by the parent's close policy; waited for
    info = description.raw_description.workflow_execution_info
    return {"accounts": accounts, "activities": 2 * accounts, "children": accounts, "seconds": round(seconds, 3),
            "ms_per_account": round(seconds * 1000 / accounts, 2), "worker_cpu_seconds": round(cpu, 2),
            "dev_server_cpu_seconds": round(temporal_cpu, 2), "history_events": info.history_length,
            "history_bytes": info.history_size_bytes}  # fmt: skip


async def one_size(k: int, *, env: dict[str, str], stack: Stack, hub, client: Client, anchor: datetime,
                   cases: dict[str, dict], data: Path) -> dict:  # fmt: skip
    """One K: a fresh worker process, a warm-up case, then the measured case."""
    settings = stack.settings
    out: dict = {"accounts": k}
    worker = start_worker(env, data / f"worker-{k}.log")
    temporal = dev_server_process()
    try:
        warm = cases[f"w{k}"]
        await hub.report_case(rebase_report(report_from_dict(warm), anchor, warm["case_id"]))
        await wait_done(client, case_workflow_id(warm["case_id"]), 120)
        await end_case(client, case_workflow_id(warm["case_id"]))
        await asyncio.sleep(1.0)

        case = cases[f"k{k}"]
        case_id, workflow_id = case["case_id"], case_workflow_id(case["case_id"])
        report = rebase_report(report_from_dict(case), anchor, case_id)
        audit_start = await asyncio.to_thread(audit_size, settings.audit_db)
        with Sampler(worker.pid) as sampler:
            rss_before, cpu_before = sampler.rss(), sampler.cpu()
            temporal_before, here_before = cpu_seconds(temporal), time.process_time()
            load = os.getloadavg()[0]
            await hub.report_case(report)
            reported_wall, reported = datetime.now(UTC), time.perf_counter()
            try:
                done = await wait_done(client, workflow_id, CHASE_TIMEOUT)
            except (TimeoutError, RuntimeError) as e:
                out["error"] = str(e)
                out["stops_reached_so_far"] = len((await hub.get_case(case_id)).stops)
                return out
            rss_done, cpu_done = sampler.rss(), sampler.cpu()
            temporal_done, here_done = cpu_seconds(temporal), time.process_time()
            await asyncio.sleep(SETTLE_SECONDS)
            rss_settled = sampler.rss()
        high_water = sampler.high_water()

        read_started = time.perf_counter()
        view = await hub.get_case(case_id)
        read_ms = (time.perf_counter() - read_started) * 1000
        answers = await asyncio.to_thread(audit_answers, settings.audit_db, audit_start, case_id)
        last_answer = max(answers) if answers else None
        description = await client.get_workflow_handle(workflow_id).describe()
        info = description.raw_description.workflow_execution_info
        history = await history_counts(client, workflow_id)

        stops = list(view.stops)
        chase_s = (last_answer - reported_wall).total_seconds() if last_answer else done - reported
        out |= {
            "case_id": case_id,
            "stops": len(stops),
            "stops_held": sum(1 for s in stops if s.state in HELD),
            "stops_traced": sum(1 for s in stops if s.traced),
            "max_depth": max((s.depth for s in stops), default=0),
            "total_held_minor": view.total_held.minor_units,
            "answers_recorded": len(answers),
            "chase_seconds": round(chase_s, 3),
            "chase_seconds_by_status_poll": round(done - reported, 3),
            "ms_per_account": round(chase_s * 1000 / k, 2),
            "worker_rss_before_mb": round(rss_before / 2**20, 1),
            "worker_rss_growth_mb": round((rss_settled - rss_before) / 2**20, 2),
            "worker_rss_growth_at_done_mb": round((rss_done - rss_before) / 2**20, 2),
            "worker_rss_peak_growth_mb": round((sampler.peak - rss_before) / 2**20, 2),
            "worker_vm_hwm_mb": round(high_water / 2**20, 1) if high_water else None,
            "kb_per_account": round((rss_settled - rss_before) / 1024 / k, 1),
            "worker_cpu_seconds": round(cpu_done - cpu_before, 2),
            "worker_cpu_ms_per_account": round((cpu_done - cpu_before) * 1000 / k, 2),
            "dev_server_cpu_seconds": round(temporal_done - temporal_before, 2)
            if temporal_done is not None and temporal_before is not None else None,
            # This process: the sandbox banks (signing, SQLite ledgers), the gateway, the polling.
            "sandbox_and_gateway_cpu_seconds": round(here_done - here_before, 2),
            "load_average_1min_at_report": round(load, 2),
            "history_length": info.history_length,
            "history_size_bytes": info.history_size_bytes,
            "history_bytes_per_account": round(info.history_size_bytes / k),
            "history_events_per_account": round(info.history_length / k, 1),
            "history": history,
            "pending_children": len(description.raw_description.pending_children),
            "get_case_ms": round(read_ms, 1),
        }  # fmt: skip
        if out["dev_server_cpu_seconds"] is not None:
            all_cpu = out["worker_cpu_seconds"] + out["dev_server_cpu_seconds"] + out["sandbox_and_gateway_cpu_seconds"]
            out["all_cpu_ms_per_account"] = round(all_cpu * 1000 / k, 2)
        if len(stops) != k:
            out["error"] = f"the chase reached {len(stops)} accounts, not {k}"
        await end_case(client, workflow_id)
    finally:
        stop_worker(worker)
    return out


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b*x; (a, b, R^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    total = sum((y - my) ** 2 for y in ys)
    residual = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, 1 - residual / total if total else 1.0


def _row(measure: str, stopline: str, baseline: str, ratio: float | None, target: str, met: bool | None) -> dict:
    return {"benchmark": "growth", "measure": measure, "stopline": stopline, "baseline": baseline,
            "ratio": ratio, "target": target, "met": met}  # fmt: skip


def analyse(runs: list[dict]) -> tuple[dict, list[dict], list[str]]:
    """The linearity figures, the table and the findings."""
    ok = [r for r in runs if "error" not in r]
    rows: list[dict] = []
    findings: list[str] = []
    fit: dict = {}
    for r in ok:
        shape, fan = r.get("bare_shape") or {}, r.get("bare") or {}
        ratio = round(r["chase_seconds"] / shape["seconds"], 2) if shape.get("seconds") else None
        r["ratio_to_bare"] = ratio
        rows.append(_row(
            f"chase of {r['accounts']:,} accounts", f"{r['chase_seconds']:.2f} s ({r['ms_per_account']:.1f} ms, "
            f"{r['kb_per_account']:.0f} KB, {r['history_bytes_per_account']:,} history bytes per account)",
            f"bare, same shape: {shape.get('seconds', float('nan')):.2f} s; BareFanOut of "
            f"{fan.get('activities', '?')}: {fan.get('seconds', float('nan')):.2f} s", ratio, "", None,
        ))  # fmt: skip
    for r in runs:
        if "error" in r:
            rows.append(_row(f"chase of {r['accounts']:,} accounts", f"not measured: {r['error']}", "", None, "", False))
            findings.append(f"K={r['accounts']:,}: {r['error']}")
    if len(ok) >= 2:
        big = ok[-1]
        ref = next((r for r in ok if r["accounts"] * 10 >= big["accounts"]), ok[0])
        if ref is big:
            ref = ok[-2]
        label = f"{big['accounts']:,} vs {ref['accounts']:,} accounts"

        def per(key: str) -> float | None:
            return round(big[key] / ref[key], 2) if ref[key] else None

        xs = [r["accounts"] for r in ok]
        a, b, r2 = fit_line(xs, [r["chase_seconds"] for r in ok])
        large = [r for r in ok if r["accounts"] >= 100] if sum(r["accounts"] >= 100 for r in ok) >= 2 else ok
        p = fit_line([math.log(r["accounts"]) for r in large], [math.log(r["chase_seconds"]) for r in large])[1]
        ma, mb, mr2 = fit_line(xs, [r["worker_rss_growth_mb"] * 1024 for r in ok])
        fit = {"time_seconds": {"a": round(a, 3), "b_ms_per_account": round(b * 1000, 2), "r2": round(r2, 4)},
               "time_exponent": {"p": round(p, 3), "over": [r["accounts"] for r in large]},
               "memory_kb": {"a": round(ma), "b_kb_per_account": round(mb, 1), "r2": round(mr2, 4)},
               "reference": ref["accounts"], "largest": big["accounts"]}  # fmt: skip
        time_ratio = per("ms_per_account")
        rows.append(_row(f"per-account time, {label}", f"{time_ratio}x ({big['ms_per_account']:.1f} vs "
                         f"{ref['ms_per_account']:.1f} ms)", "", time_ratio, f"linear (<= {LINEAR_RATIO}x)",
                         time_ratio is not None and time_ratio <= LINEAR_RATIO))  # fmt: skip
        rows.append(_row(
            "time = a + b*K (least squares)", f"{a:.2f} s + {b * 1000:.1f} ms/account, R^2 {r2:.3f}", "", None,
            "R^2 >= 0.98", r2 >= 0.98,
        ))  # fmt: skip
        rows.append(_row(
            f"time ~ K^p over K = {', '.join(str(r['accounts']) for r in large)}", f"p = {p:.2f}", "", round(p, 2),
            f"p <= {LINEAR_EXPONENT} (K log K over 100-1,000: 1.18; K^2: 2)", p <= LINEAR_EXPONENT,
        ))  # fmt: skip
        cpu_ratio = per("worker_cpu_ms_per_account")
        rows.append(_row(f"per-account worker CPU, {label}", f"{cpu_ratio}x ({big['worker_cpu_ms_per_account']:.1f} vs "
                         f"{ref['worker_cpu_ms_per_account']:.1f} ms)", "", cpu_ratio, f"linear (<= {LINEAR_RATIO}x)",
                         cpu_ratio is not None and cpu_ratio <= LINEAR_RATIO))  # fmt: skip
        if big.get("all_cpu_ms_per_account") and ref.get("all_cpu_ms_per_account"):
            all_ratio = per("all_cpu_ms_per_account")
            rows.append(_row(f"per-account CPU of every process (worker, dev server, sandbox + gateway), {label}",
                             f"{all_ratio}x ({big['all_cpu_ms_per_account']:.1f} vs {ref['all_cpu_ms_per_account']:.1f} ms)",
                             "", all_ratio, f"linear (<= {LINEAR_RATIO}x)", all_ratio <= LINEAR_RATIO))  # fmt: skip
        mem_ratio = per("kb_per_account")
        rows.append(_row(f"per-account worker memory (RSS growth), {label}", f"{mem_ratio}x ({big['kb_per_account']:.0f} vs "
                         f"{ref['kb_per_account']:.0f} KB)", "", mem_ratio, f"linear (<= {LINEAR_RATIO}x)",
                         mem_ratio is not None and mem_ratio <= LINEAR_RATIO))  # fmt: skip
        hist_ratio = per("history_bytes_per_account")
        rows.append(_row(f"per-account history bytes, {label}", f"{hist_ratio}x ({big['history_bytes_per_account']:,} vs "
                         f"{ref['history_bytes_per_account']:,} B)", "", hist_ratio, f"linear (<= {LINEAR_RATIO}x)",
                         hist_ratio is not None and hist_ratio <= LINEAR_RATIO))  # fmt: skip
        if big.get("ratio_to_bare") and ref.get("ratio_to_bare"):
            shape_big, shape_ref = big["bare_shape"], ref["bare_shape"]
            shape_ratio = round(shape_big["ms_per_account"] / shape_ref["ms_per_account"], 2)
            fit["bare_shape_per_account_ratio"] = shape_ratio
            rows.append(_row(f"per-account time of the bare same-shape workflow, {label}", "",
                             f"{shape_ratio}x ({shape_big['ms_per_account']:.1f} vs {shape_ref['ms_per_account']:.1f} ms)",
                             shape_ratio, "(Temporal's own growth)", None))  # fmt: skip
            bare_ratio = round(big["ratio_to_bare"] / ref["ratio_to_bare"], 2)
            rows.append(_row(f"Stopline / bare same-shape time, {label}", f"{big['ratio_to_bare']}x vs {ref['ratio_to_bare']}x",
                             "bare workflow, same activities, children, timers, 64 in flight", bare_ratio,
                             f"flat (<= {LINEAR_RATIO}x)", bare_ratio <= LINEAR_RATIO))  # fmt: skip
        events_per_account = big["history_length"] / big["accounts"]
        fit["accounts_at_event_warn_limit"] = int(EVENT_WARN / events_per_account)
        fit["accounts_at_event_limit"] = int(EVENT_LIMIT / events_per_account)
        share = max(big["history_length"] / EVENT_LIMIT, big["history_size_bytes"] / BYTES_LIMIT)
        rows.append(_row(
            f"history of the {big['accounts']:,}-account case",
            f"{big['history_length']:,} events, {big['history_size_bytes'] / 2**20:.1f} MiB",
            "Temporal's hard limits: 51,200 events, 50 MiB", round(share, 3), "under both limits", share < 1,
        ))  # fmt: skip
        linear = time_ratio is not None and time_ratio <= LINEAR_RATIO and p <= LINEAR_EXPONENT
        findings.append(
            f"Chase time grows {'linearly' if linear else 'faster than linearly'}: {b * 1000:.1f} ms per account "
            f"plus {a:.2f} s (R^2 {r2:.3f}); {big['ms_per_account']:.1f} ms/account at {big['accounts']:,} vs "
            f"{ref['ms_per_account']:.1f} at {ref['accounts']:,} ({time_ratio}x); exponent p = {p:.2f}."
        )
        if fit.get("bare_shape_per_account_ratio"):
            findings.append(
                f"The bare same-shape workflow's per-account time grows {fit['bare_shape_per_account_ratio']}x over the "
                f"same range, Stopline's {time_ratio}x: the ratio Stopline / bare goes from {ref['ratio_to_bare']}x to "
                f"{big['ratio_to_bare']}x."
            )
        findings.append(
            f"Worker memory: {mb:.0f} KB more RSS per account reached (fit, R^2 {mr2:.2f}); "
            f"{big['worker_rss_growth_mb']:.0f} MB for {big['accounts']:,} accounts, peak "
            f"{big['worker_rss_peak_growth_mb']:.0f} MB over the start."
        )
        findings.append(
            f"The {big['accounts']:,}-account case's history: {big['history_length']:,} events "
            f"({big['history_events_per_account']} per account), {big['history_size_bytes'] / 2**20:.1f} MiB, "
            f"{big['history']['activities']:,} activities and {big['history']['local_activities']:,} local ones, "
            f"{big['history']['children']:,} hold children: "
            f"{share:.0%} of Temporal's nearest hard limit. At this rate a case passes the server's 10,240-event "
            f"warning at about {fit['accounts_at_event_warn_limit']:,} accounts and its 51,200-event hard limit (the "
            f"workflow is terminated) at about {fit['accounts_at_event_limit']:,}."
        )
        loads = ", ".join("{}: {}".format(r["accounts"], r["load_average_1min_at_report"]) for r in ok)
        findings.append(
            "Wall time on a shared machine follows its load, CPU seconds per account much less; the load average "
            f"(1 min) when each case was reported, by K: {loads} (2 cores)."
        )
    elif ok:
        findings.append("Only one size measured: no growth to show.")
    return fit, rows, findings


async def measure(data: Path, *, quick: bool = False) -> dict:
    """Run the growth benchmark in `data` (an empty folder); return the details, "table" and
    "findings"."""
    logs.configure(json=False, level="ERROR")
    sizes = sizes_wanted(quick)
    started = time.perf_counter()
    trees = {f"w{k}": WARM_UP_ACCOUNTS for k in sizes} | {f"k{k}": k for k in sizes}
    scenario, cases = chain_scenario(trees)
    parse_scenario(scenario)  # the generator's output is a valid scenario, or we stop here
    scenario_file = data / "growth-scenario.json"
    scenario_file.write_text(json.dumps(scenario))
    (data / "temporal").mkdir(exist_ok=True)
    runs: list[dict] = []
    result: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                    "settings": {"sizes": list(sizes), "quick": quick, "warm_up_accounts": WARM_UP_ACCOUNTS,
                                 "chase_timeout_seconds": CHASE_TIMEOUT}}  # fmt: skip
    async with dev_server(data / "temporal") as temporal:
        address = temporal.client.service_client.config.target_host
        env = os.environ | {
            "STOPLINE_SCENARIO": str(scenario_file),
            "STOPLINE_SANDBOX_PORTS": "auto",
            "STOPLINE_DATA_DIR": str(data / "hub"),
            "STOPLINE_EMBEDDED_TEMPORAL": "false",
            "STOPLINE_TEMPORAL_ADDRESS": address,
            "STOPLINE_GATEWAY_ADDRESS": "127.0.0.1:0",
            "STOPLINE_TASK_QUEUE": f"growth-{uuid.uuid4().hex[:8]}",
            "STOPLINE_LOG_LEVEL": "ERROR",
            "STOPLINE_LOG_FORMAT": "json",
        }
        settings = config.load(env=env)
        # The sandbox's history and every report are placed relative to this one instant, so a
        # query's transfers_since meets the seeded onward transfers whenever the case is reported.
        anchor = datetime.now(UTC)
        async with Stack(settings, temporal=False, worker=False, anchor=anchor) as stack:
            env["STOPLINE_GATEWAY_ADDRESS"] = stack.gateway_address
            hub = hub_client(settings, POLICE, stack.gateway_address)
            try:
                for k in sizes:
                    run = await one_size(k, env=env, stack=stack, hub=hub, client=temporal.client, anchor=anchor,
                                         cases=cases, data=data)  # fmt: skip
                    if "error" not in run:
                        run["bare"] = await bare_fan_out(temporal.client, 2 * k)  # a stop and a query per account
                        run["bare_shape"] = await bare_chase_shape(temporal.client, k)
                    runs.append(run)
                    if "error" in run:
                        break  # larger chases would only fail later
            finally:
                await hub.close()
    fit, rows, findings = analyse(runs)
    result |= {"runs": runs, "fit": fit, "table": rows, "findings": findings,
               "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    return result


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"machine: {m['usable_cpus']} cpus, {m['cpu']}, load {m['load_average_at_start']}, Python {m['python']}")
    print_rows(result["table"], "Growth: one case as its chase grows")
    for finding in result["findings"]:
        print(f"- {finding}")
    print(f"({result['seconds']} s)")


async def main() -> None:
    quick = "--quick" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        result = await measure(Path(tmp), quick=quick)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("growth-quick.json" if quick else "growth.json")).write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see stopline/cli.py: skip the Temporal bridge's teardown crash
