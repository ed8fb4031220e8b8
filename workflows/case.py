"""CaseWorkflow: one per reported case. Asks every receiving institution to stop payment on the
defrauded amount, all at once, and keeps a per-account picture operators can query."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        CASE_WORKFLOW,
        ERR_ANSWER_REJECTED,
        ERR_REQUEST_REJECTED,
        REQUEST_STOP_PAYMENT,
        SA_STATUS,
        AccountStop,
        Amount,
        CaseInput,
        CaseStatus,
        CaseView,
        StopOutcome,
        StopPaymentInput,
        StopPaymentResult,
        StopState,
        StopTarget,
        stop_step_id,
        stop_targets,
    )

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


@workflow.defn(name=CASE_WORKFLOW)
class CaseWorkflow:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._case = case
        self._targets = stop_targets(case)
        self._stops = {
            t.account: AccountStop(account=t.account, requested=t.amount) for t in self._targets
        }
        self._status = CaseStatus.STOPPING

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        workflow.logger.info(
            "case opened: asking %d institutions to stop payment",
            len(self._targets),
            extra={"case_id": case.case_id},
        )
        await asyncio.gather(*(self._stop_payment(t) for t in self._targets))
        self._set_status(CaseStatus.STOPS_ANSWERED)
        return self.status()

    @workflow.query
    def status(self) -> CaseView:
        currency = self._case.currency
        total_held = Amount.zero(currency)
        for stop in self._stops.values():
            if stop.held is not None:
                total_held = total_held + stop.held
        info = workflow.info()
        return CaseView(
            case_id=self._case.case_id,
            workflow_id=info.workflow_id,
            status=self._status,
            reporting_unit=self._case.reporting_unit,
            reported_at=self._case.reported_at,
            total_reported=self._case.total,
            total_held=total_held,
            stops=list(self._stops.values()),
            suspect_phone_numbers=list(self._case.suspect_phone_numbers),
            summary=self._case.summary,
        )

    def _set_status(self, status: CaseStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])

    async def _stop_payment(self, target: StopTarget) -> None:
        step = stop_step_id(target.account)
        request = StopPaymentInput(
            # workflow id + step: the same on every retry and every replay, unique per stop.
            idempotency_key=f"{workflow.info().workflow_id}/{step}/1",
            case_id=self._case.case_id,
            requested_by=self._case.reporting_unit,
            account=target.account,
            amount=target.amount,
            transfer_time=target.last_transfer_at,
            holder_name=target.holder_name,
        )
        stop = self._stops[target.account]
        try:
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
