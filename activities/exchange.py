"""What every activity that talks to an institution shares: seal the request with the hub's key,
record it in the audit log before it leaves, send it, open the institution's signed answer (the
signer must be the institution asked), check it against the request, record it, and map failures
to what Temporal should retry and what no retry can mend."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import grpc
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.convert import account_of
from adapters.errors import NON_RETRYABLE_CODES, InstitutionError
from audit.entry import AuditEntry, Direction
from audit.log import AuditLog
from audit.record import envelope_entry, refusal_entry
from stopline.domain import ERR_ANSWER_REJECTED, ERR_ANSWER_UNVERIFIED, ERR_REQUEST_REJECTED
from trust.envelope import open_envelope, seal
from trust.errors import KeyNotValid, ReplayedEnvelope, StaleEnvelope, TrustError, UnknownSigner
from trust.keys import KeySource, key_source
from trust.registry import Registry
from trust.replay import MemoryNonceCache, NonceCache

log = structlog.get_logger("activities.exchange")

# Failures that can heal by themselves: one side's registry lags a key rotation, clocks have
# drifted, or an answer was replayed (an honest institution's next answer carries a fresh nonce).
# A retry is safe (the institution replays its stored answer), but not for ever: after this many
# calls the request is marked for an operator.
HEALABLE_ATTEMPTS = 10

# A call still waiting for its institution after this long tells Temporal the worker is alive
# (and again at this pace, which the SDK throttles further): the activity's heartbeat timeout
# then notices a dead worker in seconds, while the call itself may wait as long as its deadline.
# Calls answered sooner send no heartbeat at all.
WAITING_HEARTBEAT_SECONDS = 2.0


async def _heartbeating(call):
    """Await `call`, heartbeating every WAITING_HEARTBEAT_SECONDS while it is outstanding (a
    local activity has no heartbeat: it lives inside its workflow task)."""
    if activity.info().is_local:
        return await call
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=WAITING_HEARTBEAT_SECONDS)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # the activity was cancelled (no-op once the call is done)


class ExchangeActivities:
    """Base of the activity classes: the hub's key, the registry, the audit log and the nonce
    cache answers are checked against, and one signed request/answer exchange."""

    _log = log  # subclasses log under their own name

    def __init__(
        self,
        hub_key: KeySource,
        registry: Callable[[], Registry],
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
    ):
        self._hub_key = key_source(hub_key)
        self._replay = replay or MemoryNonceCache()
        self._registry = registry
        self._audit = audit

    async def _record(self, entry: AuditEntry, idempotency_key: str | None = None) -> None:
        """Append to the audit log (a durable local write, off the event loop); with the key of
        the request it belongs to, indexed under it (how a breach report finds its evidence)."""
        if self._audit is not None:
            await asyncio.to_thread(functools.partial(self._audit.append, entry, idempotency_key=idempotency_key))

    async def _exchange(
        self, request, send, answer_type, check, *, case_id: str, institution: str, what: str, attempt: int | None = None
    ):
        """Seal `request`, record it, send it with `send(institution, envelope, attempt)`, then
        open the institution's signed answer as `answer_type` and `check(answer, attempt)` it.
        `attempt` (the call's deadline grows with it) is Temporal's, unless the workflow says
        which call this is (it retries on its own timer, or tried once already as a local
        activity). Raises what Temporal should retry, or a final
        ApplicationError for what no retry can mend."""
        info = activity.info()
        attempt = attempt or info.attempt
        bound = self._log.bind(case_id=case_id, workflow_id=info.workflow_id, institution=institution,
                         step=info.activity_id, attempt=attempt)  # fmt: skip
        healable = attempt < HEALABLE_ATTEMPTS
        request_envelope = seal(request, self._hub_key())
        where = {"case_id": case_id, "institution": institution}
        # Every entry of this exchange is indexed under the request's idempotency key: each
        # attempt sent, and what came back.
        key = getattr(request, "idempotency_key", "") or None
        # Recorded before it leaves: the log never lacks a message an institution received.
        await self._record(envelope_entry(request_envelope, direction=Direction.OUT, **where), key)
        try:
            answer_envelope = await _heartbeating(send(institution, request_envelope, attempt))
        except InstitutionError as err:
            bound.warning(f"{what} call failed", code=err.code.name if err.code else None, error=err.message)
            if err.code in NON_RETRYABLE_CODES:  # the institution refused our message itself
                await self._record(refusal_entry(request_envelope, direction=Direction.OUT, reason=str(err), **where), key)
            if err.retryable or (err.code == grpc.StatusCode.UNAUTHENTICATED and healable):
                raise  # Temporal retries with the workflow's policy
            raise _final(str(err), ERR_REQUEST_REJECTED, attempt) from None

        # The answer counts only if the institution asked signed it, about this very request.
        # Anything else is refused and not acted on.
        try:
            answer = open_envelope(
                answer_envelope, answer_type, self._registry(), expected_signer=institution, replay=self._replay
            )
            result = check(answer, attempt)
        except (UnknownSigner, KeyNotValid, StaleEnvelope, ReplayedEnvelope) as err:
            bound.error(f"{what} answer not verifiable", reason=str(err), will_retry=healable)
            await self._record(refusal_entry(answer_envelope, direction=Direction.IN, reason=str(err), **where), key)
            message = f"answer from {institution} not verifiable: {err}"
            if healable:
                raise ApplicationError(message, type=ERR_ANSWER_UNVERIFIED) from None
            raise _final(message, ERR_ANSWER_REJECTED, attempt) from None
        except (TrustError, ValueError) as err:
            bound.error(f"{what} answer refused", reason=str(err))
            await self._record(refusal_entry(answer_envelope, direction=Direction.IN, reason=str(err), **where), key)
            raise _final(f"answer from {institution} refused: {err}", ERR_ANSWER_REJECTED, attempt) from None
        await self._record(envelope_entry(answer_envelope, direction=Direction.IN, **where), key)
        return result, bound


def _final(message: str, error_type: str, attempt: int) -> ApplicationError:
    """A failure no retry can mend; carries how many calls it took, for operators."""
    return ApplicationError(message, {"attempts": attempt}, type=error_type, non_retryable=True)


def _echoes(req, answer) -> None:
    """The answer is about this very request: key, case and account."""
    if answer.idempotency_key != req.idempotency_key:
        raise ValueError(f"answer is for request {answer.idempotency_key!r}, not {req.idempotency_key!r}")
    if account_of(answer.account) != req.account:
        raise ValueError(f"answer is about account {account_of(answer.account)}, not {req.account}")
    if answer.case_id != req.case_id:
        raise ValueError(f"answer is for case {answer.case_id!r}, not {req.case_id!r}")
