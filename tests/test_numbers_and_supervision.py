"""Interception of a fraudster's number, and supervision of institutions, end to end through
HubService with sandbox carriers, banks and regulators: the number is blocked at the carrier that
serves it now (it was ported), the telecom regulator is told, a wrong block is lifted with its
reason; an institution silent past its answer deadline is reported to its regulator once, with
the signed requests from the audit log as evidence, however often the hub retried."""

from __future__ import annotations

import grpc
import pytest

from audit.entry import AuditEntry
from audit.merkle import hash_leaf
from stopline.domain import AnswerDeadlines
from stopline.v1 import hub_pb2, regulator_pb2
from tests.world import OPERATORS, hub_world

NUMBER = "+8617012345678"  # in zibo-mobile's range, ported to boxing-unicom
UNRELATED = "+8613455501001"  # zibo-mobile's subscriber, in no case


def number_of(case: hub_pb2.CaseView, phone: str) -> hub_pb2.NumberBlock:
    return next(n for n in case.numbers if n.phone_number == phone)


async def test_a_suspect_number_is_blocked_where_it_is_served_and_a_wrong_block_is_lifted(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-NUM"))
        case = await w.wait_for_case(
            "BX-NUM", lambda c: c.numbers and number_of(c, NUMBER).regulator_notified, within=30
        )
        blocked = number_of(case, NUMBER)
        assert blocked.state == hub_pb2.NUMBER_STATE_BLOCKED and blocked.carrier == "boxing-unicom" and blocked.block_id
        unicom, mobile = w.institutions["boxing-unicom"].numbers, w.institutions["zibo-mobile"].numbers
        (block,) = unicom.blocks(NUMBER)
        assert block.in_force and block.case_id == "BX-NUM"
        assert mobile.blocks(NUMBER) == []  # the range holder was asked where it is, not told to block
        regulator = w.institutions["zibo-telecom-regulator"].reports
        (notice,) = regulator.interception_notices()
        assert notice.message.kind == regulator_pb2.INTERCEPTION_KIND_BLOCKED and list(notice.message.phone_numbers) == [NUMBER]

        def unblock(phone=NUMBER, reason="number reassigned to an innocent subscriber", case_id="BX-NUM"):
            return hub_pb2.NumberUnblockDecision(case_id=case_id, phone_number=phone, officer="Wang Lei", reason=reason)

        async def refused(decision, hub=None) -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await (hub or w.hub).unblock_number(decision)
            return e.value

        assert (await refused(unblock(reason="  "))).code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (await refused(unblock(phone="12345"))).code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (await refused(unblock(phone=UNRELATED))).code() == grpc.StatusCode.NOT_FOUND
        assert (await refused(unblock(), hub=w.hub_as(OPERATORS))).code() == grpc.StatusCode.PERMISSION_DENIED
        assert unicom.blocks(NUMBER)[0].in_force  # nothing changed

        receipt = await w.hub.unblock_number(unblock())
        assert receipt.case_id == "BX-NUM" and NUMBER in receipt.decision
        case = await w.wait_for_case(
            "BX-NUM", lambda c: number_of(c, NUMBER).state == hub_pb2.NUMBER_STATE_UNBLOCKED and number_of(c, NUMBER).regulator_notified
        )
        assert number_of(case, NUMBER).unblock_reason == "number reassigned to an innocent subscriber"
        (lifted,) = unicom.blocks(NUMBER)
        assert not lifted.in_force and lifted.unblock_reason == "number reassigned to an innocent subscriber"
        assert lifted.unblocked_by == "police-boxing"
        kinds = [n.message.kind for n in regulator.interception_notices()]
        assert kinds == [regulator_pb2.INTERCEPTION_KIND_BLOCKED, regulator_pb2.INTERCEPTION_KIND_UNBLOCKED]
        assert (await refused(unblock())).code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_silent_institution_is_reported_to_its_regulator_once_not_once_per_retry(client, tmp_path):
    async with hub_world(client, tmp_path, deadlines=AnswerDeadlines(stop_payment=2)) as w:
        huaxia = w.institutions["huaxia-pay"]
        huaxia.faults.refuse_all_with = grpc.StatusCode.UNAVAILABLE  # up, but answers nothing
        await w.hub.report_case(w.report("BX-SILENT"))
        # huaxia-pay keeps two of the accounts the chase reaches (mule 3, and where mule 2's
        # money went on, found by qilu-bank's answer): both stop-payments go unanswered past their
        # deadline. Wait for both breaches rather than the first: on a loaded machine the second
        # stop starts, and its deadline passes, seconds after the first, so a snapshot taken
        # between them saw one report and then a second arrive after it.
        case = await w.wait_for_case("BX-SILENT", lambda c: len(c.breaches) == 2, within=60)
        for breach in case.breaches:
            assert breach.institution == "huaxia-pay" and breach.request_type == regulator_pb2.REQUEST_TYPE_STOP_PAYMENT
            assert breach.regulator == "zibo-bank-regulator" and breach.reference
        # The hub keeps asking (Temporal retries) after the breaches: each request it left
        # unanswered is reported once, not once per retry.
        received = huaxia.requests_received
        await w.wait_for_case("BX-SILENT", lambda c: huaxia.requests_received >= received + 4, within=30)
        regulator = w.institutions["zibo-bank-regulator"].reports
        reports = regulator.breach_reports()
        requests = [r.message.request_idempotency_key for r in reports]
        assert len(requests) == len(set(requests)) == 2
        leaves = {i: leaf for i, leaf, _ in w.audit.store.leaves()}
        for report in reports:
            sent = report.message
            assert sent.institution == "huaxia-pay" and sent.case_id == "BX-SILENT"
            # The evidence is every signed attempt the hub sent, as entries of its audit log.
            assert len(sent.evidence) >= 2
            for ref in sent.evidence:
                assert hash_leaf(leaves[ref.index]) == ref.leaf_hash
                entry = AuditEntry.decode(leaves[ref.index])
                assert entry.case_id == "BX-SILENT" and entry.institution == "huaxia-pay"
                assert sent.request_idempotency_key.encode() in entry.payload
        # It answers at last: the stops go through, and nothing more is reported.
        huaxia.faults.refuse_all_with = None
        case = await w.answered("BX-SILENT", within=60)
        assert all(s.state == hub_pb2.STOP_STATE_HELD for s in case.stops if s.account.institution == "huaxia-pay")
        assert [r.message.request_idempotency_key for r in regulator.breach_reports()] == requests
        assert len(case.breaches) == len(requests)


async def test_an_acknowledged_freeze_without_its_result_is_reported_after_24_hours(fresh_time_skipping_env, tmp_path):
    """On the real deadline (24 hours for an acknowledged freeze's result), skipped rather than
    slept. (A stop-payment's 10 minutes cannot be skipped this way: the time-skipping server
    holds its clock while an activity retries; the test above runs it on a short deadline.)"""
    from datetime import timedelta

    from tests.test_hold_decisions import QILU_1, freeze, stop_of

    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        qilu = w.institutions["qilu-bank"]
        await w.hub.report_case(w.report("BX-FREEZE-SILENT"))
        await w.answered("BX-FREEZE-SILENT")
        # qilu-bank acknowledges the freeze and never sends its result.
        qilu.faults.freeze_result_after_seconds = 3600
        await w.hub.decide_hold(freeze("BX-FREEZE-SILENT", QILU_1, 80_000_000))
        await w.wait_for_case("BX-FREEZE-SILENT",
                              lambda c: any("acknowledged the freeze" in e.what for e in stop_of(c, QILU_1.account_number).hold_events))  # fmt: skip
        await env.sleep(timedelta(hours=23))
        assert not (await w.hub.get_case("BX-FREEZE-SILENT")).breaches
        await env.sleep(timedelta(hours=1, minutes=1))
        case = await w.wait_for_case("BX-FREEZE-SILENT", lambda c: len(c.breaches) == 1)
        (breach,) = case.breaches
        assert (breach.institution, breach.request_type) == ("qilu-bank", regulator_pb2.REQUEST_TYPE_FREEZE)
        # The hold goes on as a stop under its own deadlines.
        assert stop_of(case, QILU_1.account_number).hold_state in (hub_pb2.HOLD_STATE_HELD, hub_pb2.HOLD_STATE_EXTENDED)
        (report,) = w.institutions["zibo-bank-regulator"].reports.breach_reports()
        assert report.message.institution == "qilu-bank" and report.message.evidence
