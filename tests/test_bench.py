"""`make bench` keeps working: every benchmark runs in its quick mode (tiny sizes, seconds) on the
real stack and its own checks pass (every stop held, the chase reaches every account, the holds
at the banks are the expected ones). The numbers of a quick run mean nothing; docs/benchmarks.md
has the measured ones."""

from __future__ import annotations

import pytest

from bench.run import BENCHMARKS, run


@pytest.mark.timeout(300)
async def test_every_benchmark_runs_in_quick_mode_and_fills_its_table():
    result = await run(BENCHMARKS, quick=True)
    assert result["machine"]["cpus"] >= 1
    by_benchmark: dict[str, list[dict]] = {}
    for row in result["table"]:
        by_benchmark.setdefault(row["benchmark"].split(",")[0], []).append(row)
    assert {"first held", "chase", "throughput", "growth"} <= set(by_benchmark), sorted(by_benchmark)
    for rows in by_benchmark.values():
        assert all(row["measure"] for row in rows) and any(row["stopline"] for row in rows), rows
    judged = [row for row in result["table"] if row.get("target") and isinstance(row.get("met"), bool)]
    assert {row["benchmark"].split(",")[0] for row in judged} >= {"first held", "chase", "throughput"}, judged
