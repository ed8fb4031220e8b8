"""Answer deadlines: every request the hub makes has one (per request type, in AnswerDeadlines).
An institution that misses it is reported to its regulator, once per request, with the signed
requests in the audit log as evidence; the hub keeps waiting (Temporal keeps retrying) after
the report, because a late answer still stops money.

Used by CaseWorkflow, HoldWorkflow and NumberWorkflow; deterministic (Temporal's timers only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        BREACH_REPORTED_SIGNAL,
        REPORT_BREACH,
        BreachInput,
        BreachResult,
        BreachView,
        RequestType,
    )
    from workflows.calls import CALL_HEARTBEAT_TIMEOUT, CALL_TIMEOUT

T = TypeVar("T")

# A regulator that is down is asked again until it answers: the breach is a fact either way.
BREACH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))


async def answered_within(
    call: Awaitable[T],
    *,
    deadline: timedelta,
    case_id: str,
    institution: str,
    request_type: RequestType,
    request_key: str,
    asked_at: datetime | None = None,
    on_breach: Callable[[BreachView], None] | None = None,
    background: list[asyncio.Task],
) -> T:
    """Await `call` (an activity); if it has not finished `deadline` after `asked_at` (default:
    now), report `institution` to its regulator, once, in a task of its own added to
    `background` (the workflow awaits those before it ends): the institution's late answer is
    used the moment it comes, whether or not the regulator has answered yet."""
    task = asyncio.ensure_future(call)
    asked = asked_at or workflow.now()
    due = asked + deadline
    try:
        await workflow.wait_condition(task.done, timeout=max(due - workflow.now(), timedelta(0)))
    except TimeoutError:
        background.append(asyncio.create_task(_report_quietly(
            on_breach, case_id=case_id, institution=institution, request_type=request_type,
            request_key=request_key, asked_at=asked, due=due,
        )))  # fmt: skip
    return await task


async def _report_quietly(on_breach: Callable[[BreachView], None] | None, **breach) -> None:
    """A breach report that cannot be made (no evidence, no regulator) is logged, never taken
    for the request's own failure."""
    try:
        view = await report_breach(**breach)
    except ActivityError as err:
        workflow.logger.error("breach report not made: %s", err.cause.message if err.cause is not None else err,
                              extra={"case_id": breach["case_id"]})  # fmt: skip
        return
    if on_breach is not None:
        on_breach(view)


async def report_breach(
    *, case_id: str, institution: str, request_type: RequestType, request_key: str, asked_at: datetime, due: datetime,
    detail: str = "",
) -> BreachView:
    """Report the breach (the key derives from the request's, so a replay or retry reports it
    once) and tell the case (the workflow itself when it is the case) for operators."""
    report = BreachInput(
        idempotency_key=f"{request_key}/breach",
        case_id=case_id,
        institution=institution,
        request_type=request_type,
        request_idempotency_key=request_key,
        asked_at=asked_at,
        answer_due_at=due,
        detail=detail or f"no answer to a {request_type.value.replace('_', ' ')} request by {due.isoformat()}",
    )
    workflow.logger.warning(
        "%s missed its %s deadline: reporting it to its regulator", institution, request_type.value,
        extra={"case_id": case_id},
    )  # fmt: skip
    result = await workflow.execute_activity(
        REPORT_BREACH, report, result_type=BreachResult, activity_id=f"breach/{request_key.split('/', 1)[-1]}",
        start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
        retry_policy=BREACH_RETRY,
    )  # fmt: skip
    view = BreachView(institution=institution, request_type=request_type, regulator=result.regulator,
                      reference=result.reference, reported_at=result.reported_at, answer_due_at=due)  # fmt: skip
    parent = workflow.info().parent
    if parent is not None:
        try:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(BREACH_REPORTED_SIGNAL, view)
        except Exception:  # noqa: BLE001 - the case has closed (a number outlives it); the report stands
            pass
    return view
