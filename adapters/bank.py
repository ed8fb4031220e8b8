"""Client for BankService: what the hub calls at every bank and payment company."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from adapters.channels import ChannelPool
from adapters.errors import InstitutionError, from_rpc_error
from stopline.v1 import bank_pb2, bank_pb2_grpc, envelope_pb2
from trust.errors import TrustError
from trust.registry import Registry

# A stop-payment is answered in seconds by a working bank.
DEFAULT_TIMEOUT_SECONDS = 5.0


class BankClient:
    def __init__(
        self,
        channels: ChannelPool,
        registry: Callable[[], Registry],
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        self._channels = channels
        self._registry = registry
        self._timeout = timeout_seconds

    def _stub(self, institution: str) -> bank_pb2_grpc.BankServiceStub:
        try:
            endpoint = self._registry().endpoint(institution)
        except TrustError as e:
            # Retryable on purpose: an operator can fix the registry and the stop then goes through.
            raise InstitutionError(institution, grpc.StatusCode.UNAVAILABLE, str(e)) from None
        return bank_pb2_grpc.BankServiceStub(self._channels.get(endpoint, institution))

    async def _call(self, institution: str, method: str, request):
        """One BankService call with the deadline; the signed envelope of the answer, unopened."""
        try:
            response = await getattr(self._stub(institution), method)(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(institution, err) from None
        return response.envelope

    async def stop_payment(self, institution: str, order: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed StopPaymentOrder; return the institution's signed answer, unopened."""
        return await self._call(institution, "StopPayment", bank_pb2.StopPaymentRequest(envelope=order))

    async def query_account(self, institution: str, query: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed AccountQuery; return the institution's signed AccountReport, unopened."""
        return await self._call(institution, "QueryAccount", bank_pb2.QueryAccountRequest(envelope=query))

    async def freeze(self, institution: str, order: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed FreezeOrder; return the institution's signed FreezeAnswer, unopened."""
        return await self._call(institution, "Freeze", bank_pb2.FreezeRequest(envelope=order))

    async def release(self, institution: str, order: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed ReleaseOrder; return the institution's signed ReleaseAnswer, unopened."""
        return await self._call(institution, "Release", bank_pb2.ReleaseRequest(envelope=order))

    async def return_funds(self, institution: str, order: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Send a signed ReturnOrder; return the institution's signed ReturnReceipt, unopened."""
        return await self._call(institution, "ReturnFunds", bank_pb2.ReturnFundsRequest(envelope=order))
