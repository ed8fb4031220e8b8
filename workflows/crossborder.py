"""CrossBorderRecoveryWorkflow: one per payment a case found leaving the country. Asks every
recall channel at once (the correspondent's recall, the central bank's channel, the police
channel; whichever the registry lists), then takes what each reports, over days or weeks, as
signed callbacks the gateway verifies and hands over as the `recall_update` update:

- located at another bank: the payment moved on; every other channel still working is sent the
  new destination, so the recall follows the money;
- held: the bank says how much it holds;
- returned (in part or in full, in the payment's own currency; one return counted once by its
  reference, whichever channels report it);
- refused, or gave up (no answer from abroad): the channel's part ends.

Time: the 72-hour window from the transfer is shown with its end; a channel silent for a day is
reminded (weekly after the window); a channel still without news 48 hours after the request gets
the case escalated to the province centre; a channel silent for 90 days is given up for. A
channel that cannot be reached is tried again on a timer, for as long as it takes.

The recovery ends when all of it came back or every channel has ended; then what did not come
back and is not held abroad counts lost (workflows/recall.py keeps the sum exact). Each change is
signalled to the case (its view lists the recovery), and the end is recorded in the audit log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from stopline.domain import (
        APPLIED_UPDATE_QUERY,
        CROSS_BORDER_WORKFLOW,
        ERR_ALREADY_APPLIED,
        ERR_ANSWER_REJECTED,
        ERR_DECISION_INVALID,
        ERR_DECISION_NOT_APPLICABLE,
        ERR_DECISION_NOT_PERMITTED,
        ERR_REQUEST_REJECTED,
        ERR_UNKNOWN_REQUEST,
        LIST_RECALL_CHANNELS,
        RECALL_ESCALATE_AFTER,
        RECALL_REMINDER_AFTER,
        RECALL_REMINDER_AFTER_WINDOW,
        RECALL_UPDATE_UPDATE,
        RECORD_DECISION,
        RECOVERY_CHANGED_SIGNAL,
        RECOVERY_WINDOW,
        REQUEST_RECALL,
        Amount,
        ChannelState,
        DecisionRecord,
        ForeignDestination,
        HoldEvent,
        RecallAck,
        RecallChannelRef,
        RecallChannelView,
        RecallInput,
        RecallStatus,
        RecallUpdateInput,
        RecoveryInput,
        RecoveryState,
        RecoveryView,
    )
    from stopline.money import format_amount
    from workflows.calls import CALL_HEARTBEAT_TIMEOUT, CALL_TIMEOUT
    from workflows.recall import estimate, recovery_totals, release_hold

# One call per attempt: a channel that cannot be reached is tried again by the workflow on a timer
# (UNREACHABLE_WAIT doubling to UNREACHABLE_MAX_WAIT), so a day-long outage costs a few dozen
# calls, operators see "unreachable" and the next try meanwhile, and the wait survives restarts.
# (Activity-level retries would hide the outage in a pending activity for as long as it lasts.)
RECALL_RETRY = RetryPolicy(maximum_attempts=1, non_retryable_error_types=[ERR_ANSWER_REJECTED, ERR_REQUEST_REJECTED])
UNREACHABLE_WAIT = timedelta(seconds=30)
UNREACHABLE_MAX_WAIT = timedelta(hours=1)
UNREACHABLE_LONG_WAIT = timedelta(hours=6)  # after a day down
# Bounds on what one channel can make the recovery (and the case's history) carry.
MAX_UPDATES_PER_CHANNEL = 200
MAX_TRAIL = 20  # banks the money can be located at, one after another
EVENTS_SHOWN = 100  # the view carries the latest events (the audit log has every one)
# Reading the registry (which channels exist) heals when an operator fixes it: asked again on the
# same timer as an unreachable channel.
LOOKUP_RETRY = RetryPolicy(maximum_attempts=1)
LOOKUP_TIMEOUT = timedelta(seconds=10)
RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))


def _next_wait(wait: timedelta, failing_since: datetime, now: datetime) -> timedelta:
    """The wait before the next try at something still failing: doubled, hourly at most on the
    first day, then every few hours (weeks of outage must not fill the recovery's history)."""
    cap = UNREACHABLE_MAX_WAIT if now - failing_since < timedelta(days=1) else UNREACHABLE_LONG_WAIT
    return min(wait * 2, cap)


@dataclass
class _Channel:
    view: RecallChannelView
    keys: list[str] = field(default_factory=list)  # every request sent on it, in order
    told: int = 0  # how many places of the trail it was sent
    fingerprints: dict[int, str] = field(default_factory=dict)  # update sequence -> payload hash
    heard: int = 0  # bumped on every acknowledgement and update: wakes its loop
    quiet_since: datetime | None = None  # the first acknowledgement, then the last update
    last_asked_at: datetime | None = None
    next_at: datetime | None = None
    next_what: str = ""


@workflow.defn(name=CROSS_BORDER_WORKFLOW)
class CrossBorderRecoveryWorkflow:
    @workflow.init
    def __init__(self, recovery: RecoveryInput) -> None:
        self._in = recovery
        self._channels: dict[str, _Channel] = {}
        self._trail: list[ForeignDestination] = []
        self._returns: dict[str, int] = {}  # return reference -> minor units
        self._held: dict[str, int] = {}  # holding bank's BIC -> minor units it says it holds
        self._state = RecoveryState.ACTIVE
        self._escalated_to = ""
        self._events: list[HoldEvent] = []
        self._changed = False
        self._window_ends_at = recovery.sent_at + RECOVERY_WINDOW
        self._escalate_at: datetime | None = None
        self._lookup_next_at: datetime | None = None  # no channel listed yet: asked again then

    @workflow.run
    async def run(self, recovery: RecoveryInput) -> RecoveryView:
        notifier = asyncio.create_task(self._notifier())
        refs = await self._channels_listed()
        for ref in refs:
            self._channels[ref.institution] = _Channel(RecallChannelView(ref.channel, ref.institution))
        self._event(f"{format_amount(recovery.amount)} sent abroad to {recovery.destination.bic} from "
                    f"{recovery.from_account}: recall asked through {', '.join(self._channels)}")  # fmt: skip
        work = [asyncio.create_task(self._work(ch)) for ch in self._channels.values()]
        if recovery.province_unit:
            self._escalate_at = workflow.now() + RECALL_ESCALATE_AFTER
            work.append(asyncio.create_task(self._escalate_when_silent()))
        await workflow.wait_condition(self._over)
        await asyncio.gather(*work)
        self._state = RecoveryState.RECOVERED if self._all_returned() else RecoveryState.ENDED
        returned, held, _, lost = self._totals()
        self._event(f"recovery {self._state.value}: {format_amount(returned)} returned, {format_amount(held)} held "
                    f"abroad, {format_amount(lost)} lost")  # fmt: skip
        await workflow.execute_activity(
            RECORD_DECISION,
            DecisionRecord(recovery.case_id, recovery.requested_by, "recovery_ended", {
                "recovery_id": workflow.info().workflow_id, "state": self._state.value,
                "currency": recovery.amount.currency, "sent_minor": recovery.amount.minor_units,
                "returned_minor": returned.minor_units, "held_abroad_minor": held.minor_units,
                "lost_minor": lost.minor_units, "returns": dict(self._returns),
            }),
            start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
        )  # fmt: skip
        self._changed = True
        await workflow.wait_condition(lambda: not self._changed and workflow.all_handlers_finished())
        notifier.cancel()
        return self.view()

    async def _channels_listed(self) -> list[RecallChannelRef]:
        """The recall channels the registry lists. None listed: said in the view, and asked again
        (hourly, then every few hours) until an operator adds one: the money is not given up for
        a gap in the registry."""
        wait = UNREACHABLE_WAIT
        first_failure: datetime | None = None
        while True:
            try:
                return await workflow.execute_activity(
                    LIST_RECALL_CHANNELS, self._in.case_id, result_type=list[RecallChannelRef],
                    start_to_close_timeout=LOOKUP_TIMEOUT, retry_policy=LOOKUP_RETRY,
                )  # fmt: skip
            except ActivityError as err:
                message = err.cause.message if err.cause is not None else str(err)
                now = workflow.now()
                first_failure = first_failure or now
                if not self._events or self._events[-1].what != message:
                    self._event(message)
                self._lookup_next_at = now + wait
            await workflow.sleep(wait)
            wait = _next_wait(wait, first_failure, workflow.now())

    # --- what operators see --------------------------------------------------------------------

    @workflow.query
    def view(self) -> RecoveryView:
        returned, held, outstanding, lost = self._totals()
        nexts = [(ch.next_at, ch.next_what) for ch in self._channels.values()
                 if ch.next_at is not None and not ch.view.state.ended]  # fmt: skip
        if not self._channels and self._lookup_next_at is not None:
            nexts.append((self._lookup_next_at, "the registry is read again for recall channels"))
        if self._escalate_at is not None and not self._escalated_to and self._state is RecoveryState.ACTIVE:
            nexts.append((self._escalate_at, "escalation to the province centre if a channel is still silent"))
        if self._state is RecoveryState.ACTIVE:
            nexts.append((self._window_ends_at, "the 72-hour recovery window ends"))
        now = workflow.now()
        upcoming = sorted((n for n in nexts if n[0] >= now), key=lambda n: n[0])
        next_at, next_what = upcoming[0] if upcoming and not self._over() else (None, "")
        return RecoveryView(
            recovery_id=workflow.info().workflow_id, case_id=self._in.case_id, from_account=self._in.from_account,
            destination=self._in.destination, amount=self._in.amount, sent_at=self._in.sent_at,
            window_ends_at=self._window_ends_at, state=self._state,
            channels=[ch.view for ch in self._channels.values()], trail=list(self._trail),
            returned=returned, held_abroad=held, outstanding=outstanding, lost=lost,
            estimate=estimate(self._in.amount, self._in.estimate_rate),
            next_deadline=next_at, next_deadline_what=next_what, escalated_to=self._escalated_to,
            events=list(self._events[-EVENTS_SHOWN:]),
        )  # fmt: skip

    @workflow.query(name=APPLIED_UPDATE_QUERY)
    def applied_update(self, which: str) -> str:
        """The fingerprint of update "<institution> <sequence>" as applied, "" if none was."""
        institution, _, sequence = which.rpartition(" ")
        ch = self._channels.get(institution)
        return ch.fingerprints.get(int(sequence), "") if ch is not None and sequence.isdigit() else ""

    def _totals(self) -> tuple[Amount, Amount, Amount, Amount]:
        return recovery_totals(self._in.amount, self._returns, self._held, ended=self._state is not RecoveryState.ACTIVE)

    def _all_returned(self) -> bool:
        return sum(self._returns.values()) >= self._in.amount.minor_units

    def _over(self) -> bool:
        """All of it came back, or no channel is working on it any more."""
        return bool(self._channels) and (
            self._all_returned() or all(ch.view.state.ended for ch in self._channels.values())
        )

    def _event(self, what: str) -> None:
        self._events.append(HoldEvent(workflow.now(), what))
        self._changed = True

    async def _notifier(self) -> None:
        """Tell the case how the recovery stands, latest first-come: one signal at a time, each
        carrying the whole view, so the case never keeps an older view after a newer one."""
        while True:
            await workflow.wait_condition(lambda: self._changed)
            self._changed = False
            try:
                await workflow.get_external_workflow_handle(self._in.case_workflow_id).signal(
                    RECOVERY_CHANGED_SIGNAL, self.view()
                )
            except Exception:  # noqa: BLE001 - the case has closed; this workflow's view stays queryable
                pass

    # --- asking the channels -------------------------------------------------------------------

    async def _work(self, ch: _Channel) -> None:
        """One channel: ask, then remind while it is silent, send it where the money moved on,
        and give it up after `give_up_after` of silence; until the recovery is over or its part
        ended."""
        if not await self._ask(ch):
            return
        while not self._over() and not ch.view.state.ended:
            if ch.told < len(self._trail):  # another channel located the money elsewhere
                if not await self._ask(ch):
                    return
                continue
            now = workflow.now()
            assert ch.quiet_since is not None and ch.last_asked_at is not None
            every = RECALL_REMINDER_AFTER if now < self._window_ends_at else RECALL_REMINDER_AFTER_WINDOW
            remind_at = max(ch.quiet_since, ch.last_asked_at) + every
            give_up_at = ch.quiet_since + self._in.give_up_after
            ch.next_at, ch.next_what = (
                (remind_at, f"{ch.view.institution} is reminded if still silent") if remind_at < give_up_at
                else (give_up_at, f"{ch.view.institution} is given up for if still silent")
            )  # fmt: skip
            heard = ch.heard
            try:
                await workflow.wait_condition(
                    lambda heard=heard: ch.heard != heard or self._over() or ch.view.state.ended or ch.told < len(self._trail),
                    timeout=max(ch.next_at - now, timedelta(seconds=1)),
                )
                continue
            except TimeoutError:
                pass
            if workflow.now() >= give_up_at:
                ch.view.state = ChannelState.SILENT
                ch.view.detail = f"nothing heard since {ch.quiet_since.isoformat()}: given up"
                self._event(f"{ch.view.institution} silent for {self._in.give_up_after.days} days: given up for")
                break
            ch.view.reminders += 1
            self._event(f"{ch.view.institution} reminded (reminder {ch.view.reminders}): nothing heard since "
                        f"{ch.quiet_since.isoformat()}")  # fmt: skip
            if not await self._ask(ch, reminder=ch.view.reminders):
                return
        ch.next_at, ch.next_what = None, ""

    async def _ask(self, ch: _Channel, reminder: int = 0) -> bool:
        """Send one request (a first request, a reminder, or the money's new place) until the
        channel acknowledges it. False when the channel's part ended: it refused the first
        request, or stayed unreachable for `give_up_after`, or the recovery ended first. A refused
        reminder or follow-up is noted; the channel's part goes on (what it reports about the
        money it holds must still count)."""
        view = ch.view
        n = len(ch.keys) + 1
        info = workflow.info()
        key = f"{info.workflow_id}/recall/{view.channel.value}/{n}"
        ch.keys.append(key)  # before the call: an update about it may come as fast as its answer
        ch.told = len(self._trail)
        destination = self._place()
        request = RecallInput(
            idempotency_key=key, recovery_id=info.workflow_id, case_id=self._in.case_id,
            requested_by=self._in.requested_by, channel=view.channel, institution=view.institution,
            from_account=self._in.from_account, destination=destination, amount=self._in.amount,
            sent_at=self._in.sent_at, reason=self._in.reason, reminder=reminder,
        )  # fmt: skip
        wait = UNREACHABLE_WAIT
        down_since: datetime | None = None
        tries = 0
        while True:
            tries += 1  # the call's deadline grows with it, as with Temporal's own retries
            try:
                ack = await workflow.execute_activity(
                    REQUEST_RECALL, replace(request, try_number=tries), result_type=RecallAck, activity_id=f"recall/{view.channel.value}/{n}",
                    start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
                    retry_policy=RECALL_RETRY,
                )  # fmt: skip
                break
            except ActivityError as err:
                cause = err.cause
                message = cause.message if cause is not None else str(err)
                now = workflow.now()
                if isinstance(cause, ApplicationError) and cause.type in (ERR_REQUEST_REJECTED, ERR_ANSWER_REJECTED):
                    self._event(f"{view.institution}: request {n} refused ({message})")
                    ch.last_asked_at = now  # a refused reminder is not sent again at once
                    if n == 1:
                        view.state, view.detail = ChannelState.REFUSED, f"request refused: {message}"
                        return False
                    view.detail = f"request {n} refused: {message}"
                    return True
                view.attempts += 1
                down_since = down_since or now
                if view.attempts & (view.attempts - 1) == 0:
                    self._changed = True  # the case is told at tries 1, 2, 4, 8...: not every hour for weeks
                if now - down_since >= self._in.give_up_after:
                    view.state = ChannelState.SILENT
                    view.detail = f"unreachable since {down_since.isoformat()}: given up ({message})"
                    self._event(f"{view.institution} unreachable for {self._in.give_up_after.days} days: given up for")
                    return False
                retry_at = now + wait
                view.detail = f"unreachable since {down_since.isoformat()} ({message}); trying again at {retry_at.isoformat()}"
                ch.next_at, ch.next_what = retry_at, f"request {n} to {view.institution} is sent again"
            try:
                await workflow.wait_condition(lambda: self._over() or view.state.ended, timeout=wait)
                return False
            except TimeoutError:
                wait = _next_wait(wait, down_since, workflow.now())
        now = workflow.now()
        view.attempts += ack.attempts
        view.reference = view.reference or ack.reference
        view.detail = ""
        if view.state is ChannelState.REQUESTING:
            view.state, view.acknowledged_at = ChannelState.ACKNOWLEDGED, now
        view.last_heard_at = now
        if ch.quiet_since is None:
            ch.quiet_since = now
        ch.last_asked_at = now
        ch.heard += 1
        what = "reminder" if reminder else ("request" if n == 1 else f"new destination {destination.bic}")
        self._event(f"{view.institution} acknowledged the {what} (reference {ack.reference})")
        return True

    async def _escalate_when_silent(self) -> None:
        """48 hours after the requests, a channel still without news gets the case to the
        province centre (once), with a day of the window left."""
        assert self._escalate_at is not None
        try:
            await workflow.wait_condition(self._over, timeout=self._escalate_at - workflow.now())
            return
        except TimeoutError:
            pass
        silent = [ch.view.institution for ch in self._channels.values() if ch.view.updates == 0 and not ch.view.state.ended]
        if not silent:
            return
        unit = self._in.province_unit
        self._escalated_to = unit
        self._event(f"escalated to {unit}: no news from {', '.join(silent)} "
                    f"{int(RECALL_ESCALATE_AFTER.total_seconds() // 3600)} hours after the request")  # fmt: skip
        await workflow.execute_activity(
            RECORD_DECISION,
            DecisionRecord(self._in.case_id, unit, "recovery_escalated",
                           {"recovery_id": workflow.info().workflow_id, "silent_channels": silent,
                            "window_ends_at": self._window_ends_at.isoformat()}),
            start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
        )  # fmt: skip

    # --- what the channels report --------------------------------------------------------------

    @workflow.update(name=RECALL_UPDATE_UPDATE)
    def recall_update(self, update: RecallUpdateInput) -> RecoveryView:
        ch = self._channels[update.institution]
        view = ch.view
        ch.fingerprints[update.sequence] = update.fingerprint
        now = workflow.now()
        view.updates = update.sequence
        view.last_heard_at = ch.quiet_since = now
        ch.heard += 1
        who = view.institution
        amount = format_amount(update.amount) if update.amount is not None else ""
        location = update.location
        if update.status is RecallStatus.LOCATED:
            assert location is not None
            view.state = ChannelState.LOCATED
            here = self._place()
            if (location.bic, location.account) != (here.bic, here.account):
                self._trail.append(location)
            ch.told = len(self._trail)  # it knows: the others are sent the new place
            self._event(f"{who}: located at {location.bic} ({location.account}): the payment moved on")
        elif update.status is RecallStatus.HELD:
            assert location is not None and update.amount is not None
            view.state = ChannelState.HELD
            self._held[location.bic] = update.amount.minor_units
            self._event(f"{who}: {amount} held at {location.bic}")
        elif update.status is RecallStatus.RETURNED:
            assert update.amount is not None
            view.state = ChannelState.RETURNED
            if update.return_reference in self._returns:
                self._event(f"{who}: return {update.return_reference} ({amount}) reported again: counted once")
            else:
                self._returns[update.return_reference] = update.amount.minor_units
                if location is not None:
                    release_hold(self._held, update.amount.minor_units, location.bic)
                self._event(f"{who}: {amount} returned ({update.return_reference})")
        elif update.status is RecallStatus.REFUSED:
            view.state, view.detail = ChannelState.REFUSED, update.reason
            self._event(f"{who}: refused: {update.reason}")
        else:
            view.state, view.detail = ChannelState.SILENT, update.reason
            self._event(f"{who}: gave up: {update.reason}")
        return self.view()

    def _place(self) -> ForeignDestination:
        return self._trail[-1] if self._trail else self._in.destination

    @recall_update.validator
    def _check_update(self, update: RecallUpdateInput) -> None:
        owner = next((ch for ch in self._channels.values() if update.idempotency_key in ch.keys), None)
        if owner is None:
            raise ApplicationError(f"recall request {update.idempotency_key!r} was not sent by this recovery",
                                   type=ERR_UNKNOWN_REQUEST)  # fmt: skip
        if owner.view.institution != update.institution:
            raise ApplicationError(f"recall request {update.idempotency_key!r} was sent to {owner.view.institution}, "
                                   f"not {update.institution}", type=ERR_DECISION_NOT_PERMITTED)  # fmt: skip
        if update.case_id != self._in.case_id:
            raise ApplicationError(f"case_id: this recovery is for case {self._in.case_id}, not {update.case_id}",
                                   type=ERR_DECISION_INVALID)  # fmt: skip
        ch, seq = owner, update.sequence
        applied = ch.view.updates
        if seq <= applied:
            if ch.fingerprints.get(seq) == update.fingerprint:
                raise ApplicationError(f"update {seq} from {update.institution} was applied already",
                                       type=ERR_ALREADY_APPLIED)  # fmt: skip
            raise ApplicationError(f"update {seq} from {update.institution} was applied already, with other content",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if self._state is not RecoveryState.ACTIVE or self._over():
            state = self._state.value if self._state is not RecoveryState.ACTIVE else "ended"
            raise ApplicationError(f"the recovery has {state}: update {seq} comes too late",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if ch.view.state.ended:
            raise ApplicationError(f"{update.institution}'s part has ended ({ch.view.state.value}): update {seq} "
                                   "comes too late", type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if seq > MAX_UPDATES_PER_CHANNEL:
            raise ApplicationError(f"update {seq}: at most {MAX_UPDATES_PER_CHANNEL} updates per channel and recovery",
                                   type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if seq > applied + 1:
            raise ApplicationError(f"update {seq} from {update.institution} came before update {applied + 1}: "
                                   f"send update {applied + 1} first", type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        self._check_content(update)

    def _check_content(self, update: RecallUpdateInput) -> None:
        sent = self._in.amount
        status = update.status

        def invalid(problem: str) -> ApplicationError:
            return ApplicationError(problem, type=ERR_DECISION_INVALID)

        if status in (RecallStatus.LOCATED, RecallStatus.HELD) and update.location is None:
            raise invalid(f"location: required for {status.value}")
        if status is RecallStatus.LOCATED and len(self._trail) >= MAX_TRAIL:
            raise ApplicationError(f"location: the payment was located at {MAX_TRAIL} banks already; the recovery "
                                   "follows it no further", type=ERR_DECISION_NOT_APPLICABLE)  # fmt: skip
        if status in (RecallStatus.HELD, RecallStatus.RETURNED):
            amount = update.amount
            if amount is None or amount.minor_units <= 0:
                raise invalid(f"amount: a positive amount in {sent.currency} is required for {status.value}")
            if amount.currency != sent.currency:
                raise invalid(f"amount: the payment was sent in {sent.currency}; {status.value} is reported in "
                              f"{sent.currency}, not {amount.currency}")  # fmt: skip
            returned = sum(self._returns.values())
            if status is RecallStatus.HELD and amount.minor_units > sent.minor_units - returned:
                raise invalid(f"amount: {format_amount(amount)} held is more than the "
                              f"{format_amount(Amount(sent.minor_units - returned, sent.currency))} not yet returned")  # fmt: skip
            if status is RecallStatus.RETURNED:
                if not update.return_reference:
                    raise invalid("return_reference: required for returned (one return is counted once)")
                earlier = self._returns.get(update.return_reference)
                if earlier is not None and earlier != amount.minor_units:
                    raise invalid(f"return_reference: return {update.return_reference} was reported as "
                                  f"{format_amount(Amount(earlier, sent.currency))}, not {format_amount(amount)}")  # fmt: skip
                if earlier is None and returned + amount.minor_units > sent.minor_units:
                    raise invalid(f"amount: {format_amount(amount)} returned would bring back more than the "
                                  f"{format_amount(sent)} sent ({format_amount(Amount(returned, sent.currency))} "
                                  "came back already)")  # fmt: skip
        if status in (RecallStatus.REFUSED, RecallStatus.NO_ANSWER) and not update.reason.strip():
            raise invalid(f"reason: required for {status.value}")
