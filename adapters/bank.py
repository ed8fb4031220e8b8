"""Client for BankService: what the hub calls at every bank and payment company."""

from __future__ import annotations

from adapters.channels import DEFAULT_TIMEOUT_SECONDS, InstitutionClient  # noqa: F401 - re-exported
from stopline.v1 import bank_pb2, bank_pb2_grpc, envelope_pb2


class BankClient(InstitutionClient):
    STUB = bank_pb2_grpc.BankServiceStub

    async def stop_payment(self, institution: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed StopPaymentOrder; return the institution's signed answer, unopened."""
        return await self._call(institution, "StopPayment", bank_pb2.StopPaymentRequest(envelope=order), attempt)

    async def query_account(self, institution: str, query: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed AccountQuery; return the institution's signed AccountReport, unopened."""
        return await self._call(institution, "QueryAccount", bank_pb2.QueryAccountRequest(envelope=query), attempt)

    async def freeze(self, institution: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed FreezeOrder; return the institution's signed FreezeAnswer, unopened."""
        return await self._call(institution, "Freeze", bank_pb2.FreezeRequest(envelope=order), attempt)

    async def release(self, institution: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed ReleaseOrder; return the institution's signed ReleaseAnswer, unopened."""
        return await self._call(institution, "Release", bank_pb2.ReleaseRequest(envelope=order), attempt)

    async def return_funds(self, institution: str, order: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed ReturnOrder; return the institution's signed ReturnReceipt, unopened."""
        return await self._call(institution, "ReturnFunds", bank_pb2.ReturnFundsRequest(envelope=order), attempt)
