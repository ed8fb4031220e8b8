"""CaseWorkflow: one per reported case. Asks every receiving institution to stop payment on the
defrauded amount, all at once, then follows the money: each account's institution is asked where
the money that was not held went, and every onward transfer is stopped at the next institution,
hop after hop, concurrently, until the money is held, withdrawn, sent abroad or out of reach.
Operators query the per-account picture and the money-flow graph as it grows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        ACKNOWLEDGE_ESCALATION_UPDATE,
        BREACH_REPORTED_SIGNAL,
        CASE_WORKFLOW,
        CONCLUDE_CASE_UPDATE,
        CROSS_BORDER_WORKFLOW,
        ERR_ANSWER_REJECTED,
        ERR_DECISION_INVALID,
        ERR_DECISION_NOT_APPLICABLE,
        ERR_DECISION_NOT_PERMITTED,
        ERR_REPORT_CONFLICT,
        ERR_REQUEST_REJECTED,
        HOLD_CHANGED_SIGNAL,
        HOLD_WORKFLOW,
        LINK_CASE_UPDATE,
        NUMBER_CHANGED_SIGNAL,
        NUMBER_WORKFLOW,
        PUBLIC_NOTICE,
        RECORD_DECISION,
        RECOVERY_CHANGED_SIGNAL,
        RECOVERY_WINDOW,
        REQUEST_ACCOUNT_QUERY,
        REQUEST_STOP_PAYMENT,
        RETURN_FUNDS_SIGNAL,
        SA_STATUS,
        Account,
        AccountQueryInput,
        AccountQueryResult,
        AccountStop,
        Amount,
        BreachView,
        CaseInput,
        CaseStatus,
        CaseView,
        ConclusionInput,
        DecisionRecord,
        EscalationAckInput,
        EscalationLevel,
        EscalationPolicy,
        EscalationView,
        FlowKind,
        HoldEvent,
        HoldInput,
        HoldState,
        HoldView,
        LinkCaseInput,
        LinkedCaseView,
        MoneyFlow,
        NumberInput,
        NumberView,
        RecoveryInput,
        RecoveryState,
        RecoveryView,
        RequestType,
        ReturnOrders,
        ReturnShare,
        ReturnState,
        ReturnView,
        StopOutcome,
        StopPaymentInput,
        StopPaymentResult,
        StopState,
        Victim,
        hold_workflow_id,
        number_workflow_id,
        query_step_id,
        recovery_workflow_id,
        stop_step_id,
        stop_targets,
    )
    from workflows.calls import CALL_HEARTBEAT_TIMEOUT, CALL_TIMEOUT
    from workflows.flow import follow, totals
    from workflows.returns import FrozenPool, plan_returns
    from workflows.supervision import answered_within

MAX_CALLS_IN_FLIGHT = 64

# Retry until the institution answers: a stop that arrives late still saves money, and the
# idempotency key means a retry never holds twice. Backoff is short at first (outages are
# usually brief and the money moves in minutes) and capped so a returning bank is noticed fast.
STOP_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=0,
    non_retryable_error_types=[ERR_ANSWER_REJECTED, ERR_REQUEST_REJECTED],
)

_OUTCOME_STATE = {
    StopOutcome.HELD: StopState.HELD,
    StopOutcome.PARTIALLY_HELD: StopState.PARTIALLY_HELD,
    StopOutcome.REFUSED: StopState.REFUSED,
}


@dataclass
class _Reached:
    """An account the chase reached: its stop as operators see it, and what the chase needs."""

    stop: AccountStop
    arrived_at: datetime  # when the first disputed money reached it (transfers since then count)
    last_arrival_at: datetime
    holder_name: str = ""
    asked: bool = False  # the stop-payment order is out: its amount can no longer grow


# Recorded in new histories only: cases started before answer deadlines, numbers, linking and
# escalation existed replay as they ran.
_PATCH_WHOLE_CASE = "whole-case-2026-11"
# Recorded in new histories only: money found abroad starts a cross-border recovery.
_PATCH_CROSS_BORDER = "cross-border-2026-11"
# Recorded in new histories only: the chase's stops and queries are tried first as local activities,
# and a hold's workflow is started without holding up the chase.
_PATCH_LOCAL_FIRST = "local-first-2026-11"

# The chase's first calls are tried first as local activities: one runs in the worker that runs
# the case, inside the case's workflow task, so the next step follows in the same task, without a
# trip through Temporal's matching for the activity and another for its result (docs/benchmarks.md).
# One try of at most LOCAL_TRY_TIMEOUT; a try that fails in a way a retry can mend, or runs out of
# time, becomes a regular activity (durable, retried with STOP_RETRY, visible as pending,
# heartbeating), told the call was made once already. The bank sees the same idempotency key
# either way, so it applies the request once however many tries.
# Only the first LOCAL_FIRST_CALLS of a case: while local activities run, the case's workflow task
# stays open and nobody can read the case, so a large chase goes on as regular activities after
# its first wave (and a slow bank costs readers at most LOCAL_TRY_TIMEOUT).
LOCAL_TRY = RetryPolicy(maximum_attempts=1)
LOCAL_TRY_TIMEOUT = timedelta(seconds=3)
LOCAL_FIRST_CALLS = 20

# Decisions a case takes (not an institution): recorded in the audit log.
RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))

# A return is completed within 3 working days: a week covers any weekend (holidays aside).
RETURN_MARGIN = timedelta(days=7)

# States in which a hold's money is not settled enough to conclude the case.
_UNSETTLED = (HoldState.HELD, HoldState.EXTENDED, HoldState.FREEZING, HoldState.RELEASING, HoldState.RETURNING)


def _by_currency(amounts) -> list[Amount]:
    """Sums per currency, in the order the currencies first appear, zeros left out."""
    sums: dict[str, int] = {}
    for a in amounts:
        sums[a.currency] = sums.get(a.currency, 0) + a.minor_units
    return [Amount(m, c) for c, m in sums.items() if m]


def _transfer_key(t) -> tuple:
    """One victim transfer, whichever case reported it. A payment sent abroad is known by its
    reference (two units may write its time differently)."""
    if t.to_account is None and t.abroad is not None:
        return (t.from_account, t.abroad.bic, t.abroad.payment_reference)
    return (t.from_account, t.to_account, t.amount, t.transferred_at)


@workflow.defn(name=CASE_WORKFLOW)
class CaseWorkflow:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._case = case
        self._reached: dict[Account, _Reached] = {}  # in the order the chase reached them
        self._flows: list[MoneyFlow] = []
        # One task per account reached, until its money is accounted for; kept so that a bug
        # in one fails the workflow task loudly instead of leaving the case waiting for ever.
        self._tasks: list[asyncio.Task] = []
        # One task per hold workflow (one per account where money is held); the case stays
        # open while any of them still watches a deadline or returns money.
        self._holds: list[asyncio.Task] = []
        # At most this many calls to institutions in flight for one case: a thousand-account
        # chase goes out in waves a worker digests between operators' reads, and no bank gets
        # a thousand requests from one case at once.
        self._calls = asyncio.Semaphore(MAX_CALLS_IN_FLIGHT)
        self._status = CaseStatus.STOPPING
        # The victims of this case and of the cases linked to it, in the order reported.
        self._victims: dict[Account, Victim] = {}
        self._transfers: set[tuple] = set()  # every victim transfer counted, across linked cases
        self._linked: list[LinkedCaseView] = []
        self._numbers: dict[str, NumberView] = {}
        self._escalation: EscalationView | None = None
        self._concluded: ConclusionInput | None = None
        self._returns: dict[Account, list[ReturnView]] = {}
        self._breaches: list[BreachView] = []
        self._side: list[asyncio.Task] = []  # numbers being started, the escalation's clock
        self._whole_case = False  # set in run: this history has the patch
        self._cross_border = False  # set in run: payments abroad are recalled
        self._local_first = False  # set in run: the chase's calls are tried first as local activities
        self._local_calls = 0  # calls tried as local activities so far
        # One task per cross-border recovery (one per payment abroad); the case stays open while
        # any of them still works on getting money back.
        self._recoveries: list[asyncio.Task] = []
        self._recovery_views: dict[str, RecoveryView] = {}
        self._recalled: set[tuple[str, str]] = set()  # (BIC, payment reference) of each payment recalled

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._whole_case = workflow.patched(_PATCH_WHOLE_CASE)
        self._cross_border = self._whole_case and workflow.patched(_PATCH_CROSS_BORDER)
        self._local_first = self._cross_border and workflow.patched(_PATCH_LOCAL_FIRST)
        targets = stop_targets(case)
        workflow.logger.info(
            "case opened: asking %d institutions to stop payment, then following the money",
            len(targets),
            extra={"case_id": case.case_id},
        )
        self._add_victims(case)
        self._chase_report(case)
        if self._whole_case:
            self._block_numbers(case)
            self._maybe_escalate()
        while True:
            while self._tasks:  # tracing an account can reach new ones: wait for those too
                tasks, self._tasks = self._tasks, []
                await asyncio.gather(*tasks)
            if self._concluded is None:
                self._set_status(CaseStatus.STOPS_ANSWERED)
            if not self._whole_case:
                # The chase is done; the holds' deadlines (freeze or lapse) run on in their
                # workflows. One hold's failure must not end the case and its siblings.
                await asyncio.gather(*self._holds, return_exceptions=True)
                return self.status()
            # A linked case can join the chase until every hold has ended.
            await workflow.wait_condition(
                lambda: bool(self._tasks) or all(t.done() for t in self._holds + self._recoveries)
            )
            if not self._tasks:
                break
            if self._concluded is None:
                self._set_status(CaseStatus.STOPPING)
        # Numbers being started, breach reports, the escalation's clock: done before the case
        # closes (an escalation is acknowledged or has run to the province), and so is every
        # update an officer sent meanwhile.
        while self._side:
            side, self._side = self._side, []
            await asyncio.gather(*side)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._set_status(CaseStatus.CLOSED)
        return self.status()

    @workflow.signal(name=HOLD_CHANGED_SIGNAL)
    def hold_changed(self, view: HoldView) -> None:
        reached = self._reached.get(view.account)
        if reached is None:
            return  # not one of ours: ignore rather than fail the case
        stop = reached.stop
        stop.hold_state = view.state
        stop.stops_used = view.stops_used
        stop.freeze_decision_due_at = view.freeze_decision_due_at
        stop.hold_events.extend(view.events)  # each signal carries the events since the last
        stop.hold_id = view.hold_id
        stop.hold_expires_at = view.expires_at
        # What the stop held stays split between still held, gone back to the account and
        # returned to victims.
        zero = Amount.zero(view.held.currency)
        held_by_stop = (stop.held or zero) + (stop.released or zero) + (stop.returned or zero)
        stop.returned = view.returned if view.returned is not None else stop.returned
        returned = stop.returned or zero
        stop.held = zero if view.state.ended else view.held
        stop.released = Amount(held_by_stop.minor_units - stop.held.minor_units - returned.minor_units, view.held.currency)
        if view.returns:
            self._returns[view.account] = list(view.returns)

    @workflow.signal(name=RECOVERY_CHANGED_SIGNAL)
    def recovery_changed(self, view: RecoveryView) -> None:
        if view.recovery_id in self._recovery_views:
            self._recovery_views[view.recovery_id] = view

    @workflow.signal(name=NUMBER_CHANGED_SIGNAL)
    def number_changed(self, view: NumberView) -> None:
        if view.phone_number in self._numbers:
            self._numbers[view.phone_number] = view

    @workflow.signal(name=BREACH_REPORTED_SIGNAL)
    def breach_reported(self, view: BreachView) -> None:
        self._breaches.append(view)

    @workflow.query
    def status(self) -> CaseView:
        currency = self._case.currency
        total_held = total_released = total_returned = Amount.zero(currency)
        for reached in self._reached.values():
            if reached.stop.held is not None:
                total_held = total_held + reached.stop.held
            if reached.stop.released is not None:
                total_released = total_released + reached.stop.released
            if reached.stop.returned is not None:
                total_returned = total_returned + reached.stop.returned
        reported = self._reported()
        lost, abroad, at_large = totals(reported, total_held + total_returned, self._flows, total_released)
        info = workflow.info()
        return CaseView(
            case_id=self._case.case_id,
            workflow_id=info.workflow_id,
            status=self._status,
            reporting_unit=self._case.reporting_unit,
            reported_at=self._case.reported_at,
            total_reported=reported,
            total_held=total_held,
            stops=[r.stop for r in self._reached.values()],
            suspect_phone_numbers=list(self._case.suspect_phone_numbers),
            summary=self._case.summary,
            flows=list(self._flows),
            total_lost=lost,
            total_abroad=abroad,
            total_at_large=at_large,
            total_released=total_released,
            total_returned=total_returned,
            victims=list(self._victims.values()),
            linked_cases=list(self._linked),
            numbers=list(self._numbers.values()),
            escalation=self._escalation,
            returns=[r for views in self._returns.values() for r in views],
            breaches=list(self._breaches),
            recoveries=list(self._recovery_views.values()),
            abroad_returned=_by_currency(r.returned for r in self._recovery_views.values()),
            abroad_held=_by_currency(r.held_abroad for r in self._recovery_views.values()),
            abroad_lost=_by_currency(r.lost for r in self._recovery_views.values()),
        )

    def _reported(self) -> Amount:
        """What this case and the cases linked to it reported lost."""
        return Amount(sum(v.lost.minor_units for v in self._victims.values()), self._case.currency)

    def _set_status(self, status: CaseStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])

    async def _record(self, institution: str, decision: str, details: dict) -> None:
        """Into the audit log: a decision this case took (an escalation, a conclusion)."""
        await workflow.execute_activity(
            RECORD_DECISION, DecisionRecord(self._case.case_id, institution, decision, details),
            start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
        )  # fmt: skip

    # --- linked cases ------------------------------------------------------------------------

    def _add_victims(self, case: CaseInput) -> None:
        for t in case.transfers:
            self._transfers.add(_transfer_key(t))
            victim = self._victims.get(t.from_account)
            lost = t.amount if victim is None else victim.lost + t.amount
            self._victims[t.from_account] = Victim(t.from_account, lost, victim.case_id if victim else case.case_id)

    def _chase_report(self, case: CaseInput) -> None:
        """Stop the money at every account the report's victims paid, and follow it from there."""
        first_arrival: dict[Account, datetime] = {}
        victims: dict[Account, list[Account]] = {}
        for t in case.transfers:
            if t.to_account is None:  # the victim's own bank sent it abroad: recalled, not stopped
                if t.abroad is not None:
                    flow = MoneyFlow(t.from_account, t.amount, FlowKind.ABROAD, moved_at=t.transferred_at, abroad=t.abroad)
                    self._flows.append(flow)
                    self._recover(flow)
                continue
            first_arrival[t.to_account] = min(first_arrival.get(t.to_account, t.transferred_at), t.transferred_at)
            paid = victims.setdefault(t.to_account, [])
            if t.from_account not in paid:
                paid.append(t.from_account)
        for target in stop_targets(case):
            self._reach(target.account, target.amount, first_arrival[target.account], 1,
                        last_arrival_at=target.last_transfer_at, holder_name=target.holder_name,
                        victims=victims[target.account], case_id=case.case_id)  # fmt: skip

    @workflow.update(name=LINK_CASE_UPDATE)
    async def link_case(self, link: LinkCaseInput) -> bool:
        """A new case shares an account, number or device with this one: its victims' money
        joins this chase (one chase for all), and they share in what is held. False when it had
        joined before (a repeated report): nothing is added twice."""
        case = link.case
        if case.case_id == self._case.case_id or any(c.case_id == case.case_id for c in self._linked):
            return False
        # The same transfer reported again under another case id (a second unit took the same
        # victim's report) is counted and chased once.
        fresh = [t for t in case.transfers if _transfer_key(t) not in self._transfers]
        shared = link.shared
        if len(fresh) < len(case.transfers):
            shared += f"; {len(case.transfers) - len(fresh)} of its transfers were reported already"
        self._linked.append(
            LinkedCaseView(case.case_id, case.reporting_unit, case.total, shared, workflow.now(), link.fingerprint)
        )
        workflow.logger.info("case %s linked (%s)", case.case_id, shared, extra={"case_id": self._case.case_id})
        if fresh:
            fresh_case = replace(case, transfers=fresh)
            self._add_victims(fresh_case)
            self._chase_report(fresh_case)
        self._block_numbers(case)
        self._maybe_escalate()
        return True

    @link_case.validator
    def _check_link(self, link: LinkCaseInput) -> None:
        earlier = next((c for c in self._linked if c.case_id == link.case.case_id), None)
        if earlier is not None and link.fingerprint and earlier.fingerprint and earlier.fingerprint != link.fingerprint:
            raise ApplicationError(f"case {link.case.case_id} was linked with other content", type=ERR_REPORT_CONFLICT)
        if earlier is not None:
            return  # a repeat: answered False by the handler, whatever the case's state now
        if self._concluded is not None or self._status is CaseStatus.CLOSED:
            raise ApplicationError(f"case {self._case.case_id} is {self._status.value}: it takes no new victims",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if link.case.currency != self._case.currency:
            raise ApplicationError(f"case {link.case.case_id} is in {link.case.currency}, "
                                   f"case {self._case.case_id} in {self._case.currency}", type=ERR_DECISION_INVALID)  # fmt: skip

    # --- numbers -----------------------------------------------------------------------------

    def _block_numbers(self, case: CaseInput) -> None:
        """One NumberWorkflow per suspect number (once, however many linked cases name it)."""
        for number in case.suspect_phone_numbers:
            if number in self._numbers:
                continue
            self._numbers[number] = NumberView(phone_number=number)
            self._side.append(asyncio.create_task(self._start_number(case, number)))

    async def _start_number(self, case: CaseInput, number: str) -> None:
        info = workflow.info()
        await workflow.start_child_workflow(
            NUMBER_WORKFLOW,
            NumberInput(
                case_id=case.case_id, case_workflow_id=info.workflow_id, requested_by=case.reporting_unit,
                phone_number=number, reason=f"suspect number in fraud case {case.case_id}", deadlines=self._case.deadlines,
            ),
            id=number_workflow_id(info.workflow_id, number),
            # The block outlives the case; its workflow can still lift it afterwards.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )  # fmt: skip

    # --- escalation ----------------------------------------------------------------------------

    def _maybe_escalate(self) -> None:
        policy = self._case.escalation
        if policy is None or self._escalation is not None:
            return
        reported = self._reported()
        if reported.currency != policy.threshold.currency or reported.minor_units < policy.threshold.minor_units:
            return
        now = workflow.now()
        self._escalation = EscalationView(
            EscalationLevel.CITY, policy.city_unit, now, now + timedelta(seconds=policy.acknowledge_seconds)
        )
        self._side.append(asyncio.create_task(self._escalate(policy)))

    async def _escalate(self, policy: EscalationPolicy) -> None:
        """Directed by a city-level leader, who must acknowledge in time; else the province."""
        view = self._escalation
        assert view is not None
        wait = timedelta(seconds=policy.acknowledge_seconds)
        for level, unit in ((EscalationLevel.CITY, policy.city_unit), (EscalationLevel.PROVINCE, policy.province_unit)):
            now = workflow.now()
            view.level, view.directed_by, view.escalated_at, view.acknowledge_by = level, unit, now, now + wait
            total = self._reported()
            what = (f"{total.minor_units / 100:,.2f} {total.currency} reported: escalated to {unit} ({level.value} level); "
                    f"acknowledgement due by {view.acknowledge_by.isoformat()}")  # fmt: skip
            view.events.append(HoldEvent(now, what))
            await self._record(unit, "case_escalated", {"level": level.value, "directed_by": unit,
                                                        "reported_minor": total.minor_units, "currency": total.currency,
                                                        "acknowledge_by": view.acknowledge_by.isoformat()})  # fmt: skip
            try:
                await workflow.wait_condition(lambda: view.acknowledged, timeout=wait)
                return
            except TimeoutError:
                view.events.append(HoldEvent(workflow.now(), f"{unit} did not acknowledge by {view.acknowledge_by.isoformat()}"))
        await self._record(policy.province_unit, "escalation_unacknowledged", {"directed_by": policy.province_unit})

    @workflow.update(name=ACKNOWLEDGE_ESCALATION_UPDATE)
    async def acknowledge_escalation(self, ack: EscalationAckInput) -> EscalationView:
        view = self._escalation
        assert view is not None
        view.acknowledged, view.acknowledged_by_officer, view.acknowledged_at = True, ack.officer, workflow.now()
        view.events.append(HoldEvent(workflow.now(), f"acknowledged by {ack.officer} of {ack.unit}" + (f": {ack.note}" if ack.note else "")))
        await self._record(ack.unit, "escalation_acknowledged", {"level": view.level.value, "officer": ack.officer, "note": ack.note})
        return view

    @acknowledge_escalation.validator
    def _check_acknowledgement(self, ack: EscalationAckInput) -> None:
        view = self._escalation
        if view is None:
            raise ApplicationError(f"case {self._case.case_id} is not escalated", type=ERR_DECISION_NOT_APPLICABLE)
        if view.acknowledged:
            raise ApplicationError(f"already acknowledged by {view.acknowledged_by_officer}", type=ERR_DECISION_NOT_APPLICABLE)
        if ack.unit != view.directed_by:
            raise ApplicationError(f"the case is escalated to {view.directed_by}, not {ack.unit}", type=ERR_DECISION_NOT_PERMITTED)
        if not ack.officer.strip():
            raise ApplicationError("officer: required", type=ERR_DECISION_INVALID)

    # --- conclusion and return of funds -------------------------------------------------------

    @workflow.update(name=CONCLUDE_CASE_UPDATE)
    async def conclude(self, conclusion: ConclusionInput) -> CaseView:
        """Frozen money goes back to the victims: straight to the one victim it traces to,
        otherwise pro rata (workflows/returns.py) after the public notice. Each hold carries out
        its share with its institution. Concluding again orders what is still frozen after a
        return failed or was refused, to the victims by what they have yet to get back."""
        # What each victim has yet to get back; a victim repaid in full takes no further part.
        owed = {v.account: v.lost.minor_units for v in self._victims.values()}
        for views in self._returns.values():
            for view in views:
                if view.state is ReturnState.RETURNED:
                    owed[view.victim_account] -= view.amount.minor_units
        currency = self._case.currency
        losses = {victim: Amount(left, currency) for victim, left in owed.items() if left > 0}
        pools = [
            FrozenPool(r.stop.account, r.stop.held, tuple(v for v in r.stop.victims if v in losses))
            for r in self._reached.values()
            if r.stop.hold_state is HoldState.FROZEN and r.stop.held is not None and r.stop.held.minor_units > 0
            and any(v in losses for v in r.stop.victims)
        ]  # fmt: skip
        try:
            plan = plan_returns(pools, losses)
        except ValueError as e:  # a bug in the case's own bookkeeping: refuse, never loop
            raise ApplicationError(f"returns cannot be allocated: {e}", type=ERR_DECISION_NOT_APPLICABLE) from None
        allocations = plan.allocations
        again = self._concluded is not None
        if again and not allocations:
            raise ApplicationError("nothing frozen is left to return to a victim still owed", type=ERR_DECISION_NOT_APPLICABLE)
        self._concluded = conclusion
        self._set_status(CaseStatus.CONCLUDED)
        pro_rata = any(a.rule != "direct" for a in allocations)
        notice_ends_at = workflow.now() + PUBLIC_NOTICE if pro_rata and not again else None
        await self._record(conclusion.decided_by, "returns_ordered_again" if again else "case_concluded", {
            "officer": conclusion.officer, "document_ref": conclusion.document_ref,
            "public_notice_ends_at": notice_ends_at.isoformat() if notice_ends_at else None,
            "left_frozen": {str(a): m.minor_units for a, m in plan.leftover.items()},
            "returns": [{"from": str(a.account), "to": str(a.victim), "amount_minor": a.amount.minor_units,
                         "currency": a.amount.currency, "rule": a.rule} for a in allocations],
        })  # fmt: skip
        shares: dict[Account, list[ReturnShare]] = {}
        for a in allocations:
            shares.setdefault(a.account, []).append(ReturnShare(a.victim, a.amount, a.rule))
        info = workflow.info()
        for account, account_shares in shares.items():
            orders = ReturnOrders(
                shares=account_shares, decided_by=conclusion.decided_by, officer=conclusion.officer,
                document_ref=conclusion.document_ref,
                notice_ends_at=notice_ends_at if any(s.rule != "direct" for s in account_shares) else None,
            )  # fmt: skip
            state = ReturnState.NOTICE if orders.notice_ends_at is not None else ReturnState.ORDERED
            self._returns[account] = [*self._returns.get(account, []), *(
                ReturnView(account, s.victim, s.amount, s.rule, state=state, notice_ends_at=orders.notice_ends_at)
                for s in account_shares
            )]  # fmt: skip
            try:
                await workflow.get_external_workflow_handle(hold_workflow_id(info.workflow_id, account)).signal(
                    RETURN_FUNDS_SIGNAL, orders
                )
            except Exception as e:  # noqa: BLE001 - the hold's workflow is gone: say so, never half-conclude
                for view in self._returns[account][-len(account_shares):]:
                    view.state, view.detail = ReturnState.FAILED, f"the hold's workflow did not take the order: {e}"
        return self.status()

    @conclude.validator
    def _check_conclusion(self, conclusion: ConclusionInput) -> None:
        pending = (ReturnState.NOTICE, ReturnState.ORDERED, ReturnState.ACCEPTED)
        if self._concluded is not None and any(r.state in pending for views in self._returns.values() for r in views):
            raise ApplicationError(f"case {self._case.case_id} was concluded before and its returns are under way",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if self._status is CaseStatus.STOPPING:
            raise ApplicationError("the chase is still running", type=ERR_DECISION_NOT_APPLICABLE)
        if self._status is CaseStatus.CLOSED:
            raise ApplicationError(f"case {self._case.case_id} is closed: nothing is held", type=ERR_DECISION_NOT_APPLICABLE)
        for reached in self._reached.values():
            state = reached.stop.hold_state
            if state in _UNSETTLED:
                raise ApplicationError(f"account {reached.stop.account} is {state.value}: freeze or release it first",
                                       type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if not conclusion.officer.strip():
            raise ApplicationError("officer: required", type=ERR_DECISION_INVALID)
        if not conclusion.document_ref.strip():
            raise ApplicationError("document_ref: the conclusion document is required", type=ERR_DECISION_INVALID)
        # A freeze must outlast its returns: the public notice where one runs, then the
        # institution's 3 working days (at most a week, holidays aside).
        now = workflow.now()
        for reached in self._reached.values():
            stop = reached.stop
            if stop.hold_state is not HoldState.FROZEN or stop.hold_expires_at is None:
                continue
            shared = len(stop.victims) > 1
            needed = now + (PUBLIC_NOTICE if shared else timedelta(0)) + RETURN_MARGIN
            if stop.hold_expires_at < needed:
                raise ApplicationError(
                    f"the freeze on {stop.account} lapses at {stop.hold_expires_at.isoformat()}, before its money can be "
                    f"returned{' after the 30-day public notice' if shared else ''}: renew it first",
                    type=ERR_DECISION_NOT_APPLICABLE,
                )

    # --- the chase ---------------------------------------------------------------------------

    def _reach(self, account: Account, amount: Amount, arrived_at: datetime, depth: int, *,
               last_arrival_at: datetime, holder_name: str = "", source: Account | None = None,
               victims: list[Account] | None = None, case_id: str = "") -> None:  # fmt: skip
        """Disputed money reached `account`. One stop per account per case, ever: money that
        reaches an account whose order is already out is recorded, not asked for again."""
        reached = self._reached.get(account)
        if reached is None:
            stop = AccountStop(account=account, requested=amount, depth=depth, victims=list(victims or []))
            self._reached[account] = _Reached(stop, arrived_at, last_arrival_at, holder_name)
            self._tasks.append(asyncio.create_task(self._trace(self._reached[account])))
            return
        for victim in victims or []:  # their money is here too: they share in what is held
            if victim not in reached.stop.victims:
                reached.stop.victims.append(victim)
        if not reached.asked:  # two transfers into one account in the same step: one order
            reached.stop.requested = reached.stop.requested + amount
            reached.arrived_at = min(reached.arrived_at, arrived_at)
            reached.last_arrival_at = max(reached.last_arrival_at, last_arrival_at)
        else:
            origin = f"case {case_id}" if source is None and case_id else str(source)
            self._flows.append(
                MoneyFlow(account, amount, FlowKind.NOT_TRACED, moved_at=arrived_at,
                          note=f"arrived from {origin} after this account was asked to stop payment")  # fmt: skip
            )

    async def _trace(self, reached: _Reached) -> None:
        """Stop the money at this account, then ask where the rest went and follow it."""
        reached.asked = True
        stop = reached.stop
        await self._stop_payment(reached)
        held = stop.held or Amount.zero(stop.requested.currency)
        if held.minor_units > 0 and stop.hold_expires_at is not None:
            if self._local_first:
                # The hold's workflow starts alongside: the chase goes on to the account query in
                # this workflow task instead of waiting a round trip for the child's start. A
                # start that fails still fails loudly (the run loop gathers _tasks).
                self._tasks.append(asyncio.create_task(self._watch_hold(reached, held)))
            else:
                await self._watch_hold(reached, held)
        if held == stop.requested:
            flows: list[MoneyFlow] = []  # all of it held: nothing left to follow
        else:
            report, problem = await self._query(reached)
            transfers = report.transfers if report is not None else []
            why = problem or (stop.reason if stop.state is not StopState.PARTIALLY_HELD else "")
            flows = follow(stop.account, stop.requested, held, reached.arrived_at, transfers,
                           depth=stop.depth, max_depth=self._case.max_depth, why_not_traced=why)  # fmt: skip
        self._flows.extend(flows)
        for flow in flows:
            if flow.kind is FlowKind.ABROAD and flow.abroad is not None:
                self._recover(flow)
        # Pieces bound for the same next account travel as one stop.
        onward: dict[Account, list[MoneyFlow]] = {}
        for flow in flows:
            if flow.kind is FlowKind.ONWARD and flow.to_account is not None:
                onward.setdefault(flow.to_account, []).append(flow)
        for account, pieces in onward.items():
            amount = Amount(sum(f.amount.minor_units for f in pieces), stop.requested.currency)
            times = [f.moved_at or workflow.now() for f in pieces]
            self._reach(account, amount, min(times), stop.depth + 1, last_arrival_at=max(times), source=stop.account,
                        victims=stop.victims)  # fmt: skip
        stop.traced = True

    def _recover(self, flow: MoneyFlow) -> None:
        """Money left the country: recall it through every channel, in its own workflow."""
        if not self._cross_border or flow.abroad is None:
            return
        destination = flow.abroad
        amount = destination.amount or flow.amount  # the payment as sent abroad, in its own currency
        payment = (destination.bic, destination.payment_reference)
        if payment in self._recalled or amount.minor_units <= 0:
            return  # one recall per payment, however many reports or pieces lead to it
        self._recalled.add(payment)
        policy = self._case.escalation
        recovery_id = recovery_workflow_id(workflow.info().workflow_id, len(self._recovery_views) + 1)
        recovery = RecoveryInput(
            case_id=self._case.case_id, case_workflow_id=workflow.info().workflow_id,
            requested_by=self._case.reporting_unit, from_account=flow.from_account, destination=destination,
            amount=amount, sent_at=flow.moved_at or workflow.now(),
            reason=f"fraud case {self._case.case_id}: {self._case.summary or 'telecom/online fraud'}"[:200],
            province_unit=policy.province_unit if policy is not None else "",
            estimate_rate=next((r for r in self._case.estimate_rates if r.currency == amount.currency
                                and r.to != amount.currency), None),
            give_up_days=self._case.recall_give_up_days,
        )  # fmt: skip
        zero = Amount.zero(amount.currency)
        self._recovery_views[recovery_id] = RecoveryView(
            recovery_id=recovery_id, case_id=self._case.case_id, from_account=flow.from_account, destination=destination,
            amount=amount, sent_at=recovery.sent_at, window_ends_at=recovery.sent_at + RECOVERY_WINDOW,
            state=RecoveryState.ACTIVE, channels=[], trail=[], returned=zero, held_abroad=zero, outstanding=amount,
            lost=zero,
        )  # fmt: skip
        self._recoveries.append(asyncio.create_task(self._start_recovery(recovery, recovery_id)))

    async def _start_recovery(self, recovery: RecoveryInput, recovery_id: str) -> None:
        handle = await workflow.start_child_workflow(CROSS_BORDER_WORKFLOW, recovery, id=recovery_id, result_type=RecoveryView)
        try:
            self._recovery_views[recovery_id] = await handle
        except Exception as e:  # noqa: BLE001 - a recovery's failure must not end the case
            workflow.logger.error("recovery %s failed: %s", recovery_id, e, extra={"case_id": self._case.case_id})

    async def _watch_hold(self, reached: _Reached, held: Amount) -> None:
        """Hand the hold's deadlines to its own workflow."""
        stop = reached.stop
        assert stop.hold_expires_at is not None
        stop.hold_state = HoldState.HELD
        stop.stops_used = 1
        handle = await workflow.start_child_workflow(
            HOLD_WORKFLOW,
            HoldInput(
                case_id=self._case.case_id,
                case_workflow_id=workflow.info().workflow_id,
                requested_by=self._case.reporting_unit,
                account=stop.account,
                held=held,
                hold_id=stop.hold_id,
                expires_at=stop.hold_expires_at,
                transfer_time=reached.last_arrival_at,
                holder_name=reached.holder_name,
                deadlines=self._case.deadlines,
            ),
            id=hold_workflow_id(workflow.info().workflow_id, stop.account),
        )
        self._holds.append(asyncio.ensure_future(handle))

    async def _supervised(self, call, request_type: RequestType, institution: str, key: str):
        """The call, with its answer deadline watched (histories from before it: unwatched)."""
        if not self._whole_case:
            return await call
        return await answered_within(
            call, deadline=self._case.deadlines.of(request_type), case_id=self._case.case_id,
            institution=institution, request_type=request_type, request_key=key, on_breach=self._breaches.append,
            background=self._side,
        )  # fmt: skip

    async def _chase_call(self, activity: str, request, result_type, step: str):
        """One stop-payment or account query of the chase: a first quick try as a local activity
        (LOCAL_TRY_TIMEOUT; the case's first LOCAL_FIRST_CALLS only), then, unless that try's
        failure is final, a regular activity."""
        if self._local_first and self._local_calls < LOCAL_FIRST_CALLS:
            self._local_calls += 1
            try:
                return await workflow.execute_local_activity(
                    activity, request, result_type=result_type, activity_id=f"{step}/local",
                    start_to_close_timeout=LOCAL_TRY_TIMEOUT, retry_policy=LOCAL_TRY,
                )  # fmt: skip
            except FailureError as err:
                # A local activity's failure may come as its cause alone, not in an ActivityError.
                cause = err.cause if isinstance(err, ActivityError) else err
                if isinstance(cause, ApplicationError) and (
                    cause.non_retryable or cause.type in (STOP_RETRY.non_retryable_error_types or ())
                ):
                    # Refused, or an answer that can never count: no retry mends it. Raised as
                    # the regular activity's failure would be, for the callers to read alike.
                    raise ActivityError(
                        f"{activity} failed", scheduled_event_id=0, started_event_id=0, identity="",
                        activity_type=activity, activity_id=f"{step}/local", retry_state=None,
                    ) from cause  # fmt: skip
            request = replace(request, prior_attempts=1)
        return await workflow.execute_activity(
            activity, request, result_type=result_type, activity_id=step,
            start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
        )  # fmt: skip

    async def _query(self, reached: _Reached) -> tuple[AccountQueryResult | None, str]:
        """The institution's verified account report, or why there is none."""
        stop = reached.stop
        step = query_step_id(stop.account)
        request = AccountQueryInput(
            idempotency_key=f"{workflow.info().workflow_id}/{step}/1",
            case_id=self._case.case_id,
            requested_by=self._case.reporting_unit,
            account=stop.account,
            transfers_since=reached.arrived_at,
        )
        try:
            async with self._calls:
                report = await self._supervised(
                    self._chase_call(REQUEST_ACCOUNT_QUERY, request, AccountQueryResult, step),
                    RequestType.ACCOUNT_QUERY, stop.account.institution, request.idempotency_key,
                )  # fmt: skip
        except ActivityError as err:
            cause = err.cause
            return None, f"account query failed: {cause.message if cause is not None else err}"
        if not report.found:
            return None, f"{stop.account.institution} does not know account {stop.account.number}"
        return report, ""

    async def _stop_payment(self, reached: _Reached) -> None:
        stop = reached.stop
        step = stop_step_id(stop.account)
        request = StopPaymentInput(
            # workflow id + step: the same on every retry and every replay, unique per stop.
            idempotency_key=f"{workflow.info().workflow_id}/{step}/1",
            case_id=self._case.case_id,
            requested_by=self._case.reporting_unit,
            account=stop.account,
            amount=stop.requested,
            transfer_time=reached.last_arrival_at,
            holder_name=reached.holder_name,
        )
        try:
            async with self._calls:
                result = await self._supervised(
                    self._chase_call(REQUEST_STOP_PAYMENT, request, StopPaymentResult, step),
                    RequestType.STOP_PAYMENT, stop.account.institution, request.idempotency_key,
                )  # fmt: skip
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == ERR_ANSWER_REJECTED:
                stop.state = StopState.ANSWER_REJECTED
            else:
                stop.state = StopState.FAILED
            stop.reason = cause.message if cause is not None else str(err)
            stop.answered_at = workflow.now()
            if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
                stop.attempts = int(cause.details[0].get("attempts", 0))
            return
        stop.state = _OUTCOME_STATE[result.outcome]
        stop.held = result.held
        stop.reason = result.detail if result.outcome is not StopOutcome.HELD else ""
        if result.outcome is StopOutcome.REFUSED and result.refusal_reason:
            stop.reason = f"{result.refusal_reason}: {result.detail}" if result.detail else result.refusal_reason
        stop.hold_id = result.hold_id
        stop.attempts = result.attempts
        stop.answered_at = result.answered_at or workflow.now()
        stop.hold_expires_at = result.hold_expires_at
