"""HoldWorkflow: one per account where a case's stop-payment held money. It owns the hold's
deadlines with durable timers and carries out officers' decisions on it.

While stopped: a stop lasts 48 hours; a freeze decision is asked for 12 hours before it lapses,
then a reminder; if nobody has decided an hour before expiry, the second stop-payment the rules
allow goes out and extends the hold by 48 hours; after that one, a hold nobody froze lapses.
An officer's freeze (a Temporal update, validated before it is accepted) turns the hold into a
6-month freeze at the institution; a renewal decision is asked for 30 days before the freeze
lapses, and a freeze nobody renewed lapses. A release decision frees the money at any time.
Decisions, extensions and lapses go into the audit log; every change is signalled to the case.

A child of CaseWorkflow, so its timers and events live in their own history.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        DECIDE_HOLD_UPDATE,
        ERR_DECISION_INVALID,
        ERR_DECISION_NOT_APPLICABLE,
        EXTEND_LEAD,
        FREEZE_ANSWER_DEADLINE,
        FREEZE_DECISION_LEAD,
        FREEZE_REMINDER_LEAD,
        FREEZE_RESULT_UPDATE,
        HOLD_CHANGED_SIGNAL,
        HOLD_WORKFLOW,
        MAX_STOPS_PER_ACCOUNT,
        RECORD_DECISION,
        RENEWAL_DECISION_LEAD,
        RENEWAL_REMINDER_LEAD,
        REQUEST_FREEZE,
        REQUEST_RELEASE,
        REQUEST_STOP_PAYMENT,
        DecisionKind,
        DecisionRecord,
        FreezeCallback,
        FreezeInput,
        FreezeResult,
        HoldDecisionInput,
        HoldEvent,
        HoldInput,
        HoldState,
        HoldView,
        ReleaseInput,
        ReleaseResult,
        StopOutcome,
        StopPaymentInput,
        StopPaymentResult,
        stop_step_id,
    )
    from workflows.case import STOP_CALL_TIMEOUT, STOP_RETRY

RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))

# Which decisions apply in which state.
_APPLIES = {
    DecisionKind.FREEZE: (HoldState.HELD, HoldState.EXTENDED),
    DecisionKind.RENEW: (HoldState.FROZEN,),
    DecisionKind.RELEASE: (HoldState.HELD, HoldState.EXTENDED, HoldState.FROZEN),
}


@workflow.defn(name=HOLD_WORKFLOW)
class HoldWorkflow:
    @workflow.init
    def __init__(self, hold: HoldInput) -> None:
        self._hold = hold
        self._view = HoldView(
            account=hold.account, state=HoldState.HELD, held=hold.held, hold_id=hold.hold_id, expires_at=hold.expires_at
        )
        self._decision: HoldDecisionInput | None = None  # accepted, not yet carried out
        self._before = HoldState.HELD  # the state a decision found the hold in
        self._freezes = 0  # freeze orders sent (first freeze and renewals): their key suffix
        self._releases = 0
        # An acknowledged freeze order whose result the institution will call back with.
        self._awaiting: FreezeInput | None = None
        self._callback: FreezeResult | None = None

    @workflow.run
    async def run(self, hold: HoldInput) -> HoldView:
        while not self._view.state.ended:
            if self._decision is not None:
                # Taken off before it is carried out: once its outcome is told (a signal the
                # officer may see at once), a new decision must find the hold free to accept it.
                # Meanwhile the FREEZING/RELEASING state refuses any other.
                decision, self._decision = self._decision, None
                await self._carry_out(decision)
            elif self._view.state is HoldState.FROZEN:
                await self._watch_freeze()
            else:
                await self._watch_stop()
        return self._view

    @workflow.query
    def status(self) -> HoldView:
        return self._view

    # --- an officer's decision ------------------------------------------------------------

    @workflow.update(name=DECIDE_HOLD_UPDATE)
    async def decide(self, decision: HoldDecisionInput) -> HoldView:
        """Accept the decision (the validator has checked it) and return the hold as it now
        stands; the run loop carries it out at the institution."""
        self._decision = decision
        self._before = self._view.state  # restored if the institution does not carry it out
        # A renewal is a freeze order too: FREEZING while the institution is asked, so that no
        # second decision is accepted until this one is carried out.
        self._view.state = HoldState.RELEASING if decision.kind is DecisionKind.RELEASE else HoldState.FREEZING
        return self._view

    @decide.validator
    def _check_decision(self, decision: HoldDecisionInput) -> None:
        """Refused decisions leave no trace in the history and change nothing."""
        state = self._view.state
        if self._decision is not None:
            raise ApplicationError(f"a {self._decision.kind.value} decision is already being carried out",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if state not in _APPLIES[decision.kind]:
            raise ApplicationError(f"cannot {decision.kind.value}: the hold is {state.value}", type=ERR_DECISION_NOT_APPLICABLE)
        if not decision.officer.strip():
            raise ApplicationError("officer: required", type=ERR_DECISION_INVALID)
        if decision.kind in (DecisionKind.FREEZE, DecisionKind.RENEW) and not decision.document_ref.strip():
            raise ApplicationError("document_ref: the approval document is required", type=ERR_DECISION_INVALID)
        if decision.kind is DecisionKind.RELEASE and not decision.reason.strip():
            raise ApplicationError("reason: required for a release", type=ERR_DECISION_INVALID)
        if decision.kind is DecisionKind.FREEZE:
            amount, held = decision.amount, self._view.held
            if amount is None or amount.currency != held.currency or amount.minor_units <= 0:
                raise ApplicationError(f"amount: a positive amount in {held.currency} is required", type=ERR_DECISION_INVALID)
            if amount.minor_units > held.minor_units:
                raise ApplicationError(f"amount: {amount.minor_units} is more than the {held.minor_units} held",
                                       type=ERR_DECISION_INVALID)  # fmt: skip

    @workflow.update(name=FREEZE_RESULT_UPDATE)
    async def freeze_result(self, callback: FreezeCallback) -> HoldView:
        """An institution's later result for the freeze it acknowledged."""
        self._callback = callback.result
        return self._view

    @freeze_result.validator
    def _check_freeze_result(self, callback: FreezeCallback) -> None:
        """Only the result awaited, once: a late, repeated or unknown one changes nothing."""
        awaiting = self._awaiting
        if awaiting is None or self._callback is not None or callback.idempotency_key != awaiting.idempotency_key:
            raise ApplicationError(f"no freeze result is awaited for request {callback.idempotency_key!r}",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        amount = callback.result.amount
        if callback.result.frozen and (amount.currency != awaiting.amount.currency
                                       or amount.minor_units > awaiting.amount.minor_units):  # fmt: skip
            raise ApplicationError(f"the result freezes {amount.minor_units} {amount.currency}, "
                                   f"more than the {awaiting.amount.minor_units} ordered", type=ERR_DECISION_INVALID)  # fmt: skip

    async def _carry_out(self, decision: HoldDecisionInput) -> None:
        await self._record(f"{decision.kind.value}_decided", {
            "decided_by": decision.decided_by, "officer": decision.officer, "document_ref": decision.document_ref,
            "reason": decision.reason, "amount_minor": decision.amount.minor_units if decision.amount else None,
        })  # fmt: skip
        if decision.kind is DecisionKind.RELEASE:
            await self._release(decision)
        else:
            await self._freeze(decision)

    async def _freeze(self, decision: HoldDecisionInput) -> None:
        hold, view = self._hold, self._view
        renewing = decision.kind is DecisionKind.RENEW
        before = self._before
        await self._event(f"{'renewal' if renewing else 'freeze'} approved by {decision.decided_by} "
                          f"({decision.document_ref}): asking {hold.account.institution}")  # fmt: skip
        self._freezes += 1
        step = f"freeze/{hold.account.institution}/{hold.account.number}"
        request = FreezeInput(
            idempotency_key=f"{hold.case_workflow_id}/{step}/{self._freezes}",
            case_id=hold.case_id,
            account=hold.account,
            amount=decision.amount if decision.amount is not None else view.held,
            approved_by=decision.decided_by,
            officer=decision.officer,
            document_ref=decision.document_ref,
            approved_at=workflow.now(),
            hold_id="" if renewing else view.hold_id,
            renews_freeze_id=view.freeze_id if renewing else "",
        )
        # Awaited from before the order goes out: a fast bank's callback may beat its own answer.
        self._awaiting, self._callback = request, None
        try:
            result = await workflow.execute_activity(
                REQUEST_FREEZE, request, result_type=FreezeResult, activity_id=f"{step}/{self._freezes}",
                start_to_close_timeout=STOP_CALL_TIMEOUT, retry_policy=STOP_RETRY,
            )  # fmt: skip
        except ActivityError as err:
            self._awaiting = self._callback = None
            view.state = before
            await self._event(f"freeze failed: {err.cause.message if err.cause is not None else err}")
            return
        if result.pending:
            result = await self._await_freeze_result(request, before)
            if result is None:
                return
        self._awaiting = self._callback = None
        if not result.frozen:
            view.state = before
            await self._event(f"{hold.account.institution} refused the freeze: {result.detail}")
            return
        assert result.expires_at is not None
        self._view = replace(view, state=HoldState.FROZEN, held=result.amount, freeze_id=result.freeze_id,
                             expires_at=result.expires_at, freeze_decision_due_at=None)  # fmt: skip
        await self._record("frozen", {"freeze_id": result.freeze_id, "amount_minor": result.amount.minor_units,
                                      "currency": result.amount.currency, "expires_at": result.expires_at.isoformat()})  # fmt: skip
        await self._event(f"frozen until {result.expires_at.isoformat()} (freeze {result.freeze_id})")

    async def _await_freeze_result(self, request: FreezeInput, before: HoldState) -> FreezeResult | None:
        """The institution acknowledged: wait (durably) for its signed result by callback."""
        institution = self._hold.account.institution
        await self._event(f"{institution} acknowledged the freeze; its result is to follow")
        try:
            await workflow.wait_condition(lambda: self._callback is not None, timeout=FREEZE_ANSWER_DEADLINE)
        except TimeoutError:
            self._awaiting = None
            self._view.state = before
            await self._event(f"no freeze result from {institution} within {FREEZE_ANSWER_DEADLINE}; the hold goes on")
            return None
        result, self._awaiting, self._callback = self._callback, None, None
        return result

    async def _release(self, decision: HoldDecisionInput) -> None:
        hold, view = self._hold, self._view
        await self._event(f"release decided by {decision.decided_by}: {decision.reason}")
        self._releases += 1
        step = f"release/{hold.account.institution}/{hold.account.number}"
        request = ReleaseInput(
            idempotency_key=f"{hold.case_workflow_id}/{step}/{self._releases}",
            case_id=hold.case_id, account=hold.account, reason=decision.reason, decided_by=decision.decided_by,
            hold_id="" if view.freeze_id else view.hold_id, freeze_id=view.freeze_id,
        )  # fmt: skip
        try:
            result = await workflow.execute_activity(
                REQUEST_RELEASE, request, result_type=ReleaseResult, activity_id=f"{step}/{self._releases}",
                start_to_close_timeout=STOP_CALL_TIMEOUT, retry_policy=STOP_RETRY,
            )  # fmt: skip
        except ActivityError as err:
            view.state = self._before  # still held: an officer can decide again
            await self._event(f"release failed: {err.cause.message if err.cause is not None else err}")
            return
        view.state = HoldState.RELEASED
        view.freeze_decision_due_at = None
        await self._record("released", {"amount_minor": result.released.minor_units, "reason": decision.reason})
        await self._event(f"released {result.released.minor_units} {result.released.currency}: {decision.reason}")

    # --- deadlines ------------------------------------------------------------------------

    async def _watch_stop(self) -> None:
        """The stop-payment's 48 hours: ask, remind, extend once, lapse; any decision cuts in."""
        view = self._view
        expires = view.expires_at
        if await self._decided_by(expires - FREEZE_DECISION_LEAD):
            return
        # Decide before the second stop goes out, or, on the last stop, before it lapses.
        last_stop = view.stops_used >= MAX_STOPS_PER_ACCOUNT
        view.freeze_decision_due_at = expires if last_stop else expires - EXTEND_LEAD
        await self._event(f"freeze decision asked for: the stop lapses at {expires.isoformat()}")
        if await self._decided_by(expires - FREEZE_REMINDER_LEAD):
            return
        await self._event("reminder: no freeze decided yet")
        if await self._decided_by(expires - EXTEND_LEAD):
            return
        if view.stops_used < MAX_STOPS_PER_ACCOUNT and await self._extend():
            return
        if await self._decided_by(expires):
            return
        self._lapse()
        await self._record("hold_lapsed", {"hold_id": view.hold_id, "amount_minor": view.held.minor_units,
                                           "currency": view.held.currency, "expired_at": expires.isoformat()})  # fmt: skip
        await self._event("lapsed: no freeze was decided, the institution released the money")

    async def _watch_freeze(self) -> None:
        """The freeze's 6 months: ask for a renewal 30 days ahead, remind, lapse."""
        view = self._view
        expires = view.expires_at
        if await self._decided_by(expires - RENEWAL_DECISION_LEAD):
            return
        view.freeze_decision_due_at = expires
        await self._event(f"renewal decision asked for: the freeze lapses at {expires.isoformat()}")
        if await self._decided_by(expires - RENEWAL_REMINDER_LEAD):
            return
        await self._event("reminder: the freeze has not been renewed")
        if await self._decided_by(expires):
            return
        self._lapse()
        await self._record("freeze_lapsed", {"freeze_id": view.freeze_id, "amount_minor": view.held.minor_units,
                                             "currency": view.held.currency, "expired_at": expires.isoformat()})  # fmt: skip
        await self._event("lapsed: the freeze was not renewed, the institution released the money")

    def _lapse(self) -> None:
        self._view.state = HoldState.LAPSED
        self._view.freeze_decision_due_at = None

    async def _decided_by(self, when: datetime) -> bool:
        """Wait (a durable timer on Temporal's clock) until `when`, or until an officer decides.
        True if a decision came first."""
        delay = when - workflow.now()
        if self._decision is not None:
            return True
        if delay <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=delay)
        except TimeoutError:
            return False
        return True

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
            amount=self._view.held,
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
            self._view, hold_id=result.hold_id or self._view.hold_id,
            # A decision accepted meanwhile keeps its FREEZING/RELEASING; it carries on next.
            state=HoldState.EXTENDED if self._decision is None else self._view.state,
            held=result.held, expires_at=result.hold_expires_at, freeze_decision_due_at=None,
        )  # fmt: skip
        await self._record("hold_extended", {"hold_id": self._view.hold_id, "amount_minor": result.held.minor_units,
                                             "currency": result.held.currency,
                                             "expires_at": result.hold_expires_at.isoformat()})  # fmt: skip
        await self._event(f"no freeze decided: second stop-payment, held until {result.hold_expires_at.isoformat()}")
        return True

    async def _record(self, decision: str, details: dict) -> None:
        """Into the audit log: a decision that moved money (an officer's or this workflow's)."""
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
            # Only the new event travels (the case keeps the rest): a thousand holds signalling
            # over months must not grow the case's history with their whole event lists.
            change = replace(self._view, events=[self._view.events[-1]])
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(HOLD_CHANGED_SIGNAL, change)
