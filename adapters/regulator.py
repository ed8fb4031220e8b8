"""Client for RegulatorService: what the hub tells the telecom and bank regulators (numbers
intercepted, institutions that missed an answer deadline). Like adapters/bank.py: one shared
channel per endpoint, a deadline on every call, no gRPC-level retries (Temporal retries)."""

from __future__ import annotations

from adapters.channels import DEFAULT_TIMEOUT_SECONDS, InstitutionClient  # noqa: F401 - re-exported
from stopline.v1 import envelope_pb2, regulator_pb2, regulator_pb2_grpc


class RegulatorClient(InstitutionClient):
    STUB = regulator_pb2_grpc.RegulatorServiceStub

    async def report_breach(self, regulator: str, report: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed BreachReport; return the regulator's signed RegulatorReceipt, unopened."""
        return await self._call(regulator, "ReportBreach", regulator_pb2.ReportBreachRequest(envelope=report), attempt)

    async def notify_interception(self, regulator: str, notice: envelope_pb2.Envelope, attempt: int = 1) -> envelope_pb2.Envelope:
        """Send a signed InterceptionNotice; return the regulator's signed RegulatorReceipt, unopened."""
        return await self._call(
            regulator, "NotifyInterception", regulator_pb2.NotifyInterceptionRequest(envelope=notice), attempt
        )
