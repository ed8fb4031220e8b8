"""Speed of a reported case, as ratios to a bare-Temporal baseline measured in the same run.

Both run on one embedded dev server (SQLite file, the fast pragmas of stopline/embedded.py):
  * baseline: a bare workflow that runs one no-op activity, started and awaited by the client;
  * stopline: a police unit's signed report through HubService until CaseWorkflow has every
    institution's signed answer: three stop-payments at two sandbox institutions, each a real
    gRPC call with Ed25519 signing and verification and a SQLite ledger write.
Latency is measured one case at a time; throughput with CONCURRENCY cases in flight. Each case's
mule accounts are fresh, so every stop really holds money.

    make bench            # writes bench/results/latest.json and prints the table
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from sandbox.ledger import Account
from stopline import logs
from stopline.domain import SEARCH_ATTRIBUTES
from stopline.embedded import FAST_SQLITE_ARGS, temporal_cli
from tests.world import hub_world

SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", 40))
CONCURRENT_TOTAL = int(os.environ.get("BENCH_CONCURRENT_TOTAL", 120))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 12))
RESULTS = Path(__file__).parent / "results"


@activity.defn
async def noop(n: int) -> int:
    return n


@workflow.defn(sandboxed=False)
class BareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(noop, n, start_to_close_timeout=timedelta(seconds=10))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(run_one, sequential: int, total: int, concurrency: int) -> dict:
    for i in range(3):  # warm up channels, caches and the worker
        await run_one(f"warm-{i}")
    latencies = []
    for i in range(sequential):
        started = time.perf_counter()
        await run_one(f"seq-{i}")
        latencies.append((time.perf_counter() - started) * 1000)
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(i):
        async with semaphore:
            await run_one(f"par-{i}")

    started = time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(total)))
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "per_second": round(total / elapsed, 1),
    }


async def bench_baseline(env: WorkflowEnvironment) -> dict:
    queue = f"bench-bare-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):

        async def one(tag: str) -> None:
            await env.client.execute_workflow(BareWorkflow.run, 1, id=f"bare-{tag}-{uuid.uuid4()}", task_queue=queue)

        return await measure(one, SEQUENTIAL, CONCURRENT_TOTAL, CONCURRENCY)


async def bench_stopline(env: WorkflowEnvironment, data: Path) -> dict:
    async with hub_world(env.client, data) as w:
        qilu, huaxia = w.institutions["qilu-bank"].ledger, w.institutions["huaxia-pay"].ledger

        async def one(tag: str) -> None:
            case_id = f"BENCH-{tag}-{uuid.uuid4().hex[:8]}"
            report = w.report(case_id)
            mules = [f"B{uuid.uuid4().int % 10**15:015d}" for _ in report.transfers]
            for transfer, number in zip(report.transfers, mules, strict=True):
                transfer.to_account.account_number = number
                transfer.to_account_holder_name = ""
                ledger = qilu if transfer.to_account.institution == "qilu-bank" else huaxia
                ledger.seed([Account(number, "bench mule", "CNY", transfer.amount.minor_units)])
            await w.hub.report_case(report)
            view = await w.client.get_workflow_handle(f"case-{case_id}").result()
            assert view["total_held"]["minor_units"] == 147_500_000, view["total_held"]

        return await measure(one, SEQUENTIAL, CONCURRENT_TOTAL, CONCURRENCY)


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": sys.version.split()[0], "platform": platform.platform()}


async def main() -> None:
    logs.configure(json=False, level="ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_database_filename=str(Path(tmp) / "temporal.db"),
            dev_server_extra_args=list(FAST_SQLITE_ARGS),
            search_attributes=SEARCH_ATTRIBUTES,
        )
        try:
            baseline = await bench_baseline(env)
            stopline = await bench_stopline(env, Path(tmp))
        finally:
            await env.shutdown()
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {"sequential": SEQUENTIAL, "concurrent_total": CONCURRENT_TOTAL, "concurrency": CONCURRENCY},
        "baseline_bare_one_activity": baseline,
        "stopline_case_three_stops": stopline,
        "ratios": {
            "p50_latency": round(stopline["p50_ms"] / baseline["p50_ms"], 2),
            "p95_latency": round(stopline["p95_ms"] / baseline["p95_ms"], 2),
            "throughput": round(stopline["per_second"] / baseline["per_second"], 2),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(f"machine: {m['cpus']} cpus, {m['cpu']}, Python {m['python']}")
    print(f"{'':28}{'p50 ms':>10}{'p95 ms':>10}{'per s':>10}")
    for name, r in (("bare Temporal, 1 activity", baseline), ("Stopline case, 3 stops", stopline)):
        print(f"{name:28}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['per_second']:>10}")
    ratios = result["ratios"]
    print(
        f"{'ratio (Stopline / bare)':28}{ratios['p50_latency']:>10}{ratios['p95_latency']:>10}{ratios['throughput']:>10}"
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see stopline/cli.py: skip the Temporal bridge's teardown crash
