"""Officers' decisions on held money, through HubService.DecideHold (a Temporal update on the
hold's workflow, validated before it is accepted): freeze for 6 months, renew before it lapses,
release a wrongly held account. On the time-skipping server; the money is checked at the bank."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest

from activities.convert import time_of
from audit.entry import AuditEntry, EntryKind
from stopline.v1 import bank_pb2, common_pb2, envelope_pb2, hub_pb2
from tests.test_chase import conserved
from tests.world import AUDITOR, hub_world
from trust.envelope import seal

MULE_1 = "6229110000800001"  # qilu-bank: 800,000.00 held in full
MULE_3 = "HXP-8800-3000-0003"  # huaxia-pay: 300,000.00 held in full
QILU_1 = common_pb2.AccountRef(institution="qilu-bank", account_number=MULE_1)
HUAXIA_3 = common_pb2.AccountRef(institution="huaxia-pay", account_number=MULE_3)


def stop_of(case: hub_pb2.CaseView, number: str) -> hub_pb2.AccountStop:
    return next(s for s in case.stops if s.account.account_number == number)


def freeze(case_id, account, fen, document="Boxing PSB freeze decision [2026] No. 117", officer="Wang Lei"):
    return hub_pb2.HoldDecision(
        case_id=case_id, account=account,
        freeze=hub_pb2.FreezeDecision(amount=common_pb2.Money(minor_units=fen, currency="CNY"), officer=officer,
                                      document_ref=document),
    )  # fmt: skip


def decisions_in_log(w, case_id) -> list[str]:
    entries = (AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves())
    return [e.payload.decode().split('"decision":"')[1].split('"')[0]
            for e in entries if e.kind is EntryKind.DECISION and e.case_id == case_id]  # fmt: skip


async def test_an_approved_freeze_holds_the_money_for_six_months_and_is_renewed_before_it_lapses(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-FREEZE"))
        await w.answered("BX-FREEZE")
        receipt = await w.hub.decide_hold(freeze("BX-FREEZE", QILU_1, 80_000_000))
        assert receipt.hold_state == hub_pb2.HOLD_STATE_FREEZING

        case = await w.wait_for_case("BX-FREEZE", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        frozen = stop_of(case, MULE_1)
        expiry = time_of(frozen.hold_expires_at)
        (freeze_row,) = w.institutions["qilu-bank"].ledger.freezes(MULE_1)
        assert freeze_row.amount_minor == 80_000_000 and freeze_row.expires_at == expiry
        assert w.institutions["qilu-bank"].ledger.account(MULE_1).held_minor == 80_000_000

        # Past the stop's 48 hours nothing lapses: the freeze holds it.
        await env.sleep(timedelta(days=3))
        assert stop_of(await w.hub.get_case("BX-FREEZE"), MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN
        # 30 days before the freeze lapses, a renewal is asked for; the officer renews.
        await env.sleep(expiry - timedelta(days=29) - time_of(frozen.answered_at) - timedelta(days=3))
        asked = stop_of(await w.hub.get_case("BX-FREEZE"), MULE_1)
        assert "renewal decision asked for" in asked.hold_events[-1].what
        renew = hub_pb2.HoldDecision(case_id="BX-FREEZE", account=QILU_1,
                                     renew=hub_pb2.RenewDecision(officer="Wang Lei", document_ref="renewal No. 9"))  # fmt: skip
        await w.hub.decide_hold(renew)
        renewed = await w.wait_for_case(
            "BX-FREEZE", lambda c: time_of(stop_of(c, MULE_1).hold_expires_at) > expiry
        )
        assert time_of(stop_of(renewed, MULE_1).hold_expires_at) == expiry + timedelta(days=183)
        assert [f.freeze_id for f in w.institutions["qilu-bank"].ledger.freezes(MULE_1)] == [freeze_row.freeze_id]
        assert {"freeze_decided", "frozen", "renew_decided"} <= set(decisions_in_log(w, "BX-FREEZE"))


async def test_a_wrongly_held_merchant_is_released_with_the_reason_on_record(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-MERCHANT"))
        await w.answered("BX-MERCHANT")
        release = hub_pb2.HoldDecision(
            case_id="BX-MERCHANT", account=HUAXIA_3,
            release=hub_pb2.ReleaseDecision(officer="Wang Lei", reason="innocent merchant: sold goods to the mule"),
        )  # fmt: skip
        assert (await w.hub.decide_hold(release)).hold_state == hub_pb2.HOLD_STATE_RELEASING
        case = await w.wait_for_case("BX-MERCHANT", lambda c: stop_of(c, MULE_3).hold_state == hub_pb2.HOLD_STATE_RELEASED)
        assert "innocent merchant" in stop_of(case, MULE_3).hold_events[-1].what
        assert w.institutions["huaxia-pay"].ledger.account(MULE_3).held_minor == 0
        assert "release_decided" in decisions_in_log(w, "BX-MERCHANT")
        # Released is final: a freeze now is refused and changes nothing.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.decide_hold(freeze("BX-MERCHANT", HUAXIA_3, 30_000_000))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("decision", "code", "says"),
    [
        (lambda c: freeze(c, QILU_1, 90_000_000), grpc.StatusCode.INVALID_ARGUMENT, "more than the 80000000 held"),
        (lambda c: freeze(c, QILU_1, 1_000, document=""), grpc.StatusCode.INVALID_ARGUMENT, "document_ref"),
        (lambda c: freeze(c, QILU_1, 0), grpc.StatusCode.INVALID_ARGUMENT, "freeze.amount"),
        (lambda c: hub_pb2.HoldDecision(case_id=c, account=QILU_1,
                                      renew=hub_pb2.RenewDecision(officer="x", document_ref="y")),
         grpc.StatusCode.FAILED_PRECONDITION, "cannot renew: the hold is held"),
        (lambda c: hub_pb2.HoldDecision(case_id=c, account=QILU_1, release=hub_pb2.ReleaseDecision(officer="x")),
         grpc.StatusCode.INVALID_ARGUMENT, "reason"),
        (lambda c: freeze(c, common_pb2.AccountRef(institution="qilu-bank", account_number="123"), 1),
         grpc.StatusCode.NOT_FOUND, "holds nothing on"),
    ],
)  # fmt: skip
async def test_a_decision_that_does_not_apply_is_refused_and_changes_nothing(client, tmp_path, decision, code, says):
    case_id = f"BX-BADDEC-{uuid.uuid4().hex[:8]}"
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report(case_id))
        await w.answered(case_id)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.decide_hold(decision(case_id))
        assert err.value.code() == code and says in err.value.details(), err.value.details()
        case = await w.hub.get_case(case_id)
        assert stop_of(case, MULE_1).hold_state == hub_pb2.HOLD_STATE_HELD
        assert w.institutions["qilu-bank"].ledger.freezes() == []
        assert decisions_in_log(w, case_id) == []


async def test_only_units_with_the_approve_role_decide(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-NOAPPROVE"))
        await w.answered("BX-NOAPPROVE")
        for who in (AUDITOR, "qilu-bank"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await w.hub_as(who).decide_hold(freeze("BX-NOAPPROVE", QILU_1, 1_000))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may not decide on holds" in err.value.details()
        assert stop_of(await w.hub.get_case("BX-NOAPPROVE"), MULE_1).hold_state == hub_pb2.HOLD_STATE_HELD


async def test_a_freeze_acknowledged_now_is_completed_by_the_banks_signed_callback(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        w.institutions["qilu-bank"].faults.freeze_result_after_seconds = 0.3  # a back office
        await w.hub.report_case(w.report("BX-ASYNC"))
        await w.answered("BX-ASYNC")
        await w.hub.decide_hold(freeze("BX-ASYNC", QILU_1, 80_000_000))
        case = await w.wait_for_case("BX-ASYNC", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        events = [e.what for e in stop_of(case, MULE_1).hold_events]
        assert any("acknowledged the freeze" in e for e in events) and "frozen until" in events[-1]
        (freeze_row,) = w.institutions["qilu-bank"].ledger.freezes(MULE_1)
        assert stop_of(case, MULE_1).hold_expires_at.ToDatetime(tzinfo=freeze_row.expires_at.tzinfo) == freeze_row.expires_at

        # The same result again, or one nobody asked for, is refused and changes nothing.
        callbacks = [e for _, leaf, _ in w.audit.store.leaves()
                     if (e := AuditEntry.decode(leaf)).kind is EntryKind.ENVELOPE and b"FreezeAnswer" in e.payload
                     and e.institution == "qilu-bank" and e.case_id == "BX-ASYNC"]  # fmt: skip
        late = envelope_pb2.Envelope.FromString(callbacks[-1].payload)
        again = bank_pb2.FreezeAnswer.FromString(late.payload)
        qilu = w.hub_as("qilu-bank")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await qilu._stub.ReportFreezeResult(hub_pb2.ReportFreezeResultRequest(envelope=seal(again, w.keys["qilu-bank"])))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "no freeze result is awaited" in err.value.details()
        # Another institution may not report about qilu-bank's account.
        huaxia = w.hub_as("huaxia-pay")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await huaxia._stub.ReportFreezeResult(hub_pb2.ReportFreezeResultRequest(envelope=seal(again, w.keys["huaxia-pay"])))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "its own accounts" in err.value.details()
        assert len(w.institutions["qilu-bank"].ledger.freezes()) == 1
        assert stop_of(await w.hub.get_case("BX-ASYNC"), MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN


async def test_a_freeze_result_that_never_comes_leaves_the_hold_to_its_deadlines(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        w.institutions["qilu-bank"].faults.freeze_result_after_seconds = 10_000  # never, in this test
        await w.hub.report_case(w.report("BX-SILENT"))
        await w.answered("BX-SILENT")
        await w.hub.decide_hold(freeze("BX-SILENT", QILU_1, 80_000_000))
        await w.wait_for_case("BX-SILENT", lambda c: any("acknowledged" in e.what for e in stop_of(c, MULE_1).hold_events))
        await env.sleep(timedelta(hours=25))
        case = await w.hub.get_case("BX-SILENT")
        held = stop_of(case, MULE_1)
        assert held.hold_state in (hub_pb2.HOLD_STATE_HELD, hub_pb2.HOLD_STATE_EXTENDED, hub_pb2.HOLD_STATE_LAPSED)
        assert any("no freeze result from qilu-bank" in e.what for e in held.hold_events)


async def test_a_freeze_nobody_renews_lapses_after_six_months(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-NORENEW"))
        await w.answered("BX-NORENEW")
        await w.hub.decide_hold(freeze("BX-NORENEW", HUAXIA_3, 30_000_000))
        await w.wait_for_case("BX-NORENEW", lambda c: stop_of(c, MULE_3).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        await env.sleep(timedelta(days=160))  # 23 days before expiry: the renewal was asked for
        asked = stop_of(await w.hub.get_case("BX-NORENEW"), MULE_3)
        assert asked.hold_state == hub_pb2.HOLD_STATE_FROZEN and asked.HasField("freeze_decision_due_at")
        await env.sleep(timedelta(days=24))
        lapsed = stop_of(await w.hub.get_case("BX-NORENEW"), MULE_3)
        assert lapsed.hold_state == hub_pb2.HOLD_STATE_LAPSED and "not renewed" in lapsed.hold_events[-1].what
        assert "freeze_lapsed" in decisions_in_log(w, "BX-NORENEW")


async def test_frozen_money_is_released_on_a_decision(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-UNFREEZE"))
        await w.answered("BX-UNFREEZE")
        await w.hub.decide_hold(freeze("BX-UNFREEZE", QILU_1, 50_000_000))  # less than held
        await w.wait_for_case("BX-UNFREEZE", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        ledger = w.institutions["qilu-bank"].ledger
        assert ledger.account(MULE_1).held_minor == 50_000_000  # the rest was freed at once
        release = hub_pb2.HoldDecision(case_id="BX-UNFREEZE", account=QILU_1,
                                       release=hub_pb2.ReleaseDecision(officer="Wang Lei", reason="victim's own savings"))  # fmt: skip
        await w.hub.decide_hold(release)
        case = await w.wait_for_case("BX-UNFREEZE", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_RELEASED)
        assert "released 50000000 CNY" in stop_of(case, MULE_1).hold_events[-1].what
        assert ledger.account(MULE_1).held_minor == 0 and ledger.freezes(MULE_1)[0].state == "released"
        # The case's books follow: nothing held there now, all 800,000.00 back to the account.
        released = stop_of(case, MULE_1)
        assert released.held.minor_units == 0 and released.released.minor_units == 80_000_000
        assert conserved(case) and case.total_released.minor_units == 80_000_000


async def test_a_refused_release_leaves_the_hold_and_the_case_standing(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-NORELEASE"))
        await w.answered("BX-NORELEASE")
        w.institutions["huaxia-pay"].faults.refuse_all_with = grpc.StatusCode.PERMISSION_DENIED
        release = hub_pb2.HoldDecision(case_id="BX-NORELEASE", account=HUAXIA_3,
                                       release=hub_pb2.ReleaseDecision(officer="Wang Lei", reason="merchant"))  # fmt: skip
        await w.hub.decide_hold(release)
        case = await w.wait_for_case(
            "BX-NORELEASE", lambda c: any("release failed" in e.what for e in stop_of(c, MULE_3).hold_events)
        )
        assert stop_of(case, MULE_3).hold_state == hub_pb2.HOLD_STATE_HELD
        assert stop_of(case, MULE_1).hold_state == hub_pb2.HOLD_STATE_HELD  # its sibling is untouched
        # The bank is back: the officer decides again and it goes through.
        w.institutions["huaxia-pay"].faults.refuse_all_with = None
        await w.hub.decide_hold(release)
        await w.wait_for_case("BX-NORELEASE", lambda c: stop_of(c, MULE_3).hold_state == hub_pb2.HOLD_STATE_RELEASED)


async def test_a_callback_that_beats_the_banks_own_answer_is_accepted(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        w.institutions["qilu-bank"].faults.freeze_result_after_seconds = 0  # calls back at once
        await w.hub.report_case(w.report("BX-FASTCB"))
        await w.answered("BX-FASTCB")
        await w.hub.decide_hold(freeze("BX-FASTCB", QILU_1, 80_000_000))
        case = await w.wait_for_case("BX-FASTCB", lambda c: stop_of(c, MULE_1).hold_state == hub_pb2.HOLD_STATE_FROZEN)
        assert len(w.institutions["qilu-bank"].ledger.freezes(MULE_1)) == 1
        assert "frozen until" in stop_of(case, MULE_1).hold_events[-1].what
