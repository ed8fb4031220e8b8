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


async def test_a_hold_history_with_an_officers_freeze_replays_deterministically(client, tmp_path):
    from stopline.v1 import common_pb2

    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-REPLAY-HOLD"))
        await w.answered("BX-REPLAY-HOLD")
        account = common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000800001")
        await w.hub.decide_hold(hub_pb2.HoldDecision(
            case_id="BX-REPLAY-HOLD", account=account,
            freeze=hub_pb2.FreezeDecision(amount=common_pb2.Money(minor_units=80_000_000, currency="CNY"),
                                          officer="Wang Lei", document_ref="No. 117"),
        ))  # fmt: skip
        frozen = hub_pb2.HOLD_STATE_FROZEN
        await w.wait_for_case("BX-REPLAY-HOLD", lambda c: any(s.hold_state == frozen for s in c.stops))
        hold_id = "case-BX-REPLAY-HOLD/hold/qilu-bank/6229110000800001"
        history = await client.get_workflow_handle(hold_id).fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    if os.environ.get("STOPLINE_RECORD_HISTORIES"):
        (HISTORIES / f"{hold_id.replace('/', '~')}.json").write_text(history.to_json())


async def test_recorded_histories_still_replay():
    """Histories recorded by earlier versions (STOPLINE_RECORD_HISTORIES=1 records new ones),
    each named by its workflow id ("/" written as "~")."""
    files = sorted(HISTORIES.glob("*.json"))
    assert len(files) >= 2, "no recorded histories in tests/histories"
    replayer = Replayer(workflows=WORKFLOWS)
    for path in files:
        await replayer.replay_workflow(WorkflowHistory.from_json(path.stem.replace("~", "/"), path.read_text()))
