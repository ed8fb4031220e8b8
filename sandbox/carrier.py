"""TelecomService as one sandbox carrier runs it: verify the hub's envelope, validate the order,
block (or unblock) the numbers it serves at most once per case, answer with a signed envelope.

Both orders (BlockNumbers, UnblockNumbers) take the same steps (`_order`): the configured faults,
the hub's signature and TLS peer (only the hub may order: anyone else's valid signature is
PERMISSION_DENIED), the field checks (INVALID_ARGUMENT naming the field: an empty list, more than
100 numbers, a number not in E.164, a repeated number, a missing reason), one transaction on the
carrier's books (sandbox.numbers: idempotency key per order type, decision and stored answer
together), then the stored answer bytes sealed with the carrier's key. The same key with the same
order gets the same answer and never blocks twice; the same key with other content is
ALREADY_EXISTS.

Numbers are portable: a number of this carrier's ranges that was ported away is NOT_SERVED, with
the carrier that serves it now in `served_by`; QueryNumber says the same for one number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
import structlog

from sandbox.faults import Faults
from sandbox.numbers import NumberStore, OrderResult
from sandbox.signed import IdempotencyConflict, SignedServicer
from sandbox.wire import InvalidField, check_phone, check_phone_numbers, require
from stopline.v1 import envelope_pb2, telecom_pb2, telecom_pb2_grpc
from trust.envelope import seal
from trust.keys import SigningKey
from trust.registry import Registry

TELECOM_SERVICE = telecom_pb2.DESCRIPTOR.services_by_name["TelecomService"].full_name

log = structlog.get_logger("sandbox")


class TelecomServicer(SignedServicer, telecom_pb2_grpc.TelecomServiceServicer):
    def __init__(
        self,
        institution_id: str,
        signing_key: SigningKey,
        registry: Callable[[], Registry],
        numbers: NumberStore,
        faults: Faults,
        on_request: Callable[[], None] = lambda: None,
    ):
        super().__init__(institution_id, signing_key, registry, faults, on_request)
        self._numbers = numbers

    # --- RPCs ------------------------------------------------------------------------------

    async def BlockNumbers(self, request, context) -> telecom_pb2.BlockNumbersResponse:
        envelope = await self._order(
            request, context, telecom_pb2.NumberBlockOrder, "block_numbers", _validate_block,
            self._numbers.apply_block,
        )  # fmt: skip
        return telecom_pb2.BlockNumbersResponse(envelope=envelope)

    async def UnblockNumbers(self, request, context) -> telecom_pb2.UnblockNumbersResponse:
        envelope = await self._order(
            request, context, telecom_pb2.NumberUnblockOrder, "unblock_numbers", _validate_unblock,
            self._numbers.apply_unblock,
        )  # fmt: skip
        return telecom_pb2.UnblockNumbersResponse(envelope=envelope)

    async def QueryNumber(self, request, context) -> telecom_pb2.QueryNumberResponse:
        await self._before(context)
        query = await self._open(request, telecom_pb2.NumberQuery, context)
        bound = log.bind(institution=self.institution_id, case_id=query.case_id, idempotency_key=query.idempotency_key)
        try:
            require("idempotency_key", bool(query.idempotency_key), "must not be empty")
            require("case_id", bool(query.case_id), "must not be empty")
            check_phone(query.phone_number, "phone_number")
        except InvalidField as e:
            await self._invalid(context, bound, "query_number", e)
        status = await asyncio.to_thread(self._numbers.status, query.phone_number)
        report = telecom_pb2.NumberReport(
            idempotency_key=query.idempotency_key, phone_number=query.phone_number,
            served=status.served, served_by=status.served_by, blocked=status.blocked,
        )  # fmt: skip
        bound.info("query_number.answered", served=status.served, served_by=status.served_by, blocked=status.blocked)
        return telecom_pb2.QueryNumberResponse(envelope=seal(report, self._answer_key()))

    # --- the steps both orders take ----------------------------------------------------------

    async def _order(
        self, request, context, message_type, rpc: str, validate, apply: Callable[..., OrderResult]
    ) -> envelope_pb2.Envelope:
        await self._before(context)
        order = await self._open(request, message_type, context)
        bound = log.bind(institution=self.institution_id, case_id=order.case_id, idempotency_key=order.idempotency_key)
        try:
            validate(order)
            result = await asyncio.to_thread(apply, order, datetime.now(UTC))
        except InvalidField as e:
            await self._invalid(context, bound, rpc, e)
        except IdempotencyConflict as e:
            bound.warning(f"{rpc}.idempotency_conflict")
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(e))
        outcomes = [telecom_pb2.NumberOutcome.Name(r.outcome) for r in result.answer.results]
        bound.info(f"{rpc}.answered", outcomes=outcomes, replayed=result.replayed)
        await self._lose_answer_after_apply(context, bound)
        return self._seal_stored(result.answer_payload, telecom_pb2.NumberBlockAnswer)


def _validate_common(order) -> None:
    require("idempotency_key", bool(order.idempotency_key), "must not be empty")
    require("case_id", bool(order.case_id), "must not be empty")
    check_phone_numbers(order.phone_numbers, "phone_numbers")
    require("reason", bool(order.reason.strip()), "why must be recorded: required")


def _validate_block(order: telecom_pb2.NumberBlockOrder) -> None:
    """InvalidField for the first field that is missing or malformed."""
    _validate_common(order)
    require("requested_by", bool(order.requested_by.strip()), "the police unit that reported the case: required")


def _validate_unblock(order: telecom_pb2.NumberUnblockOrder) -> None:
    _validate_common(order)
    require("decided_by", bool(order.decided_by.strip()), "the police unit that decided: required")
