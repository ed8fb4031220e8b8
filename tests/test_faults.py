"""Faults (issue #7): parts of the hub killed or stopped mid-chase, on real parts only.

Each test runs its own Temporal dev server (`temporal server start-dev` on a SQLite file in the
test's folder, on free ports), so killing and restarting processes cannot touch other tests. The
sandbox institutions and the gateway run in the test process (a `Stack` without Temporal); the
worker runs where each test says: in another OS process when it is to be SIGKILLed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from bench.throughput import holds_by_case as holds_in
from bench.throughput import scenario_copies
from stopline import config
from stopline.casefile import rebase_report, report_from_dict
from stopline.cli import CHASE_DONE, hub_client
from stopline.embedded import DevServer
from stopline.stack import Stack
from stopline.v1 import hub_pb2
from tests.test_case_end_to_end import MULE_1, MULE_2, MULE_2B, MULE_3, by_account
from tests.test_cli import STOPLINE, free_port
from tests.world import hub_world

BANKS = ("qilu-bank", "huaxia-pay")  # the boxing scenario's institutions that hold money
BOXING_HELD = 137_640_000  # what a clean run of the boxing case holds: 1,376,400.00 CNY
HELD = (hub_pb2.STOP_STATE_HELD, hub_pb2.STOP_STATE_PARTIALLY_HELD)
HOLDS_PER_CASE = 4  # across 4 accounts at 2 institutions


def boxing_times(copies: int, tmp_path: Path) -> tuple[Path, list[dict]]:
    """The boxing scenario with `copies` unrelated frauds: every account copied under its own
    numbers, and a case per copy, its mule moves kept. (The same case reported 20 times is one
    chase: the hub links the repeats to the first and does not stop the same transfers again.)"""
    return scenario_copies(copies, tmp_path, case_prefix="KILL", keep_moves=True)


def private_env(tmp_path: Path, address: str, scenario: str = "boxing") -> dict[str, str]:
    """Settings for a hub whose parts all point at the test's own dev server and data folder."""
    return os.environ | {
        "STOPLINE_SCENARIO": scenario,
        "STOPLINE_SANDBOX_PORTS": "auto",
        "STOPLINE_DATA_DIR": str(tmp_path / "data"),
        "STOPLINE_EMBEDDED_TEMPORAL": "false",
        "STOPLINE_TEMPORAL_ADDRESS": address,
        "STOPLINE_GATEWAY_ADDRESS": "127.0.0.1:0",
        "STOPLINE_TASK_QUEUE": f"faults-{time.monotonic_ns()}",
    }


def dev_server(tmp_path: Path, address: str | None = None, ui_port: int | None = None) -> DevServer:
    return DevServer(
        address=address or f"127.0.0.1:{free_port()}", ui_port=ui_port or free_port(),
        db_file=tmp_path / "temporal.db", log_file=tmp_path / "temporal.log",
    )  # fmt: skip


async def wait_until(check, within: float, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(every)


def holds_by_case(stack: Stack) -> dict[str, list]:
    """Every hold the sandbox banks applied, read from their SQLite ledgers, by case."""
    return holds_in(stack.settings.data_dir)


async def audit_verifies(env: dict[str, str]) -> None:
    """`stopline audit verify` over the log the gateway and the workers wrote: every entry, its
    signature and the signed checkpoints."""
    verify = await asyncio.create_subprocess_exec(
        STOPLINE, "audit", "verify", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(verify.communicate(), 120)
    assert verify.returncode == 0, out.decode()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    # Its log to a file: a pipe nobody reads fills up and blocks the worker mid-write.
    with open(log, "a") as out:
        return subprocess.Popen([STOPLINE, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=out)


CASES = 20


async def test_a_worker_killed_with_sigkill_among_20_running_cases_is_replaced_and_nothing_is_applied_twice(
    tmp_path,
):
    """20 cases chased at once by a worker in its own process; SIGKILL it when some stops are
    held and some not; a new worker process finishes every case. Each bank applied each stop
    once (one hold per account per case), the money held is what a run without the kill holds
    (every fen on the mule accounts, exactly once), and the audit log, written by the gateway
    here and both workers there, verifies."""
    server = dev_server(tmp_path)
    await server.start()
    workers: list[subprocess.Popen] = []
    try:
        scenario, cases = boxing_times(CASES, tmp_path)
        env = private_env(tmp_path, server.address, str(scenario))
        settings = config.load(env=env)
        now = datetime.now(UTC)
        async with Stack(settings, temporal=False, worker=False, anchor=now) as stack:
            for inst_id in BANKS:  # slow enough banks that the kill lands mid-chase
                stack.sandbox.institutions[inst_id].faults.delay_seconds = 0.3
            env["STOPLINE_GATEWAY_ADDRESS"] = stack.gateway_address
            hub = hub_client(settings, stack.scenario.case["reporting_unit"], stack.gateway_address)
            workers.append(start_worker(env, tmp_path / "worker-1.log"))
            case_ids = [case["case_id"] for case in cases]
            started = time.monotonic()
            for case in cases:
                await hub.report_case(rebase_report(report_from_dict(case), now, case["case_id"]))

            async def mid_chase():
                holds = holds_by_case(stack)
                return sum(1 for c in case_ids if c in holds) >= 3 and holds

            await wait_until(mid_chase, 60, 0.05, "three cases with money held")
            workers[0].kill()  # SIGKILL: no clean-up, activities in flight
            workers[0].wait(timeout=30)
            killed_at = time.monotonic() - started
            # (A case cannot be read while no worker runs: reading it is a workflow query.)
            at_kill = holds_by_case(stack)
            unfinished = [c for c in case_ids if len(at_kill.get(c, [])) < HOLDS_PER_CASE]
            assert unfinished, "every case was held in full before the kill: make the banks slower"
            workers.append(start_worker(env, tmp_path / "worker-2.log"))
            views = {}

            unreadable = []

            async def all_done():
                # A case is a workflow query: until Temporal gives up on the killed worker's
                # sticky queue, a read may time out (UNAVAILABLE "is a worker running?", or the
                # client's own deadline first).
                for c in case_ids:
                    try:
                        views[c] = await hub.get_case(c)
                    except grpc.aio.AioRpcError as e:
                        assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), e
                        unreadable.append(time.monotonic() - started)
                        return False
                return all(v.status in CHASE_DONE for v in views.values())

            await wait_until(all_done, 90, 0.2, "every case answered")
            finished_at = time.monotonic() - started
            holds = holds_by_case(stack)
            await hub.close()
        held_at_kill = sum(len(hs) for c, hs in at_kill.items() if c in case_ids)
        print(
            f"\nSIGKILL after {killed_at:.1f} s: {held_at_kill}/{CASES * HOLDS_PER_CASE} stops held, "
            f"{len(unfinished)}/{CASES} cases unfinished; all answered at {finished_at:.1f} s; "
            f"{len(unreadable)} reads timed out, the last at {max(unreadable, default=0):.1f} s"
        )

        # Each stop-payment applied once: one hold per account per case, whatever the retries.
        for case_id in case_ids:
            per_account = Counter(h.account for h in holds.get(case_id, []))
            assert len(per_account) == HOLDS_PER_CASE and max(per_account.values()) == 1, (
                case_id,
                per_account,
            )
        # What the cases say is held is what the banks hold, case by case.
        for case_id, view in views.items():
            assert sum(h.amount_minor for h in holds.get(case_id, [])) == view.total_held.minor_units, case_id
        # The same money as a clean run, case by case.
        assert {c: v.total_held.minor_units for c, v in views.items()} == {c: BOXING_HELD for c in case_ids}
        await audit_verifies(env)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=60)
        await server.stop()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_the_temporal_dev_server_stopped_and_started_again_on_its_file_mid_case_resumes_the_case(
    tmp_path, how
):
    """Stop the dev server (SIGTERM, or SIGKILL: no clean shut-down) while a case is being
    chased (one bank slow), start it again on the
    same SQLite file and ports: the worker and gateway reconnect by themselves and the case
    completes with the same money held as a clean run."""
    server = dev_server(tmp_path)
    await server.start()
    try:
        env = private_env(tmp_path, server.address)
        settings = config.load(env=env)
        now = datetime.now(UTC)
        async with Stack(settings, temporal=False, anchor=now) as stack:
            stack.sandbox.institutions["huaxia-pay"].faults.delay_seconds = 1.5
            hub = hub_client(settings, stack.scenario.case["reporting_unit"], stack.gateway_address)
            await hub.report_case(rebase_report(report_from_dict(stack.scenario.case), now, "RESTART-1"))

            async def some_held():
                return "RESTART-1" in holds_by_case(stack)

            await wait_until(some_held, 30, 0.05, "a first hold")
            assert (await hub.get_case("RESTART-1")).status not in CHASE_DONE
            if how == "sigkill":
                server.process.kill()
                await asyncio.to_thread(server.process.wait, 30)
            else:
                await server.stop()
            await asyncio.sleep(1)
            server = dev_server(tmp_path, server.address, server.ui_port)
            await server.start()
            restarted = time.monotonic()

            unreadable: list[float] = []

            async def done():
                try:
                    case = await hub.get_case("RESTART-1")
                except grpc.aio.AioRpcError as e:
                    # A workflow task in flight when the server died (a local activity's, say)
                    # must time out (10 s) before the case answers queries again.
                    if e.code() != grpc.StatusCode.UNAVAILABLE or "cannot be read now" not in (e.details() or ""):
                        raise
                    unreadable.append(time.monotonic() - restarted)
                    return False
                return case.status in CHASE_DONE and case

            case = await wait_until(done, 60, 0.2, "the case answered after the restart")
            print(f"\n{how}: case answered {time.monotonic() - restarted:.1f} s after the dev server came back"
                  + (f" (unreadable until {max(unreadable):.1f} s)" if unreadable else ""))
            holds = holds_by_case(stack)["RESTART-1"]
            await hub.close()
        assert max(Counter(h.account for h in holds).values()) == 1
        assert sum(h.amount_minor for h in holds) == case.total_held.minor_units == BOXING_HELD
        await audit_verifies(env)
    finally:
        await server.stop()


async def test_a_slow_institution_does_not_delay_the_others_in_the_same_case(client, tmp_path):
    """huaxia-pay answers every request only after 10.5 s; qilu-bank's two stops in the same case
    are held at once, while huaxia-pay's are still pending; then huaxia-pay's are held too.

    The first call's deadline is 5 s and each retry doubles it (adapters/channels.py
    call_deadline), so the third call (20 s) waits long enough: a bank slower than the first
    deadline is heard, not retried for ever at the same deadline."""
    async with hub_world(client, tmp_path) as w:
        w.institutions["huaxia-pay"].faults.delay_seconds = 10.5
        await w.hub.report_case(w.report("BX-SLOW-ONE"))
        reported = time.monotonic()
        case = await w.wait_for_case(
            "BX-SLOW-ONE",
            lambda c: all(by_account(c).get(a) and by_account(c)[a].state in HELD for a in (MULE_1, MULE_2)),
            within=5,
        )
        qilu_held = time.monotonic() - reported
        assert by_account(case)[MULE_3].state == hub_pb2.STOP_STATE_ASKED  # still waiting for huaxia-pay
        assert case.status not in CHASE_DONE and w.institutions["huaxia-pay"].ledger.holds() == []
        assert sorted(h.account for h in w.institutions["qilu-bank"].ledger.holds()) == [MULE_2, MULE_1]
        case = await w.answered("BX-SLOW-ONE", within=60)
        print(
            f"\nqilu-bank held in {qilu_held:.2f} s; the case answered after {time.monotonic() - reported:.1f} s"
        )
        assert by_account(case)[MULE_3].held.minor_units == 30_000_000
        # Cut off at 5 s and 10 s, heard at the third call (20 s deadline); held once all the same.
        assert by_account(case)[MULE_3].attempts == 3
        assert sorted(h.account for h in w.institutions["huaxia-pay"].ledger.holds()) == [MULE_2B, MULE_3]
        assert case.total_held.minor_units == BOXING_HELD
