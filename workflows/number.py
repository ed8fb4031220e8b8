"""NumberWorkflow: one per suspect phone number of a case. Finds the carrier that serves the
number now (the range holder, or the carrier it was ported to), has it block calls and SMS, and
tells the telecom regulator. The block stands until an officer decides the number was blocked by
mistake (a Temporal update, checked before it is accepted): then the carrier lifts it, just as
fast, with the reason recorded, and the regulator is told again.

A child of CaseWorkflow that outlives it (parent-close policy ABANDON): a fraudster's number
stays blocked after the case closes, and can still be unblocked by its workflow."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        ERR_DECISION_INVALID,
        ERR_DECISION_NOT_APPLICABLE,
        LOCATE_NUMBER,
        NOTIFY_TELECOM_REGULATOR,
        NUMBER_CHANGED_SIGNAL,
        NUMBER_WORKFLOW,
        REQUEST_NUMBER_BLOCK,
        REQUEST_NUMBER_UNBLOCK,
        UNBLOCK_NUMBER_UPDATE,
        InterceptionKind,
        InterceptionNoticeInput,
        LocateNumberInput,
        LocateNumberResult,
        NumberBlockInput,
        NumberBlockResult,
        NumberInput,
        NumberOutcome,
        NumberState,
        NumberUnblockInput,
        NumberView,
        RegulatorReceiptResult,
        RequestType,
        UnblockDecisionInput,
    )
    from workflows.calls import CALL_HEARTBEAT_TIMEOUT, CALL_TIMEOUT
    from workflows.case import STOP_RETRY
    from workflows.supervision import BREACH_RETRY, answered_within


@workflow.defn(name=NUMBER_WORKFLOW)
class NumberWorkflow:
    @workflow.init
    def __init__(self, number: NumberInput) -> None:
        self._number = number
        self._view = NumberView(phone_number=number.phone_number)
        self._unblock: UnblockDecisionInput | None = None
        self._unblocks = 0  # unblock orders sent: their key suffix (a failed one can be decided again)
        self._side: list = []  # breach reports under way

    @workflow.run
    async def run(self, number: NumberInput) -> NumberView:
        view = self._view
        located = await self._locate()
        if located is None:
            return await self._done()
        view.carrier = located.carrier
        if not located.carrier:
            view.state = NumberState.NOT_FOUND
            view.detail = located.detail or "no carrier on the platform serves this number"
            return await self._done()
        view.state = NumberState.BLOCKING
        await self._tell()
        if not await self._block():
            return await self._done()
        await self._tell()
        await self._notify(InterceptionKind.BLOCKED, number.reason)
        await self._tell()
        # The block stands until an officer lifts it (again, if lifting it failed).
        while view.state is not NumberState.UNBLOCKED:
            await workflow.wait_condition(lambda: self._unblock is not None)
            decision, self._unblock = self._unblock, None
            assert decision is not None
            await self._lift(decision)
            await self._tell()
        return await self._done()

    async def _done(self) -> NumberView:
        """Tell the case, and let any breach report under way finish."""
        await self._tell()
        await asyncio.gather(*self._side)
        return self._view

    @workflow.query
    def status(self) -> NumberView:
        return self._view

    @workflow.update(name=UNBLOCK_NUMBER_UPDATE)
    async def unblock(self, decision: UnblockDecisionInput) -> NumberView:
        self._unblock = decision
        self._view.state = NumberState.UNBLOCKING
        return self._view

    @unblock.validator
    def _check_unblock(self, decision: UnblockDecisionInput) -> None:
        if self._view.state is not NumberState.BLOCKED:
            raise ApplicationError(f"cannot unblock {self._number.phone_number}: it is {self._view.state.value}",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if not decision.officer.strip():
            raise ApplicationError("officer: required", type=ERR_DECISION_INVALID)
        if not decision.reason.strip():
            raise ApplicationError("reason: why the block was wrong is required", type=ERR_DECISION_INVALID)

    # --- steps -------------------------------------------------------------------------------

    def _key(self, step: str, n: int = 1) -> str:
        return f"{self._number.case_workflow_id}/{step}/{self._number.phone_number}/{n}"

    async def _locate(self) -> LocateNumberResult | None:
        number = self._number
        key = self._key("locate")
        try:
            return await workflow.execute_activity(
                LOCATE_NUMBER, LocateNumberInput(key, number.case_id, number.phone_number),
                result_type=LocateNumberResult, activity_id="locate",
                start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
            )  # fmt: skip
        except ActivityError as err:
            self._failed("finding its carrier failed", err)
            return None

    async def _block(self) -> bool:
        number, view = self._number, self._view
        key = self._key("block")
        request = NumberBlockInput(key, number.case_id, number.requested_by, view.carrier, [number.phone_number],
                                   number.reason)  # fmt: skip
        try:
            answer = await answered_within(
                workflow.execute_activity(
                    REQUEST_NUMBER_BLOCK, request, result_type=NumberBlockResult, activity_id="block",
                    start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
                ),
                deadline=number.deadlines.of(RequestType.BLOCK_NUMBERS), case_id=number.case_id,
                institution=view.carrier, request_type=RequestType.BLOCK_NUMBERS, request_key=key, background=self._side,
            )  # fmt: skip
        except ActivityError as err:
            self._failed("the block order failed", err)
            return False
        result = answer.results[0]
        view.detail = result.detail
        if result.outcome in (NumberOutcome.BLOCKED, NumberOutcome.ALREADY_BLOCKED):
            view.state = NumberState.BLOCKED
            view.block_id = result.block_id
            view.blocked_at = answer.answered_at or workflow.now()
            return True
        if result.outcome is NumberOutcome.NOT_SERVED:
            view.state = NumberState.NOT_FOUND
            view.detail = f"{view.carrier} no longer serves it" + (f" (served by {result.served_by})" if result.served_by else "")
        else:
            view.state = NumberState.REFUSED
        return False

    async def _lift(self, decision: UnblockDecisionInput) -> None:
        number, view = self._number, self._view
        self._unblocks += 1
        key = self._key("unblock", self._unblocks)
        request = NumberUnblockInput(key, number.case_id, view.carrier, [number.phone_number], decision.reason,
                                     decision.decided_by, decision.officer)  # fmt: skip
        try:
            answer = await answered_within(
                workflow.execute_activity(
                    REQUEST_NUMBER_UNBLOCK, request, result_type=NumberBlockResult, activity_id=f"unblock/{self._unblocks}",
                    start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=STOP_RETRY,
                ),
                deadline=number.deadlines.of(RequestType.UNBLOCK_NUMBERS), case_id=number.case_id,
                institution=view.carrier, request_type=RequestType.UNBLOCK_NUMBERS, request_key=key, background=self._side,
            )  # fmt: skip
        except ActivityError as err:
            self._failed("the unblock order failed", err)
            return
        result = answer.results[0]
        view.state = NumberState.UNBLOCKED
        view.unblocked_at = answer.answered_at or workflow.now()
        view.unblock_reason = decision.reason
        view.detail = result.detail or f"unblocked on the decision of {decision.decided_by} ({decision.officer})"
        view.regulator_notified = False
        await self._tell()
        await self._notify(InterceptionKind.UNBLOCKED, decision.reason)

    async def _notify(self, kind: InterceptionKind, reason: str) -> None:
        """Tell the telecom regulator what the carrier did; asked until it acknowledges."""
        number, view = self._number, self._view
        acted_at = view.blocked_at if kind is InterceptionKind.BLOCKED else view.unblocked_at
        notice = InterceptionNoticeInput(
            idempotency_key=self._key(f"notice-{kind.value}"), case_id=number.case_id, carrier=view.carrier,
            phone_numbers=[number.phone_number], kind=kind, reason=reason, acted_at=acted_at or workflow.now(),
        )  # fmt: skip
        await workflow.execute_activity(
            NOTIFY_TELECOM_REGULATOR, notice, result_type=RegulatorReceiptResult, activity_id=f"notice-{kind.value}",
            start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT, retry_policy=BREACH_RETRY,
        )  # fmt: skip
        view.regulator_notified = True

    def _failed(self, what: str, err: ActivityError) -> None:
        view = self._view
        if view.state is NumberState.UNBLOCKING:
            view.state = NumberState.BLOCKED  # still blocked: an officer can decide again
        else:
            view.state = NumberState.FAILED
        view.detail = f"{what}: {err.cause.message if err.cause is not None else err}"

    async def _tell(self) -> NumberView:
        """Tell the case (while it is open) how the number stands."""
        parent = workflow.info().parent
        if parent is not None:
            try:
                await workflow.get_external_workflow_handle(parent.workflow_id).signal(NUMBER_CHANGED_SIGNAL, self._view)
            except Exception:  # noqa: BLE001 - the signal failed: the case has closed
                pass  # the case has closed; this workflow's own view stays queryable
        return self._view
