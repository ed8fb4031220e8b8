"""A HubService client for police units, operators and auditors (the CLI and the tests use it).

A client speaks as one institution: it signs every request with that institution's key and,
over mutual TLS, presents that institution's certificate (the hub refuses a certificate that is
not the envelope signer's). The hub's signed receipts are verified, replays included.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.channels import open_channel
from stopline.v1 import hub_pb2, hub_pb2_grpc
from trust.envelope import open_envelope, seal
from trust.keys import KeySource, key_source
from trust.registry import Registry
from trust.replay import MemoryNonceCache, NonceCache
from trust.tls import TlsIdentity

DEFAULT_TIMEOUT_SECONDS = 10.0
HUB_ID = "hub"


class HubClient:
    def __init__(
        self,
        address: str,
        registry: Callable[[], Registry],
        identity: KeySource,
        tls: TlsIdentity | None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        replay: NonceCache | None = None,
    ):
        self._channel = open_channel(address, HUB_ID, tls, options=(("grpc.enable_retries", 0),))
        self._stub = hub_pb2_grpc.HubServiceStub(self._channel)
        self._registry = registry
        self._identity = key_source(identity)
        self._timeout = timeout_seconds
        self._replay = replay if replay is not None else MemoryNonceCache()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def report_case(self, report: hub_pb2.CaseReport) -> hub_pb2.CaseReceipt:
        """Sign the report as this client's police unit and send it; return the hub's verified
        receipt (a receipt replayed from an earlier report is refused)."""
        response = await self._stub.ReportCase(
            hub_pb2.ReportCaseRequest(envelope=seal(report, self._identity())), timeout=self._timeout
        )
        return open_envelope(
            response.envelope, hub_pb2.CaseReceipt, self._registry(), expected_signer=HUB_ID, replay=self._replay
        )

    async def get_case(self, case_id: str) -> hub_pb2.CaseView:
        query = seal(hub_pb2.CaseQuery(case_id=case_id), self._identity())
        response = await self._stub.GetCase(hub_pb2.GetCaseRequest(envelope=query), timeout=self._timeout)
        return response.case

    async def list_cases(
        self, status: int = hub_pb2.CASE_STATUS_UNSPECIFIED, page_size: int = 0, page_token: bytes = b""
    ) -> hub_pb2.ListCasesResponse:
        query = seal(hub_pb2.CaseListQuery(status=status, page_size=page_size, page_token=page_token), self._identity())
        return await self._stub.ListCases(hub_pb2.ListCasesRequest(envelope=query), timeout=self._timeout)

    async def decide_hold(self, decision: hub_pb2.HoldDecision) -> hub_pb2.HoldDecisionReceipt:
        """Sign an officer's decision on a held account (this client must be a police unit with
        the approve role) and send it; return the hub's verified receipt."""
        response = await self._stub.DecideHold(
            hub_pb2.DecideHoldRequest(envelope=seal(decision, self._identity())), timeout=self._timeout
        )
        return open_envelope(
            response.envelope, hub_pb2.HoldDecisionReceipt, self._registry(), expected_signer=HUB_ID, replay=self._replay
        )

    async def _decide(self, rpc: str, request_type, payload, receipt_type=hub_pb2.CaseDecisionReceipt):
        """Sign a decision as this client's unit, send it, return the hub's verified receipt."""
        response = await getattr(self._stub, rpc)(request_type(envelope=seal(payload, self._identity())), timeout=self._timeout)
        return open_envelope(response.envelope, receipt_type, self._registry(), expected_signer=HUB_ID, replay=self._replay)

    async def unblock_number(self, decision: hub_pb2.NumberUnblockDecision) -> hub_pb2.CaseDecisionReceipt:
        return await self._decide("UnblockNumber", hub_pb2.UnblockNumberRequest, decision)

    async def conclude_case(self, conclusion: hub_pb2.CaseConclusion) -> hub_pb2.CaseDecisionReceipt:
        return await self._decide("ConcludeCase", hub_pb2.ConcludeCaseRequest, conclusion)

    async def acknowledge_escalation(self, ack: hub_pb2.EscalationAcknowledgement) -> hub_pb2.CaseDecisionReceipt:
        return await self._decide("AcknowledgeEscalation", hub_pb2.AcknowledgeEscalationRequest, ack)

    async def find_cases(self, search: hub_pb2.CaseSearch) -> list[hub_pb2.CaseLink]:
        query = seal(search, self._identity())
        response = await self._stub.FindCases(hub_pb2.FindCasesRequest(envelope=query), timeout=self._timeout)
        return list(response.cases)
