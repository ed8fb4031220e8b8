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

import asyncio
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
        REQUEST_RETURN_FUNDS,
        REQUEST_STOP_PAYMENT,
        RETURN_FUNDS_SIGNAL,
        RETURN_RESULT_UPDATE,
        RETURN_WORKING_DAYS,
        Amount,
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
        RequestType,
        ReturnCallback,
        ReturnInput,
        ReturnOrders,
        ReturnOutcome,
        ReturnResult,
        ReturnShare,
        ReturnState,
        ReturnView,
        StopOutcome,
        StopPaymentInput,
        StopPaymentResult,
        stop_step_id,
    )
    from workflows.calendar import add_working_days
    from workflows.calls import CALL_HEARTBEAT_TIMEOUT, CALL_TIMEOUT
    from workflows.case import STOP_RETRY
    from workflows.supervision import answered_within, report_breach

# Recorded in new histories only: holds started before answer deadlines and returns replay as they ran.
_PATCH_WHOLE_CASE = "hold-whole-case-2026-11"

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
        # The case's order to return the frozen money to victims, and the institution's later
        # receipts for returns it acknowledged (by idempotency key; None until it arrives).
        self._orders: ReturnOrders | None = None
        self._orders_arrived = False
        self._returns_started = False
        self._round = 0  # rounds of return orders taken: their key suffix
        self._reminded_for: datetime | None = None  # the freeze expiry a renewal reminder went out for
        self._round_start = 0  # where this round's returns start in the view
        self._breached: set[str] = set()  # requests reported to the regulator (once each)
        self._side: list[asyncio.Task] = []  # breach reports and notes under way
        self._receipts: dict[str, ReturnResult | None] = {}
        self._ordered: dict[str, ReturnShare] = {}  # what each awaited receipt must pay
        self._whole_case = False

    @workflow.run
    async def run(self, hold: HoldInput) -> HoldView:
        self._whole_case = workflow.patched(_PATCH_WHOLE_CASE)
        while not self._view.state.ended:
            if self._decision is not None:
                # Taken off before it is carried out: once its outcome is told (a signal the
                # officer may see at once), a new decision must find the hold free to accept it.
                # Meanwhile the FREEZING/RELEASING state refuses any other.
                decision, self._decision = self._decision, None
                await self._carry_out(decision)
            elif self._returns_due():
                await self._return_funds()
            elif self._view.state is HoldState.FROZEN:
                await self._watch_freeze()
            else:
                await self._watch_stop()
        while self._side:  # breach reports under way finish before the hold's workflow does
            side, self._side = self._side, []
            await asyncio.gather(*side)
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
        if decision.kind is DecisionKind.RELEASE and self._orders is not None and not self._returns_started:
            raise ApplicationError("cannot release: the case was concluded and this money is to go back to the victims",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
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

    async def _supervised(self, call, request_type: RequestType, key: str):
        """The call, with its answer deadline watched (histories from before it: unwatched)."""
        if not self._whole_case:
            return await call
        hold = self._hold

        def breached(_view) -> None:
            self._breached.add(key)

        return await answered_within(
            call, deadline=hold.deadlines.of(request_type), case_id=hold.case_id, institution=hold.account.institution,
            request_type=request_type, request_key=key, on_breach=breached, background=self._side,
        )  # fmt: skip

    # --- return of the frozen money to victims --------------------------------------------

    @workflow.signal(name=RETURN_FUNDS_SIGNAL)
    def return_funds(self, orders: ReturnOrders) -> None:
        """The case was concluded: pay these shares back (after the public notice, if any). Taken
        once per round: a new round only after the last one is done (shares that failed or were
        refused ordered again, keys numbered by round)."""
        if self._orders is not None and not (self._returns_started and self._view.state is HoldState.FROZEN):
            return
        state = ReturnState.NOTICE if orders.notice_ends_at is not None else ReturnState.ORDERED
        views = [
            ReturnView(self._hold.account, s.victim, s.amount, s.rule, state=state, notice_ends_at=orders.notice_ends_at)
            for s in orders.shares
        ]
        # The case saw the hold frozen; it may have changed since (a decision taken meanwhile).
        if self._view.state is not HoldState.FROZEN or self._decision is not None:
            why = f"the hold was {self._view.state.value} when the returns were ordered"
            for view in views:
                view.state, view.detail = ReturnState.FAILED, why
            self._view.returns = [*self._view.returns, *views]
            self._side.append(asyncio.create_task(self._event(f"returns not carried out: {why}")))
            return
        self._orders, self._orders_arrived, self._returns_started = orders, True, False
        self._round += 1
        self._round_start = len(self._view.returns)
        self._view.returns = [*self._view.returns, *views]

    @workflow.update(name=RETURN_RESULT_UPDATE)
    async def return_result(self, callback: ReturnCallback) -> HoldView:
        """An institution's signed receipt for a return it acknowledged."""
        self._receipts[callback.idempotency_key] = callback.result
        return self._view

    @return_result.validator
    def _check_return_result(self, callback: ReturnCallback) -> None:
        """Only the receipt awaited, once, and only for what was ordered: a receipt that pays
        another amount or another account changes nothing."""
        key = callback.idempotency_key
        if key not in self._receipts or self._receipts[key] is not None:
            raise ApplicationError(f"no return receipt is awaited for request {key!r}", type=ERR_DECISION_NOT_APPLICABLE)
        share = self._ordered[key]
        result = callback.result
        if result.outcome is ReturnOutcome.RETURNED and result.returned != share.amount:
            raise ApplicationError(f"the receipt returns {result.returned.minor_units} {result.returned.currency}; "
                                   f"{share.amount.minor_units} {share.amount.currency} was ordered", type=ERR_DECISION_INVALID)  # fmt: skip
        if callback.to_account is not None and callback.to_account != share.victim:
            raise ApplicationError(f"the receipt pays {callback.to_account}; the order was to {share.victim}",
                                   type=ERR_DECISION_INVALID)  # fmt: skip

    def _returns_due(self) -> bool:
        orders = self._orders
        return (
            orders is not None
            and not self._returns_started
            and self._view.state is HoldState.FROZEN
            and (orders.notice_ends_at is None or workflow.now() >= orders.notice_ends_at)
        )

    async def _return_funds(self) -> None:
        """Order every share at once; each is due in 3 working days, receipt included."""
        orders, view = self._orders, self._view
        assert orders is not None
        self._returns_started = True
        view.state = HoldState.RETURNING
        due_by = add_working_days(workflow.now(), RETURN_WORKING_DAYS)
        first = self._round_start
        for r in view.returns[first:]:
            r.state, r.due_by = ReturnState.ORDERED, due_by
        await self._event(f"returning {sum(s.amount.minor_units for s in orders.shares)} {view.held.currency} to "
                          f"{len(orders.shares)} victim(s) by {due_by.isoformat()}")  # fmt: skip
        await asyncio.gather(*(self._return_share(first + i, share, orders, due_by) for i, share in enumerate(orders.shares)))
        returned = sum(r.amount.minor_units for r in view.returns[first:] if r.state is ReturnState.RETURNED)
        currency = view.held.currency
        # What was not returned (a refusal, no receipt before the freeze expired) stays frozen
        # under the freeze's own deadlines.
        view.state = HoldState.RETURNED if view.held.minor_units == 0 else HoldState.FROZEN
        await self._record("funds_returned", {"returned_minor": returned, "currency": currency,
                                              "still_frozen_minor": view.held.minor_units,
                                              "returns": [{"to": str(r.victim_account), "amount_minor": r.amount.minor_units,
                                                           "state": r.state.value, "return_id": r.return_id}
                                                          for r in view.returns[first:]]})  # fmt: skip
        left = f"; {view.held.minor_units} {currency} stays frozen" if view.held.minor_units else ""
        await self._event(f"returned {returned} {currency} to the victims{left}")

    async def _return_share(self, i: int, share: ReturnShare, orders: ReturnOrders, due_by: datetime) -> None:
        hold, view = self._hold, self._view
        r = view.returns[i]
        step = f"return/{hold.account.institution}/{hold.account.number}/{share.victim.institution}/{share.victim.number}"
        # The first round's activity is the step itself (as recorded histories have it); later
        # rounds are numbered, as is every key.
        activity_id = step if self._round == 1 else f"{step}/{self._round}"
        request = ReturnInput(
            idempotency_key=f"{hold.case_workflow_id}/{step}/{self._round}", case_id=hold.case_id, account=hold.account,
            freeze_id=view.freeze_id, to_account=share.victim, amount=share.amount, due_by=due_by,
            decided_by=orders.decided_by, officer=orders.officer, document_ref=orders.document_ref,
        )  # fmt: skip
        # Awaited from before the order goes out: a fast bank's receipt may beat its own answer.
        self._receipts[request.idempotency_key] = None
        self._ordered[request.idempotency_key] = share

        async def returned() -> ReturnResult:
            result = await workflow.execute_activity(
                REQUEST_RETURN_FUNDS, request, result_type=ReturnResult, activity_id=activity_id,
                start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
            )  # fmt: skip
            if result.outcome is ReturnOutcome.ACCEPTED:
                r.state = ReturnState.ACCEPTED
                await self._event(f"{hold.account.institution} acknowledged the return to {share.victim}; "
                                  f"its receipt is due by {due_by.isoformat()}")  # fmt: skip
                # Waited for past the deadline (the breach is reported), but not past the
                # freeze: after it nothing is frozen to return.
                try:
                    await workflow.wait_condition(lambda: self._receipts.get(request.idempotency_key) is not None,
                                                  timeout=max(self._view.expires_at - workflow.now(), timedelta(0)))  # fmt: skip
                except TimeoutError:
                    return ReturnResult(ReturnOutcome.REFUSED, Amount.zero(share.amount.currency),
                                        detail="no receipt before the freeze expired")  # fmt: skip
                receipt = self._receipts[request.idempotency_key]
                assert receipt is not None
                return receipt
            return result

        try:
            result = await answered_within(
                returned(), deadline=due_by - workflow.now(), case_id=hold.case_id, institution=hold.account.institution,
                request_type=RequestType.RETURN_FUNDS, request_key=request.idempotency_key, background=self._side,
            )  # fmt: skip
        except ActivityError as err:
            r.state, r.detail = ReturnState.FAILED, (err.cause.message if err.cause is not None else str(err))
            return
        finally:
            self._receipts.pop(request.idempotency_key, None)
        r.detail = result.detail
        if result.outcome is not ReturnOutcome.RETURNED:
            r.state = ReturnState.REFUSED
            await self._event(f"the return of {share.amount.minor_units} {share.amount.currency} to {share.victim} "
                              f"was not made: {result.detail}")  # fmt: skip
            return
        # Booked as each one is done: operators see the money go back victim by victim.
        r.state, r.return_id, r.returned_at = ReturnState.RETURNED, result.return_id, result.returned_at or workflow.now()
        view = self._view
        view.returned = Amount(share.amount.minor_units + (view.returned.minor_units if view.returned else 0), share.amount.currency)
        view.held = Amount(view.held.minor_units - share.amount.minor_units, share.amount.currency)
        await self._event(f"returned {share.amount.minor_units} {share.amount.currency} to {share.victim} ({r.return_id})")

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
            result = await self._supervised(workflow.execute_activity(
                REQUEST_FREEZE, request, result_type=FreezeResult, activity_id=f"{step}/{self._freezes}",
                start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
            ), RequestType.FREEZE, request.idempotency_key)  # fmt: skip
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
            if self._whole_case and request.idempotency_key not in self._breached:
                self._breached.add(request.idempotency_key)
                hold = self._hold
                await report_breach(case_id=hold.case_id, institution=institution, request_type=RequestType.FREEZE,
                                    request_key=request.idempotency_key, asked_at=request.approved_at,
                                    due=workflow.now(), detail=f"acknowledged a freeze and sent no result within {FREEZE_ANSWER_DEADLINE}")  # fmt: skip
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
            result = await self._supervised(workflow.execute_activity(
                REQUEST_RELEASE, request, result_type=ReleaseResult, activity_id=f"{step}/{self._releases}",
                start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
            ), RequestType.RELEASE, request.idempotency_key)  # fmt: skip
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
        # Asked (and reminded) once per expiry: the watch starts over when return orders arrive.
        if view.freeze_decision_due_at != expires:
            view.freeze_decision_due_at = expires
            await self._event(f"renewal decision asked for: the freeze lapses at {expires.isoformat()}")
        if await self._decided_by(expires - RENEWAL_REMINDER_LEAD):
            return
        if self._reminded_for != expires:
            self._reminded_for = expires
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
        for r in self._view.returns:  # ordered, never carried out: the money went back to the account
            if r.state in (ReturnState.NOTICE, ReturnState.ORDERED):
                r.state, r.detail = ReturnState.FAILED, "the freeze lapsed before the return"

    async def _decided_by(self, when: datetime) -> bool:
        """Wait (a durable timer on Temporal's clock) until `when`, or until an officer decides
        or returns to victims are due (the case's order, or the end of its public notice).
        True if one of those came first."""
        if self._decision is not None or self._returns_due():
            return True
        wake = when
        orders = self._orders
        if orders is not None and orders.notice_ends_at is not None and not self._returns_started:
            wake = min(when, orders.notice_ends_at)
        delay = wake - workflow.now()
        if delay <= timedelta(0):
            return False
        self._orders_arrived = False
        try:
            await workflow.wait_condition(lambda: self._decision is not None or self._orders_arrived, timeout=delay)
        except TimeoutError:
            return self._returns_due()
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
            result = await self._supervised(workflow.execute_activity(
                REQUEST_STOP_PAYMENT, request, result_type=StopPaymentResult, activity_id=f"{step}/2",
                start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
            ), RequestType.STOP_PAYMENT, request.idempotency_key)  # fmt: skip
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
