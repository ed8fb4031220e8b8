"""A bare-Temporal workflow of a Stopline case's shape: the throughput bench's second baseline.

bench.bare's BareFanOut runs as many no-op activities as a case, but a case is more Temporal work
than its activities: child workflows (a hold per account held) that stay open on long timers, an
answer-deadline timer watching each call, search-attribute upserts, patch markers, and calls that
are mostly local activities. BareCaseShape does that work with nothing of Stopline in it (the
no-op activity of bench.bare, children that only wait), so Stopline's throughput against it is
the hub's own cost (signing, verifying, auditing, validating, the sandbox banks), not the design's
Temporal work.

Its input is a shape measured from the first Stopline case's histories (bench/throughput.py
`case_shape`), so it follows the hub if the hub changes, per workflow:
  * `patches`: workflow.patched markers (the SDK also upserts TemporalChangeVersion for each, as it
    does for the case's and the holds' patches);
  * `upserts`: upserts besides the patches' (StoplineStatus, a keyword the dev server has: the hub
    registers it, stopline/domain.py SEARCH_ATTRIBUTES; only its name is used here);
  * `local_calls` and `regular_calls`: no-op calls, `local_calls` of them local activities, as
    the case tries its first calls locally (workflows/case.py _chase_call), the regular ones
    started first (in a boxing case's history its regular activity is in the first workflow task);
    each watched by a 10-minute timer as an answer deadline is (workflows/supervision.py);
  * `timers`: timers besides the calls' (a child's: long timers it stays open on, as a hold waits
    for its stop's 48 hours);
  * `children`: the child workflows started, each a shape of its own, left open (ABANDON: the
    parent completes, its children wait on, as a case's holds outlive the chase).

The order approximates a chase: the calls are dealt round-robin to one lane per child (an
account), each lane's calls one after the other, the lanes at once; a lane's child is started,
without waiting for the start, as its first call (the stop) is answered. The counts are what is
meant to match; the bench prints the measured counts of both side by side.

Nothing of Stopline is imported (the workflow sandbox re-imports this module).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.workflow import ParentClosePolicy

from bench.bare import ACTIVITY_TIMEOUT, noop

SA_STATUS = SearchAttributeKey.for_keyword("StoplineStatus")
CALL_DEADLINE = timedelta(minutes=10)  # an answer deadline (workflows/supervision.py answered_within)
LONG_WAIT = timedelta(days=2)  # a hold's stop-payment runs 48 hours
LOCAL_TRY_TIMEOUT = timedelta(seconds=3)  # workflows/case.py LOCAL_TRY_TIMEOUT


async def _prologue(shape: dict) -> None:
    for p in range(shape.get("patches", 0)):
        workflow.patched(f"bare-shape-{p}")
    for u in range(max(0, shape.get("upserts", 0) - 1)):  # the last one marks the end, as a case's does
        workflow.upsert_search_attributes([SA_STATUS.value_set(f"step-{u}")])


def _last_upsert(shape: dict) -> None:
    if shape.get("upserts", 0) > 0:
        workflow.upsert_search_attributes([SA_STATUS.value_set("done")])


class _Calls:
    """The shape's calls: the regular ones first in the order they are made (a case's regular
    activity is scheduled in its first workflow task, as the measured history shows), then the
    local ones."""

    def __init__(self, shape: dict) -> None:
        self.regular_left = shape.get("regular_calls", 0)

    async def call(self, step: int) -> None:
        if self.regular_left <= 0:
            run = workflow.execute_local_activity(noop, step, start_to_close_timeout=LOCAL_TRY_TIMEOUT)
        else:
            self.regular_left -= 1
            run = workflow.execute_activity(noop, step, start_to_close_timeout=ACTIVITY_TIMEOUT)
        task = asyncio.ensure_future(run)
        await workflow.wait_condition(task.done, timeout=CALL_DEADLINE)  # the answer deadline
        await task


@workflow.defn(name="BareShapeChild")
class BareShapeChild:
    """A hold's stand-in: its shape's work, then open on its long timers until terminated."""

    @workflow.run
    async def run(self, shape: dict) -> None:
        await _prologue(shape)
        calls = _Calls(shape)
        for step in range(shape.get("local_calls", 0) + shape.get("regular_calls", 0)):
            await calls.call(step)
        _last_upsert(shape)
        await asyncio.gather(
            *(workflow.sleep(LONG_WAIT + timedelta(seconds=t)) for t in range(shape.get("timers", 0)))
        )


@workflow.defn(name="BareCaseShape")
class BareCaseShape:
    """One Stopline case's Temporal work with no-op calls; returns when its calls are answered
    and its children started (the children stay open)."""

    @workflow.run
    async def run(self, shape: dict) -> int:
        await _prologue(shape)
        calls = _Calls(shape)
        children = shape.get("children", [])
        total = shape.get("local_calls", 0) + shape.get("regular_calls", 0)
        lanes = max(1, len(children))
        started: list[asyncio.Future] = []
        # Timers besides the calls' (none in a boxing case): waited on alongside, cancelled at the end.
        extra = [asyncio.ensure_future(workflow.sleep(LONG_WAIT)) for _ in range(shape.get("timers", 0))]

        async def lane(n: int) -> None:
            for i, step in enumerate(range(n, total, lanes)):
                await calls.call(step)
                if i == 0 and n < len(children):
                    started.append(asyncio.ensure_future(self._child(n, children[n])))
            if n < len(children) and n >= total:  # a child with no call of its own
                started.append(asyncio.ensure_future(self._child(n, children[n])))

        await asyncio.gather(*(lane(n) for n in range(lanes)))
        await asyncio.gather(*started)
        for t in extra:
            t.cancel()
        _last_upsert(shape)
        return total

    async def _child(self, n: int, shape: dict) -> None:
        await workflow.start_child_workflow(
            BareShapeChild.run, shape, id=f"{workflow.info().workflow_id}/child/{n}",
            parent_close_policy=ParentClosePolicy.ABANDON,
        )  # fmt: skip


SHAPE_WORKFLOWS = [BareCaseShape, BareShapeChild]
