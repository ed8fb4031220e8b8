"""A HubService client for police units and operators (the CLI and the tests use it)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from stopline.v1 import hub_pb2, hub_pb2_grpc
from trust.envelope import open_envelope, seal
from trust.keys import SigningKey
from trust.registry import Registry

DEFAULT_TIMEOUT_SECONDS = 10.0


class HubClient:
    def __init__(self, address: str, registry: Callable[[], Registry], timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self._channel = grpc.aio.insecure_channel(address, options=[("grpc.enable_retries", 0)])
        self._stub = hub_pb2_grpc.HubServiceStub(self._channel)
        self._registry = registry
        self._timeout = timeout_seconds

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def report_case(self, report: hub_pb2.CaseReport, unit_key: SigningKey) -> hub_pb2.CaseReceipt:
        """Sign the report as the police unit and send it; return the hub's verified receipt."""
        response = await self._stub.ReportCase(
            hub_pb2.ReportCaseRequest(envelope=seal(report, unit_key)), timeout=self._timeout
        )
        return open_envelope(response.envelope, hub_pb2.CaseReceipt, self._registry(), expected_signer="hub")

    async def get_case(self, case_id: str) -> hub_pb2.CaseView:
        response = await self._stub.GetCase(hub_pb2.GetCaseRequest(case_id=case_id), timeout=self._timeout)
        return response.case

    async def list_cases(
        self, status: int = hub_pb2.CASE_STATUS_UNSPECIFIED, page_size: int = 0, page_token: bytes = b""
    ) -> hub_pb2.ListCasesResponse:
        return await self._stub.ListCases(
            hub_pb2.ListCasesRequest(status=status, page_size=page_size, page_token=page_token),
            timeout=self._timeout,
        )
