"""Client for CrossBorderService: what the hub calls at each recall channel (the correspondent's
recall desk, the central bank's international channel, the police channel) to recall money sent
abroad. Like adapters/bank.py: one shared channel per endpoint, a deadline on every call, no
gRPC-level retries (Temporal retries)."""

from __future__ import annotations

from adapters.channels import DEFAULT_TIMEOUT_SECONDS, InstitutionClient  # noqa: F401 - re-exported
from stopline.v1 import crossborder_pb2, crossborder_pb2_grpc, envelope_pb2


class CrossBorderClient(InstitutionClient):
    STUB = crossborder_pb2_grpc.CrossBorderServiceStub

    async def request_recall(self, channel: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed RecallOrder; return the channel's signed RecallAcknowledgement, unopened."""
        return await self._call(channel, "RequestRecall", crossborder_pb2.RequestRecallRequest(envelope=order), attempt)
