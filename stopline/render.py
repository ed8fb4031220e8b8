"""What operators read in the terminal: tables of cases and stops, times in Asia/Shanghai."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.table import Table

from activities.convert import time_of
from stopline.domain import Amount
from stopline.money import format_amount
from stopline.v1 import common_pb2, crossborder_pb2, hub_pb2, regulator_pb2

OPERATOR_TZ = ZoneInfo("Asia/Shanghai")

STATE_LABEL = {
    hub_pb2.STOP_STATE_ASKED: "asked, not answered yet",
    hub_pb2.STOP_STATE_HELD: "held",
    hub_pb2.STOP_STATE_PARTIALLY_HELD: "partly held",
    hub_pb2.STOP_STATE_REFUSED: "refused",
    hub_pb2.STOP_STATE_ANSWER_REJECTED: "answer rejected",
    hub_pb2.STOP_STATE_FAILED: "failed",
}
CASE_LABEL = {
    hub_pb2.CASE_STATUS_STOPPING: "chasing",
    hub_pb2.CASE_STATUS_STOPS_ANSWERED: "chase done",
    hub_pb2.CASE_STATUS_CONCLUDED: "concluded, returning",
    hub_pb2.CASE_STATUS_CLOSED: "closed",
}
FLOW_LABEL = {
    hub_pb2.FLOW_KIND_ONWARD: "moved on to",
    hub_pb2.FLOW_KIND_CASH: "withdrawn as cash (lost)",
    hub_pb2.FLOW_KIND_ABROAD: "sent abroad to",
    hub_pb2.FLOW_KIND_OFF_PLATFORM: "left the platform to",
    hub_pb2.FLOW_KIND_BEYOND_DEPTH: "beyond the chase's depth, to",
    hub_pb2.FLOW_KIND_NOT_TRACED: "not traced",
}


def account_name(ref: common_pb2.AccountRef) -> str:
    return f"{ref.institution}/{ref.account_number}"


def money_summary(case: hub_pb2.CaseView) -> str:
    """Where every fen of the case is: the four add up to what was reported."""
    released = f"{money(case.total_released)} released, " if case.total_released.minor_units else ""
    returned = f"{money(case.total_returned)} returned to victims, " if case.total_returned.minor_units else ""
    return (
        f"{money(case.total_held)} held, {returned}{released}{money(case.total_lost)} lost as cash, "
        f"{money(case.total_abroad)} abroad, {money(case.total_at_large)} at large "
        f"(of {money(case.total_reported)} reported)"
    )


def flow_line(flow: hub_pb2.MoneyFlow) -> str:
    label = FLOW_LABEL.get(flow.kind, "?")
    if flow.HasField("to_account") and flow.to_account.account_number:
        label += f" {account_name(flow.to_account)}"
    else:
        label = label.removesuffix(" to").removesuffix(",")  # a destination the bank did not name
    text = f"{account_name(flow.from_account)}: {money(flow.amount)} {label}"
    if flow.HasField("abroad"):
        text += f" to {flow.abroad.bic} {flow.abroad.account} (ref {flow.abroad.payment_reference})"
    if flow.note:
        text += f" ({flow.note})"
    return text


def money(m: common_pb2.Money) -> str:
    return format_amount(Amount(m.minor_units, m.currency)) if m.currency else "-"


def local_time(ts) -> str:
    when = time_of(ts)
    return when.astimezone(OPERATOR_TZ).strftime("%Y-%m-%d %H:%M") if when else "-"


def stop_line(stop: hub_pb2.AccountStop) -> str:
    account = f"hop {stop.depth} {account_name(stop.account)}"
    label = STATE_LABEL.get(stop.state, "?")
    if stop.state in (hub_pb2.STOP_STATE_HELD, hub_pb2.STOP_STATE_PARTIALLY_HELD):
        text = f"{account}: {label} {money(stop.held)} of {money(stop.requested)}"
    else:
        text = f"{account}: {label}"
    if stop.reason:
        text += f" ({stop.reason})"
    if stop.state == hub_pb2.STOP_STATE_ASKED and stop.last_error:
        text += f" [attempt {stop.attempts}: {stop.last_error}]"
    return text


def case_table(case: hub_pb2.CaseView) -> Table:
    table = Table(
        title=(
            f"Case {case.case_id} ({CASE_LABEL.get(case.status, '?')}): "
            f"{money(case.total_held)} held of {money(case.total_reported)} reported"
        ),
        caption=f"workflow {case.workflow_id}; times Asia/Shanghai",
    )
    for column in ("hop", "institution", "account", "asked for", "state", "held", "hold", "why"):
        table.add_column(column, justify="right" if column in ("hop", "asked for", "held") else "left")
    for stop in case.stops:
        why = stop.reason
        if stop.state == hub_pb2.STOP_STATE_ASKED and stop.last_error:
            why = f"attempt {stop.attempts}: {stop.last_error}"
        table.add_row(
            str(stop.depth),
            stop.account.institution,
            stop.account.account_number,
            money(stop.requested),
            STATE_LABEL.get(stop.state, "?"),
            money(stop.held),
            hold_line(stop),
            why,
        )
    return table


HOLD_LABEL = {
    hub_pb2.HOLD_STATE_HELD: "stopped until",
    hub_pb2.HOLD_STATE_EXTENDED: "stopped (2nd) until",
    hub_pb2.HOLD_STATE_FREEZING: "freezing",
    hub_pb2.HOLD_STATE_FROZEN: "frozen until",
    hub_pb2.HOLD_STATE_RELEASING: "releasing",
    hub_pb2.HOLD_STATE_RELEASED: "released",
    hub_pb2.HOLD_STATE_LAPSED: "lapsed",
}


def hold_line(stop: hub_pb2.AccountStop) -> str:
    """Where the held money stands: "frozen until 2027-05-28 09:30", "decide by ..." when due."""
    if stop.hold_state == hub_pb2.HOLD_STATE_UNSPECIFIED:
        return local_time(stop.hold_expires_at) if stop.HasField("hold_expires_at") else "-"
    label = HOLD_LABEL.get(stop.hold_state, "?")
    if label.endswith("until"):
        label += f" {local_time(stop.hold_expires_at)}"
    if stop.HasField("freeze_decision_due_at"):
        label += f"; decide by {local_time(stop.freeze_decision_due_at)}"
    return label


def hops_table(case: hub_pb2.CaseView) -> Table:
    """A large case at a glance: per hop, how many accounts, how much asked for and held."""
    table = Table(
        title=(
            f"Case {case.case_id} ({CASE_LABEL.get(case.status, '?')}): {len(case.stops)} accounts, "
            f"{money(case.total_held)} held of {money(case.total_reported)} reported"
        ),
        caption=f"workflow {case.workflow_id}; `stopline case {case.case_id}` lists every account",
    )
    for column in ("hop", "accounts", "asked for", "held", "refused or failed"):
        table.add_column(column, justify="right")
    currency = case.total_reported.currency
    for depth in sorted({s.depth for s in case.stops}):
        stops = [s for s in case.stops if s.depth == depth]
        asked = sum(s.requested.minor_units for s in stops)
        held = sum(s.held.minor_units for s in stops)
        bad = sum(1 for s in stops if s.state in (hub_pb2.STOP_STATE_REFUSED, hub_pb2.STOP_STATE_FAILED,
                                                  hub_pb2.STOP_STATE_ANSWER_REJECTED))  # fmt: skip
        table.add_row(str(depth), str(len(stops)), money(common_pb2.Money(minor_units=asked, currency=currency)),
                      money(common_pb2.Money(minor_units=held, currency=currency)), str(bad))  # fmt: skip
    return table


def cases_table(cases: list[hub_pb2.CaseSummary]) -> Table:
    table = Table(title=f"{len(cases)} case(s), newest first", caption="times Asia/Shanghai")
    for column in ("case", "status", "reported", "started", "workflow"):
        table.add_column(column, justify="right" if column == "reported" else "left")
    for c in cases:
        table.add_row(c.case_id, CASE_LABEL.get(c.status, "?"), money(c.total_reported), local_time(c.started_at), c.workflow_id)
    return table


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).replace("_", " ").lower() if value in enum.values() else "?"


def case_extras(case: hub_pb2.CaseView) -> list[str]:
    """Everything around the money: linked cases, numbers, escalation, returns, breaches."""
    lines: list[str] = []
    if case.linked_cases:
        victims = len(case.victims)
        lines.append(f"Linked cases (one chase, {victims} victims share what is held):")
        for c in case.linked_cases:
            lines.append(f"  case {c.case_id} from {c.reporting_unit}, {money(c.total_reported)}: shares {c.shared}")
    if case.numbers:
        lines.append("Suspect numbers:")
        for n in case.numbers:
            state = _name(hub_pb2.NumberState, n.state, "NUMBER_STATE_")
            where = f" at {n.carrier}" if n.carrier else ""
            told = ", regulator told" if n.regulator_notified else ""
            why = f" ({n.unblock_reason})" if n.unblock_reason else (f" ({n.detail})" if n.detail and state != "blocked" else "")
            lines.append(f"  {n.phone_number}: {state}{where}{told}{why}")
    if case.HasField("escalation"):
        e = case.escalation
        level = _name(hub_pb2.EscalationLevel, e.level, "ESCALATION_LEVEL_")
        if e.acknowledged:
            lines.append(f"Escalated to {e.directed_by} ({level}): acknowledged by {e.acknowledged_by_officer} at {local_time(e.acknowledged_at)}")
        else:
            lines.append(f"Escalated to {e.directed_by} ({level}): acknowledgement due by {local_time(e.acknowledge_by)}")
    if case.returns:
        lines.append(f"Returns to victims ({money(case.total_returned)} returned so far):")
        for r in case.returns:
            state = _name(hub_pb2.ReturnState, r.state, "RETURN_STATE_")
            when = f", notice ends {local_time(r.notice_ends_at)}" if r.state == hub_pb2.RETURN_STATE_NOTICE else (
                f", due by {local_time(r.due_by)}" if r.HasField("due_by") and r.state != hub_pb2.RETURN_STATE_RETURNED else "")
            lines.append(f"  {money(r.amount)} from {account_name(r.account)} to {account_name(r.victim_account)} "
                         f"({r.rule}): {state}{when}{f' - {r.detail}' if r.detail else ''}")
    lines += recovery_lines(case)
    if case.breaches:
        lines.append("Institutions reported to their regulator for a missed answer deadline:")
        for b in case.breaches:
            what = _name(regulator_pb2.RequestType, b.request_type, "REQUEST_TYPE_")
            lines.append(f"  {b.institution}: {what} due {local_time(b.answer_due_at)}, reported to {b.regulator} ({b.reference})")
    return lines


def recovery_lines(case: hub_pb2.CaseView) -> list[str]:
    """Money that left the country: each payment's recall, channel by channel, in its own
    currency; a figure in another currency only as an estimate with its rate and date."""
    if not case.recoveries:
        return []
    totals = [f"{label} {', '.join(money(m) for m in amounts)}" for label, amounts in (
        ("returned", case.abroad_returned), ("held abroad", case.abroad_held), ("lost", case.abroad_lost)) if amounts]  # fmt: skip
    lines = [f"Recovery from abroad{': ' + '; '.join(totals) if totals else ''}:"]
    for r in case.recoveries:
        state = _name(crossborder_pb2.RecoveryState, r.state, "RECOVERY_STATE_")
        estimate = ""
        if r.HasField("estimate"):
            estimate = f" (about {money(r.estimate.amount)}: an estimate at {r.estimate.rate} of {r.estimate.rate_date})"
        lines.append(f"  {money(r.amount)}{estimate} from {account_name(r.from_account)} to {r.destination.bic} "
                     f"{r.destination.account} ({r.destination.payment_reference}): {state}")  # fmt: skip
        lines.append(f"    returned {money(r.returned)}, held abroad {money(r.held_abroad)}, "
                     f"outstanding {money(r.outstanding)}, lost {money(r.lost)}; 72-hour window ends {local_time(r.window_ends_at)}")  # fmt: skip
        for place in r.trail:
            lines.append(f"    moved on to {place.bic} {place.account}")
        if not r.channels and r.events:  # not asked yet: why (e.g. no recall channel in the registry)
            lines.append(f"    {r.events[-1].what}")
        for c in r.channels:
            cstate = _name(crossborder_pb2.ChannelState, c.state, "CHANNEL_STATE_")
            ref = f" ref {c.reference}" if c.reference else ""
            extra = f", {c.reminders} reminder(s)" if c.reminders else ""
            detail = f" - {c.detail}" if c.detail else ""
            lines.append(f"    {c.institution}: {cstate}{ref}{extra}{detail}")
        if r.escalated_to:
            lines.append(f"    escalated to {r.escalated_to}")
        if r.HasField("next_deadline"):
            lines.append(f"    next: {r.next_deadline_what} by {local_time(r.next_deadline)}")
    return lines
