"""CrossBorderService as a sandbox recall channel runs it: the sending bank's correspondent desk
(SWIFT gpi Stop and Recall), the central bank's international channel, the police's channel
(INTERPOL I-GRIP). Each is one institution of its kind (sandbox.server picks the channel from the
kind), and speaks for the foreign side the hub cannot reach itself.

RequestRecall: verify the hub's envelope, validate the RecallOrder (it must be for this channel),
store it once per idempotency key and answer a signed RecallAcknowledgement at once. The channel's
reference is one per recovery (the hub's recovery_id) at this channel: the hub's reminders of a
request, and its follow-up orders once the money was located at another bank, each carry a key of
their own and get the same reference. A repeat (same key, same content: the hub's activity retried
after a lost answer) gets the very same acknowledgement bytes in a fresh envelope; the same key
with other content is ALREADY_EXISTS. Only the hub may ask (PERMISSION_DENIED for anyone else's
valid signature).

What the foreign side answers is scripted (a scenario's `recalls`, sandbox.scenario.RecallScript),
found by the payment reference the first order of a recovery quotes. That order schedules the
script's updates in an outbox (table `updates`: due `after_seconds` after the acknowledgement,
numbered 1, 2, 3 ... per recovery at this channel, each quoting the first order's key); reminders
and follow-ups never restart it, as a real desk does not reopen a recall it is working on. An order
with no script is acknowledged and then nothing more: a silent channel, which the hub must
remind and escalate.

The outbox is delivered by the running institution (SandboxInstitution.deliver_recall_updates),
to HubService.ReportRecallUpdate, in sequence order per recovery, each update sealed by the
channel when it is sent. The store keeps each update's state: pending (not due, or the hub was
unreachable: tried again later), delivered (the hub took it, or already had it), refused (the hub
said no: recorded with its code and never retried) and withheld (a later update of a recovery
whose earlier update was refused: sending it would be a gap the hub refuses anyway).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import structlog
from google.protobuf import json_format

from sandbox.faults import Faults
from sandbox.scenario import BIC_PATTERN, RecallScript, ScriptedUpdate
from sandbox.signed import IdempotencyConflict, SignedServicer
from sandbox.store import SqliteStore, utc_text, utc_time_or_none
from sandbox.wire import InvalidField, check_money, require, to_datetime
from stopline.v1 import common_pb2, crossborder_pb2, crossborder_pb2_grpc, envelope_pb2
from trust.keys import SigningKey
from trust.registry import InstitutionKind, Registry

CROSS_BORDER_SERVICE = crossborder_pb2.DESCRIPTOR.services_by_name["CrossBorderService"].full_name
# Which channel an institution of each recall-channel kind is.
CHANNEL_BY_KIND = {
    InstitutionKind.CORRESPONDENT_CHANNEL: crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT,
    InstitutionKind.CENTRAL_BANK_CHANNEL: crossborder_pb2.RECALL_CHANNEL_CENTRAL_BANK,
    InstitutionKind.POLICE_CHANNEL: crossborder_pb2.RECALL_CHANNEL_POLICE,
}
_CHANNEL_WORDS = {
    crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT: "correspondent",
    crossborder_pb2.RECALL_CHANNEL_CENTRAL_BANK: "central bank",
    crossborder_pb2.RECALL_CHANNEL_POLICE: "police",
}
_STATUS = {
    "located": crossborder_pb2.RECALL_STATUS_LOCATED,
    "held": crossborder_pb2.RECALL_STATUS_HELD,
    "returned": crossborder_pb2.RECALL_STATUS_RETURNED,
    "refused": crossborder_pb2.RECALL_STATUS_REFUSED,
    "no_answer": crossborder_pb2.RECALL_STATUS_NO_ANSWER,
}
# The states of an update in the outbox (see the module docstring).
PENDING, DELIVERED, REFUSED, WITHHELD = "pending", "delivered", "refused", "withheld"

log = structlog.get_logger("sandbox")

_SCHEMA = """
-- One row per recovery this channel was asked about: the channel's reference for it, and the
-- order that opened it (every update quotes that order's key).
CREATE TABLE IF NOT EXISTS recoveries (
    -- AUTOINCREMENT: a reference is never reused.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    recovery_id TEXT NOT NULL UNIQUE,
    reference   TEXT UNIQUE,
    case_id     TEXT NOT NULL,
    first_key   TEXT NOT NULL,
    opened_at   TEXT NOT NULL
);
-- Every order received (first request, reminders, follow-ups), once per idempotency key.
CREATE TABLE IF NOT EXISTS orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint     TEXT NOT NULL,
    recovery_id     TEXT NOT NULL REFERENCES recoveries (recovery_id),
    reminder        INTEGER NOT NULL,
    envelope        BLOB NOT NULL,  -- the hub's signed envelope, as received
    ack_payload     BLOB NOT NULL,  -- the serialised RecallAcknowledgement: every repeat is sealed from it
    received_at     TEXT NOT NULL
);
-- The outbox: what the foreign side tells the channel, due at due_at, sent in sequence order.
-- payload is the RecallUpdate without reported_at, which the first delivery attempt sets (when
-- the channel learned it: due_at, or the attempt's time if delivered early) and every retry keeps.
CREATE TABLE IF NOT EXISTS updates (
    recovery_id     TEXT NOT NULL REFERENCES recoveries (recovery_id),
    sequence        INTEGER NOT NULL CHECK (sequence > 0),
    due_at          TEXT NOT NULL,
    payload         BLOB NOT NULL,
    reported_at     TEXT,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'refused', 'withheld')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    TEXT,
    refused_code    TEXT,
    refused_details TEXT,
    PRIMARY KEY (recovery_id, sequence)
);
CREATE INDEX IF NOT EXISTS updates_by_state_due ON updates (state, due_at);
"""


def channel_name(channel: int) -> str:
    """RECALL_CHANNEL_POLICE, or the number for a value the contract does not name."""
    try:
        return crossborder_pb2.RecallChannel.Name(channel)
    except ValueError:
        return str(channel)


@dataclass(frozen=True)
class ReceivedRecall:
    """One order as stored: the hub's signed envelope and the acknowledgement it was answered."""

    idempotency_key: str
    recovery_id: str
    reference: str
    reminder: int
    envelope: envelope_pb2.Envelope
    acknowledgement: crossborder_pb2.RecallAcknowledgement
    received_at: datetime

    @property
    def order(self) -> crossborder_pb2.RecallOrder:
        return crossborder_pb2.RecallOrder.FromString(self.envelope.payload)


@dataclass(frozen=True)
class ScheduledUpdate:
    """One update in the outbox. `update` carries reported_at once a delivery was attempted."""

    recovery_id: str
    sequence: int
    due_at: datetime
    state: str  # PENDING, DELIVERED, REFUSED or WITHHELD
    update: crossborder_pb2.RecallUpdate
    attempts: int
    delivered_at: datetime | None
    refused_code: str | None  # the hub's status name, for a refused update
    refused_details: str | None


@dataclass(frozen=True)
class Acknowledged:
    payload: bytes  # the stored RecallAcknowledgement bytes
    acknowledgement: crossborder_pb2.RecallAcknowledgement
    replayed: bool  # a repeated key: nothing stored, nothing scheduled
    opened: bool  # the recovery's first order at this channel
    scheduled: int  # updates this order scheduled (0 for a repeat, reminder, follow-up or no script)


class RecallStore(SqliteStore):
    """A recall channel's file: orders received, its reference per recovery, and the outbox of
    updates for the hub. One SQLite file per channel."""

    def __init__(self, path: Path, channel_id: str):
        self.channel_id = channel_id
        super().__init__(path, _SCHEMA)

    def receive(
        self,
        order: crossborder_pb2.RecallOrder,
        fingerprint: str,
        envelope: envelope_pb2.Envelope,
        now: datetime,
        script: RecallScript | None,
    ) -> Acknowledged:
        """Store an order once per key and return its acknowledgement (a repeat: the stored one).
        The first order of a recovery opens it (the channel's reference) and schedules `script`'s
        updates from `now`. IdempotencyConflict when the key was used for other content;
        InvalidField when the recovery is another case's here."""
        key = order.idempotency_key

        def work(conn: sqlite3.Connection) -> Acknowledged:
            row = conn.execute(
                "SELECT fingerprint, ack_payload FROM orders WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise IdempotencyConflict(f"idempotency key {key!r} was used for a different recall order")
                payload = bytes(row[1])
                ack = crossborder_pb2.RecallAcknowledgement.FromString(payload)
                return Acknowledged(payload, ack, replayed=True, opened=False, scheduled=0)
            recovery = conn.execute(
                "SELECT reference, case_id FROM recoveries WHERE recovery_id = ?", (order.recovery_id,)
            ).fetchone()
            opened = recovery is None
            if opened:
                cur = conn.execute(
                    "INSERT INTO recoveries (recovery_id, case_id, first_key, opened_at) VALUES (?, ?, ?, ?)",
                    (order.recovery_id, order.case_id, key, utc_text(now)),
                )
                reference = f"{self.channel_id}-RC-{cur.lastrowid:06d}"
                conn.execute("UPDATE recoveries SET reference = ? WHERE id = ?", (reference, cur.lastrowid))
            else:
                reference, case_id = recovery
                require("case_id", case_id == order.case_id,
                        f"recovery {order.recovery_id!r} is case {case_id!r}'s at this channel, not {order.case_id!r}")  # fmt: skip
            ack = crossborder_pb2.RecallAcknowledgement(
                idempotency_key=key, recovery_id=order.recovery_id, reference=reference
            )
            ack.acknowledged_at.FromDatetime(now)
            payload = ack.SerializeToString(deterministic=True)
            conn.execute(
                "INSERT INTO orders (idempotency_key, fingerprint, recovery_id, reminder, envelope, ack_payload,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, fingerprint, order.recovery_id, order.reminder, envelope.SerializeToString(), payload, utc_text(now)),
            )
            scheduled = 0
            if opened and script is not None:
                for sequence, scripted in enumerate(script.updates, start=1):
                    update = recall_update(scripted, key, order.recovery_id, order.case_id, sequence)
                    conn.execute(
                        "INSERT INTO updates (recovery_id, sequence, due_at, payload) VALUES (?, ?, ?, ?)",
                        (order.recovery_id, sequence, utc_text(now + timedelta(seconds=scripted.after_seconds)),
                         update.SerializeToString(deterministic=True)),
                    )  # fmt: skip
                    scheduled += 1
            return Acknowledged(payload, ack, replayed=False, opened=opened, scheduled=scheduled)

        return self._write(work)

    # --- the outbox ----------------------------------------------------------------------

    def deliverable(self, due_by: datetime | None) -> list[list[ScheduledUpdate]]:
        """Per recovery (the one due first, first), its pending updates due by `due_by` (None:
        all, whatever their time) in sequence order, up to the first that is not due. A recovery
        whose earlier update was refused has none (its later ones are withheld)."""

        def work(conn: sqlite3.Connection) -> list[list[ScheduledUpdate]]:
            rows = conn.execute(
                f"SELECT {_UPDATE_COLUMNS} FROM updates WHERE state = 'pending' ORDER BY recovery_id, sequence"
            ).fetchall()
            batches: dict[str, list[ScheduledUpdate]] = {}
            cut: set[str] = set()
            for row in rows:
                update = _scheduled(row)
                if update.recovery_id in cut:
                    continue
                if due_by is not None and update.due_at > due_by:
                    cut.add(update.recovery_id)  # what follows in sequence waits for this one
                    continue
                batches.setdefault(update.recovery_id, []).append(update)
            return sorted(batches.values(), key=lambda batch: (batch[0].due_at, batch[0].recovery_id))

        return self._read(work)

    def attempt(self, recovery_id: str, sequence: int, now: datetime) -> bytes:
        """Count one delivery attempt of a pending update and return the RecallUpdate bytes to
        send. The first attempt fixes reported_at (the due time, or `now` if that is earlier:
        the channel cannot have learned it later than it tells); retries send the same bytes."""

        def work(conn: sqlite3.Connection) -> bytes:
            row = conn.execute(
                "SELECT payload, due_at, reported_at, state FROM updates WHERE recovery_id = ? AND sequence = ?",
                (recovery_id, sequence),
            ).fetchone()
            if row is None or row[3] != PENDING:
                raise LookupError(f"no pending update {sequence} of recovery {recovery_id!r}")
            payload, due_at, reported_at, _ = row
            if reported_at is None:
                reported_at = min(due_at, utc_text(now))
            conn.execute(
                "UPDATE updates SET reported_at = ?, attempts = attempts + 1 WHERE recovery_id = ? AND sequence = ?",
                (reported_at, recovery_id, sequence),
            )
            return _with_reported_at(bytes(payload), reported_at).SerializeToString(deterministic=True)

        return self._write(work)

    def mark_delivered(self, recovery_id: str, sequence: int, at: datetime) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE updates SET state = 'delivered', delivered_at = ? WHERE recovery_id = ? AND sequence = ?"
                " AND state = 'pending'",
                (utc_text(at), recovery_id, sequence),
            )
        )

    def mark_refused(self, recovery_id: str, sequence: int, code: str, details: str) -> int:
        """Record the hub's refusal of an update (never retried) and withhold the recovery's later
        updates; return how many were withheld."""

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE updates SET state = 'refused', refused_code = ?, refused_details = ? WHERE recovery_id = ?"
                " AND sequence = ? AND state = 'pending'",
                (code, details, recovery_id, sequence),
            )
            return conn.execute(
                "UPDATE updates SET state = 'withheld' WHERE recovery_id = ? AND sequence > ? AND state = 'pending'",
                (recovery_id, sequence),
            ).rowcount

        return self._write(work)

    # --- reading -------------------------------------------------------------------------

    def orders(self) -> list[ReceivedRecall]:
        """Every order received, oldest first, with the hub's envelope and the acknowledgement."""

        def work(conn: sqlite3.Connection) -> list[ReceivedRecall]:
            return conn.execute(
                "SELECT o.idempotency_key, o.recovery_id, r.reference, o.reminder, o.envelope, o.ack_payload,"
                " o.received_at FROM orders o JOIN recoveries r ON r.recovery_id = o.recovery_id ORDER BY o.id"
            ).fetchall()

        return [
            ReceivedRecall(r[0], r[1], r[2], r[3], envelope_pb2.Envelope.FromString(bytes(r[4])),
                           crossborder_pb2.RecallAcknowledgement.FromString(bytes(r[5])), utc_time_or_none(r[6]))  # fmt: skip
            for r in self._read(work)
        ]

    def updates(self, recovery_id: str | None = None) -> list[ScheduledUpdate]:
        """The outbox (or one recovery's part of it), by recovery and sequence, in every state."""

        def work(conn: sqlite3.Connection) -> list:
            return conn.execute(
                f"SELECT {_UPDATE_COLUMNS} FROM updates WHERE ?1 IS NULL OR recovery_id = ?1"
                " ORDER BY recovery_id, sequence",
                (recovery_id,),
            ).fetchall()

        return [_scheduled(row) for row in self._read(work)]


_UPDATE_COLUMNS = (
    "recovery_id, sequence, due_at, payload, reported_at, state, attempts, delivered_at, refused_code, refused_details"
)


def _scheduled(row) -> ScheduledUpdate:
    recovery_id, sequence, due_at, payload, reported_at, state, attempts, delivered_at, code, details = row
    return ScheduledUpdate(
        recovery_id=recovery_id, sequence=sequence, due_at=utc_time_or_none(due_at), state=state,
        update=_with_reported_at(bytes(payload), reported_at), attempts=attempts,
        delivered_at=utc_time_or_none(delivered_at), refused_code=code, refused_details=details,
    )  # fmt: skip


def _with_reported_at(payload: bytes, reported_at: str | None) -> crossborder_pb2.RecallUpdate:
    update = crossborder_pb2.RecallUpdate.FromString(payload)
    if reported_at is not None:
        update.reported_at.FromDatetime(utc_time_or_none(reported_at))
    return update


def recall_update(
    scripted: ScriptedUpdate, idempotency_key: str, recovery_id: str, case_id: str, sequence: int
) -> crossborder_pb2.RecallUpdate:
    """The RecallUpdate a scripted update becomes (reported_at is set when it is first sent). A
    located payment's amount, when the script knows it, is the onward payment's own amount
    (location.amount, as ForeignDestination carries it); held and returned amounts are the
    update's amount."""
    update = crossborder_pb2.RecallUpdate(
        idempotency_key=idempotency_key, recovery_id=recovery_id, case_id=case_id, sequence=sequence,
        status=_STATUS[scripted.status], return_reference=scripted.return_reference, reason=scripted.reason,
    )  # fmt: skip
    if scripted.location is not None:
        update.location.CopyFrom(
            common_pb2.ForeignDestination(
                bic=scripted.location.bic, account=scripted.location.account,
                payment_reference=scripted.location.payment_reference,
            )  # fmt: skip
        )
    if scripted.amount_minor is not None:
        money = common_pb2.Money(minor_units=scripted.amount_minor, currency=scripted.currency)
        (update.location.amount if scripted.status == "located" else update.amount).CopyFrom(money)
    return update


def check_recall_order(order: crossborder_pb2.RecallOrder, channel: int) -> str:
    """InvalidField for the first field missing or malformed (or a recall for another channel);
    else the order's fingerprint (every field: a reused key with anything changed is a conflict)."""
    require("idempotency_key", bool(order.idempotency_key), "must not be empty")
    require("recovery_id", bool(order.recovery_id), "must not be empty")
    require("case_id", bool(order.case_id), "must not be empty")
    require(
        "channel",
        order.channel == channel,
        f"this is the {_CHANNEL_WORDS[channel]} channel ({channel_name(channel)}), not {channel_name(order.channel)}",
    )
    require("from_account.institution", bool(order.from_account.institution), "must not be empty")
    require("from_account.account_number", bool(order.from_account.account_number), "must not be empty")
    require("destination", order.HasField("destination"), "required: where the payment is now")
    destination = order.destination
    require(
        "destination.bic",
        bool(BIC_PATTERN.fullmatch(destination.bic)),
        f"{destination.bic!r} is not a BIC (ISO 9362: 8 or 11 letters and digits, e.g. FICTDEFFXXX)",
    )
    require("destination.account", bool(destination.account), "must not be empty")
    require("destination.payment_reference", bool(destination.payment_reference), "must not be empty (e.g. the UETR)")
    if destination.HasField("amount"):
        check_money(destination.amount, "destination.amount")
    require("amount", order.HasField("amount"), "required: the payment as sent, in its own currency")
    check_money(order.amount, "amount")
    require("sent_at", order.HasField("sent_at"), "required")
    to_datetime(order.sent_at, "sent_at")
    content = json_format.MessageToDict(order, preserving_proto_field_name=True)
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class CrossBorderServicer(SignedServicer, crossborder_pb2_grpc.CrossBorderServiceServicer):
    def __init__(
        self,
        institution_id: str,
        signing_key: SigningKey,
        registry: Callable[[], Registry],
        store: RecallStore,
        faults: Faults,
        channel: int,
        scripts: Iterable[RecallScript] = (),
        on_request: Callable[[], None] = lambda: None,
    ):
        """`channel`: the RecallChannel this institution is (CHANNEL_BY_KIND); `scripts`: what its
        foreign side answers, by payment reference."""
        super().__init__(institution_id, signing_key, registry, faults, on_request)
        if channel not in _CHANNEL_WORDS:
            raise ValueError(f"{institution_id}: {channel_name(channel)} is not a recall channel")
        self.channel = channel
        self._store = store
        self._scripts = {s.payment_reference: s for s in scripts}

    async def RequestRecall(self, request, context) -> crossborder_pb2.RequestRecallResponse:
        await self._before(context)
        order = await self._open(request, crossborder_pb2.RecallOrder, context)
        bound = log.bind(institution=self.institution_id, case_id=order.case_id, recovery_id=order.recovery_id,
                         idempotency_key=order.idempotency_key)  # fmt: skip
        try:
            fingerprint = check_recall_order(order, self.channel)
            script = self._scripts.get(order.destination.payment_reference)
            result = await asyncio.to_thread(
                self._store.receive, order, fingerprint, request.envelope, datetime.now(UTC), script
            )
        except InvalidField as e:
            await self._invalid(context, bound, "recall", e)
        except IdempotencyConflict as e:
            bound.warning("recall.idempotency_conflict")
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(e))
        bound.info(
            "recall.acknowledged", reference=result.acknowledgement.reference, replayed=result.replayed,
            reminder=order.reminder, opened=result.opened, scheduled=result.scheduled,
            # A first order with no script: this channel will say nothing more (a silent channel).
            silent=result.opened and script is None,
        )  # fmt: skip
        await self._lose_answer_after_apply(context, bound)
        return crossborder_pb2.RequestRecallResponse(
            envelope=self._seal_stored(result.payload, crossborder_pb2.RecallAcknowledgement)
        )

    def seal_update(self, payload: bytes) -> envelope_pb2.Envelope:
        """An outbox update's bytes in a fresh envelope signed now by the channel (or, under
        forge_answers, by a key nobody registered)."""
        return self._seal_stored(payload, crossborder_pb2.RecallUpdate)
