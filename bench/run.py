"""`make bench`: every benchmark of Stopline against a bare-Temporal baseline, in one run.

    bench/latency.py     report to first money held; a five-hop chase
    bench/throughput.py  cases per second at 1 and 2 worker processes, the knee, what saturates,
                         and the audit log's append and verify rates on that full stack
    bench/growth.py      time and memory of one case as its chase grows from 10 to 1,000 accounts

Each benchmark starts its own embedded dev server with the settings `stopline up` uses and runs
its baseline on it in the same run, so every figure is reported as a ratio to plain Temporal on
the same machine at the same moment. The table is printed at the end; bench/results/latest.json
holds every figure with the machine it was measured on (a partial run writes latest-<names>.json, a
quick run quick-*.json, beside it).

    make bench                          # everything, about 6 minutes on 2 cores
    BENCH_ONLY=latency make bench       # one benchmark (comma-separated names)
    BENCH_QUICK=1 make bench            # a smoke run with tiny sizes: the code works, not the numbers

Measure on a quiet machine: on 2 cores, anything else running (a test suite, a build) shows up
in every figure, the baseline's included, though less so in the ratios."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS, machine
from bench.report import print_table
from stopline import logs

BENCHMARKS = ("latency", "throughput", "growth")


async def run(names: tuple[str, ...], quick: bool) -> dict:
    result: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "quick": quick}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            result[name] = await module.measure(Path(tmp), quick=quick)
        result[name]["seconds"] = round(time.monotonic() - started, 1)
        print(f"{name}: done in {result[name]['seconds']} s", file=sys.stderr, flush=True)
    result["table"] = [row for name in names for row in result[name].get("table", [])]
    result["findings"] = [f"{name}: {f}" for name in names for f in result[name].get("findings", [])]
    return result


async def main() -> None:
    logs.configure(json=False, level="CRITICAL")  # a benchmark prints its table, not the hub's logs
    quick = bool(os.environ.get("BENCH_QUICK"))
    names = tuple(n.strip() for n in os.environ.get("BENCH_ONLY", ",".join(BENCHMARKS)).split(",") if n.strip())
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
    result = await run(names, quick)
    RESULTS.mkdir(exist_ok=True)
    # latest.json is the record of a whole run (docs/benchmarks.md quotes it); a partial or quick
    # run writes beside it and leaves it alone.
    name = "latest" if set(names) == set(BENCHMARKS) else "latest-" + "-".join(names)
    out = RESULTS / (f"quick-{name}.json" if quick else f"{name}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(f"\nmachine: {m['cpus']} cpus ({m['usable_cpus']} usable), {m['cpu']}, {m['memory_gb']} GB, "
          f"Python {m['python']}; load average at start {m['load_average_at_start']}")  # fmt: skip
    print_table(result["table"])
    for finding in result["findings"]:
        print(f"- {finding}")
    print(f"\nevery figure: {out}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see stopline/cli.py: skip the Temporal bridge's teardown crash
