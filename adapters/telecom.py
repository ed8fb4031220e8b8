"""Client for TelecomService: what the hub calls at every telecom carrier to block and unblock
fraudsters' numbers and to ask who serves a number. Like adapters/bank.py: one shared channel per
endpoint, a deadline on every call, no gRPC-level retries (Temporal retries)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from adapters.channels import ChannelPool
from adapters.errors import InstitutionError, from_rpc_error
from stopline.v1 import envelope_pb2, telecom_pb2, telecom_pb2_grpc
from trust.errors import TrustError
from trust.registry import Registry

# A carrier blocks a number in seconds.
DEFAULT_TIMEOUT_SECONDS = 5.0


class TelecomClient:
    def __init__(
        self,
        channels: ChannelPool,
        registry: Callable[[], Registry],
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        self._channels = channels
        self._registry = registry
        self._timeout = timeout_seconds

    def _stub(self, carrier: str) -> telecom_pb2_grpc.TelecomServiceStub:
        try:
            endpoint = self._registry().endpoint(carrier)
        except TrustError as e:
            # Retryable on purpose: an operator can fix the registry and the order then goes through.
            raise InstitutionError(carrier, grpc.StatusCode.UNAVAILABLE, str(e)) from None
        return telecom_pb2_grpc.TelecomServiceStub(self._channels.get(endpoint, carrier))

    async def _call(self, carrier: str, method: str, request) -> envelope_pb2.Envelope:
        """One TelecomService call with the deadline; the signed envelope of the answer, unopened."""
        try:
            response = await getattr(self._stub(carrier), method)(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(carrier, err) from None
        return response.envelope

    async def block_numbers(self, carrier: str, order: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed NumberBlockOrder; return the carrier's signed NumberBlockAnswer, unopened."""
        return await self._call(carrier, "BlockNumbers", telecom_pb2.BlockNumbersRequest(envelope=order))

    async def unblock_numbers(self, carrier: str, order: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed NumberUnblockOrder; return the carrier's signed NumberBlockAnswer, unopened."""
        return await self._call(carrier, "UnblockNumbers", telecom_pb2.UnblockNumbersRequest(envelope=order))

    async def query_number(self, carrier: str, query: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed NumberQuery; return the carrier's signed NumberReport, unopened."""
        return await self._call(carrier, "QueryNumber", telecom_pb2.QueryNumberRequest(envelope=query))
