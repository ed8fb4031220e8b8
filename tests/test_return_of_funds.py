"""Return of frozen money to the victim it traces to, end to end on the time-skipping server: the
case is concluded, each institution pays straight away (no public notice for a single victim),
its signed receipt comes back by callback, the 3 working days are watched, and a receipt that
does not fit what was ordered is refused and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from activities.convert import time_of
from stopline.v1 import bank_pb2, common_pb2, hub_pb2, regulator_pb2
from tests.test_chase import conserved
from tests.test_hold_decisions import decisions_in_log, freeze, stop_of
from tests.test_linked_cases import QILU_1, VICTIM_1, release_all_but
from tests.world import hub_world
from trust.envelope import seal

MULE_1 = QILU_1.account_number  # qilu-bank: 800,000.00 held in full
MULE_3 = "HXP-8800-3000-0003"  # huaxia-pay: 300,000.00 held in full
HUAXIA_3 = common_pb2.AccountRef(institution="huaxia-pay", account_number=MULE_3)
CASE = "BX-RETURN"
QILU_KEY = f"case-{CASE}/return/qilu-bank/{MULE_1}/boxing-rcb/{VICTIM_1.account_number}/1"


def receipt(fen: int = 80_000_000, key: str = QILU_KEY, to=VICTIM_1, account=QILU_1) -> bank_pb2.ReturnReceipt:
    paid = bank_pb2.ReturnReceipt(
        idempotency_key=key, case_id=CASE, account=account, to_account=to,
        outcome=bank_pb2.RETURN_OUTCOME_RETURNED, returned=common_pb2.Money(minor_units=fen, currency="CNY"),
        return_id="QL-RET-1",
    )  # fmt: skip
    paid.returned_at.GetCurrentTime()
    return paid


async def test_frozen_money_goes_straight_back_to_its_one_victim_with_signed_receipts(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        qilu, huaxia = w.institutions["qilu-bank"], w.institutions["huaxia-pay"]
        await w.hub.report_case(w.report(CASE))
        await w.answered(CASE)
        for account, fen in ((QILU_1, 80_000_000), (HUAXIA_3, 30_000_000)):
            await w.hub.decide_hold(freeze(CASE, account, fen))
        await w.wait_for_case(CASE, lambda c: all(stop_of(c, n).hold_state == hub_pb2.HOLD_STATE_FROZEN for n in (MULE_1, MULE_3)))
        # A 48 h stop is not a legal basis for a return: conclusion waits until it is settled.
        with pytest.raises(grpc.aio.AioRpcError) as early:
            await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id=CASE, officer="Wang Lei", document_ref="c-1"))
        assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "held" in early.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as no_document:
            await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id=CASE, officer="Wang Lei", document_ref=" "))
        assert no_document.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id="BX-NO-SUCH", officer="Wang Lei", document_ref="c-1"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        await release_all_but(w, CASE, MULE_1)  # (MULE_3 is frozen: release_all_but settles only 48 h stops)

        # huaxia-pay pays at once and calls back with its receipt a moment later; qilu-bank pays
        # but its receipt does not come (its back office is slow).
        huaxia.faults.return_receipt_after_seconds = 0.3
        qilu.faults.return_receipt_after_seconds = 3600
        await w.hub.conclude_case(hub_pb2.CaseConclusion(case_id=CASE, officer="Wang Lei", document_ref="Boxing PSB conclusion No. 12"))
        case = await w.wait_for_case(CASE, lambda c: stop_of(c, MULE_3).hold_state == hub_pb2.HOLD_STATE_RETURNED)
        direct = {r.account.account_number: r for r in case.returns}
        assert {n: (r.rule, r.amount.minor_units) for n, r in direct.items()} == {
            MULE_1: ("direct", 80_000_000), MULE_3: ("direct", 30_000_000)
        }
        assert not direct[MULE_1].HasField("notice_ends_at")  # one victim: no public notice
        assert direct[MULE_3].state == hub_pb2.RETURN_STATE_RETURNED and direct[MULE_3].return_id
        (paid,) = huaxia.ledger.returns(MULE_3)
        assert (paid.amount_minor, paid.to_account) == (30_000_000, VICTIM_1.account_number)
        case = await w.wait_for_case(CASE, lambda c: next(r for r in c.returns if r.account.account_number == MULE_1).state
                                     == hub_pb2.RETURN_STATE_ACCEPTED)  # fmt: skip
        due_by = time_of(next(r for r in case.returns if r.account.account_number == MULE_1).due_by)

        # Receipts that do not fit the order are refused, audited, and change nothing.
        as_qilu = w.hub_as("qilu-bank")._stub
        as_huaxia = w.hub_as("huaxia-pay")._stub

        async def send(stub, paid, signer="qilu-bank"):
            return await stub.ReportReturnResult(hub_pb2.ReportReturnResultRequest(envelope=seal(paid, w.keys[signer])))

        for stub, paid, signer, code in (
            (as_qilu, receipt(fen=79_999_999), "qilu-bank", grpc.StatusCode.INVALID_ARGUMENT),
            (as_qilu, receipt(to=common_pb2.AccountRef(institution="boxing-rcb", account_number="6217560000999999")),
             "qilu-bank", grpc.StatusCode.INVALID_ARGUMENT),
            (as_qilu, receipt(key=QILU_KEY.replace("/1", "/9")), "qilu-bank", grpc.StatusCode.FAILED_PRECONDITION),
            (as_huaxia, receipt(), "huaxia-pay", grpc.StatusCode.PERMISSION_DENIED),
        ):  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await send(stub, paid, signer)
            assert refused.value.code() == code, refused.value.details()
        assert next(r for r in (await w.hub.get_case(CASE)).returns if r.account.account_number == MULE_1).state == (
            hub_pb2.RETURN_STATE_ACCEPTED
        )

        # Three working days pass without the receipt: qilu-bank is reported to its regulator, once.
        await env.sleep(timedelta(days=6))
        case = await w.hub.get_case(CASE)
        (breach,) = case.breaches
        assert breach.institution == "qilu-bank" and breach.request_type == regulator_pb2.REQUEST_TYPE_RETURN_FUNDS
        assert time_of(breach.answer_due_at) == due_by
        (report,) = w.institutions["zibo-bank-regulator"].reports.breach_reports()
        assert report.message.request_idempotency_key == QILU_KEY

        # The receipt comes at last: the return is done and the case closes.
        await send(as_qilu, receipt())
        final = await w.wait_for_case(CASE, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        assert final.total_returned.minor_units == 110_000_000 and final.total_held.minor_units == 0
        assert all(r.state == hub_pb2.RETURN_STATE_RETURNED for r in final.returns)
        assert conserved(final)
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await send(as_qilu, receipt())
        assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert qilu.ledger.account(MULE_1).held_minor == 0 and len(qilu.ledger.returns(MULE_1)) == 1
        assert decisions_in_log(w, CASE).count("funds_returned") == 2


async def test_a_return_that_failed_is_ordered_again_when_the_officer_concludes_again(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        qilu = w.institutions["qilu-bank"]
        await w.hub.report_case(w.report("BX-AGAIN"))
        await w.answered("BX-AGAIN")
        await w.hub.decide_hold(freeze("BX-AGAIN", QILU_1, 80_000_000))
        await w.wait_for_case("BX-AGAIN", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        await release_all_but(w, "BX-AGAIN", MULE_1)
        conclusion = hub_pb2.CaseConclusion(case_id="BX-AGAIN", officer="Wang Lei", document_ref="No. 21")
        qilu.faults.refuse_all_with = grpc.StatusCode.PERMISSION_DENIED  # the bank refuses the order itself
        await w.hub.conclude_case(conclusion)
        case = await w.wait_for_case("BX-AGAIN", lambda c: c.returns and c.returns[0].state == hub_pb2.RETURN_STATE_FAILED
                                     and stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)  # fmt: skip
        assert case.status == hub_pb2.CASE_STATUS_CONCLUDED and case.total_returned.minor_units == 0
        assert qilu.ledger.returns(MULE_1) == []  # nothing moved
        qilu.faults.refuse_all_with = None
        await w.hub.conclude_case(conclusion)  # the officer orders what is still frozen again
        final = await w.wait_for_case("BX-AGAIN", lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        assert [(r.state, r.amount.minor_units) for r in final.returns] == [
            (hub_pb2.RETURN_STATE_FAILED, 80_000_000), (hub_pb2.RETURN_STATE_RETURNED, 80_000_000)
        ]
        assert final.total_returned.minor_units == 80_000_000 and conserved(final)
        assert len(qilu.ledger.returns(MULE_1)) == 1
        assert decisions_in_log(w, "BX-AGAIN").count("returns_ordered_again") == 1
        with pytest.raises(grpc.aio.AioRpcError) as closed:
            await w.hub.conclude_case(conclusion)
        assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
