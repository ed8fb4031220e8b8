"""RegulatorService as a sandbox regulator (the telecom regulator, the bank regulator) runs it:
verify the hub's envelope, validate the report or notice, store it once per idempotency key, and
answer with a signed RegulatorReceipt carrying the regulator's own reference.

A repeat (the hub's activity retried after a lost answer) gets the first receipt again, with the
same reference, and is stored once. What makes a repeat "the same" is what the report is about,
not every byte: a breach report's evidence and log size may grow between the hub's retries (the
hub keeps asking the institution meanwhile, and every attempt is one more log entry), so a breach
report is the same report when it names the same case, institution, request type, request key
and times; an interception notice when every field is the same. The same key with other content
is ALREADY_EXISTS. Only the hub may report (PERMISSION_DENIED for anyone else's valid signature).

`received()` (and `breach_reports()`, `interception_notices()`) show what was stored, with the
hub's signed envelope as received, so tests and integrators can check "reported once".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import structlog

from sandbox.faults import Faults
from sandbox.signed import IdempotencyConflict, SignedServicer
from sandbox.store import SqliteStore, utc_text
from sandbox.wire import InvalidField, check_phone_numbers, require, to_datetime
from stopline.v1 import envelope_pb2, regulator_pb2, regulator_pb2_grpc
from trust.keys import SigningKey
from trust.registry import Registry

REGULATOR_SERVICE = regulator_pb2.DESCRIPTOR.services_by_name["RegulatorService"].full_name
BREACH, INTERCEPTION = "breach", "interception"
# An RFC 6962 leaf hash is a SHA-256.
LEAF_HASH_BYTES = 32

log = structlog.get_logger("sandbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    -- AUTOINCREMENT: a reference is never reused.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reference       TEXT UNIQUE,
    what            TEXT NOT NULL CHECK (what IN ('breach', 'interception')),
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    case_id         TEXT NOT NULL,
    about           TEXT NOT NULL,   -- the institution reported, or the carrier that acted
    envelope        BLOB NOT NULL,   -- the hub's signed envelope, as received
    receipt_payload BLOB NOT NULL,   -- the serialised RegulatorReceipt: every repeat is sealed from it
    received_at     TEXT NOT NULL,
    UNIQUE (what, idempotency_key)
);
"""


def _fingerprint(content: list) -> str:
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Received:
    """One report or notice as stored: the regulator's reference and the hub's signed envelope."""

    reference: str
    what: str  # BREACH or INTERCEPTION
    idempotency_key: str
    case_id: str
    about: str
    envelope: envelope_pb2.Envelope
    received_at: datetime

    @property
    def message(self) -> regulator_pb2.BreachReport | regulator_pb2.InterceptionNotice:
        kind = regulator_pb2.BreachReport if self.what == BREACH else regulator_pb2.InterceptionNotice
        return kind.FromString(self.envelope.payload)


@dataclass(frozen=True)
class Receipt:
    payload: bytes
    receipt: regulator_pb2.RegulatorReceipt
    replayed: bool


class RegulatorStore(SqliteStore):
    """The regulator's file of what it received, one SQLite file per regulator."""

    def __init__(self, path: Path, regulator_id: str):
        self.regulator_id = regulator_id
        super().__init__(path, _SCHEMA)

    def receive(
        self, what: str, key: str, fingerprint: str, case_id: str, about: str, envelope: envelope_pb2.Envelope,
        now: datetime,
    ) -> Receipt:  # fmt: skip
        """Store a report once per (what, key) and return its receipt; a repeat gets the stored
        receipt. IdempotencyConflict when the key was used for other content."""
        prefix = {BREACH: "BR", INTERCEPTION: "IN"}[what]

        def work(conn: sqlite3.Connection) -> Receipt:
            row = conn.execute(
                "SELECT fingerprint, receipt_payload FROM received WHERE what = ? AND idempotency_key = ?",
                (what, key),
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise IdempotencyConflict(f"idempotency key {key!r} was used for a different {what} report")
                payload = bytes(row[1])
                return Receipt(payload, regulator_pb2.RegulatorReceipt.FromString(payload), replayed=True)
            cur = conn.execute(
                "INSERT INTO received (what, idempotency_key, fingerprint, case_id, about, envelope,"
                " receipt_payload, received_at) VALUES (?, ?, ?, ?, ?, ?, x'', ?)",
                (what, key, fingerprint, case_id, about, envelope.SerializeToString(), utc_text(now)),
            )
            reference = f"{self.regulator_id}-{prefix}-{cur.lastrowid:06d}"
            receipt = regulator_pb2.RegulatorReceipt(idempotency_key=key, reference=reference)
            receipt.received_at.FromDatetime(now)
            payload = receipt.SerializeToString(deterministic=True)
            conn.execute("UPDATE received SET reference = ?, receipt_payload = ? WHERE id = ?",
                         (reference, payload, cur.lastrowid))  # fmt: skip
            return Receipt(payload, receipt, replayed=False)

        return self._write(work)

    def received(self, what: str | None = None) -> list[Received]:
        """Everything stored (or only breach reports / interception notices), oldest first."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT reference, what, idempotency_key, case_id, about, envelope, received_at FROM received"
                " WHERE ?1 IS NULL OR what = ?1 ORDER BY id",
                (what,),
            ).fetchall()
        return [
            Received(r[0], r[1], r[2], r[3], r[4], envelope_pb2.Envelope.FromString(bytes(r[5])),
                     datetime.strptime(r[6], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC))  # fmt: skip
            for r in rows
        ]

    def breach_reports(self) -> list[Received]:
        return self.received(BREACH)

    def interception_notices(self) -> list[Received]:
        return self.received(INTERCEPTION)


class RegulatorServicer(SignedServicer, regulator_pb2_grpc.RegulatorServiceServicer):
    def __init__(
        self,
        institution_id: str,
        signing_key: SigningKey,
        registry: Callable[[], Registry],
        store: RegulatorStore,
        faults: Faults,
        on_request: Callable[[], None] = lambda: None,
    ):
        super().__init__(institution_id, signing_key, registry, faults, on_request)
        self._store = store

    async def ReportBreach(self, request, context) -> regulator_pb2.ReportBreachResponse:
        envelope = await self._receive(request, context, regulator_pb2.BreachReport, BREACH, _check_breach)
        return regulator_pb2.ReportBreachResponse(envelope=envelope)

    async def NotifyInterception(self, request, context) -> regulator_pb2.NotifyInterceptionResponse:
        envelope = await self._receive(
            request, context, regulator_pb2.InterceptionNotice, INTERCEPTION, _check_interception
        )
        return regulator_pb2.NotifyInterceptionResponse(envelope=envelope)

    async def _receive(self, request, context, message_type, what: str, check) -> envelope_pb2.Envelope:
        await self._before(context)
        message = await self._open(request, message_type, context)
        bound = log.bind(institution=self.institution_id, case_id=message.case_id, idempotency_key=message.idempotency_key)
        try:
            fingerprint, about = check(message)
            result = await asyncio.to_thread(
                self._store.receive, what, message.idempotency_key, fingerprint, message.case_id, about,
                request.envelope, datetime.now(UTC),
            )  # fmt: skip
        except InvalidField as e:
            await self._invalid(context, bound, what, e)
        except IdempotencyConflict as e:
            bound.warning(f"{what}.idempotency_conflict")
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(e))
        bound.info(f"{what}.received", reference=result.receipt.reference, replayed=result.replayed, about=about)
        await self._lose_answer_after_apply(context, bound)
        return self._seal_stored(result.payload, regulator_pb2.RegulatorReceipt)


def _check_breach(report: regulator_pb2.BreachReport) -> tuple[str, str]:
    """InvalidField for the first field missing or malformed; else (fingerprint, institution)."""
    require("idempotency_key", bool(report.idempotency_key), "must not be empty")
    require("case_id", bool(report.case_id), "must not be empty")
    require("institution", bool(report.institution), "the institution that missed the deadline: required")
    require(
        "request_type",
        report.request_type in regulator_pb2.RequestType.values() and report.request_type != 0,
        f"must name a request type, got {report.request_type}",
    )
    require("request_idempotency_key", bool(report.request_idempotency_key), "the request left unanswered: required")
    require("asked_at", report.HasField("asked_at"), "required")
    require("answer_due_at", report.HasField("answer_due_at"), "required")
    asked = to_datetime(report.asked_at, "asked_at")
    due = to_datetime(report.answer_due_at, "answer_due_at")
    require("answer_due_at", due >= asked, "is before asked_at")
    for i, ref in enumerate(report.evidence):
        require(f"evidence[{i}].leaf_hash", len(ref.leaf_hash) == LEAF_HASH_BYTES,
                f"must be a {LEAF_HASH_BYTES}-byte SHA-256, got {len(ref.leaf_hash)} bytes")  # fmt: skip
        require(f"evidence[{i}].index", ref.index < report.log_size,
                f"entry {ref.index} is not in a log of {report.log_size} entries")  # fmt: skip
    content = [report.case_id, report.institution, report.request_type, report.request_idempotency_key,
               utc_text(asked), utc_text(due)]  # fmt: skip
    return _fingerprint(content), report.institution


def _check_interception(notice: regulator_pb2.InterceptionNotice) -> tuple[str, str]:
    require("idempotency_key", bool(notice.idempotency_key), "must not be empty")
    require("case_id", bool(notice.case_id), "must not be empty")
    require("carrier", bool(notice.carrier), "the carrier that acted: required")
    numbers = check_phone_numbers(notice.phone_numbers, "phone_numbers")
    require(
        "kind",
        notice.kind in (regulator_pb2.INTERCEPTION_KIND_BLOCKED, regulator_pb2.INTERCEPTION_KIND_UNBLOCKED),
        f"must be BLOCKED or UNBLOCKED, got {notice.kind}",
    )
    require("reason", bool(notice.reason.strip()), "required")
    require("acted_at", notice.HasField("acted_at"), "required")
    acted = to_datetime(notice.acted_at, "acted_at")
    content = [notice.case_id, notice.carrier, numbers, notice.kind, notice.reason, utc_text(acted)]
    return _fingerprint(content), notice.carrier
