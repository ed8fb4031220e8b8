"""Case linking, escalation and the return of frozen money, end to end through HubService on the
time-skipping server: two victims whose money met in one mule account share one chase and are
repaid pro rata after the 30-day public notice, exact to the fen; a large case is escalated to a
city-level leader and, unacknowledged, to the province."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from activities.convert import time_of
from stopline.domain import Amount, EscalationPolicy
from stopline.v1 import common_pb2, hub_pb2
from tests.test_chase import conserved
from tests.test_hold_decisions import decisions_in_log, freeze, stop_of
from tests.world import CITY_LEADER, POLICE, PROVINCE_CENTRE, hub_world
from workflows.returns import hamilton

MULE_1 = "6229110000800001"  # qilu-bank: receives 800,000.00 of the first victim, held in full
QILU_1 = common_pb2.AccountRef(institution="qilu-bank", account_number=MULE_1)
VICTIM_1 = common_pb2.AccountRef(institution="boxing-rcb", account_number="6217560000123456")
VICTIM_2 = common_pb2.AccountRef(institution="boxing-rcb", account_number="6217560000654321")


def second_victims_report(w, case_id: str, fen: int, to: common_pb2.AccountRef = QILU_1) -> hub_pb2.CaseReport:
    """Another victim's report: they paid `fen` into `to` (a mule account of the first case)."""
    report = w.report(case_id)
    first = report.transfers[0]
    transfer = hub_pb2.VictimTransfer(from_account=VICTIM_2, to_account=to, amount=common_pb2.Money(minor_units=fen, currency="CNY"),
                                      transferred_at=first.transferred_at)  # fmt: skip
    del report.transfers[:]
    report.transfers.append(transfer)
    del report.suspect_phone_numbers[:]
    report.summary = "fake customer service: refund of a parcel"
    return report


async def release_all_but(w, case_id: str, keep: str) -> None:
    """Settle every other hold so the case can be concluded (a 48 h stop cannot be returned)."""
    case = await w.hub.get_case(case_id)
    for stop in case.stops:
        if stop.account.account_number != keep and stop.hold_state == hub_pb2.HOLD_STATE_HELD:
            await w.hub.decide_hold(hub_pb2.HoldDecision(
                case_id=case_id, account=stop.account,
                release=hub_pb2.ReleaseDecision(officer="Wang Lei", reason="not needed for this test"),
            ))  # fmt: skip
    await w.wait_for_case(case_id, lambda c: all(s.hold_state != hub_pb2.HOLD_STATE_RELEASING for s in c.stops))


async def test_two_victims_through_one_mule_account_share_one_chase_and_are_repaid_pro_rata(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-LINK-A"))
        first = await w.answered("BX-LINK-A")
        holds_before = w.institutions["qilu-bank"].ledger.holds(MULE_1)
        assert len(holds_before) == 1

        # The second victim paid 200,000.00 into the same mule account: the case joins the chase.
        report_b = second_victims_report(w, "BX-LINK-B", 20_000_000)
        receipt = await w.hub.report_case(report_b)
        assert receipt.case_id == "BX-LINK-B" and receipt.workflow_id == "case-BX-LINK-A" and receipt.created
        linked = await w.wait_for_case("BX-LINK-B", lambda c: len(c.victims) == 2)
        assert linked.case_id == "BX-LINK-A"  # read through the chase it joined
        assert [c.case_id for c in linked.linked_cases] == ["BX-LINK-B"]
        assert "qilu-bank/6229110000800001" in linked.linked_cases[0].shared
        assert linked.total_reported.minor_units == first.total_reported.minor_units + 20_000_000
        # One chase: the account was not stopped a second time; both victims share what it holds.
        assert w.institutions["qilu-bank"].ledger.holds(MULE_1) == holds_before
        assert len([s for s in linked.stops if s.account.account_number == MULE_1]) == 1
        assert conserved(linked)
        # A repeated report links nothing twice; the same case id with other facts is refused.
        again = await w.hub.report_case(report_b)
        assert not again.created and again.workflow_id == "case-BX-LINK-A"
        with pytest.raises(grpc.aio.AioRpcError) as changed:
            await w.hub.report_case(second_victims_report(w, "BX-LINK-B", 20_000_001))
        assert changed.value.code() == grpc.StatusCode.ALREADY_EXISTS
        # Operators find both cases from the account.
        found = await w.hub_as("centre-operators").find_cases(hub_pb2.CaseSearch(account=QILU_1))
        assert {(c.case_id, c.lead_case_id) for c in found} >= {("BX-LINK-A", "BX-LINK-A"), ("BX-LINK-B", "BX-LINK-A")}

        # Freeze the mule account, settle the rest, conclude: the money is shared pro rata.
        await w.hub.decide_hold(freeze("BX-LINK-A", QILU_1, 80_000_000))
        await w.wait_for_case("BX-LINK-A", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        await release_all_but(w, "BX-LINK-A", MULE_1)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id="BX-LINK-B", officer="Wang Lei", document_ref="x"))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "BX-LINK-A" in refused.value.details()
        await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id="BX-LINK-A", officer="Wang Lei",
                                                         document_ref="Boxing PSB conclusion [2026] No. 9"))  # fmt: skip
        concluded = await w.hub.get_case("BX-LINK-A")
        assert concluded.status == hub_pb2.CASE_STATUS_CONCLUDED
        lost_1 = first.total_reported.minor_units
        shares = hamilton(80_000_000, [lost_1, 20_000_000])
        assert sorted((r.victim_account.account_number, r.amount.minor_units, r.rule) for r in concluded.returns) == sorted(
            [(VICTIM_1.account_number, shares[0], "pro rata"), (VICTIM_2.account_number, shares[1], "pro rata")]
        )
        assert sum(shares) == 80_000_000
        assert all(r.state == hub_pb2.RETURN_STATE_NOTICE for r in concluded.returns)
        notice_ends = time_of(concluded.returns[0].notice_ends_at)
        # Nothing moves during the 30-day public notice.
        await env.sleep(timedelta(days=29))
        assert w.institutions["qilu-bank"].ledger.account(MULE_1).held_minor == 80_000_000
        # After it, the bank pays each victim their share, once.
        await env.sleep(timedelta(days=2))
        final = await w.wait_for_case("BX-LINK-A", lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        assert time_of(final.returns[0].due_by) > notice_ends
        assert all(r.state == hub_pb2.RETURN_STATE_RETURNED and r.return_id for r in final.returns)
        assert final.total_returned.minor_units == 80_000_000 and final.total_held.minor_units == 0
        assert stop_of(final, MULE_1).hold_state == hub_pb2.HOLD_STATE_RETURNED
        assert conserved(final)
        assert w.institutions["qilu-bank"].ledger.account(MULE_1).held_minor == 0
        assert "case_concluded" in decisions_in_log(w, "BX-LINK-A") and "funds_returned" in decisions_in_log(w, "BX-LINK-A")


ESCALATION = EscalationPolicy(Amount(50_000_000, "CNY"), CITY_LEADER, PROVINCE_CENTRE, acknowledge_seconds=2 * 3600)


async def test_a_large_case_goes_to_the_city_leader_then_unacknowledged_to_the_province(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path, escalation=ESCALATION) as w:
        await w.hub.report_case(w.report("BX-ESC"))  # 1,475,000.00 CNY: over 500,000.00
        case = await w.answered("BX-ESC")
        assert case.escalation.level == hub_pb2.ESCALATION_LEVEL_CITY and case.escalation.directed_by == CITY_LEADER
        assert time_of(case.escalation.acknowledge_by) - time_of(case.escalation.escalated_at) == timedelta(hours=2)
        # Only the unit it is escalated to may acknowledge it.
        ack = hub_pb2.EscalationAcknowledgement(case_id="BX-ESC", officer="Director Zhang")
        for unit in (POLICE, PROVINCE_CENTRE):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await w.hub_as(unit).acknowledge_escalation(ack)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Nobody at the city acknowledges within 2 hours: the province directs it.
        await env.sleep(timedelta(hours=2, minutes=1))
        case = await w.hub.get_case("BX-ESC")
        assert case.escalation.level == hub_pb2.ESCALATION_LEVEL_PROVINCE and case.escalation.directed_by == PROVINCE_CENTRE
        assert not case.escalation.acknowledged
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await w.hub_as(CITY_LEADER).acknowledge_escalation(ack)
        assert late.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await w.hub_as(PROVINCE_CENTRE).acknowledge_escalation(ack)
        case = await w.hub.get_case("BX-ESC")
        assert case.escalation.acknowledged and case.escalation.acknowledged_by_officer == "Director Zhang"
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await w.hub_as(PROVINCE_CENTRE).acknowledge_escalation(ack)
        assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert decisions_in_log(w, "BX-ESC").count("case_escalated") == 2
        assert "escalation_acknowledged" in decisions_in_log(w, "BX-ESC")


async def test_linked_cases_are_counted_together_for_escalation(time_skipping_env, tmp_path):
    async with hub_world(time_skipping_env.client, tmp_path, escalation=ESCALATION) as w:
        report = second_victims_report(w, "BX-SMALL-A", 30_000_000)  # 300,000.00: below the threshold
        await w.hub.report_case(report)
        case = await w.answered("BX-SMALL-A")
        assert not case.HasField("escalation")
        await w.hub.report_case(second_victims_report(w, "BX-SMALL-B", 25_000_000))  # same account: linked
        case = await w.wait_for_case("BX-SMALL-A", lambda c: c.HasField("escalation"))
        assert case.total_reported.minor_units == 55_000_000 and case.escalation.directed_by == CITY_LEADER
        assert case.escalation.acknowledge_by.ToDatetime(tzinfo=UTC) > datetime(2020, 1, 1, tzinfo=UTC)


async def test_a_case_whose_victim_paid_an_account_the_chase_reached_joins_that_chase(client, tmp_path):
    hop_2 = common_pb2.AccountRef(institution="huaxia-pay", account_number="HXP-8800-1500-0004")
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-HOP-A"))
        case = await w.answered("BX-HOP-A")
        assert any(s.account.account_number == hop_2.account_number and s.depth == 2 for s in case.stops)
        found = await w.hub_as("centre-operators").find_cases(hub_pb2.CaseSearch(account=hop_2))
        assert [(c.case_id, c.how) for c in found] == [("BX-HOP-A", "chased")]
        receipt = await w.hub.report_case(second_victims_report(w, "BX-HOP-B", 5_000_000, to=hop_2))
        assert receipt.workflow_id == "case-BX-HOP-A"
        linked = await w.wait_for_case("BX-HOP-A", lambda c: len(c.linked_cases) == 1)
        assert linked.linked_cases[0].case_id == "BX-HOP-B" and conserved(linked)
        # Bad searches are refused with the field named.
        for search in (hub_pb2.CaseSearch(), hub_pb2.CaseSearch(phone_number="0123"), hub_pb2.CaseSearch(device_id="no spaces")):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await w.hub_as("centre-operators").find_cases(search)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_case_that_shares_an_account_with_a_closed_case_leads_its_own_chase(client, tmp_path):
    empty = common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000999009")  # holds nothing
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(second_victims_report(w, "BX-GONE-A", 1_000_000, to=empty))
        await w.wait_for_case("BX-GONE-A", lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        # The old group is still open in the index: the gateway finds its lead closed, closes the
        # group and lets the new case lead its own chase.
        receipt = await w.hub.report_case(second_victims_report(w, "BX-GONE-B", 2_000_000, to=empty))
        assert receipt.workflow_id == "case-BX-GONE-B" and receipt.created
        found = await w.hub_as("centre-operators").find_cases(hub_pb2.CaseSearch(account=empty))
        leads = {c.case_id: c.lead_case_id for c in found}
        assert leads == {"BX-GONE-A": "BX-GONE-A", "BX-GONE-B": "BX-GONE-B"}


async def test_money_ordered_back_to_victims_cannot_be_released_during_the_notice(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-NOTICE"))
        await w.answered("BX-NOTICE")
        await w.hub.report_case(second_victims_report(w, "BX-NOTICE-B", 20_000_000))
        await w.wait_for_case("BX-NOTICE", lambda c: len(c.linked_cases) == 1)
        await w.hub.decide_hold(freeze("BX-NOTICE", QILU_1, 80_000_000))
        await w.wait_for_case("BX-NOTICE", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        await release_all_but(w, "BX-NOTICE", MULE_1)
        await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id="BX-NOTICE", officer="Wang Lei", document_ref="No. 3"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await w.hub.decide_hold(hub_pb2.HoldDecision(
                case_id="BX-NOTICE", account=QILU_1, release=hub_pb2.ReleaseDecision(officer="Wang Lei", reason="oops"),
            ))  # fmt: skip
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "victims" in refused.value.details()
        await env.sleep(timedelta(days=31))
        final = await w.wait_for_case("BX-NOTICE", lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        assert final.total_returned.minor_units == 80_000_000 and conserved(final)


async def test_the_same_transfers_reported_under_two_case_ids_are_counted_once(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        first = w.report("BX-DUP-A")
        await w.hub.report_case(first)
        case = await w.answered("BX-DUP-A")
        again = hub_pb2.CaseReport()
        again.CopyFrom(first)
        again.case_id = "BX-DUP-B"  # another unit took the same victim's report
        w._case_ids.add("BX-DUP-B")
        assert (await w.hub.report_case(again)).workflow_id == "case-BX-DUP-A"
        linked = await w.wait_for_case("BX-DUP-A", lambda c: len(c.linked_cases) == 1)
        assert "3 of its transfers were reported already" in linked.linked_cases[0].shared
        assert linked.total_reported == case.total_reported and len(linked.victims) == 1
        assert conserved(linked)


async def test_cases_sharing_a_suspect_number_or_a_device_are_linked(client, tmp_path):
    other = common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000999009")
    async with hub_world(client, tmp_path) as w:
        first = w.report("BX-DEV-A")
        first.device_ids.append("IMEI-861234567890123")
        await w.hub.report_case(first)
        await w.answered("BX-DEV-A")
        by_number = second_victims_report(w, "BX-DEV-B", 1_000_000, to=other)
        by_number.suspect_phone_numbers.append(first.suspect_phone_numbers[0])  # the same fraudster's phone
        assert (await w.hub.report_case(by_number)).workflow_id == "case-BX-DEV-A"
        by_device = second_victims_report(w, "BX-DEV-C", 1_000_000, to=other)
        by_device.device_ids.append("IMEI-861234567890123")
        assert (await w.hub.report_case(by_device)).workflow_id == "case-BX-DEV-A"
        case = await w.wait_for_case("BX-DEV-A", lambda c: len(c.linked_cases) == 2)
        shared = {c.case_id: c.shared for c in case.linked_cases}
        assert first.suspect_phone_numbers[0] in shared["BX-DEV-B"] and "IMEI-861234567890123" in shared["BX-DEV-C"]
        assert len(case.numbers) == 1  # the number is blocked once for the whole chase
        reader = w.hub_as("centre-operators")
        found = await reader.find_cases(hub_pb2.CaseSearch(device_id="IMEI-861234567890123"))
        assert [(c.case_id, c.lead_case_id) for c in found] == [("BX-DEV-A", "BX-DEV-A"), ("BX-DEV-C", "BX-DEV-A")]
        found = await reader.find_cases(hub_pb2.CaseSearch(phone_number=first.suspect_phone_numbers[0]))
        assert {c.case_id for c in found} == {"BX-DEV-A", "BX-DEV-B"}
