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


async def test_a_chase_tried_first_as_local_activities_holds_once_and_replays(client, tmp_path):
    """The chase's first calls run as local activities (decision 46). qilu-bank applies its
    first stop-payment but the answer is lost: the local try fails, the regular activity sends
    the same key again and gets the bank's stored answer. Every account is held once, that stop
    took 2 calls, and the history (local activity markers, then the regular activity) replays
    (STOPLINE_RECORD_HISTORIES=1 records it for test_recorded_histories_still_replay)."""
    from tests.test_case_end_to_end import MULE_1, MULE_2, by_account

    async with hub_world(client, tmp_path) as w:
        qilu = w.institutions["qilu-bank"]
        qilu.faults.fail_after_apply = 1
        await w.hub.report_case(w.report("BX-REPLAY-LOCAL"))
        case = await w.answered("BX-REPLAY-LOCAL")
        history = await client.get_workflow_handle("case-BX-REPLAY-LOCAL").fetch_history()
    stops = by_account(case)
    assert sorted(h.account for h in qilu.ledger.holds()) == [MULE_2, MULE_1]  # once each
    assert stops[MULE_1].attempts + stops[MULE_2].attempts == 1 + 2  # one answer was lost once
    assert case.total_held.minor_units == 137_640_000
    kinds = [e.WhichOneof("attributes") for e in history.events]
    assert kinds.count("marker_recorded_event_attributes") >= 4  # two patches and local results
    assert kinds.count("activity_task_scheduled_event_attributes") == 1  # only the lost answer's
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    if os.environ.get("STOPLINE_RECORD_HISTORIES"):
        (HISTORIES / "case-BX-REPLAY-LOCAL.json").write_text(history.to_json())


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


async def test_a_whole_case_history_replays_deterministically(client, tmp_path):
    """A case that has everything: a linked case, an escalation acknowledged, a number blocked
    and unblocked, a freeze, the conclusion and a direct return. Its case, number and hold
    histories replay (STOPLINE_RECORD_HISTORIES=1 records them for the test above)."""
    from stopline.domain import Amount, EscalationPolicy
    from stopline.v1 import common_pb2
    from tests.test_hold_decisions import freeze, stop_of
    from tests.test_linked_cases import release_all_but, second_victims_report
    from tests.world import CITY_LEADER, PROVINCE_CENTRE

    case_id = "BX-REPLAY-WHOLE"
    qilu_1 = common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000800001")
    empty = common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000999009")
    escalation = EscalationPolicy(Amount(50_000_000, "CNY"), CITY_LEADER, PROVINCE_CENTRE)
    async with hub_world(client, tmp_path, escalation=escalation) as w:
        await w.hub.report_case(w.report(case_id))
        await w.answered(case_id)
        await w.hub.report_case(second_victims_report(w, f"{case_id}-B", 1_000_000, to=empty))
        await w.hub_as(CITY_LEADER).acknowledge_escalation(
            hub_pb2.EscalationAcknowledgement(case_id=case_id, officer="Director Zhang")
        )
        number = "+8617012345678"
        await w.wait_for_case(case_id, lambda c: c.numbers and c.numbers[0].regulator_notified)
        await w.hub.unblock_number(hub_pb2.NumberUnblockDecision(case_id=case_id, phone_number=number, officer="Wang Lei",
                                                                 reason="reassigned to an innocent subscriber"))  # fmt: skip
        await w.hub.decide_hold(freeze(case_id, qilu_1, 80_000_000))
        await w.wait_for_case(case_id, lambda c: stop_of(c, qilu_1.account_number).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        await release_all_but(w, case_id, qilu_1.account_number)
        await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id=case_id, officer="Wang Lei", document_ref="No. 12"))
        await w.wait_for_case(case_id, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED and c.numbers[0].regulator_notified
                              and c.numbers[0].state == hub_pb2.NUMBER_STATE_UNBLOCKED)  # fmt: skip
        ids = [f"case-{case_id}", f"case-{case_id}/number/{number}", f"case-{case_id}/hold/qilu-bank/{qilu_1.account_number}"]
        histories = [await client.get_workflow_handle(i).fetch_history() for i in ids]
    replayer = Replayer(workflows=WORKFLOWS)
    for history in histories:
        await replayer.replay_workflow(history)
    if os.environ.get("STOPLINE_RECORD_HISTORIES"):
        for workflow_id, history in zip(ids, histories, strict=True):
            (HISTORIES / f"{workflow_id.replace('/', '~')}.json").write_text(history.to_json())


async def test_a_cross_border_history_replays_deterministically(client, tmp_path):
    """The Jining case: a payment sent abroad, recalled through three channels, followed to the
    next bank, partly returned, the rest given up for. Its case and recovery histories replay
    (STOPLINE_RECORD_HISTORIES=1 records them for test_recorded_histories_still_replay)."""
    from stopline.v1 import crossborder_pb2

    case_id = "JN-REPLAY-XB"
    async with hub_world(client, tmp_path, scenario_name="jining") as w:
        await w.hub.report_case(w.report(case_id))
        channels = [w.institutions[i] for i in ("gpi-recall-desk", "pboc-international", "interpol-ncb-beijing")]
        await w.wait_for_case(case_id, lambda c: len(c.recoveries) == 1 and len(c.recoveries[0].channels) == 3
                              and all(ch.reference for ch in c.recoveries[0].channels))  # fmt: skip
        for inst in channels:
            await inst.deliver_recall_updates()
        case = await w.wait_for_case(case_id, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        assert case.recoveries[0].state == crossborder_pb2.RECOVERY_STATE_ENDED
        ids = [f"case-{case_id}", case.recoveries[0].recovery_id]
        histories = [await client.get_workflow_handle(i).fetch_history() for i in ids]
    for history in histories:
        await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    if os.environ.get("STOPLINE_RECORD_HISTORIES"):
        for workflow_id, history in zip(ids, histories, strict=True):
            (HISTORIES / f"{workflow_id.replace('/', '~')}.json").write_text(history.to_json())
