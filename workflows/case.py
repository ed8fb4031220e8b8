"""CaseWorkflow: one per reported case. Asks every receiving institution to stop payment on the
defrauded amount, all at once, then follows the money: each account's institution is asked where
the money that was not held went, and every onward transfer is stopped at the next institution,
hop after hop, concurrently, until the money is held, withdrawn, sent abroad or out of reach.
Operators query the per-account picture and the money-flow graph as it grows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        CASE_WORKFLOW,
        ERR_ANSWER_REJECTED,
        ERR_REQUEST_REJECTED,
        HOLD_CHANGED_SIGNAL,
        HOLD_WORKFLOW,
        REQUEST_ACCOUNT_QUERY,
        REQUEST_STOP_PAYMENT,
        SA_STATUS,
        Account,
        AccountQueryInput,
        AccountQueryResult,
        AccountStop,
        Amount,
        CaseInput,
        CaseStatus,
        CaseView,
        FlowKind,
        HoldInput,
        HoldState,
        HoldView,
        MoneyFlow,
        StopOutcome,
        StopPaymentInput,
        StopPaymentResult,
        StopState,
        hold_workflow_id,
        query_step_id,
        stop_step_id,
        stop_targets,
    )
    from workflows.flow import follow, totals

MAX_CALLS_IN_FLIGHT = 64

# An account query is answered in seconds too.
QUERY_CALL_TIMEOUT = timedelta(seconds=10)

# A bank answers a stop-payment in seconds; a call that takes longer than this is treated as
# lost and retried (the idempotency key makes the retry safe).
STOP_CALL_TIMEOUT = timedelta(seconds=10)

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
        # The hold workflows (one per account where money is held); the case stays open while
        # any of them still watches a deadline.
        self._holds: list[workflow.ChildWorkflowHandle] = []
        # At most this many calls to institutions in flight for one case: a thousand-account
        # chase goes out in waves a worker digests between operators' reads, and no bank gets
        # a thousand requests from one case at once.
        self._calls = asyncio.Semaphore(MAX_CALLS_IN_FLIGHT)
        self._status = CaseStatus.STOPPING

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        targets = stop_targets(case)
        workflow.logger.info(
            "case opened: asking %d institutions to stop payment, then following the money",
            len(targets),
            extra={"case_id": case.case_id},
        )
        first_arrival: dict[Account, datetime] = {}
        for t in case.transfers:
            first_arrival[t.to_account] = min(first_arrival.get(t.to_account, t.transferred_at), t.transferred_at)
        for target in targets:
            self._reach(target.account, target.amount, first_arrival[target.account], 1,
                        last_arrival_at=target.last_transfer_at, holder_name=target.holder_name)  # fmt: skip
        while self._tasks:  # tracing an account can reach new ones: wait for those too
            tasks, self._tasks = self._tasks, []
            await asyncio.gather(*tasks)
        self._set_status(CaseStatus.STOPS_ANSWERED)
        # The chase is done; the holds' deadlines (freeze or lapse) run on in their workflows.
        # One hold's failure (a bug, a terminated child) must not end the case and its siblings.
        await asyncio.gather(*self._holds, return_exceptions=True)
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
        # What the stop held stays split between still held and gone back to the account.
        zero = Amount.zero(view.held.currency)
        held_by_stop = (stop.held or zero) + (stop.released or zero)
        stop.held = zero if view.state.ended else view.held
        stop.released = Amount(held_by_stop.minor_units - stop.held.minor_units, view.held.currency)

    @workflow.query
    def status(self) -> CaseView:
        currency = self._case.currency
        total_held = total_released = Amount.zero(currency)
        for reached in self._reached.values():
            if reached.stop.held is not None:
                total_held = total_held + reached.stop.held
            if reached.stop.released is not None:
                total_released = total_released + reached.stop.released
        lost, abroad, at_large = totals(self._case.total, total_held, self._flows, total_released)
        info = workflow.info()
        return CaseView(
            case_id=self._case.case_id,
            workflow_id=info.workflow_id,
            status=self._status,
            reporting_unit=self._case.reporting_unit,
            reported_at=self._case.reported_at,
            total_reported=self._case.total,
            total_held=total_held,
            stops=[r.stop for r in self._reached.values()],
            suspect_phone_numbers=list(self._case.suspect_phone_numbers),
            summary=self._case.summary,
            flows=list(self._flows),
            total_lost=lost,
            total_abroad=abroad,
            total_at_large=at_large,
            total_released=total_released,
        )

    def _set_status(self, status: CaseStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])

    # --- the chase ---------------------------------------------------------------------------

    def _reach(self, account: Account, amount: Amount, arrived_at: datetime, depth: int, *,
               last_arrival_at: datetime, holder_name: str = "", source: Account | None = None) -> None:  # fmt: skip
        """Disputed money reached `account`. One stop per account per case, ever: money that
        reaches an account whose order is already out is recorded, not asked for again."""
        reached = self._reached.get(account)
        if reached is None:
            stop = AccountStop(account=account, requested=amount, depth=depth)
            self._reached[account] = _Reached(stop, arrived_at, last_arrival_at, holder_name)
            self._tasks.append(asyncio.create_task(self._trace(self._reached[account])))
        elif not reached.asked:  # two transfers into one account in the same step: one order
            reached.stop.requested = reached.stop.requested + amount
            reached.arrived_at = min(reached.arrived_at, arrived_at)
            reached.last_arrival_at = max(reached.last_arrival_at, last_arrival_at)
        else:
            self._flows.append(
                MoneyFlow(account, amount, FlowKind.NOT_TRACED, moved_at=arrived_at,
                          note=f"arrived from {source} after this account was asked to stop payment")  # fmt: skip
            )

    async def _trace(self, reached: _Reached) -> None:
        """Stop the money at this account, then ask where the rest went and follow it."""
        reached.asked = True
        stop = reached.stop
        await self._stop_payment(reached)
        held = stop.held or Amount.zero(stop.requested.currency)
        if held.minor_units > 0 and stop.hold_expires_at is not None:
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
        # Pieces bound for the same next account travel as one stop.
        onward: dict[Account, list[MoneyFlow]] = {}
        for flow in flows:
            if flow.kind is FlowKind.ONWARD and flow.to_account is not None:
                onward.setdefault(flow.to_account, []).append(flow)
        for account, pieces in onward.items():
            amount = Amount(sum(f.amount.minor_units for f in pieces), stop.requested.currency)
            times = [f.moved_at or workflow.now() for f in pieces]
            self._reach(account, amount, min(times), stop.depth + 1, last_arrival_at=max(times), source=stop.account)
        stop.traced = True

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
            ),
            id=hold_workflow_id(workflow.info().workflow_id, stop.account),
        )
        self._holds.append(handle)

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
                report = await workflow.execute_activity(
                    REQUEST_ACCOUNT_QUERY,
                    request,
                    result_type=AccountQueryResult,
                    activity_id=step,
                    start_to_close_timeout=QUERY_CALL_TIMEOUT,
                    retry_policy=STOP_RETRY,
                )
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
                result = await workflow.execute_activity(
                    REQUEST_STOP_PAYMENT,
                    request,
                    result_type=StopPaymentResult,
                    activity_id=step,
                    start_to_close_timeout=STOP_CALL_TIMEOUT,
                    retry_policy=STOP_RETRY,
                )
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
