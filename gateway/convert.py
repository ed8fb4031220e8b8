"""The hub's CaseView dataclass as the wire's CaseView message."""

from __future__ import annotations

from activities.convert import account_pb, money_pb, timestamp_pb
from stopline.domain import (
    AccountStop,
    Amount,
    CaseStatus,
    CaseView,
    FlowKind,
    HoldState,
    MoneyFlow,
    StopState,
    stop_step_id,
)
from stopline.v1 import hub_pb2

CASE_STATUS_PB = {
    CaseStatus.STOPPING: hub_pb2.CASE_STATUS_STOPPING,
    CaseStatus.STOPS_ANSWERED: hub_pb2.CASE_STATUS_STOPS_ANSWERED,
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
}

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
    )
