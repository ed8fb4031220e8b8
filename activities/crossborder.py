"""The activities of a cross-border recovery, one outside effect each:

- list_recall_channels: which recall channels the registry lists (correspondent, central bank,
  police), so the workflow asks every one of them;
- request_recall: one RecallOrder to one channel, signed with the hub's key and recorded in the
  audit log before it leaves; the channel's signed acknowledgement must echo the order's key and
  recovery and carry the channel's reference, and is recorded too (activities.exchange).

What the channels learn later reaches the hub as signed callbacks (gateway ReportRecallUpdate).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.convert import account_pb, money_pb, time_of, timestamp_pb
from activities.exchange import ExchangeActivities
from adapters.crossborder import CrossBorderClient
from audit.log import AuditLog
from stopline.domain import (
    LIST_RECALL_CHANNELS,
    REQUEST_RECALL,
    ForeignDestination,
    RecallAck,
    RecallChannel,
    RecallChannelRef,
    RecallInput,
)
from stopline.v1 import common_pb2, crossborder_pb2
from trust.errors import RegistryError
from trust.keys import KeySource
from trust.registry import InstitutionKind, Registry
from trust.replay import NonceCache

log = structlog.get_logger("activities.crossborder")

# The registry lists no recall channel (retryable: an operator can add one, and the recovery
# then goes ahead).
ERR_NO_RECALL_CHANNEL = "NoRecallChannel"

CHANNEL_OF_KIND = {
    InstitutionKind.CORRESPONDENT_CHANNEL: RecallChannel.CORRESPONDENT,
    InstitutionKind.CENTRAL_BANK_CHANNEL: RecallChannel.CENTRAL_BANK,
    InstitutionKind.POLICE_CHANNEL: RecallChannel.POLICE,
}
CHANNEL_PB = {
    RecallChannel.CORRESPONDENT: crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT,
    RecallChannel.CENTRAL_BANK: crossborder_pb2.RECALL_CHANNEL_CENTRAL_BANK,
    RecallChannel.POLICE: crossborder_pb2.RECALL_CHANNEL_POLICE,
}


def destination_pb(destination: ForeignDestination) -> common_pb2.ForeignDestination:
    msg = common_pb2.ForeignDestination(
        bic=destination.bic, account=destination.account, payment_reference=destination.payment_reference
    )
    if destination.amount is not None:
        msg.amount.CopyFrom(money_pb(destination.amount))
    return msg


class CrossBorderActivities(ExchangeActivities):
    _log = log

    def __init__(
        self,
        hub_key: KeySource,
        registry: Callable[[], Registry],
        channels: CrossBorderClient,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
    ):
        super().__init__(hub_key, registry, audit, replay)
        self._channels = channels

    @activity.defn(name=LIST_RECALL_CHANNELS)
    async def list_recall_channels(self, case_id: str) -> list[RecallChannelRef]:
        try:
            found = self._registry().recall_channels()
        except RegistryError as e:
            raise ApplicationError(f"recall channels: {e}", type=ERR_NO_RECALL_CHANNEL) from None
        if not found:
            raise ApplicationError("the registry lists no recall channel (correspondent_channel, "
                                   "central_bank_channel or police_channel)", type=ERR_NO_RECALL_CHANNEL)  # fmt: skip
        log.info("recall channels", case_id=case_id, channels=list(found.values()))
        return [RecallChannelRef(CHANNEL_OF_KIND[kind], institution) for kind, institution in found.items()]

    @activity.defn(name=REQUEST_RECALL)
    async def request_recall(self, req: RecallInput) -> RecallAck:
        order = crossborder_pb2.RecallOrder(
            idempotency_key=req.idempotency_key, recovery_id=req.recovery_id, case_id=req.case_id,
            requested_by=req.requested_by, channel=CHANNEL_PB[req.channel], from_account=account_pb(req.from_account),
            destination=destination_pb(req.destination), amount=money_pb(req.amount), sent_at=timestamp_pb(req.sent_at),
            reason=req.reason, reminder=req.reminder,
        )  # fmt: skip
        ack, bound = await self._exchange(
            order, self._channels.request_recall, crossborder_pb2.RecallAcknowledgement,
            # One call per activity: the recovery counts the calls it made itself.
            lambda answer, attempt: _check_ack(req, answer, activity.info().attempt),
            case_id=req.case_id, institution=req.institution, what="recall", attempt=req.try_number,
        )  # fmt: skip
        bound.info("recall acknowledged", channel=req.channel.value, reference=ack.reference, reminder=req.reminder)
        return ack


def _check_ack(req: RecallInput, answer: crossborder_pb2.RecallAcknowledgement, attempt: int) -> RecallAck:
    """An acknowledgement counts only for this very order (ValueError says how not)."""
    if answer.idempotency_key != req.idempotency_key:
        raise ValueError(f"acknowledgement is for {answer.idempotency_key!r}, not {req.idempotency_key!r}")
    if answer.recovery_id != req.recovery_id:
        raise ValueError(f"acknowledgement is for recovery {answer.recovery_id!r}, not {req.recovery_id!r}")
    if not answer.reference:
        raise ValueError("acknowledgement carries no reference")
    acknowledged_at = time_of(answer.acknowledged_at)
    if acknowledged_at is None:
        raise ValueError("acknowledged_at: missing")
    return RecallAck(reference=answer.reference[:128], acknowledged_at=acknowledged_at, attempts=attempt)
