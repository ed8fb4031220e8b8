"""CaseWorkflow on Temporal's time-skipping test server, and replay of its histories: a code
change that would make a running case's history non-deterministic fails here before deploy."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from stopline.v1 import hub_pb2
from tests.world import hub_world
from worker import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"


async def test_case_completes_on_the_time_skipping_server(time_skipping_env, tmp_path):
    async with hub_world(time_skipping_env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-TS-1"))
        case = await w.answered("BX-TS-1")
        assert case.total_held.minor_units == 137_640_000
        states = sorted(hub_pb2.StopState.Name(s.state) for s in case.stops)
        assert states == ["STOP_STATE_HELD"] * 3 + ["STOP_STATE_PARTIALLY_HELD"]


async def test_a_fresh_case_history_replays_deterministically(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        w.institutions["qilu-bank"].faults.fail_after_apply = 1  # a retry in the history too
        await w.hub.report_case(w.report("BX-REPLAY"))
        await w.answered("BX-REPLAY")
        history = await client.get_workflow_handle("case-BX-REPLAY").fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    if os.environ.get("STOPLINE_RECORD_HISTORIES"):
        # Named by workflow id: replay needs it (child workflow ids derive from it).
        (HISTORIES / "case-BX-REPLAY.json").write_text(history.to_json())


async def test_recorded_histories_still_replay():
    """Histories recorded by earlier versions (STOPLINE_RECORD_HISTORIES=1 records a new one)."""
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no recorded histories in tests/histories"
    replayer = Replayer(workflows=WORKFLOWS)
    for path in files:
        await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))
