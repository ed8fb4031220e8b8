"""The hub's CaseView dataclass as the wire's CaseView message."""

from __future__ import annotations

from datetime import datetime, timedelta

from activities.convert import (
    account_pb,
    amount_of,
    foreign_destination_of,
    is_currency,
    money_pb,
    time_of,
    timestamp_pb,
)
from activities.crossborder import CHANNEL_PB, destination_pb
from stopline.domain import (
    AccountStop,
    Amount,
    BreachView,
    CaseStatus,
    CaseView,
    ChannelState,
    EscalationLevel,
    EscalationView,
    FlowKind,
    HoldState,
    MoneyFlow,
    NumberState,
    NumberView,
    RecallChannelView,
    RecallStatus,
    RecallUpdateInput,
    RecoveryState,
    RecoveryView,
    RequestType,
    ReturnState,
    ReturnView,
    StopState,
    stop_step_id,
)
from stopline.v1 import crossborder_pb2, hub_pb2, regulator_pb2

CASE_STATUS_PB = {
    CaseStatus.STOPPING: hub_pb2.CASE_STATUS_STOPPING,
    CaseStatus.STOPS_ANSWERED: hub_pb2.CASE_STATUS_STOPS_ANSWERED,
    CaseStatus.CONCLUDED: hub_pb2.CASE_STATUS_CONCLUDED,
    CaseStatus.CLOSED: hub_pb2.CASE_STATUS_CLOSED,
}
CASE_STATUS_OF_PB = {v: k for k, v in CASE_STATUS_PB.items()}

STOP_STATE_PB = {
    StopState.ASKED: hub_pb2.STOP_STATE_ASKED,
    StopState.HELD: hub_pb2.STOP_STATE_HELD,
    StopState.PARTIALLY_HELD: hub_pb2.STOP_STATE_PARTIALLY_HELD,
    StopState.REFUSED: hub_pb2.STOP_STATE_REFUSED,
    StopState.ANSWER_REJECTED: hub_pb2.STOP_STATE_ANSWER_REJECTED,
    StopState.FAILED: hub_pb2.STOP_STATE_FAILED,
}


HOLD_STATE_PB = {
    HoldState.HELD: hub_pb2.HOLD_STATE_HELD,
    HoldState.EXTENDED: hub_pb2.HOLD_STATE_EXTENDED,
    HoldState.LAPSED: hub_pb2.HOLD_STATE_LAPSED,
    HoldState.FREEZING: hub_pb2.HOLD_STATE_FREEZING,
    HoldState.FROZEN: hub_pb2.HOLD_STATE_FROZEN,
    HoldState.RELEASING: hub_pb2.HOLD_STATE_RELEASING,
    HoldState.RELEASED: hub_pb2.HOLD_STATE_RELEASED,
    HoldState.RETURNING: hub_pb2.HOLD_STATE_RETURNING,
    HoldState.RETURNED: hub_pb2.HOLD_STATE_RETURNED,
}

NUMBER_STATE_PB = {state: hub_pb2.NumberState.Value(f"NUMBER_STATE_{state.name}") for state in NumberState}
RETURN_STATE_PB = {state: hub_pb2.ReturnState.Value(f"RETURN_STATE_{state.name}") for state in ReturnState}
ESCALATION_LEVEL_PB = {level: hub_pb2.EscalationLevel.Value(f"ESCALATION_LEVEL_{level.name}") for level in EscalationLevel}
RECOVERY_STATE_PB = {s: crossborder_pb2.RecoveryState.Value(f"RECOVERY_STATE_{s.name}") for s in RecoveryState}
CHANNEL_STATE_PB = {s: crossborder_pb2.ChannelState.Value(f"CHANNEL_STATE_{s.name}") for s in ChannelState}
REQUEST_TYPE_PB = {t: regulator_pb2.RequestType.Value(f"REQUEST_TYPE_{t.name}") for t in RequestType}


def _at(msg, field: str, when) -> None:
    if when is not None:
        getattr(msg, field).CopyFrom(timestamp_pb(when))


def number_pb(view: NumberView) -> hub_pb2.NumberBlock:
    msg = hub_pb2.NumberBlock(
        phone_number=view.phone_number, carrier=view.carrier, state=NUMBER_STATE_PB[view.state],
        block_id=view.block_id, detail=view.detail, unblock_reason=view.unblock_reason,
        regulator_notified=view.regulator_notified,
    )  # fmt: skip
    _at(msg, "blocked_at", view.blocked_at)
    _at(msg, "unblocked_at", view.unblocked_at)
    return msg


def escalation_pb(view: EscalationView) -> hub_pb2.Escalation:
    msg = hub_pb2.Escalation(
        level=ESCALATION_LEVEL_PB[view.level], directed_by=view.directed_by, acknowledged=view.acknowledged,
        acknowledged_by_officer=view.acknowledged_by_officer,
        events=[hub_pb2.HoldEvent(at=timestamp_pb(e.at), what=e.what) for e in view.events],
    )  # fmt: skip
    _at(msg, "escalated_at", view.escalated_at)
    _at(msg, "acknowledge_by", view.acknowledge_by)
    _at(msg, "acknowledged_at", view.acknowledged_at)
    return msg


def return_pb(view: ReturnView) -> hub_pb2.FundsReturn:
    msg = hub_pb2.FundsReturn(
        account=account_pb(view.account), victim_account=account_pb(view.victim_account), amount=money_pb(view.amount),
        state=RETURN_STATE_PB[view.state], rule=view.rule, return_id=view.return_id, detail=view.detail,
    )  # fmt: skip
    _at(msg, "notice_ends_at", view.notice_ends_at)
    _at(msg, "due_by", view.due_by)
    _at(msg, "returned_at", view.returned_at)
    return msg


def breach_pb(view: BreachView) -> hub_pb2.BreachNotice:
    msg = hub_pb2.BreachNotice(institution=view.institution, request_type=REQUEST_TYPE_PB[view.request_type],
                               regulator=view.regulator, reference=view.reference)  # fmt: skip
    _at(msg, "reported_at", view.reported_at)
    _at(msg, "answer_due_at", view.answer_due_at)
    return msg

FLOW_KIND_PB = {
    FlowKind.ONWARD: hub_pb2.FLOW_KIND_ONWARD,
    FlowKind.CASH: hub_pb2.FLOW_KIND_CASH,
    FlowKind.ABROAD: hub_pb2.FLOW_KIND_ABROAD,
    FlowKind.OFF_PLATFORM: hub_pb2.FLOW_KIND_OFF_PLATFORM,
    FlowKind.BEYOND_DEPTH: hub_pb2.FLOW_KIND_BEYOND_DEPTH,
    FlowKind.NOT_TRACED: hub_pb2.FLOW_KIND_NOT_TRACED,
}


def money_flow_pb(flow: MoneyFlow) -> hub_pb2.MoneyFlow:
    msg = hub_pb2.MoneyFlow(
        from_account=account_pb(flow.from_account),
        amount=money_pb(flow.amount),
        kind=FLOW_KIND_PB[flow.kind],
        note=flow.note,
    )
    if flow.to_account is not None:
        msg.to_account.CopyFrom(account_pb(flow.to_account))
    if flow.moved_at is not None:
        msg.moved_at.CopyFrom(timestamp_pb(flow.moved_at))
    if flow.abroad is not None:
        msg.abroad.CopyFrom(destination_pb(flow.abroad))
    return msg


def _channel_pb(view: RecallChannelView) -> crossborder_pb2.RecallChannelView:
    msg = crossborder_pb2.RecallChannelView(
        channel=CHANNEL_PB[view.channel], institution=view.institution, state=CHANNEL_STATE_PB[view.state],
        reference=view.reference, updates=view.updates, reminders=view.reminders, attempts=view.attempts,
        detail=view.detail,
    )  # fmt: skip
    _at(msg, "acknowledged_at", view.acknowledged_at)
    _at(msg, "last_heard_at", view.last_heard_at)
    return msg


def recovery_pb(view: RecoveryView) -> crossborder_pb2.CrossBorderRecovery:
    msg = crossborder_pb2.CrossBorderRecovery(
        recovery_id=view.recovery_id, from_account=account_pb(view.from_account),
        destination=destination_pb(view.destination), amount=money_pb(view.amount),
        sent_at=timestamp_pb(view.sent_at), window_ends_at=timestamp_pb(view.window_ends_at),
        state=RECOVERY_STATE_PB[view.state], channels=[_channel_pb(c) for c in view.channels],
        trail=[destination_pb(d) for d in view.trail], returned=money_pb(view.returned),
        held_abroad=money_pb(view.held_abroad), outstanding=money_pb(view.outstanding), lost=money_pb(view.lost),
        next_deadline_what=view.next_deadline_what, escalated_to=view.escalated_to,
        events=[crossborder_pb2.RecoveryEvent(at=timestamp_pb(e.at), what=e.what) for e in view.events],
    )  # fmt: skip
    if view.estimate is not None:
        msg.estimate.CopyFrom(crossborder_pb2.CurrencyEstimate(
            amount=money_pb(view.estimate.amount), rate=view.estimate.rate, rate_date=view.estimate.rate_date,
        ))  # fmt: skip
    _at(msg, "next_deadline", view.next_deadline)
    return msg


def account_stop_pb(stop: AccountStop, attempts: int = 0, last_error: str = "") -> hub_pb2.AccountStop:
    msg = hub_pb2.AccountStop(
        account=account_pb(stop.account),
        requested=money_pb(stop.requested),
        state=STOP_STATE_PB[stop.state],
        held=money_pb(stop.held or Amount.zero(stop.requested.currency)),
        reason=stop.reason,
        attempts=attempts,
        last_error=last_error,
        hold_id=stop.hold_id,
        depth=stop.depth,
        traced=stop.traced,
        released=money_pb(stop.released or Amount.zero(stop.requested.currency)),
        hold_state=HOLD_STATE_PB.get(stop.hold_state, hub_pb2.HOLD_STATE_UNSPECIFIED),
        stops_used=stop.stops_used,
        hold_events=[hub_pb2.HoldEvent(at=timestamp_pb(e.at), what=e.what) for e in stop.hold_events],
    )
    if stop.returned is not None:
        msg.returned.CopyFrom(money_pb(stop.returned))

    if stop.freeze_decision_due_at is not None:
        msg.freeze_decision_due_at.CopyFrom(timestamp_pb(stop.freeze_decision_due_at))
    if stop.hold_expires_at is not None:
        msg.hold_expires_at.CopyFrom(timestamp_pb(stop.hold_expires_at))
    if stop.answered_at is not None:
        msg.answered_at.CopyFrom(timestamp_pb(stop.answered_at))
    return msg


def case_view_pb(view: CaseView, pending: dict[str, tuple[int, str]] | None = None) -> hub_pb2.CaseView:
    """`pending` maps a stop's activity id to (attempts so far, last error) for unanswered stops."""
    pending = pending or {}
    zero = Amount.zero(view.total_reported.currency)
    stops = []
    for stop in view.stops:
        attempts, last_error = stop.attempts, ""
        if stop.state is StopState.ASKED:
            attempts, last_error = pending.get(stop_step_id(stop.account), (0, ""))
        stops.append(account_stop_pb(stop, attempts, last_error))
    return hub_pb2.CaseView(
        case_id=view.case_id,
        workflow_id=view.workflow_id,
        status=CASE_STATUS_PB[view.status],
        reporting_unit=view.reporting_unit,
        reported_at=timestamp_pb(view.reported_at),
        total_reported=money_pb(view.total_reported),
        total_held=money_pb(view.total_held),
        stops=stops,
        suspect_phone_numbers=view.suspect_phone_numbers,
        summary=view.summary,
        flows=[money_flow_pb(f) for f in view.flows],
        total_lost=money_pb(view.total_lost or zero),
        total_abroad=money_pb(view.total_abroad or zero),
        total_at_large=money_pb(view.total_at_large or zero),
        total_released=money_pb(view.total_released or zero),
        total_returned=money_pb(view.total_returned or zero),
        victims=[hub_pb2.Victim(account=account_pb(v.account), lost=money_pb(v.lost), case_id=v.case_id) for v in view.victims],
        linked_cases=[
            hub_pb2.LinkedCase(case_id=c.case_id, reporting_unit=c.reporting_unit, total_reported=money_pb(c.total_reported),
                               shared=c.shared, linked_at=timestamp_pb(c.linked_at))
            for c in view.linked_cases
        ],  # fmt: skip
        numbers=[number_pb(n) for n in view.numbers],
        escalation=escalation_pb(view.escalation) if view.escalation is not None else None,
        returns=[return_pb(r) for r in view.returns],
        breaches=[breach_pb(b) for b in view.breaches],
        recoveries=[recovery_pb(r) for r in view.recoveries],
        abroad_returned=[money_pb(a) for a in view.abroad_returned],
        abroad_held=[money_pb(a) for a in view.abroad_held],
        abroad_lost=[money_pb(a) for a in view.abroad_lost],
    )


RECALL_STATUS_OF_PB = {crossborder_pb2.RecallStatus.Value(f"RECALL_STATUS_{s.name}"): s for s in RecallStatus}
# A channel's clock may run a little ahead of ours.
CLOCK_TOLERANCE = timedelta(minutes=5)
MAX_REFERENCE_CHARS = 128
MAX_REASON_CHARS = 500


def recall_update_of(update: crossborder_pb2.RecallUpdate, signer: str, fingerprint: str, *, now: datetime) -> RecallUpdateInput:
    """A channel's RecallUpdate as the recovery workflow takes it; ValueError names what is wrong
    (the workflow checks it against the recovery: the request, the sequence, the amounts)."""
    missing = [name for name, present in (
        ("recovery_id", update.recovery_id), ("idempotency_key", update.idempotency_key),
        ("case_id", update.case_id), ("sequence", update.sequence > 0),
        ("status", update.status in RECALL_STATUS_OF_PB), ("reported_at", update.HasField("reported_at")),
    ) if not present]  # fmt: skip
    if missing:
        raise ValueError(f"{', '.join(missing)}: required")
    reported_at = time_of(update.reported_at)
    if reported_at is None or reported_at > now + CLOCK_TOLERANCE:
        raise ValueError(f"reported_at: {update.reported_at.ToJsonString()} is in the future")
    location = foreign_destination_of(update.location, "location") if update.HasField("location") else None
    amount = None
    if update.HasField("amount"):
        if not is_currency(update.amount.currency):
            raise ValueError(f"amount.currency: {update.amount.currency[:8]!r} is not an ISO 4217 code")
        amount = amount_of(update.amount)
    if len(update.return_reference) > MAX_REFERENCE_CHARS:
        raise ValueError(f"return_reference: at most {MAX_REFERENCE_CHARS} characters")
    if len(update.reason) > MAX_REASON_CHARS:
        raise ValueError(f"reason: at most {MAX_REASON_CHARS} characters")
    return RecallUpdateInput(
        institution=signer, idempotency_key=update.idempotency_key, case_id=update.case_id, sequence=update.sequence,
        status=RECALL_STATUS_OF_PB[update.status], reported_at=reported_at, fingerprint=fingerprint, location=location,
        amount=amount, return_reference=update.return_reference.strip(), reason=update.reason.strip(),
    )  # fmt: skip
