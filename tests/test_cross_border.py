"""Cross-border recovery end to end, on the time-skipping server with the Jining scenario's real
sandbox channels: a 1,896,000.00 EUR payment sent abroad is recalled through the correspondent,
the central bank and the police channel at once; the recall follows the money to the bank it
moved on to; partial returns in EUR add up; silent channels are reminded, escalated and given up
for over weeks; a channel down for a day is asked again until it answers; and callbacks that do
not fit are refused, audited and change nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from activities.convert import time_of
from audit.entry import AuditEntry, EntryKind
from sandbox.ledger import Abroad
from sandbox.ledger import Account as LedgerAccount
from sandbox.ledger import Transfer as LedgerTransfer
from stopline.domain import EscalationPolicy, EstimateRate
from stopline.v1 import common_pb2, crossborder_pb2, envelope_pb2, hub_pb2
from tests.test_chase import conserved
from tests.world import CITY_LEADER, PROVINCE_CENTRE, hub_world
from trust.envelope import seal
from trust.keys import SigningKey

DESK, CENTRAL, POLICE_CHANNEL = "gpi-recall-desk", "pboc-international", "interpol-ncb-beijing"
CHANNELS = (DESK, CENTRAL, POLICE_CHANNEL)
UETR = "d4c16c2f-cc01-4795-a381-bcf237b806e7"
SENT = 189_600_000  # 1,896,000.00 EUR
EUR_CNY = EstimateRate("EUR", "CNY", "7.6120", "2026-11-20")
def _policy() -> EscalationPolicy:
    from stopline.domain import Amount

    return EscalationPolicy(threshold=Amount(50_000_000, "CNY"), city_unit=CITY_LEADER, province_unit=PROVINCE_CENTRE,
                            acknowledge_seconds=7200)  # fmt: skip


ACK = crossborder_pb2.CHANNEL_STATE_ACKNOWLEDGED


def logged(w) -> list[AuditEntry]:
    return [AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves()]


def payload_type(entry: AuditEntry) -> str:
    return envelope_pb2.Envelope.FromString(entry.payload).payload_type if entry.kind is EntryKind.ENVELOPE else ""


def decisions(w, name: str) -> list[tuple[AuditEntry, dict]]:
    found = []
    for e in logged(w):
        if e.kind is EntryKind.DECISION:
            body = json.loads(e.payload)
            if body["decision"] == name:
                found.append((e, body["details"]))
    return found


def recovery(case: hub_pb2.CaseView) -> crossborder_pb2.CrossBorderRecovery:
    (only,) = case.recoveries
    return only


def channel(rec: crossborder_pb2.CrossBorderRecovery, institution: str) -> crossborder_pb2.RecallChannelView:
    return next(c for c in rec.channels if c.institution == institution)


def eur(minor: int) -> common_pb2.Money:
    return common_pb2.Money(minor_units=minor, currency="EUR")


def adds_up(rec: crossborder_pb2.CrossBorderRecovery) -> bool:
    parts = (rec.returned, rec.held_abroad, rec.outstanding, rec.lost)
    return all(p.currency == rec.amount.currency for p in parts) and (
        sum(p.minor_units for p in parts) == rec.amount.minor_units
    )


def all_acknowledged(case: hub_pb2.CaseView) -> bool:
    return len(case.recoveries) == 1 and len(case.recoveries[0].channels) == 3 and all(
        c.state == ACK for c in case.recoveries[0].channels
    )


async def test_money_sent_abroad_is_recalled_through_every_channel_followed_and_partly_returned(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    case_id = "JN-XB-STORY"
    async with hub_world(env.client, tmp_path, scenario_name="jining", escalation=_policy(), estimate_rates=(EUR_CNY,)) as w:
        desk, central, police = (w.institutions[i] for i in CHANNELS)
        await w.hub.report_case(w.report(case_id))
        case = await w.wait_for_case(case_id, all_acknowledged)
        rec = recovery(case)
        # Nothing can be stopped at home: the whole amount is abroad, in its own currency.
        assert not case.stops and case.total_abroad == eur(SENT)
        assert (rec.amount, rec.destination.bic, rec.destination.payment_reference) == (eur(SENT), "FICTDEFFXXX", UETR)
        assert rec.state == crossborder_pb2.RECOVERY_STATE_ACTIVE and adds_up(rec) and rec.outstanding == eur(SENT)
        # The CNY figure is an estimate, labelled with its rate and the rate's date.
        assert (rec.estimate.amount.minor_units, rec.estimate.amount.currency) == (1_443_235_200, "CNY")
        assert (rec.estimate.rate, rec.estimate.rate_date) == ("7.6120", "2026-11-20")
        assert time_of(rec.window_ends_at) - time_of(rec.sent_at) == timedelta(hours=72)
        assert rec.HasField("next_deadline") and rec.next_deadline_what
        # Every channel got one signed order quoting the payment, answered with its reference.
        for inst, kind in ((desk, crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT), (central, crossborder_pb2.RECALL_CHANNEL_CENTRAL_BANK),
                           (police, crossborder_pb2.RECALL_CHANNEL_POLICE)):  # fmt: skip
            (order,) = inst.recall_orders()
            assert order.envelope.signer == "hub" and order.order.channel == kind
            assert (order.order.amount, order.order.destination.payment_reference) == (eur(SENT), UETR)
            assert channel(rec, inst.institution_id).reference == order.reference

        # The correspondent finds 700,000.00 moved on to Lisbon: the other channels are sent there.
        first = desk.recall_updates()[0]
        assert await desk.deliver_recall_updates(due_by=first.due_at) == 1
        case = await w.wait_for_case(case_id, lambda c: len(central.recall_orders()) == 2 and len(police.recall_orders()) == 2)
        assert [p.bic for p in recovery(case).trail] == ["FICTPTPLXXX"]
        for inst in (central, police):
            follow_up = inst.recall_orders()[1]
            assert follow_up.order.destination.bic == "FICTPTPLXXX" and follow_up.idempotency_key.endswith("/2")
            assert follow_up.reference == inst.recall_orders()[0].reference  # the same recall to them
        assert len(desk.recall_orders()) == 1  # it knew: not told its own news

        # Frankfurt holds and returns 1,196,000.00, Lisbon 650,000.00; the correspondent and the
        # police channel then say the rest is gone. Each return counts once, in EUR.
        await desk.deliver_recall_updates()
        await police.deliver_recall_updates()
        case = await w.wait_for_case(case_id, lambda c: recovery(c).returned == eur(184_600_000)
                                     and all(channel(recovery(c), i).state == crossborder_pb2.CHANNEL_STATE_REFUSED
                                             for i in (DESK, POLICE_CHANNEL)))  # fmt: skip
        rec = recovery(case)
        assert rec.state == crossborder_pb2.RECOVERY_STATE_ACTIVE  # the central bank's channel still works on it
        assert (rec.held_abroad, rec.outstanding, rec.lost) == (eur(0), eur(5_000_000), eur(0)) and adds_up(rec)

        # The central bank's channel gives up: every channel has ended, the rest is lost.
        await central.deliver_recall_updates()
        case = await w.wait_for_case(case_id, lambda c: recovery(c).state == crossborder_pb2.RECOVERY_STATE_ENDED)
        rec = recovery(case)
        assert (rec.returned, rec.held_abroad, rec.outstanding, rec.lost) == (eur(184_600_000), eur(0), eur(0), eur(5_000_000))
        assert channel(rec, CENTRAL).state == crossborder_pb2.CHANNEL_STATE_SILENT
        assert (list(case.abroad_returned), list(case.abroad_held), list(case.abroad_lost)) == (
            [eur(184_600_000)], [], [eur(5_000_000)])
        assert not rec.HasField("next_deadline")
        # The case closes once its recovery has ended (nothing is held at home).
        await w.wait_for_case(case_id, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)

        # Auditors find every request and every update in the signed log, and the end recorded.
        types = [payload_type(e) for e in logged(w) if e.case_id == case_id]
        assert types.count("stopline.v1.RecallOrder") == 5  # 3 requests + 2 follow-ups
        assert types.count("stopline.v1.RecallAcknowledgement") == 5
        assert types.count("stopline.v1.RecallUpdate") == sum(len(i.recall_updates()) for i in (desk, central, police)) == 8
        ended = [d for _, d in decisions(w, "recovery_ended")]
        assert [(d["returned_minor"], d["lost_minor"], d["currency"]) for d in ended] == [(184_600_000, 5_000_000, "EUR")]


async def test_silent_channels_are_reminded_escalated_to_the_province_and_given_up_after_weeks(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    case_id = "JN-XB-SILENT"
    async with hub_world(env.client, tmp_path, scenario_name="jining", escalation=_policy()) as w:
        await w.hub.report_case(w.report(case_id))
        await w.wait_for_case(case_id, all_acknowledged)
        # Nobody reports anything. A day later each channel is reminded, under the same reference.
        await env.sleep(timedelta(hours=24, minutes=1))
        case = await w.wait_for_case(case_id, lambda c: all(ch.reminders == 1 for ch in recovery(c).channels))
        for inst in (w.institutions[i] for i in CHANNELS):
            first, reminder = inst.recall_orders()
            assert (reminder.reminder, reminder.reference) == (1, first.reference)
        assert not recovery(case).escalated_to
        # 48 hours without news: the province centre takes it up, with a day of the window left.
        await env.sleep(timedelta(hours=24))
        case = await w.wait_for_case(case_id, lambda c: recovery(c).escalated_to == PROVINCE_CENTRE)
        assert any("escalated to province-centre" in e.what for e in recovery(case).events)
        escalated = decisions(w, "recovery_escalated")
        assert len(escalated) == 1 and escalated[0][0].institution == PROVINCE_CENTRE
        assert recovery(case).state == crossborder_pb2.RECOVERY_STATE_ACTIVE
        # Weeks go by, reminded weekly; after 90 days of silence every channel is given up for.
        await env.sleep(timedelta(days=90))
        case = await w.wait_for_case(case_id, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        rec = recovery(case)
        assert rec.state == crossborder_pb2.RECOVERY_STATE_ENDED and rec.lost == eur(SENT) and adds_up(rec)
        assert all(c.state == crossborder_pb2.CHANNEL_STATE_SILENT for c in rec.channels)
        assert all(c.reminders >= 10 for c in rec.channels)  # 2 in the window, then weekly
        assert len(decisions(w, "recovery_escalated")) == 1  # escalated once


async def test_a_channel_down_for_a_day_is_asked_again_until_it_answers_and_gets_the_request_once(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    case_id = "JN-XB-DOWN"
    async with hub_world(env.client, tmp_path, scenario_name="jining") as w:
        police = w.institutions[POLICE_CHANNEL]
        await police.stop()
        await w.hub.report_case(w.report(case_id))
        case = await w.wait_for_case(case_id, lambda c: len(c.recoveries) == 1 and len(recovery(c).channels) == 3
                                     and "unreachable" in channel(recovery(c), POLICE_CHANNEL).detail
                                     and channel(recovery(c), DESK).state == ACK)  # fmt: skip
        assert recovery(case).HasField("next_deadline")
        # A day, in four steps: the first day of an outage holds about 25 real calls, and one
        # skip over all of them outran the skip call's time limit on a slow CI run (Timeout expired).
        for _ in range(4):
            await env.sleep(timedelta(hours=6))
        case = await w.wait_for_case(case_id, lambda c: channel(recovery(c), POLICE_CHANNEL).attempts >= 10)
        assert channel(recovery(case), POLICE_CHANNEL).state == crossborder_pb2.CHANNEL_STATE_REQUESTING
        await police.start()
        # The next try is at most an hour away. (The hub's connection notices the channel is back
        # within its 5 s reconnect backoff, real time, which the skipped hour does not wait for.)
        for _ in range(10):
            await env.sleep(timedelta(hours=1, minutes=1))
            case = await w.hub.get_case(case_id)
            if channel(recovery(case), POLICE_CHANNEL).state == ACK:
                break
            await asyncio.sleep(1)
        assert channel(recovery(case), POLICE_CHANNEL).state == ACK, recovery(case)
        (order,) = police.recall_orders()  # however many tries, one request, received once
        assert order.idempotency_key.endswith("/recall/police/1") and order.reference
        tries = [e for e in logged(w) if payload_type(e) == "stopline.v1.RecallOrder" and e.institution == POLICE_CHANNEL]
        assert len(tries) == channel(recovery(case), POLICE_CHANNEL).attempts >= 10


async def test_callbacks_that_do_not_fit_are_refused_audited_and_change_nothing(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    case_id = "JN-XB-REFUSE"
    async with hub_world(env.client, tmp_path, scenario_name="jining") as w:
        await w.hub.report_case(w.report(case_id))
        case = await w.wait_for_case(case_id, all_acknowledged)
        rec = recovery(case)
        desk_key = w.institutions[DESK].recall_orders()[0].idempotency_key

        def update(seq: int, status=crossborder_pb2.RECALL_STATUS_HELD, *, key: str = desk_key, recovery_id: str = rec.recovery_id,
                   amount: common_pb2.Money | None = None, **fields) -> crossborder_pb2.RecallUpdate:  # fmt: skip
            msg = crossborder_pb2.RecallUpdate(
                idempotency_key=key, recovery_id=recovery_id, case_id=case_id, sequence=seq, status=status,
                location=common_pb2.ForeignDestination(bic="FICTDEFFXXX", account="DE97500999990004418812", payment_reference=UETR),
                amount=amount or eur(119_600_000), **fields,
            )  # fmt: skip
            msg.reported_at.FromDatetime(datetime.now(UTC))
            return msg

        async def send(msg, signer: str = DESK, key: SigningKey | None = None):
            stub = w.hub_as(signer, key=key)._stub
            return await stub.ReportRecallUpdate(hub_pb2.ReportRecallUpdateRequest(envelope=seal(msg, key or w.keys[signer])))

        police_key = w.institutions[POLICE_CHANNEL].recall_orders()[0].idempotency_key
        refusals = [
            (update(1), DESK, SigningKey.generate(DESK), grpc.StatusCode.UNAUTHENTICATED),  # forged: not the desk's key
            (update(1), "jining-bank", None, grpc.StatusCode.PERMISSION_DENIED),  # a bank is no recall channel
            (update(1, recovery_id=f"case-{case_id}/recovery/9"), DESK, None, grpc.StatusCode.NOT_FOUND),
            (update(1, recovery_id="case-JN-OTHER/recovery/1"), DESK, None, grpc.StatusCode.NOT_FOUND),
            (update(1, key=f"{rec.recovery_id}/recall/correspondent/7"), DESK, None, grpc.StatusCode.NOT_FOUND),
            (update(1, key=police_key), DESK, None, grpc.StatusCode.PERMISSION_DENIED),  # the police channel's request
            (update(2), DESK, None, grpc.StatusCode.FAILED_PRECONDITION),  # out of order: update 1 first
            (update(1, amount=common_pb2.Money(minor_units=100, currency="USD")), DESK, None, grpc.StatusCode.INVALID_ARGUMENT),
            (update(1, crossborder_pb2.RECALL_STATUS_RETURNED, amount=eur(SENT + 1), return_reference="R-1"), DESK, None,
             grpc.StatusCode.INVALID_ARGUMENT),  # more back than was sent
            (update(1, crossborder_pb2.RECALL_STATUS_RETURNED, return_reference=""), DESK, None, grpc.StatusCode.INVALID_ARGUMENT),
            (update(0), DESK, None, grpc.StatusCode.INVALID_ARGUMENT),  # no sequence
        ]  # fmt: skip
        before = len(logged(w))
        for msg, signer, key, code in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await send(msg, signer, key)
            assert refused.value.code() == code, (code, refused.value.details())
        assert "update 1 first" in (await _details(send, update(2)))
        # Nothing changed, and every refusal is on record.
        now = recovery(await w.hub.get_case(case_id))
        assert (now.held_abroad, now.returned, [c.updates for c in now.channels]) == (eur(0), eur(0), [0, 0, 0])
        refused_entries = [e for e in logged(w)[before:] if e.kind is EntryKind.REFUSAL]
        assert len(refused_entries) >= len(refusals)

        # The real update 1 is taken; the same again is ALREADY_EXISTS, other content under its
        # number FAILED_PRECONDITION; nothing is applied twice.
        held = update(1)
        await send(held)
        for msg, code in ((held, grpc.StatusCode.ALREADY_EXISTS),
                          (update(1, amount=eur(1)), grpc.StatusCode.FAILED_PRECONDITION)):  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as again:
                await send(msg)
            assert again.value.code() == code, again.value.details()
        now = recovery(await w.hub.get_case(case_id))
        assert now.held_abroad == eur(119_600_000) and channel(now, DESK).updates == 1 and adds_up(now)

        # Every channel ends (refused, gave up): a later update is too late.
        central_key = w.institutions[CENTRAL].recall_orders()[0].idempotency_key
        await send(update(2, crossborder_pb2.RECALL_STATUS_REFUSED, reason="beneficiary bank refuses (camt.029)"))
        await send(update(1, crossborder_pb2.RECALL_STATUS_REFUSED, key=police_key, reason="no legal basis abroad"), POLICE_CHANNEL)
        gave_up = update(1, crossborder_pb2.RECALL_STATUS_NO_ANSWER, key=central_key, reason="no answer")
        await send(gave_up, CENTRAL)
        case = await w.wait_for_case(case_id, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        # The recovery has closed. The central bank's outbox lost our receipt and sends the same
        # update again: it is told the update was applied (ALREADY_EXISTS), not that it is late.
        with pytest.raises(grpc.aio.AioRpcError) as repeat:
            await send(gave_up, CENTRAL)
        assert repeat.value.code() == grpc.StatusCode.ALREADY_EXISTS, repeat.value.details()
        assert (recovery(case).held_abroad, recovery(case).lost) == (eur(119_600_000), eur(SENT - 119_600_000))
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await send(update(3, crossborder_pb2.RECALL_STATUS_RETURNED, return_reference="R-LATE"))
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION, late.value.details()
        assert recovery(await w.hub.get_case(case_id)).returned == eur(0)


async def _details(send, msg) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await send(msg)
    return refused.value.details()


async def test_payments_the_chase_finds_abroad_are_recovered_in_their_own_currencies_and_add_up(fresh_time_skipping_env, tmp_path):
    """A CNY case whose mule sent the money abroad in two payments, one in USD and one in EUR:
    one recovery each, amounts kept in USD and EUR, partial returns (one reported by two
    channels, counted once), and every currency adds up on its own."""
    env = fresh_time_skipping_env
    case_id = "JN-XB-TWO"
    mule = "6230580000777001"
    async with hub_world(env.client, tmp_path, scenario_name="jining",
                         estimate_rates=(EUR_CNY, EstimateRate("USD", "CNY", "7.1030", "2026-11-20"))) as w:  # fmt: skip
        now = datetime.now(UTC)
        w.institutions["jining-bank"].ledger.seed(
            [LedgerAccount(mule, "Sun Hao", "CNY", 0)],
            [LedgerTransfer(mule, "", "", 60_000_000, "CNY", now - timedelta(minutes=20), "abroad",
                            Abroad("FICTUS33XXX", "US-4471-0093", "uetr-usd-1", 8_400_000, "USD")),
             LedgerTransfer(mule, "", "", 40_000_000, "CNY", now - timedelta(minutes=10), "abroad",
                            Abroad("FICTFRPPXXX", "FR7630006000011234567890189", "uetr-eur-1", 5_200_000, "EUR"))],
        )  # fmt: skip
        report = w.report(case_id)
        del report.suspect_phone_numbers[:]
        del report.transfers[:]
        victim = report.transfers.add(
            from_account=common_pb2.AccountRef(institution="jining-rcb", account_number="6217000011112222"),
            to_account=common_pb2.AccountRef(institution="jining-bank", account_number=mule),
            amount=common_pb2.Money(minor_units=100_000_000, currency="CNY"),
        )  # fmt: skip
        victim.transferred_at.FromDatetime(now - timedelta(minutes=30))
        await w.hub.report_case(report)
        case = await w.wait_for_case(case_id, lambda c: len(c.recoveries) == 2 and all(
            len(r.channels) == 3 and all(ch.state == ACK for ch in r.channels) for r in c.recoveries))
        usd, eur_ = sorted(case.recoveries, key=lambda r: r.amount.currency, reverse=True)
        assert (usd.amount.minor_units, usd.amount.currency, usd.destination.bic) == (8_400_000, "USD", "FICTUS33XXX")
        assert (eur_.amount.minor_units, eur_.amount.currency, eur_.destination.bic) == (5_200_000, "EUR", "FICTFRPPXXX")
        assert (usd.estimate.amount.minor_units, usd.estimate.rate) == (59_665_200, "7.1030")  # 596,652.00 CNY, estimated
        assert case.total_abroad == common_pb2.Money(minor_units=100_000_000, currency="CNY")  # debited in CNY

        def money(minor: int, currency: str) -> common_pb2.Money:
            return common_pb2.Money(minor_units=minor, currency=currency)

        async def report_update(rec, institution: str, seq: int, status, amount=None, bic: str = "", **fields):
            key = next(o.idempotency_key for o in w.institutions[institution].recall_orders() if o.recovery_id == rec.recovery_id)
            msg = crossborder_pb2.RecallUpdate(idempotency_key=key, recovery_id=rec.recovery_id, case_id=case_id,
                                               sequence=seq, status=status, **fields)  # fmt: skip
            if amount is not None:
                msg.amount.CopyFrom(amount)
            if bic:
                msg.location.CopyFrom(common_pb2.ForeignDestination(bic=bic, account="held", payment_reference="p"))
            msg.reported_at.FromDatetime(datetime.now(UTC))
            stub = w.hub_as(institution)._stub
            await stub.ReportRecallUpdate(hub_pb2.ReportRecallUpdateRequest(envelope=seal(msg, w.keys[institution])))

        s = crossborder_pb2
        # USD: 84,000.00 held in New York; 50,000.00 back (both the desk and the police report that
        # return: counted once), then 26,000.00 more; 8,000.00 stays held when the channels end.
        await report_update(usd, DESK, 1, s.RECALL_STATUS_HELD, money(8_400_000, "USD"), "FICTUS33XXX")
        await report_update(usd, DESK, 2, s.RECALL_STATUS_RETURNED, money(5_000_000, "USD"), "FICTUS33XXX", return_reference="R-USD-1")
        await report_update(usd, POLICE_CHANNEL, 1, s.RECALL_STATUS_RETURNED, money(5_000_000, "USD"), "FICTUS33XXX",
                            return_reference="R-USD-1")  # fmt: skip
        await report_update(usd, POLICE_CHANNEL, 2, s.RECALL_STATUS_RETURNED, money(2_600_000, "USD"), "FICTUS33XXX",
                            return_reference="R-USD-2")  # fmt: skip
        for institution, seq in ((DESK, 3), (POLICE_CHANNEL, 3), (CENTRAL, 1)):
            await report_update(usd, institution, seq, s.RECALL_STATUS_REFUSED, reason="nothing more to recover")
        # EUR: 20,000.00 comes back (the bank not said); the rest is given up for.
        await report_update(eur_, DESK, 1, s.RECALL_STATUS_RETURNED, money(2_000_000, "EUR"), return_reference="R-EUR-1")
        for institution, seq in ((DESK, 2), (POLICE_CHANNEL, 1)):
            await report_update(eur_, institution, seq, s.RECALL_STATUS_REFUSED, reason="beneficiary bank refuses")
        await report_update(eur_, CENTRAL, 1, s.RECALL_STATUS_NO_ANSWER, reason="no answer from abroad")

        case = await w.wait_for_case(case_id, lambda c: all(r.state == s.RECOVERY_STATE_ENDED for r in c.recoveries))
        usd, eur_ = sorted(case.recoveries, key=lambda r: r.amount.currency, reverse=True)
        assert (usd.returned, usd.held_abroad, usd.lost) == (money(7_600_000, "USD"), money(800_000, "USD"), money(0, "USD"))
        assert (eur_.returned, eur_.held_abroad, eur_.lost) == (money(2_000_000, "EUR"), money(0, "EUR"), money(3_200_000, "EUR"))
        assert adds_up(usd) and adds_up(eur_)
        # Case totals per currency, never converted into each other or into CNY.
        assert sorted((m.currency, m.minor_units) for m in case.abroad_returned) == [("EUR", 2_000_000), ("USD", 7_600_000)]
        assert [(m.currency, m.minor_units) for m in case.abroad_held] == [("USD", 800_000)]
        assert [(m.currency, m.minor_units) for m in case.abroad_lost] == [("EUR", 3_200_000)]
        assert conserved(case)


async def test_the_same_payment_reported_by_a_second_unit_is_one_case_and_one_recall(fresh_time_skipping_env, tmp_path):
    """The company's bank reports it in Jining; the provincial centre reports the same payment
    (its UETR) under its own case id, writing the time a minute off: the second report joins the
    first case, the victim's loss counts once, and the payment is recalled once."""
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path, scenario_name="jining") as w:
        await w.hub.report_case(w.report("JN-XB-FIRST"))
        await w.wait_for_case("JN-XB-FIRST", all_acknowledged)
        second = w.report("JN-XB-SECOND")
        moved = time_of(second.transfers[0].transferred_at) + timedelta(minutes=1)
        second.transfers[0].transferred_at.FromDatetime(moved)
        receipt = await w.hub.report_case(second)
        assert receipt.workflow_id == "case-JN-XB-FIRST" and receipt.created
        case = await w.wait_for_case("JN-XB-FIRST", lambda c: len(c.linked_cases) == 1)
        assert "payment FICTDEFFXXX/" + UETR in case.linked_cases[0].shared
        assert len(case.recoveries) == 1 and case.total_reported == eur(SENT)  # the loss counted once
        assert all(len(w.institutions[i].recall_orders()) == 1 for i in CHANNELS)  # one recall, each channel asked once


async def test_a_refused_reminder_does_not_end_a_channel_that_holds_money(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    case_id = "JN-XB-REMIND"
    async with hub_world(env.client, tmp_path, scenario_name="jining") as w:
        desk = w.institutions[DESK]
        await w.hub.report_case(w.report(case_id))
        await w.wait_for_case(case_id, all_acknowledged)
        first_two = desk.recall_updates()[:2]  # located at Lisbon, then 1,196,000.00 held at Frankfurt
        await desk.deliver_recall_updates(due_by=first_two[1].due_at)
        await w.wait_for_case(case_id, lambda c: channel(recovery(c), DESK).state == crossborder_pb2.CHANNEL_STATE_HELD)
        # The desk's gateway starts refusing our messages; a day of silence brings a reminder,
        # which it refuses. Its part goes on: the money it holds still counts.
        desk.faults.refuse_all_with = grpc.StatusCode.INVALID_ARGUMENT
        await env.sleep(timedelta(hours=24, minutes=5))
        case = await w.wait_for_case(case_id, lambda c: "refused" in channel(recovery(c), DESK).detail)
        assert channel(recovery(case), DESK).state == crossborder_pb2.CHANNEL_STATE_HELD
        assert recovery(case).held_abroad == eur(119_600_000)
        desk.faults.refuse_all_with = None
        await desk.deliver_recall_updates(due_by=desk.recall_updates()[2].due_at)  # the return
        case = await w.wait_for_case(case_id, lambda c: recovery(c).returned == eur(119_600_000))
        assert adds_up(recovery(case))


async def test_a_channel_never_reached_is_given_up_and_the_history_stays_small(fresh_time_skipping_env, tmp_path):
    """Given up after `recall_give_up_days` (90 by default; 5 here, so the test skips days, not
    months), whether silent or unreachable."""
    env = fresh_time_skipping_env
    case_id = "JN-XB-NEVER"
    async with hub_world(env.client, tmp_path, scenario_name="jining", recall_give_up_days=5) as w:
        await w.institutions[POLICE_CHANNEL].stop()
        await w.hub.report_case(w.report(case_id))
        await w.wait_for_case(case_id, lambda c: len(c.recoveries) == 1 and len(recovery(c).channels) == 3
                              and channel(recovery(c), DESK).state == ACK)  # fmt: skip
        for _ in range(6):  # a day at a time: one skip over many tries would outlast the skip's own RPC
            await env.sleep(timedelta(days=1))
        case = await w.wait_for_case(case_id, lambda c: c.status == hub_pb2.CASE_STATUS_CLOSED)
        rec = recovery(case)
        police = channel(rec, POLICE_CHANNEL)
        assert police.state == crossborder_pb2.CHANNEL_STATE_SILENT and "unreachable" in police.detail
        assert all(channel(rec, i).state == crossborder_pb2.CHANNEL_STATE_SILENT for i in (DESK, CENTRAL))
        assert rec.state == crossborder_pb2.RECOVERY_STATE_ENDED and rec.lost == eur(SENT) and adds_up(rec)
        # Hourly tries on the first day of the outage, then every six hours (about 40 in 5 days):
        # weeks of outage stay far from Temporal's 51,200-event limit, and the case was told of
        # them at tries 1, 2, 4, 8, ... only.
        assert 25 <= police.attempts <= 50, police.attempts
        events = len((await env.client.get_workflow_handle(rec.recovery_id).fetch_history()).events)
        assert events < 25 * police.attempts, events
