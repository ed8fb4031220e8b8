"""Client for TelecomService: what the hub calls at every telecom carrier to block and unblock
fraudsters' numbers and to ask who serves a number. Like adapters/bank.py: one shared channel per
endpoint, a deadline on every call, no gRPC-level retries (Temporal retries)."""

from __future__ import annotations

from adapters.channels import DEFAULT_TIMEOUT_SECONDS, InstitutionClient  # noqa: F401 - re-exported
from stopline.v1 import envelope_pb2, telecom_pb2, telecom_pb2_grpc


class TelecomClient(InstitutionClient):
    STUB = telecom_pb2_grpc.TelecomServiceStub

    async def block_numbers(self, carrier: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed NumberBlockOrder; return the carrier's signed NumberBlockAnswer, unopened."""
        return await self._call(carrier, "BlockNumbers", telecom_pb2.BlockNumbersRequest(envelope=order), attempt)

    async def unblock_numbers(self, carrier: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed NumberUnblockOrder; return the carrier's signed NumberBlockAnswer, unopened."""
        return await self._call(carrier, "UnblockNumbers", telecom_pb2.UnblockNumbersRequest(envelope=order), attempt)

    async def query_number(self, carrier: str, query: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed NumberQuery; return the carrier's signed NumberReport, unopened."""
        return await self._call(carrier, "QueryNumber", telecom_pb2.QueryNumberRequest(envelope=query), attempt)
