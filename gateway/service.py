"""HubService: the hub's front door for police units and operators."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.convert import money_pb
from audit.entry import AuditEntry, Direction
from audit.log import AuditLog
from audit.record import envelope_entry, refusal_entry
from gateway.convert import CASE_STATUS_OF_PB, CASE_STATUS_PB, case_view_pb
from gateway.validation import CASE_ID_PATTERN, MAX_REPORT_BYTES, InvalidReport, validate_report
from stopline.domain import (
    CASE_WORKFLOW,
    SA_AMOUNT_MINOR,
    SA_CASE_ID,
    SA_CURRENCY,
    SA_STATUS,
    Amount,
    CaseInput,
    CaseStatus,
    CaseView,
    case_workflow_id,
    stop_targets,
)
from stopline.money import format_amount
from stopline.v1 import hub_pb2, hub_pb2_grpc
from trust.envelope import open_envelope, seal
from trust.errors import EnvelopeRejected, MalformedPayload, WrongPayloadType, WrongSigner
from trust.keys import SigningKey
from trust.registry import InstitutionKind, Registry
from trust.replay import MemoryNonceCache, NonceCache

log = structlog.get_logger("gateway")

MEMO_REPORT_SHA256 = "report_sha256"
DEFAULT_PAGE_SIZE = 100
# Reading a running case asks its worker; without one, say so quickly instead of hanging.
QUERY_TIMEOUT = timedelta(seconds=3)
MAX_PAGE_SIZE = 500


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
        hub_key: SigningKey,
        task_queue: str,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
    ):
        self._client = client
        self._replay = replay or MemoryNonceCache()
        self._registry = registry
        self._hub_key = hub_key
        self._task_queue = task_queue
        self._audit = audit

    async def _record(self, *entries: AuditEntry) -> None:
        if self._audit is not None:
            await asyncio.to_thread(self._audit.append, *entries)

    # --- ReportCase ---------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ReportCase(self, request, context: grpc.aio.ServicerContext):
        if not request.HasField("envelope"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "envelope: required")
        envelope = request.envelope

        async def refuse(code: grpc.StatusCode, problem: str, case_id: str = "") -> None:
            """Every refusal is logged and audited, then answered; nothing else happens."""
            log.warning("report refused", signer=envelope.signer, case_id=case_id, code=code.name, problem=problem)
            await self._record(
                refusal_entry(envelope, case_id=case_id, institution=envelope.signer, direction=Direction.IN,
                              reason=f"{code.name}: {problem}")
            )  # fmt: skip
            await context.abort(code, problem)

        if len(envelope.payload) > MAX_REPORT_BYTES:
            await refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"envelope.payload: {len(envelope.payload)} bytes, a report is at most {MAX_REPORT_BYTES}",
            )
        registry = self._registry()

        def is_police_unit(signer: str) -> bool:
            inst = registry.get(signer)
            return inst is not None and inst.kind is InstitutionKind.POLICE_UNIT

        try:
            report = open_envelope(
                envelope, hub_pb2.CaseReport, registry, expected_signer=is_police_unit, replay=self._replay
            )
        except EnvelopeRejected as e:
            await refuse(grpc.StatusCode.UNAUTHENTICATED, str(e))
        except WrongSigner:
            await refuse(
                grpc.StatusCode.PERMISSION_DENIED, f"{envelope.signer!r} is not a police unit; only police units report cases"
            )
        except (WrongPayloadType, MalformedPayload) as e:
            await refuse(grpc.StatusCode.INVALID_ARGUMENT, str(e))

        try:
            case = validate_report(report, registry, signer=envelope.signer)
        except InvalidReport as e:
            await refuse(grpc.StatusCode.INVALID_ARGUMENT, str(e), case_id=report.case_id[:64])

        workflow_id = case_workflow_id(case.case_id)
        fingerprint = report_fingerprint(case)
        where = {"case_id": case.case_id, "institution": case.reporting_unit}
        # Recorded before anything acts on it: the log never lacks a report the hub acted on.
        await self._record(envelope_entry(envelope, direction=Direction.IN, **where))
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

        accepted_at = Timestamp()
        accepted_at.FromDatetime(datetime.now(UTC))
        receipt = hub_pb2.CaseReceipt(
            case_id=case.case_id, workflow_id=workflow_id, created=created, accepted_at=accepted_at
        )
        receipt_envelope = seal(receipt, self._hub_key)
        await self._record(envelope_entry(receipt_envelope, direction=Direction.OUT, **where))
        return hub_pb2.ReportCaseResponse(envelope=receipt_envelope)

    # --- GetCase ------------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def GetCase(self, request, context: grpc.aio.ServicerContext):
        if not CASE_ID_PATTERN.match(request.case_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"case_id: {request.case_id!r} is not a valid case id"
            )
        handle = self._client.get_workflow_handle(case_workflow_id(request.case_id), result_type=CaseView)
        try:
            description = await handle.describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {request.case_id!r}")
            raise
        try:
            if description.status == WorkflowExecutionStatus.COMPLETED:
                # A finished case answers from its result: no worker needed to replay it.
                view = await handle.result(rpc_timeout=QUERY_TIMEOUT)
            else:
                view = await handle.query("status", result_type=CaseView, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowFailureError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as e:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"case {request.case_id!r} cannot be read now (is a worker running on task queue "
                f"{self._task_queue!r}?): {e}",
            )
        pending = {p.activity_id: (_calls_made(p), _last_error(p)) for p in description.raw_description.pending_activities}
        return hub_pb2.GetCaseResponse(case=case_view_pb(view, pending))

    # --- ListCases ----------------------------------------------------------------------------

    @temporal_unavailable_is_unavailable
    async def ListCases(self, request, context: grpc.aio.ServicerContext):
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"page_size: {request.page_size} is not within 0..{MAX_PAGE_SIZE}"
            )
        query = f"WorkflowType = '{CASE_WORKFLOW}'"
        if request.status != hub_pb2.CASE_STATUS_UNSPECIFIED:
            status = CASE_STATUS_OF_PB.get(request.status)
            if status is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"status: unknown value {request.status}")
            query += f" AND {SA_STATUS.name} = '{status.value}'"
        page = self._client.list_workflows(
            query, page_size=request.page_size or DEFAULT_PAGE_SIZE, next_page_token=request.page_token or None
        )
        try:
            await page.fetch_next_page()
        except RPCError as e:
            if e.status == RPCStatusCode.INVALID_ARGUMENT:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_token: {e.message}")
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
        return hub_pb2.ListCasesResponse(cases=cases, next_page_token=page.next_page_token or b"")
