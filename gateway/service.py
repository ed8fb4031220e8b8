"""HubService: the hub's front door for police units and operators."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import grpc
import structlog
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.convert import account_of, amount_of, freeze_result_of, money_pb, return_result_of
from audit.entry import AuditEntry, Direction
from audit.log import AuditLog
from audit.record import envelope_entry, refusal_entry
from gateway.convert import CASE_STATUS_OF_PB, CASE_STATUS_PB, HOLD_STATE_PB, case_view_pb, recall_update_of
from gateway.ratelimit import CallerRateLimit
from gateway.validation import (
    CASE_ID_PATTERN,
    DEVICE_ID_PATTERN,
    MAX_REPORT_BYTES,
    InvalidReport,
    validate_account_shape,
    validate_phone,
    validate_report,
)
from stopline.caseindex import CaseIndex, account_key, device_key, payment_key, phone_key
from stopline.domain import (
    ACKNOWLEDGE_ESCALATION_UPDATE,
    APPLIED_UPDATE_QUERY,
    CASE_WORKFLOW,
    CONCLUDE_CASE_UPDATE,
    DECIDE_HOLD_UPDATE,
    DEFAULT_CHASE_DEPTH,
    ERR_ALREADY_APPLIED,
    ERR_DECISION_INVALID,
    ERR_DECISION_NOT_PERMITTED,
    ERR_REPORT_CONFLICT,
    ERR_UNKNOWN_REQUEST,
    FREEZE_RESULT_UPDATE,
    LINK_CASE_UPDATE,
    RECALL_UPDATE_UPDATE,
    RETURN_RESULT_UPDATE,
    SA_AMOUNT_MINOR,
    SA_CASE_ID,
    SA_CURRENCY,
    SA_STATUS,
    UNBLOCK_NUMBER_UPDATE,
    Amount,
    AnswerDeadlines,
    CaseInput,
    CaseStatus,
    CaseView,
    ConclusionInput,
    DecisionKind,
    EscalationAckInput,
    EscalationPolicy,
    EscalationView,
    EstimateRate,
    FreezeCallback,
    HoldDecisionInput,
    HoldView,
    LinkCaseInput,
    NumberView,
    RecallUpdateInput,
    RecoveryView,
    ReturnCallback,
    UnblockDecisionInput,
    case_workflow_id,
    hold_workflow_id,
    number_workflow_id,
    stop_targets,
)
from stopline.money import format_amount
from stopline.v1 import bank_pb2, crossborder_pb2, envelope_pb2, hub_pb2, hub_pb2_grpc
from trust.envelope import open_envelope, seal
from trust.errors import EnvelopeRejected, MalformedPayload, WrongPayloadType, WrongSigner
from trust.keys import KeySource, key_source
from trust.registry import RECALL_CHANNELS, Registry, Role
from trust.replay import MemoryNonceCache, NonceCache
from trust.tls import peer_mismatch, tls_peer

log = structlog.get_logger("gateway")

MEMO_REPORT_SHA256 = "report_sha256"
DEFAULT_PAGE_SIZE = 100
# Reading a running case asks its worker. A worker busy with a thousand-account chase may take
# seconds to answer; with no worker at all, say so before the client's 10 s deadline.
QUERY_TIMEOUT = timedelta(seconds=6)
# What the answer needs to get back to the caller once the workflow has answered (or not).
ANSWER_MARGIN = timedelta(seconds=1)


def query_timeout(context: grpc.aio.ServicerContext) -> timedelta:
    """QUERY_TIMEOUT, or less when the caller's own deadline is nearer: on a busy hub the steps
    before the query (the envelope, the audit log, describing the workflow) can take seconds, and
    "cannot be read now" must still reach the caller before it gives up."""
    remaining = context.time_remaining()
    if remaining is None:
        return QUERY_TIMEOUT
    return max(timedelta(milliseconds=200), min(QUERY_TIMEOUT, timedelta(seconds=remaining) - ANSWER_MARGIN))
MAX_PAGE_SIZE = 500
MAX_QUERY_BYTES = 4096
MAX_PROBLEM_CHARS = 1000
# Linking a case: how often to try (a lead closing meanwhile, a lead still being started), and
# how long to wait for a lead whose workflow is being started.
LINK_ATTEMPTS = 8
LINK_RETRY_SECONDS = 0.2  # a CaseQuery or CaseListQuery is a few dozen bytes


def report_fingerprint(case: CaseInput) -> str:
    """SHA-256 of the validated report's canonical JSON: the same case re-signed (a new envelope,
    even re-serialised) has the same fingerprint; any changed fact changes it."""
    canonical = json.dumps(dataclasses.asdict(case), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _calls_made(pending) -> int:
    """Temporal counts the attempt it is about to make; operators want the calls made so far."""
    started = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    return pending.attempt if started else pending.attempt - 1


def _last_error(pending) -> str:
    return pending.last_failure.message if pending.HasField("last_failure") else ""


def temporal_unavailable_is_unavailable(method):
    """A Temporal outage is the caller's UNAVAILABLE (retry later), never an opaque UNKNOWN."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except (RPCError, RuntimeError) as e:
            log.error("temporal call failed", method=method.__name__, error=str(e))
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the hub's workflow service is unavailable: {e}")

    return wrapper


class HubServicer(hub_pb2_grpc.HubServiceServicer):
    def __init__(
        self,
        client: Client,
        registry: Callable[[], Registry],
        hub_key: KeySource,
        task_queue: str,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
        chase_max_depth: int = DEFAULT_CHASE_DEPTH,
        *,
        case_index: CaseIndex | None = None,
        deadlines: AnswerDeadlines | None = None,
        escalation: EscalationPolicy | None = None,
        estimate_rates: tuple[EstimateRate, ...] = (),
        recall_give_up_days: int = 0,
        report_limit: CallerRateLimit | None = None,
    ):
        # None: no limit (tests, benchmarks); `stopline up` and `stopline gateway` set one.
        self._report_limit = report_limit
        self._chase_max_depth = chase_max_depth
        self._estimate_rates = tuple(estimate_rates)
        self._recall_give_up_days = recall_give_up_days
        # Without an index every case runs alone (no linking, FindCases answers from nothing).
        self._index = case_index
        self._deadlines = deadlines or AnswerDeadlines()
        self._escalation = escalation
        self._client = client
        self._replay = replay or MemoryNonceCache()
        self._registry = registry
        self._hub_key = key_source(hub_key)
        self._task_queue = task_queue
        self._audit = audit

    async def _record(self, *entries: AuditEntry) -> None:
        if self._audit is not None:
            await asyncio.to_thread(self._audit.append, *entries)

    # --- every request: signed, by a signer with the role, over its own TLS certificate ------

    async def _refuse(
        self, context, envelope, code: grpc.StatusCode, problem: str, case_id: str = ""
    ) -> NoReturn:
        """Every refusal is logged and audited, then answered; nothing else happens."""
        if len(problem) > MAX_PROBLEM_CHARS:
            # A refusal quoting a huge field would not fit gRPC's 16 KiB of trailing metadata: the
            # caller would see RESOURCE_EXHAUSTED "Stream removed" instead of what is wrong.
            problem = problem[:MAX_PROBLEM_CHARS] + "... (cut)"
        log.warning("request refused", signer=envelope.signer, case_id=case_id, code=code.name, problem=problem)
        await self._record(
            refusal_entry(envelope, case_id=case_id, institution=envelope.signer, direction=Direction.IN,
                          reason=f"{code.name}: {problem}")
        )  # fmt: skip
        await context.abort(code, problem)

    async def _signed_receipt(self, receipt, where: dict) -> envelope_pb2.Envelope:
        """Stamp `receipt.accepted_at`, seal it with the hub's key and record it going out."""
        receipt.accepted_at.FromDatetime(datetime.now(UTC))
        envelope = seal(receipt, self._hub_key())
        await self._record(envelope_entry(envelope, direction=Direction.OUT, **where))
        return envelope

    async def _open(self, request, context, message_type, role: Role, doing: str, max_payload: int):
        """The request's verified payload, or a refusal: UNAUTHENTICATED for a TLS client that is
        not the signer or an envelope that fails any check, PERMISSION_DENIED for a signer without
        `role`, INVALID_ARGUMENT for a missing, oversize or wrong-typed payload."""
        if not request.HasField("envelope"):
            await self._refuse(context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT, "envelope: required")
        envelope = request.envelope
        registry = self._registry()
        # Before the signature: a client may only send envelopes signed in its own name, so a
        # stolen envelope replayed over another institution's connection burns nothing.
        signer = registry.get(envelope.signer)
        pinned = signer.tls_cert_sha256 if signer is not None else None
        if (mismatch := peer_mismatch(tls_peer(context), envelope.signer, pinned)) is not None:
            await self._refuse(context, envelope, grpc.StatusCode.UNAUTHENTICATED, mismatch)
        if len(envelope.payload) > max_payload:
            await self._refuse(
                context, envelope, grpc.StatusCode.INVALID_ARGUMENT,
                f"envelope.payload: {len(envelope.payload)} bytes, at most {max_payload} here",
            )  # fmt: skip

        def may(signer_id: str) -> bool:
            inst = registry.get(signer_id)
            return inst is not None and inst.has_role(role)

        try:
            return open_envelope(envelope, message_type, registry, expected_signer=may, replay=self._replay)
        except EnvelopeRejected as e:
            await self._refuse(context, envelope, grpc.StatusCode.UNAUTHENTICATED, str(e))
        except WrongSigner:
            roles = ", ".join(sorted(registry.institution(envelope.signer).effective_roles)) or "none"
            await self._refuse(
                context, envelope, grpc.StatusCode.PERMISSION_DENIED,
                f"{envelope.signer!r} may not {doing}: that needs role {role.value!r}, it has {roles}",
            )  # fmt: skip
        except (WrongPayloadType, MalformedPayload) as e:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, str(e))

    # --- ReportCase ---------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ReportCase(self, request, context: grpc.aio.ServicerContext):
        await self._within_report_limit(request, context)
        report = await self._open(request, context, hub_pb2.CaseReport, Role.REPORT, "report cases", MAX_REPORT_BYTES)
        envelope = request.envelope
        try:
            case = dataclasses.replace(
                validate_report(report, self._registry(), signer=envelope.signer), max_depth=self._chase_max_depth,
                deadlines=self._deadlines, escalation=self._escalation, estimate_rates=self._estimate_rates,
                recall_give_up_days=self._recall_give_up_days,
            )  # fmt: skip
        except InvalidReport as e:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, str(e), case_id=report.case_id[:64])

        where = {"case_id": case.case_id, "institution": case.reporting_unit}
        # Recorded before anything acts on it: the log never lacks a report the hub acted on.
        await self._record(envelope_entry(envelope, direction=Direction.IN, **where))
        lead = await self._lead_for(case)
        if lead != case.case_id:
            return await self._link(context, envelope, case, lead)
        return await self._start_case(context, envelope, case)

    async def _within_report_limit(self, request, context) -> None:
        """RESOURCE_EXHAUSTED for a caller past its report rate, before anything else: no
        signature checked, no nonce spent (the very same envelope may be sent again), nothing
        audited (a flood must not fill the audit log either), no workflow started."""
        if self._report_limit is None:
            return
        peer = tls_peer(context)
        # The TLS identity the CA vouched for; on a plaintext debugging server, the claimed signer.
        caller = peer.common_name if peer is not None else request.envelope.signer
        wait = self._report_limit.take(caller)
        if wait > 0:
            log.warning("report rate exceeded", caller=caller[:64], retry_after_seconds=round(wait, 3))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{caller[:64]!r} is sending reports faster than {self._report_limit.rate:g} per second "
                f"(bursts of {self._report_limit.burst}): slow down and send this report again in "
                f"{max(wait, 0.001):.3f} s; nothing was recorded or started",
            )

    async def _start_case(self, context, envelope, case: CaseInput):
        """Start the case's workflow (once, ever) and answer with the signed receipt."""
        workflow_id = case_workflow_id(case.case_id)
        fingerprint = report_fingerprint(case)
        where = {"case_id": case.case_id, "institution": case.reporting_unit}
        bound = log.bind(case_id=case.case_id, workflow_id=workflow_id, reporting_unit=case.reporting_unit)
        created = True
        try:
            await self._client.start_workflow(
                CASE_WORKFLOW,
                case,
                id=workflow_id,
                task_queue=self._task_queue,
                # One case, one workflow, ever: a repeated report must never start the work twice.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                # When this process runs a worker on the same client (stopline up), the case's first
                # task comes back with the start: its stop-payments leave a trip through matching
                # sooner. Elsewhere (workers in processes of their own) this is a normal start.
                request_eager_start=True,
                memo={MEMO_REPORT_SHA256: fingerprint},
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(SA_CASE_ID, case.case_id),
                        SearchAttributePair(SA_STATUS, CaseStatus.STOPPING.value),
                        SearchAttributePair(SA_AMOUNT_MINOR, case.total.minor_units),
                        SearchAttributePair(SA_CURRENCY, case.currency),
                    ]
                ),
                static_summary=(
                    f"case {case.case_id}: {format_amount(case.total)} to "
                    f"{len(stop_targets(case))} accounts"
                ),
            )
        except WorkflowAlreadyStartedError:
            created = False
            existing = await self._client.get_workflow_handle(workflow_id).describe()
            if await existing.memo_value(MEMO_REPORT_SHA256, default=None) != fingerprint:
                bound.warning("report conflicts with the existing case")
                await self._record(
                    refusal_entry(envelope, direction=Direction.IN, reason="ALREADY_EXISTS: different content", **where)
                )
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"case {case.case_id} was already reported with different content; report changes as a new case id",
                )
            bound.info("repeated report: case exists, nothing started")
        else:
            bound.info("case opened", total_minor=case.total.minor_units, currency=case.currency)

        receipt = hub_pb2.CaseReceipt(case_id=case.case_id, workflow_id=workflow_id, created=created)
        return hub_pb2.ReportCaseResponse(envelope=await self._signed_receipt(receipt, where))

    # --- linked cases -------------------------------------------------------------------------

    @staticmethod
    def _link_keys(case: CaseInput) -> list[str]:
        """What links cases: the accounts the victims paid, the suspect numbers, the devices."""
        keys = [account_key(t.to_account) for t in case.transfers if t.to_account is not None]
        # A payment sent abroad is one recall, whichever unit reports it.
        keys += [payment_key(t.abroad.bic, t.abroad.payment_reference) for t in case.transfers if t.abroad is not None]
        keys += [phone_key(n) for n in case.suspect_phone_numbers]
        keys += [device_key(d) for d in case.device_ids]
        return list(dict.fromkeys(keys))

    async def _lead_for(self, case: CaseInput) -> str:
        """The open case whose chase this one joins (itself when none shares anything with it)."""
        if self._index is None:
            return case.case_id
        return await asyncio.to_thread(self._index.claim, case.case_id, self._link_keys(case), at=datetime.now(UTC))

    async def _lead_of(self, case_id: str) -> str:
        if self._index is None:
            return case_id
        return await asyncio.to_thread(self._index.lead_of, case_id) or case_id

    async def _link(self, context, envelope, case: CaseInput, lead: str):
        """Join `case` to the running chase of `lead`. A lead that has closed or been concluded
        since takes no new victims: its group is closed in the index and the case is claimed
        again (it then joins another open group, or leads). A lead that refuses it for its
        content (another currency) leaves it to lead its own chase. Every way out is audited."""
        where = {"case_id": case.case_id, "institution": case.reporting_unit}
        keys = self._link_keys(case)
        fingerprint = report_fingerprint(case)
        for _ in range(LINK_ATTEMPTS):
            if lead == case.case_id:
                return await self._start_case(context, envelope, case)
            shared = [
                k for k in keys
                if any(link.lead_case_id == lead and link.case_id != case.case_id
                       for link in await asyncio.to_thread(self._index.find, k))
            ]  # fmt: skip
            handle = self._client.get_workflow_handle(case_workflow_id(lead))
            link = LinkCaseInput(case, ", ".join(k.replace(":", " ", 1) for k in shared) or "linked", fingerprint)
            try:
                newly = await handle.execute_update(LINK_CASE_UPDATE, link, result_type=bool, rpc_timeout=QUERY_TIMEOUT)
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                await self._refuse(context, envelope, grpc.StatusCode.DEADLINE_EXCEEDED,
                                   f"case {lead}, which this case joins, did not answer within {QUERY_TIMEOUT.seconds} s; "
                                   "report again: it is linked once", case_id=case.case_id)  # fmt: skip
            except WorkflowUpdateFailedError as e:
                cause = e.cause if isinstance(e.cause, ApplicationError) else None
                kind = cause.type if cause is not None else None
                if kind == ERR_REPORT_CONFLICT:
                    await self._refuse(context, envelope, grpc.StatusCode.ALREADY_EXISTS,
                                       f"case {case.case_id} was already reported with different content; "
                                       "report changes as a new case id", case_id=case.case_id)  # fmt: skip
                if kind == ERR_DECISION_INVALID:  # it cannot join (another currency): it leads alone
                    log.info("lead case refused the link; it leads its own chase", case_id=case.case_id, lead=lead,
                             why=cause.message if cause else str(e))  # fmt: skip
                    lead = await asyncio.to_thread(self._index.reassign, case.case_id, keys, at=datetime.now(UTC), alone=True)
                    continue
                joined = await self._lead_closed(case, keys, lead, str(cause.message if cause else e))
                if joined is None:
                    break
                lead = joined
                continue
            except RPCError as e:
                if e.status != RPCStatusCode.NOT_FOUND:
                    raise
                try:
                    await handle.describe()
                except RPCError as missing:
                    if missing.status != RPCStatusCode.NOT_FOUND:
                        raise
                    # The lead was claimed a moment ago and its workflow is still being started.
                    await asyncio.sleep(LINK_RETRY_SECONDS)
                    continue
                joined = await self._lead_closed(case, keys, lead, "its workflow has ended")
                if joined is None:
                    break
                lead = joined
                continue
            log.info("case linked", case_id=case.case_id, lead_case_id=lead, shared=shared, new=newly)
            receipt = hub_pb2.CaseReceipt(case_id=case.case_id, workflow_id=case_workflow_id(lead), created=newly)
            return hub_pb2.ReportCaseResponse(envelope=await self._signed_receipt(receipt, where))
        else:
            await self._refuse(context, envelope, grpc.StatusCode.UNAVAILABLE,
                               f"case {case.case_id}: the case it joins ({lead}) could not be reached; report again",
                               case_id=case.case_id)  # fmt: skip
        # It had joined that chase before it closed: a repeated report, nothing to start.
        log.info("repeated report of a case whose chase has closed", case_id=case.case_id, lead_case_id=lead)
        receipt = hub_pb2.CaseReceipt(case_id=case.case_id, workflow_id=case_workflow_id(lead), created=False)
        return hub_pb2.ReportCaseResponse(envelope=await self._signed_receipt(receipt, where))

    async def _lead_closed(self, case: CaseInput, keys: list[str], lead: str, why: str) -> str | None:
        """`lead` takes no new victims: close its group. If the case had joined it before (a
        repeated report), None; otherwise the case is recorded under an open group or leads."""
        log.info("lead case takes no new victims", case_id=case.case_id, lead=lead, why=why)
        await asyncio.to_thread(self._index.close_group, lead)
        try:
            view = await self._client.get_workflow_handle(case_workflow_id(lead)).query(
                "status", result_type=CaseView, rpc_timeout=QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            view = None
        if view is not None and any(c.case_id == case.case_id for c in view.linked_cases):
            return None
        return await asyncio.to_thread(self._index.reassign, case.case_id, keys, at=datetime.now(UTC))

    # --- GetCase ------------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def GetCase(self, request, context: grpc.aio.ServicerContext):
        query = await self._open(request, context, hub_pb2.CaseQuery, Role.READ, "read cases", MAX_QUERY_BYTES)
        if not CASE_ID_PATTERN.match(query.case_id):
            await self._refuse(
                context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT,
                f"case_id: {query.case_id[:80]!r} is not a valid case id",
            )  # fmt: skip
        await self._record(
            envelope_entry(request.envelope, direction=Direction.IN, case_id=query.case_id, institution=request.envelope.signer)
        )
        # A linked case is read through the chase it joined.
        lead = await self._lead_of(query.case_id)
        handle = self._client.get_workflow_handle(case_workflow_id(lead), result_type=CaseView)
        try:
            description = await handle.describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {query.case_id!r}")
            raise
        budget = query_timeout(context)
        try:
            # The whole wait is bounded, not only each try: Temporal's client tries a query again
            # when one times out.
            async with asyncio.timeout(budget.total_seconds()):
                if description.status == WorkflowExecutionStatus.COMPLETED:
                    # A finished case answers from its result: no worker needed to replay it.
                    view = await handle.result(rpc_timeout=budget)
                else:
                    view = await handle.query("status", result_type=CaseView, rpc_timeout=budget)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"case {query.case_id!r} cannot be read now (is a worker running on task queue "
                f"{self._task_queue!r}?): no answer within {budget.total_seconds():.1f} s",
            )
        except (RPCError, WorkflowFailureError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as e:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"case {query.case_id!r} cannot be read now (is a worker running on task queue "
                f"{self._task_queue!r}?): {e}",
            )
        pending = {p.activity_id: (_calls_made(p), _last_error(p)) for p in description.raw_description.pending_activities}
        return hub_pb2.GetCaseResponse(case=case_view_pb(view, pending))

    # --- ListCases ----------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ListCases(self, request, context: grpc.aio.ServicerContext):
        wanted = await self._open(request, context, hub_pb2.CaseListQuery, Role.READ, "read cases", MAX_QUERY_BYTES)
        problem = None
        if wanted.page_size < 0 or wanted.page_size > MAX_PAGE_SIZE:
            problem = f"page_size: {wanted.page_size} is not within 0..{MAX_PAGE_SIZE}"
        elif wanted.status != hub_pb2.CASE_STATUS_UNSPECIFIED and wanted.status not in CASE_STATUS_OF_PB:
            problem = f"status: unknown value {wanted.status}"
        if problem is not None:
            await self._refuse(context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT, problem)
        await self._record(
            envelope_entry(request.envelope, direction=Direction.IN, case_id="", institution=request.envelope.signer)
        )
        query = f"WorkflowType = '{CASE_WORKFLOW}'"
        if wanted.status != hub_pb2.CASE_STATUS_UNSPECIFIED:
            query += f" AND {SA_STATUS.name} = '{CASE_STATUS_OF_PB[wanted.status].value}'"
        temporal_token = None
        if wanted.page_token:
            temporal_token = self._page_token_of(wanted.page_token)
            if temporal_token is None:
                await self._refuse(context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT,
                                   "page_token: not a token from a previous page of this list; start from the first page")  # fmt: skip
        page = self._client.list_workflows(
            query, page_size=wanted.page_size or DEFAULT_PAGE_SIZE, next_page_token=temporal_token
        )
        try:
            await page.fetch_next_page()
        except RPCError as e:
            # A page token the server cannot read is the caller's error, not an outage: Temporal
            # answers a corrupt one with a masked internal error ("something went wrong, please
            # retry"), which, passed on as UNAVAILABLE, would have the client retry it forever.
            if e.status == RPCStatusCode.INVALID_ARGUMENT or (
                wanted.page_token and e.status in (RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN)
            ):
                await self._refuse(context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT,
                                   f"page_token: not a token from a previous page of this list ({e.message})")  # fmt: skip
            raise
        cases = []
        for execution in page.current_page or []:
            attrs = execution.typed_search_attributes
            case_id = attrs.get(SA_CASE_ID) or execution.id.removeprefix("case-")
            status_value = attrs.get(SA_STATUS)
            summary = hub_pb2.CaseSummary(
                case_id=case_id,
                workflow_id=execution.id,
                status=CASE_STATUS_PB.get(CaseStatus(status_value), 0) if status_value else 0,
                total_reported=money_pb(Amount(attrs.get(SA_AMOUNT_MINOR) or 0, attrs.get(SA_CURRENCY) or "")),
            )
            summary.started_at.FromDatetime(execution.start_time)
            cases.append(summary)
        next_token = self._page_token_for(page.next_page_token) if page.next_page_token else b""
        return hub_pb2.ListCasesResponse(cases=cases, next_page_token=next_token)

    # Page tokens go out tagged with an HMAC, so a made-up or altered one is refused here, at
    # once, instead of reaching Temporal's visibility store (which answers a corrupt token after
    # seconds of retries with an internal error). The HMAC key comes from the hub's own key (an
    # Ed25519 signature is deterministic): the same on every gateway, across restarts.
    _PAGE_TAG = 16

    def _page_secret(self) -> bytes:
        key = self._hub_key()
        if getattr(self, "_page_secret_for", None) is not key:
            self._page_secret_for = key
            self._page_secret_bytes = hashlib.sha256(key.private_key.sign(b"stopline ListCases page tokens v1")).digest()
        return self._page_secret_bytes

    def _page_token_for(self, temporal_token: bytes) -> bytes:
        return hmac.new(self._page_secret(), temporal_token, "sha256").digest()[: self._PAGE_TAG] + temporal_token

    def _page_token_of(self, token: bytes) -> bytes | None:
        tag, temporal_token = token[: self._PAGE_TAG], token[self._PAGE_TAG :]
        expected = hmac.new(self._page_secret(), temporal_token, "sha256").digest()[: self._PAGE_TAG]
        return temporal_token if temporal_token and hmac.compare_digest(tag, expected) else None

    # --- DecideHold ---------------------------------------------------------------------------

    async def _update_workflow(self, context, envelope, handle, update: str, arg, case_id: str, *,
                           missing: tuple[grpc.StatusCode, str], ended: str, result_type=HoldView):  # fmt: skip
        """Run an update on a case's, hold's or number's workflow; a refusal by its validator, a
        workflow that never existed (`missing`) or one that has ended (`ended`) is refused and
        audited."""
        try:
            return await handle.execute_update(update, arg, result_type=result_type, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            await self._refuse(context, envelope, grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"the workflow did not answer within {QUERY_TIMEOUT.seconds} s; it may still "
                               "apply this: read the case before sending it again", case_id=case_id)  # fmt: skip
        except WorkflowUpdateFailedError as e:
            cause = e.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            code = {
                ERR_DECISION_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
                ERR_DECISION_NOT_PERMITTED: grpc.StatusCode.PERMISSION_DENIED,
                ERR_UNKNOWN_REQUEST: grpc.StatusCode.NOT_FOUND,
                ERR_ALREADY_APPLIED: grpc.StatusCode.ALREADY_EXISTS,
            }.get(kind, grpc.StatusCode.FAILED_PRECONDITION)
            await self._refuse(context, envelope, code, cause.message if cause is not None else str(e), case_id=case_id)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            try:
                await handle.describe()
            except RPCError as gone:
                if gone.status != RPCStatusCode.NOT_FOUND:
                    raise  # Temporal itself failed: UNAVAILABLE, not "no such hold"
                await self._refuse(context, envelope, missing[0], missing[1], case_id=case_id)
            await self._refuse(context, envelope, grpc.StatusCode.FAILED_PRECONDITION, ended, case_id=case_id)

    @temporal_unavailable_is_unavailable
    async def DecideHold(self, request, context: grpc.aio.ServicerContext):
        decision = await self._open(request, context, hub_pb2.HoldDecision, Role.APPROVE, "decide on holds", MAX_QUERY_BYTES)
        envelope = request.envelope

        async def invalid(problem: str) -> NoReturn:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, problem, case_id=decision.case_id[:64])

        if not CASE_ID_PATTERN.match(decision.case_id):
            await invalid(f"case_id: {decision.case_id[:80]!r} is not a valid case id")
        if not decision.HasField("account") or not decision.account.institution or not decision.account.account_number:
            await invalid("account: institution and account_number are required")
        kind = decision.WhichOneof("decision")
        if kind is None:
            await invalid("decision: one of freeze, renew or release is required")
        chosen = getattr(decision, kind)
        amount = None
        if kind == "freeze":
            amount = amount_of(chosen.amount)
            if amount.minor_units <= 0 or not amount.currency:
                await invalid(f"freeze.amount: a positive amount with its currency is required, got {amount.minor_units} {amount.currency!r}")
        decided = HoldDecisionInput(
            kind=DecisionKind(kind),
            decided_by=envelope.signer,
            officer=chosen.officer,
            document_ref=getattr(chosen, "document_ref", ""),
            reason=getattr(chosen, "reason", ""),
            amount=amount,
        )
        account = account_of(decision.account)
        where = {"case_id": decision.case_id, "institution": envelope.signer}
        # A human decision that moves money: on record before anything acts on it.
        await self._record(envelope_entry(envelope, direction=Direction.IN, **where))
        # A linked case's holds are its lead's.
        hold_id = hold_workflow_id(case_workflow_id(await self._lead_of(decision.case_id)), account)
        handle = self._client.get_workflow_handle(hold_id)
        view = await self._update_workflow(
            context, envelope, handle, DECIDE_HOLD_UPDATE, decided, decision.case_id,
            missing=(grpc.StatusCode.NOT_FOUND, f"case {decision.case_id!r} holds nothing on {account}"),
            ended=f"the hold on {account} has ended (lapsed or released)",
        )  # fmt: skip
        log.info("hold decision accepted", case_id=decision.case_id, workflow_id=hold_id, decision=kind,
                 decided_by=envelope.signer, state=view.state.value)  # fmt: skip
        receipt = hub_pb2.HoldDecisionReceipt(
            case_id=decision.case_id, account=decision.account, hold_state=HOLD_STATE_PB[view.state]
        )
        return hub_pb2.DecideHoldResponse(envelope=await self._signed_receipt(receipt, where))

    # --- ReportFreezeResult -------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ReportFreezeResult(self, request, context: grpc.aio.ServicerContext):
        answer, result, where = await self._hold_callback(
            request, context, bank_pb2.FreezeAnswer, "report freeze results", FREEZE_RESULT_UPDATE, "freeze result",
            lambda answer: freeze_result_of(answer, None),
            lambda answer, result, signer: FreezeCallback(answer.idempotency_key, signer, result),
        )  # fmt: skip
        log.info("freeze result accepted", case_id=answer.case_id, institution=request.envelope.signer, frozen=result.frozen)
        receipt = hub_pb2.CallbackReceipt(idempotency_key=answer.idempotency_key)
        return hub_pb2.ReportFreezeResultResponse(envelope=await self._signed_receipt(receipt, where))

    async def _hold_callback(self, request, context, message_type, doing: str, update: str, what: str, convert, callback,
                             *, also_required: tuple[tuple[str, Callable], ...] = ()):  # fmt: skip
        """An institution's later answer about a request it acknowledged: signed by that
        institution about its own account, complete, converted by `convert` (ValueError:
        INVALID_ARGUMENT), on record, and handed as `update` to the hold's workflow, which takes
        only what it awaits. Returns the message, its conversion and where it was recorded."""
        msg = await self._open(request, context, message_type, Role.ANSWER, doing, MAX_QUERY_BYTES)
        envelope = request.envelope
        case_id = msg.case_id[:64]
        # An institution may only call back about requests addressed to it: its own accounts.
        if msg.account.institution != envelope.signer:
            await self._refuse(context, envelope, grpc.StatusCode.PERMISSION_DENIED,
                               f"{envelope.signer!r} may only report about its own accounts, not "
                               f"{msg.account.institution!r}'s", case_id=case_id)  # fmt: skip
        required = [("case_id", bool(CASE_ID_PATTERN.match(msg.case_id))), ("account", bool(msg.account.account_number)),
                    *((name, bool(present(msg))) for name, present in also_required),
                    ("idempotency_key", bool(msg.idempotency_key))]  # fmt: skip
        if not all(present for _, present in required):
            names = [name for name, _ in required]
            missing = ", ".join(name for name, present in required if not present)
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT,
                               f"{missing}: missing or not valid ({', '.join(names[:-1])} and {names[-1]} are required)",
                               case_id=case_id)  # fmt: skip
        try:
            result = convert(msg)
        except ValueError as e:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, str(e), case_id=case_id)
        where = {"case_id": msg.case_id, "institution": envelope.signer}
        await self._record(envelope_entry(envelope, direction=Direction.IN, **where))
        # A linked case's holds are its lead's.
        lead = await self._lead_of(msg.case_id)
        handle = self._client.get_workflow_handle(hold_workflow_id(case_workflow_id(lead), account_of(msg.account)))
        no_one_waits = f"no {what} is awaited for request {msg.idempotency_key!r}"
        await self._update_workflow(
            context, envelope, handle, update, callback(msg, result, envelope.signer), msg.case_id,
            missing=(grpc.StatusCode.FAILED_PRECONDITION, no_one_waits), ended=no_one_waits,
        )  # fmt: skip
        return msg, result, where

    # --- UnblockNumber --------------------------------------------------------------------------

    async def _decision_payload(self, request, context, message_type, role: Role, doing: str):
        """Open a decision about a case: a valid case id and the signer's unit, on record."""
        decision = await self._open(request, context, message_type, role, doing, MAX_QUERY_BYTES)
        if not CASE_ID_PATTERN.match(decision.case_id):
            await self._refuse(context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT,
                               f"case_id: {decision.case_id[:80]!r} is not a valid case id")  # fmt: skip
        if not decision.officer.strip():
            await self._refuse(context, request.envelope, grpc.StatusCode.INVALID_ARGUMENT, "officer: required",
                               case_id=decision.case_id)  # fmt: skip
        where = {"case_id": decision.case_id, "institution": request.envelope.signer}
        await self._record(envelope_entry(request.envelope, direction=Direction.IN, **where))
        return decision, where

    async def _case_decision_receipt(self, case_id: str, decision: str, where: dict):
        receipt = hub_pb2.CaseDecisionReceipt(case_id=case_id, decision=decision)
        return await self._signed_receipt(receipt, where)

    @temporal_unavailable_is_unavailable
    async def UnblockNumber(self, request, context: grpc.aio.ServicerContext):
        decision, where = await self._decision_payload(request, context, hub_pb2.NumberUnblockDecision, Role.APPROVE,
                                                       "unblock numbers")  # fmt: skip
        envelope = request.envelope
        try:
            number = validate_phone(decision.phone_number, "phone_number")
        except InvalidReport as e:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, str(e), case_id=decision.case_id)
        if not decision.reason.strip():
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT,
                               "reason: why the block was wrong is required", case_id=decision.case_id)  # fmt: skip
        lead = await self._lead_of(decision.case_id)
        handle = self._client.get_workflow_handle(number_workflow_id(case_workflow_id(lead), number))
        view = await self._update_workflow(
            context, envelope, handle, UNBLOCK_NUMBER_UPDATE,
            UnblockDecisionInput(decided_by=envelope.signer, officer=decision.officer, reason=decision.reason.strip()),
            decision.case_id, result_type=NumberView,
            missing=(grpc.StatusCode.NOT_FOUND, f"case {decision.case_id!r} never blocked {number}"),
            ended=f"{number} is no longer blocked for case {decision.case_id!r}",
        )  # fmt: skip
        log.info("unblock accepted", case_id=decision.case_id, number=number, decided_by=envelope.signer, state=view.state.value)
        envelope_out = await self._case_decision_receipt(decision.case_id, f"unblock {number}", where)
        return hub_pb2.UnblockNumberResponse(envelope=envelope_out)

    # --- ConcludeCase ---------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ConcludeCase(self, request, context: grpc.aio.ServicerContext):
        conclusion, where = await self._decision_payload(request, context, hub_pb2.CaseConclusion, Role.APPROVE,
                                                         "conclude cases")  # fmt: skip
        envelope = request.envelope
        if not conclusion.document_ref.strip():
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT,
                               "document_ref: the conclusion document is required", case_id=conclusion.case_id)  # fmt: skip
        lead = await self._lead_of(conclusion.case_id)
        if lead != conclusion.case_id:
            await self._refuse(context, envelope, grpc.StatusCode.FAILED_PRECONDITION,
                               f"case {conclusion.case_id!r} is linked to case {lead!r}: conclude that one, "
                               "its returns serve every linked victim", case_id=conclusion.case_id)  # fmt: skip
        handle = self._client.get_workflow_handle(case_workflow_id(lead))
        await self._update_workflow(
            context, envelope, handle, CONCLUDE_CASE_UPDATE,
            ConclusionInput(envelope.signer, conclusion.officer.strip(), conclusion.document_ref.strip()),
            conclusion.case_id, result_type=CaseView,
            missing=(grpc.StatusCode.NOT_FOUND, f"no case {conclusion.case_id!r}"),
            ended=f"case {conclusion.case_id!r} is closed: nothing is held or frozen",
        )  # fmt: skip
        log.info("case concluded", case_id=conclusion.case_id, decided_by=envelope.signer)
        envelope_out = await self._case_decision_receipt(conclusion.case_id, "concluded", where)
        return hub_pb2.ConcludeCaseResponse(envelope=envelope_out)

    # --- AcknowledgeEscalation ------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def AcknowledgeEscalation(self, request, context: grpc.aio.ServicerContext):
        ack, where = await self._decision_payload(request, context, hub_pb2.EscalationAcknowledgement, Role.APPROVE,
                                                  "acknowledge escalations")  # fmt: skip
        envelope = request.envelope
        lead = await self._lead_of(ack.case_id)
        handle = self._client.get_workflow_handle(case_workflow_id(lead))
        view = await self._update_workflow(
            context, envelope, handle, ACKNOWLEDGE_ESCALATION_UPDATE,
            EscalationAckInput(unit=envelope.signer, officer=ack.officer.strip(), note=ack.note.strip()),
            ack.case_id, result_type=EscalationView,
            missing=(grpc.StatusCode.NOT_FOUND, f"no case {ack.case_id!r}"),
            ended=f"case {ack.case_id!r} is closed",
        )  # fmt: skip
        log.info("escalation acknowledged", case_id=ack.case_id, unit=envelope.signer, level=view.level.value)
        envelope_out = await self._case_decision_receipt(ack.case_id, "escalation acknowledged", where)
        return hub_pb2.AcknowledgeEscalationResponse(envelope=envelope_out)

    # --- ReportReturnResult ---------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ReportReturnResult(self, request, context: grpc.aio.ServicerContext):
        receipt, result, where = await self._hold_callback(
            request, context, bank_pb2.ReturnReceipt, "report return results", RETURN_RESULT_UPDATE, "return receipt",
            lambda receipt: return_result_of(receipt, None),
            lambda receipt, result, signer: ReturnCallback(receipt.idempotency_key, signer, result,
                                                           to_account=account_of(receipt.to_account)),
            also_required=(("to_account", lambda receipt: receipt.to_account.account_number),),
        )  # fmt: skip
        log.info("return receipt accepted", case_id=receipt.case_id, institution=request.envelope.signer, return_id=result.return_id)
        answer = hub_pb2.CallbackReceipt(idempotency_key=receipt.idempotency_key)
        return hub_pb2.ReportReturnResultResponse(envelope=await self._signed_receipt(answer, where))

    # --- ReportRecallUpdate -----------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ReportRecallUpdate(self, request, context: grpc.aio.ServicerContext):
        update = await self._open(request, context, crossborder_pb2.RecallUpdate, Role.ANSWER, "report recall updates",
                                  MAX_QUERY_BYTES)  # fmt: skip
        envelope = request.envelope
        case_id = update.case_id[:64]
        signer = self._registry().get(envelope.signer)
        if signer is None or signer.kind not in RECALL_CHANNELS:
            kind = signer.kind.value if signer is not None else "unknown institution"
            await self._refuse(context, envelope, grpc.StatusCode.PERMISSION_DENIED,
                               f"{envelope.signer!r} is a {kind}, not a recall channel: it may not report recall updates",
                               case_id=case_id)  # fmt: skip
        try:
            converted = recall_update_of(update, envelope.signer, hashlib.sha256(envelope.payload).hexdigest(),
                                         now=datetime.now(UTC))  # fmt: skip
        except ValueError as e:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, str(e), case_id=case_id)
        where = {"case_id": update.case_id, "institution": envelope.signer}
        await self._record(envelope_entry(envelope, direction=Direction.IN, **where))
        recovery_id = update.recovery_id
        prefix = case_workflow_id(update.case_id) + "/recovery/"
        unknown = f"no recovery {recovery_id[:120]!r} in case {update.case_id!r}"
        if not recovery_id.startswith(prefix) or not recovery_id[len(prefix):].isdigit():
            await self._refuse(context, envelope, grpc.StatusCode.NOT_FOUND, unknown, case_id=case_id)
        handle = self._client.get_workflow_handle(recovery_id)
        await self._recovery_running(context, envelope, handle, converted, unknown)
        view = await self._update_workflow(
            context, envelope, handle, RECALL_UPDATE_UPDATE, converted, update.case_id,
            missing=(grpc.StatusCode.NOT_FOUND, unknown),
            ended=f"recovery {recovery_id!r} has ended: update {update.sequence} comes too late", result_type=RecoveryView,
        )  # fmt: skip
        log.info("recall update accepted", case_id=update.case_id, workflow_id=recovery_id, institution=envelope.signer,
                 sequence=update.sequence, status=converted.status.value, recovery_state=view.state.value)  # fmt: skip
        receipt = hub_pb2.CallbackReceipt(idempotency_key=update.idempotency_key)
        return hub_pb2.ReportRecallUpdateResponse(envelope=await self._signed_receipt(receipt, where))

    async def _recovery_running(self, context, envelope, handle, update: RecallUpdateInput, unknown: str) -> None:
        """Refuse an update for a recovery that does not exist (NOT_FOUND) or has closed: an
        identical repeat of one it applied is ALREADY_EXISTS (the channel's outbox lost our
        receipt and may stop), anything else FAILED_PRECONDITION (too late)."""
        try:
            description = await handle.describe()
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            await self._refuse(context, envelope, grpc.StatusCode.NOT_FOUND, unknown, case_id=update.case_id)
        if description.status == WorkflowExecutionStatus.RUNNING:
            return
        try:
            applied = await handle.query(APPLIED_UPDATE_QUERY, f"{update.institution} {update.sequence}", result_type=str,
                                         rpc_timeout=QUERY_TIMEOUT)  # fmt: skip
        except (RPCError, WorkflowQueryFailedError):
            applied = ""
        if applied and applied == update.fingerprint:
            await self._refuse(context, envelope, grpc.StatusCode.ALREADY_EXISTS,
                               f"update {update.sequence} from {update.institution} was applied already", case_id=update.case_id)  # fmt: skip
        await self._refuse(context, envelope, grpc.StatusCode.FAILED_PRECONDITION,
                           f"recovery {handle.id!r} has ended: update {update.sequence} comes too late", case_id=update.case_id)  # fmt: skip

    # --- FindCases ------------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def FindCases(self, request, context: grpc.aio.ServicerContext):
        search = await self._open(request, context, hub_pb2.CaseSearch, Role.READ, "read cases", MAX_QUERY_BYTES)
        envelope = request.envelope
        subject = search.WhichOneof("subject")
        problem = None
        key = ""
        if subject is None:
            problem = "subject: one of account, phone_number or device_id is required"
        elif subject == "account":
            if not search.account.institution or not search.account.account_number:
                problem = "account: institution and account_number are required"
            else:
                try:  # the shape every reported account has, so a case can be found by it
                    key = account_key(validate_account_shape(search.account, "account"))
                except InvalidReport as e:
                    problem = str(e)
        elif subject == "phone_number":
            try:
                key = phone_key(validate_phone(search.phone_number, "phone_number"))
            except InvalidReport as e:
                problem = str(e)
        elif not DEVICE_ID_PATTERN.match(search.device_id):
            problem = f"device_id: {search.device_id[:80]!r} is not 1-128 characters of A-Z a-z 0-9 : . _ -"
        else:
            key = device_key(search.device_id)
        if problem is not None:
            await self._refuse(context, envelope, grpc.StatusCode.INVALID_ARGUMENT, problem)
        await self._record(envelope_entry(envelope, direction=Direction.IN, case_id="", institution=envelope.signer))
        links = await asyncio.to_thread(self._index.find, key) if self._index is not None else []
        cases = []
        for link in links:
            msg = hub_pb2.CaseLink(case_id=link.case_id, lead_case_id=link.lead_case_id, how=link.how)
            msg.since.FromDatetime(link.since)
            cases.append(msg)
        return hub_pb2.FindCasesResponse(cases=cases)
