"""Client for RegulatorService: what the hub tells the telecom and bank regulators (numbers
intercepted, institutions that missed an answer deadline). Like adapters/bank.py: one shared
channel per endpoint, a deadline on every call, no gRPC-level retries (Temporal retries)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from adapters.channels import ChannelPool
from adapters.errors import InstitutionError, from_rpc_error
from stopline.v1 import envelope_pb2, regulator_pb2, regulator_pb2_grpc
from trust.errors import TrustError
from trust.registry import Registry

DEFAULT_TIMEOUT_SECONDS = 5.0


class RegulatorClient:
    def __init__(
        self,
        channels: ChannelPool,
        registry: Callable[[], Registry],
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        self._channels = channels
        self._registry = registry
        self._timeout = timeout_seconds

    def _stub(self, regulator: str) -> regulator_pb2_grpc.RegulatorServiceStub:
        try:
            endpoint = self._registry().endpoint(regulator)
        except TrustError as e:
            raise InstitutionError(regulator, grpc.StatusCode.UNAVAILABLE, str(e)) from None
        return regulator_pb2_grpc.RegulatorServiceStub(self._channels.get(endpoint, regulator))

    async def _call(self, regulator: str, method: str, request) -> envelope_pb2.Envelope:
        try:
            response = await getattr(self._stub(regulator), method)(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(regulator, err) from None
        return response.envelope

    async def report_breach(self, regulator: str, report: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed BreachReport; return the regulator's signed RegulatorReceipt, unopened."""
        return await self._call(regulator, "ReportBreach", regulator_pb2.ReportBreachRequest(envelope=report))

    async def notify_interception(self, regulator: str, notice: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed InterceptionNotice; return the regulator's signed RegulatorReceipt, unopened."""
        return await self._call(
            regulator, "NotifyInterception", regulator_pb2.NotifyInterceptionRequest(envelope=notice)
        )
