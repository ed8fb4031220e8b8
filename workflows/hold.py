"""HoldWorkflow: one per account where a case's stop-payment held money. It owns the hold's
deadlines with durable timers: a stop lasts 48 hours; a freeze decision is asked for well before
that, then a reminder; if nobody has decided an hour before expiry, the second stop-payment the
rules allow goes out and extends the hold by 48 hours; after that one, a hold nobody turned into
a freeze lapses, and the lapse is recorded. Every change is signalled to the case.

A child of CaseWorkflow, so its timers and events live in their own history: a case with a
thousand holds keeps a small history of its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        EXTEND_LEAD,
        FREEZE_DECISION_LEAD,
        FREEZE_REMINDER_LEAD,
        HOLD_CHANGED_SIGNAL,
        HOLD_WORKFLOW,
        MAX_STOPS_PER_ACCOUNT,
        RECORD_DECISION,
        REQUEST_STOP_PAYMENT,
        DecisionRecord,
        HoldEvent,
        HoldInput,
        HoldState,
        HoldView,
        StopOutcome,
        StopPaymentInput,
        StopPaymentResult,
        stop_step_id,
    )
    from workflows.case import STOP_CALL_TIMEOUT, STOP_RETRY

RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))


@workflow.defn(name=HOLD_WORKFLOW)
class HoldWorkflow:
    @workflow.init
    def __init__(self, hold: HoldInput) -> None:
        self._hold = hold
        self._view = HoldView(
            account=hold.account, state=HoldState.HELD, held=hold.held, hold_id=hold.hold_id, expires_at=hold.expires_at
        )

    @workflow.run
    async def run(self, hold: HoldInput) -> HoldView:
        while True:
            expires = self._view.expires_at
            await self._until(expires - FREEZE_DECISION_LEAD)
            self._view.freeze_decision_due_at = expires - EXTEND_LEAD
            await self._event(f"freeze decision asked for: the stop lapses at {expires.isoformat()}")
            await self._until(expires - FREEZE_REMINDER_LEAD)
            await self._event("reminder: no freeze decided yet")
            await self._until(expires - EXTEND_LEAD)
            if self._view.stops_used < MAX_STOPS_PER_ACCOUNT and await self._extend():
                continue
            await self._until(expires)
            self._view.state = HoldState.LAPSED
            self._view.freeze_decision_due_at = None
            await self._record("hold_lapsed", {"hold_id": self._view.hold_id, "amount_minor": hold.held.minor_units,
                                               "currency": hold.held.currency, "expired_at": expires.isoformat()})  # fmt: skip
            await self._event("lapsed: no freeze was decided, the institution released the money")
            return self._view

    @workflow.query
    def status(self) -> HoldView:
        return self._view

    async def _until(self, when: datetime) -> None:
        """A durable timer to `when` (Temporal's clock): survives restarts and deploys."""
        delay = when - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)

    async def _extend(self) -> bool:
        """The second stop-payment, extending the hold by 48 hours. False if it did not."""
        hold = self._hold
        step = stop_step_id(hold.account)
        request = StopPaymentInput(
            # The case's workflow id + step + "2": the account's second stop for this case.
            idempotency_key=f"{hold.case_workflow_id}/{step}/2",
            case_id=hold.case_id,
            requested_by=hold.requested_by,
            account=hold.account,
            amount=hold.held,
            transfer_time=hold.transfer_time,
            holder_name=hold.holder_name,
            extends_hold_id=self._view.hold_id,
        )
        try:
            result = await workflow.execute_activity(
                REQUEST_STOP_PAYMENT, request, result_type=StopPaymentResult, activity_id=f"{step}/2",
                start_to_close_timeout=STOP_CALL_TIMEOUT, retry_policy=STOP_RETRY,
            )  # fmt: skip
        except ActivityError as err:
            cause = err.cause
            await self._event(f"second stop-payment failed: {cause.message if cause is not None else err}")
            return False
        self._view.stops_used += 1
        if result.outcome is StopOutcome.REFUSED or result.hold_expires_at is None:
            await self._event(f"second stop-payment refused: {result.refusal_reason or result.detail}")
            return False
        self._view = replace(
            self._view, state=HoldState.EXTENDED, hold_id=result.hold_id or self._view.hold_id,
            held=result.held, expires_at=result.hold_expires_at, freeze_decision_due_at=None,
        )  # fmt: skip
        await self._record("hold_extended", {"hold_id": self._view.hold_id, "amount_minor": result.held.minor_units,
                                             "currency": result.held.currency,
                                             "expires_at": result.hold_expires_at.isoformat()})  # fmt: skip
        await self._event(f"no freeze decided: second stop-payment, held until {result.hold_expires_at.isoformat()}")
        return True

    async def _record(self, decision: str, details: dict) -> None:
        """Into the audit log: a workflow decision that moved money."""
        await workflow.execute_activity(
            RECORD_DECISION,
            DecisionRecord(self._hold.case_id, self._hold.account.institution, decision,
                           {"account": str(self._hold.account), **details}),
            start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
        )  # fmt: skip

    async def _event(self, what: str) -> None:
        """Note what happened and tell the case (it shows operators every hold's state)."""
        self._view.events.append(HoldEvent(workflow.now(), what))
        workflow.logger.info("hold %s: %s", self._hold.account, what, extra={"case_id": self._hold.case_id})
        parent = workflow.info().parent
        if parent is not None:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(HOLD_CHANGED_SIGNAL, self._view)
