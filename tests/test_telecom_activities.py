"""The number and supervision activities against real institutions: two sandbox carriers (one
holds the range of a number ported to the other), a telecom regulator, a bank regulator and a
sandbox bank, each a real gRPC server on a loopback port the OS picks, under mutual TLS from a
local CA, with real Ed25519 keys and SQLite files; and a real audit log. The activities run in
Temporal's ActivityEnvironment (attempt numbers as a worker would give them), through the real
TelecomClient, RegulatorClient and ChannelPool. A rogue carrier checks the hub's answer checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.institutions import InstitutionActivities
from activities.supervision import ERR_NO_EVIDENCE, ERR_NO_REGULATOR, SupervisionActivities
from activities.telecom import TelecomActivities
from adapters.bank import BankClient
from adapters.channels import ChannelPool
from adapters.errors import InstitutionError
from adapters.regulator import RegulatorClient
from adapters.telecom import TelecomClient
from audit.entry import AuditEntry, Direction, EntryKind
from audit.log import AuditLog
from audit.merkle import hash_leaf
from audit.note import NoteSigner
from audit.store import SqliteAuditStore
from sandbox import Account as SandboxAccount
from sandbox import SandboxInstitution
from stopline.domain import (
    ERR_ANSWER_REJECTED,
    ERR_REQUEST_REJECTED,
    Account,
    Amount,
    BreachInput,
    InterceptionKind,
    InterceptionNoticeInput,
    LocateNumberInput,
    LocateNumberResult,
    NumberBlockInput,
    NumberOutcome,
    NumberResult,
    NumberUnblockInput,
    RequestType,
    StopPaymentInput,
)
from stopline.v1 import envelope_pb2, regulator_pb2, telecom_pb2, telecom_pb2_grpc
from trust.envelope import seal
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA, TlsIdentity
from worker import build_worker

HUB = "hub"
CARRIER = "zibo-mobile"  # range holder of +86170 and +86134
OTHER = "boxing-unicom"  # serves the number ported from zibo-mobile
ROGUE = "rogue-mobile"  # answers whatever the test sets
TELECOM_REGULATOR = "zibo-telecom-regulator"
BANK_REGULATOR = "zibo-bank-regulator"
BANK = "qilu-bank"
POLICE = "police-boxing"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ORIGIN = "stopline.test/audit"

SERVED = "+8613455501001"  # zibo-mobile serves it
PORTED = "+8617012345678"  # zibo-mobile's range, served by boxing-unicom
GONE = "+8617012349999"  # zibo-mobile's range, ported to a carrier not on the platform
IDLE = "+8613455509999"  # zibo-mobile's range, served by nobody
ROGUE_NUMBER = "+8618812345678"  # rogue-mobile's range
NOBODYS = "+4930123456"  # no carrier on the platform holds the range
CASE = "BX-2026-0001"
WF = f"case-{CASE}"
MULE = "6229110000800001"

KINDS = {
    HUB: InstitutionKind.HUB,
    CARRIER: InstitutionKind.CARRIER,
    OTHER: InstitutionKind.CARRIER,
    ROGUE: InstitutionKind.CARRIER,
    TELECOM_REGULATOR: InstitutionKind.TELECOM_REGULATOR,
    BANK_REGULATOR: InstitutionKind.BANK_REGULATOR,
    BANK: InstitutionKind.BANK,
    POLICE: InstitutionKind.POLICE_UNIT,
}
PREFIXES = {CARRIER: ("+86170", "+86134"), OTHER: ("+86186",), ROGUE: ("+86188",)}


# --- the rogue carrier ---------------------------------------------------------------------------


@dataclass
class RogueCarrier(telecom_pb2_grpc.TelecomServiceServicer):
    """Answers every order with `answer` sealed by `key`, or aborts with `abort`; acts on nothing."""

    key: SigningKey
    answer: Message | None = None
    abort: tuple[grpc.StatusCode, str] | None = None
    received: list[envelope_pb2.Envelope] = field(default_factory=list)

    async def _answer(self, request, context):
        self.received.append(request.envelope)
        if self.abort is not None:
            await context.abort(*self.abort)
        return seal(self.answer, self.key)

    async def BlockNumbers(self, request, context):
        return telecom_pb2.BlockNumbersResponse(envelope=await self._answer(request, context))

    async def UnblockNumbers(self, request, context):
        return telecom_pb2.UnblockNumbersResponse(envelope=await self._answer(request, context))

    async def QueryNumber(self, request, context):
        return telecom_pb2.QueryNumberResponse(envelope=await self._answer(request, context))


# --- the world: institutions, registry, audit log, the activities --------------------------------


@dataclass
class Centre:
    keys: dict[str, SigningKey]
    tls: dict[str, TlsIdentity]
    institutions: dict[str, SandboxInstitution]
    rogue: RogueCarrier
    endpoints: dict[str, str]
    audit: AuditLog
    channels: ChannelPool
    registry: Registry = field(init=False)
    telecom: TelecomActivities = field(init=False)
    supervision: SupervisionActivities = field(init=False)
    banks: InstitutionActivities = field(init=False)

    def __post_init__(self) -> None:
        self.use_registry(self.make_registry())
        registry = lambda: self.registry  # noqa: E731  (read on every call, as RegistryFile is)
        regulators = RegulatorClient(self.channels, registry, timeout_seconds=2.0)
        self.telecom = TelecomActivities(self.keys[HUB], registry, TelecomClient(self.channels, registry, 2.0),
                                         regulators, self.audit)  # fmt: skip
        self.supervision = SupervisionActivities(self.keys[HUB], registry, regulators, self.audit)
        self.banks = InstitutionActivities(self.keys[HUB], registry, BankClient(self.channels, registry, 2.0), self.audit)

    def make_registry(self, without: tuple[str, ...] = ()) -> Registry:
        return Registry(
            [
                Institution(i, i, kind, endpoint=self.endpoints.get(i), number_prefixes=PREFIXES.get(i, ()),
                            keys=(registered_key(self.keys[i].public_key, self.keys[i].key_id, EPOCH),),
                            tls_cert_sha256=self.tls[i].cert_sha256)  # fmt: skip
                for i, kind in KINDS.items()
                if i not in without
            ]
        )

    def use_registry(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def carrier(self) -> SandboxInstitution:
        return self.institutions[CARRIER]

    def entries(self) -> list[tuple[int, AuditEntry, bytes]]:
        return [(i, AuditEntry.decode(leaf), h) for i, leaf, h in self.audit.store.leaves()]


@pytest_asyncio.fixture
async def centre(tmp_path) -> AsyncIterator[Centre]:
    keys = {i: SigningKey.generate(i) for i in KINDS}
    ca = LocalCA.create()
    tls = {i: ca.issue(i, ("127.0.0.1",)) for i in KINDS}
    holder: list[Centre] = []
    registry = lambda: holder[0].registry  # noqa: E731
    institutions = {
        i: SandboxInstitution(i, keys[i], registry, tmp_path / f"{i}.db", tls=tls[i], kind=KINDS[i])
        for i in (CARRIER, OTHER, TELECOM_REGULATOR, BANK_REGULATOR, BANK)
    }
    institutions[CARRIER].numbers.seed([SERVED], {PORTED: OTHER, GONE: "offnet-mobile"})
    institutions[OTHER].numbers.seed([PORTED])
    institutions[BANK].ledger.seed([SandboxAccount(MULE, "Liu Jianguo", "CNY", 80_512_000)])
    rogue = RogueCarrier(keys[ROGUE])
    server = grpc.aio.server()
    telecom_pb2_grpc.add_TelecomServiceServicer_to_server(rogue, server)
    rogue_port = server.add_secure_port("127.0.0.1:0", tls[ROGUE].server_credentials())
    await server.start()
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), NoteSigner(ORIGIN, keys[HUB].private_key), ORIGIN)
    channels = ChannelPool(tls[HUB])
    for inst in institutions.values():
        await inst.start()
    endpoints = {i: inst.endpoint for i, inst in institutions.items()} | {ROGUE: f"127.0.0.1:{rogue_port}"}
    holder.append(Centre(keys, tls, institutions, rogue, endpoints, audit, channels))
    try:
        yield holder[0]
    finally:
        await channels.close()
        await server.stop(None)
        for inst in institutions.values():
            await inst.stop()


async def run(method, req, *, attempt: int = 1, activity_id: str = "step"):
    """Run the real activity as Temporal's worker would on call number `attempt`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, activity_id=activity_id, workflow_id=WF)
    return await env.run(method, req)


async def final(method, req, error_type: str, *, attempt: int = 1) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(method, req, attempt=attempt)
    assert caught.value.type == error_type, caught.value
    assert caught.value.non_retryable is True
    return caught.value


def key(step: str, number: str = PORTED) -> str:
    return f"{WF}/number/{number}/{step}/1"


def block_input(carrier: str, *numbers: str, step: str = "block") -> NumberBlockInput:
    return NumberBlockInput(key(step, numbers[0]), CASE, POLICE, carrier, list(numbers), f"suspect number in {CASE}")


def unblock_input(carrier: str, *numbers: str) -> NumberUnblockInput:
    return NumberUnblockInput(key("unblock", numbers[0]), CASE, carrier, list(numbers),
                              "the number belongs to an innocent courier", POLICE, "Officer Sun Li")  # fmt: skip


def logged(centre: Centre, idempotency_key: str) -> list[tuple[Direction, EntryKind, str]]:
    return [(f.entry.direction, f.entry.kind, f.entry.institution) for f in centre.audit.entries_for_key(idempotency_key)]


# --- locating the carrier that serves a number ---------------------------------------------------


async def test_a_number_is_located_at_its_range_holder_when_served_there(centre):
    result = await run(centre.telecom.locate_number, LocateNumberInput(key("locate", SERVED), CASE, SERVED))
    assert result == LocateNumberResult(SERVED, carrier=CARRIER, range_holder=CARRIER)
    # The query went out signed, and the carrier's signed report came back: both in the log.
    assert logged(centre, key("locate", SERVED)) == [
        (Direction.OUT, EntryKind.ENVELOPE, CARRIER), (Direction.IN, EntryKind.ENVELOPE, CARRIER),
    ]  # fmt: skip


async def test_a_ported_number_is_located_at_the_carrier_it_was_ported_to(centre):
    result = await run(centre.telecom.locate_number, LocateNumberInput(key("locate"), CASE, PORTED))
    assert (result.carrier, result.range_holder) == (OTHER, CARRIER)
    assert result.detail == f"ported from {CARRIER} to {OTHER}"


@pytest.mark.parametrize(
    ("number", "range_holder", "detail"),
    [
        (NOBODYS, "", "no carrier on the platform holds this number's range"),
        (GONE, CARRIER, "ported from zibo-mobile to offnet-mobile, which is not on the platform"),
        (IDLE, CARRIER, "zibo-mobile holds the range but does not serve the number"),
    ],
)
async def test_a_number_nobody_on_the_platform_serves_has_no_carrier(centre, number, range_holder, detail):
    result = await run(centre.telecom.locate_number, LocateNumberInput(key("locate", number), CASE, number))
    assert result == LocateNumberResult(number, carrier="", range_holder=range_holder, detail=detail)
    if not range_holder:
        assert centre.entries() == []  # nobody to ask: nothing sent


# --- blocking and unblocking -------------------------------------------------------------------------


async def test_a_ported_number_is_blocked_at_the_carrier_that_serves_it(centre):
    located = await run(centre.telecom.locate_number, LocateNumberInput(key("locate"), CASE, PORTED))
    result = await run(centre.telecom.request_number_block, block_input(located.carrier, PORTED))

    [blocked] = result.results
    assert (blocked.phone_number, blocked.outcome) == (PORTED, NumberOutcome.BLOCKED)
    assert blocked.block_id.startswith(f"{OTHER}-B")
    assert abs(result.answered_at - datetime.now(UTC)) < timedelta(seconds=30)
    [stored] = centre.institutions[OTHER].numbers.blocks()
    assert (stored.block_id, stored.number, stored.case_id) == (blocked.block_id, PORTED, CASE)
    assert centre.carrier.numbers.blocks() == []  # the range holder blocked nothing
    assert logged(centre, key("block")) == [(Direction.OUT, EntryKind.ENVELOPE, OTHER),
                                            (Direction.IN, EntryKind.ENVELOPE, OTHER)]  # fmt: skip


async def test_a_retried_block_blocks_once_and_answers_the_same(centre):
    first = await run(centre.telecom.request_number_block, block_input(CARRIER, SERVED, PORTED), attempt=1)
    again = await run(centre.telecom.request_number_block, block_input(CARRIER, SERVED, PORTED), attempt=2)

    assert again == first
    assert [r.outcome for r in first.results] == [NumberOutcome.BLOCKED, NumberOutcome.NOT_SERVED]
    assert first.results[1] == NumberResult(PORTED, NumberOutcome.NOT_SERVED, detail=f"ported to {OTHER}", served_by=OTHER)
    assert len(centre.carrier.numbers.blocks()) == 1
    assert [d for d, _, _ in logged(centre, key("block", SERVED))] == [Direction.OUT, Direction.IN] * 2


async def test_unblock_lifts_the_block_with_the_reason_recorded(centre):
    [blocked] = (await run(centre.telecom.request_number_block, block_input(CARRIER, SERVED))).results
    result = await run(centre.telecom.request_number_unblock, unblock_input(CARRIER, SERVED))

    assert result.results == [NumberResult(SERVED, NumberOutcome.UNBLOCKED, block_id=blocked.block_id, detail="block lifted")]
    [stored] = centre.carrier.numbers.blocks()
    assert not stored.in_force
    assert (stored.unblock_reason, stored.unblocked_by, stored.unblock_officer) == (
        "the number belongs to an innocent courier", POLICE, "Officer Sun Li",
    )  # fmt: skip


async def test_a_carrier_refusing_the_order_is_final_and_logged(centre):
    req = block_input(CARRIER, "+8612345")  # not a valid number: the carrier says which field
    err = await final(centre.telecom.request_number_block, req, ERR_REQUEST_REJECTED)
    assert "INVALID_ARGUMENT" in err.message and "phone_numbers[0]" in err.message
    assert logged(centre, req.idempotency_key) == [(Direction.OUT, EntryKind.ENVELOPE, CARRIER),
                                                   (Direction.OUT, EntryKind.REFUSAL, CARRIER)]  # fmt: skip
    assert centre.carrier.numbers.blocks() == []


async def test_a_carrier_that_is_down_is_retried(centre):
    centre.carrier.faults.refuse_all_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(InstitutionError) as caught:
        await run(centre.telecom.request_number_block, block_input(CARRIER, SERVED))
    assert caught.value.retryable


async def test_a_forged_carrier_answer_is_refused(centre):
    centre.carrier.faults.forge_answers = True
    err = await final(centre.telecom.request_number_block, block_input(CARRIER, SERVED), ERR_ANSWER_REJECTED)
    assert "does not verify" in err.message
    assert logged(centre, key("block", SERVED))[-1] == (Direction.IN, EntryKind.REFUSAL, CARRIER)


def rogue_answer(req, **changes) -> telecom_pb2.NumberBlockAnswer:
    answer = telecom_pb2.NumberBlockAnswer(idempotency_key=req.idempotency_key, case_id=req.case_id)
    for number in req.phone_numbers:
        answer.results.add(phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_BLOCKED, block_id="R-1")
    for name, value in changes.items():
        if name == "results":
            del answer.results[:]
            answer.results.extend(value)
        else:
            setattr(answer, name, value)
    return answer


def result_pb(number: str, outcome=telecom_pb2.NUMBER_OUTCOME_BLOCKED, block_id: str = "R-1"):
    return telecom_pb2.NumberResult(phone_number=number, outcome=outcome, block_id=block_id)


TWO = (ROGUE_NUMBER, "+8618812340000")


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"idempotency_key": "case-OTHER/block/1"}, "is for request"),
        ({"case_id": "OTHER-CASE"}, "is for case"),
        ({"results": [result_pb(TWO[0])]}, "1 results for 2 numbers ordered"),
        ({"results": [result_pb(TWO[0]), result_pb(TWO[1]), result_pb(TWO[1])]}, "3 results for 2 numbers"),
        ({"results": [result_pb(TWO[1]), result_pb(TWO[0])]}, "results[0] is about '+8618812340000'"),
        ({"results": [result_pb(TWO[0]), result_pb(TWO[1], telecom_pb2.NUMBER_OUTCOME_UNBLOCKED)]},
         "results[1].outcome: 'unblocked' does not answer this order"),
        ({"results": [result_pb(TWO[0]), result_pb(TWO[1], 0)]}, "results[1].outcome: '0'"),
        ({"results": [result_pb(TWO[0], block_id=""), result_pb(TWO[1])]}, "results[0].block_id"),
    ],
)
async def test_a_block_answer_that_does_not_fit_the_order_is_refused(centre, changes, why):
    req = block_input(ROGUE, *TWO)
    centre.rogue.answer = rogue_answer(req, **changes)
    err = await final(centre.telecom.request_number_block, req, ERR_ANSWER_REJECTED)
    assert err.message.startswith(f"answer from {ROGUE} refused: "), err.message
    assert why in err.message, err.message


async def test_a_fitting_rogue_answer_is_handed_over_in_order(centre):
    req = block_input(ROGUE, *TWO)
    centre.rogue.answer = rogue_answer(req, results=[result_pb(TWO[0]), result_pb(TWO[1], telecom_pb2.NUMBER_OUTCOME_REFUSED, "")])
    result = await run(centre.telecom.request_number_block, req)
    assert [(r.phone_number, r.outcome) for r in result.results] == [(TWO[0], NumberOutcome.BLOCKED),
                                                                     (TWO[1], NumberOutcome.REFUSED)]  # fmt: skip


async def test_an_unblock_answer_saying_blocked_is_refused(centre):
    req = unblock_input(ROGUE, ROGUE_NUMBER)
    centre.rogue.answer = rogue_answer(req)
    err = await final(centre.telecom.request_number_unblock, req, ERR_ANSWER_REJECTED)
    assert "'blocked' does not answer this order" in err.message


async def test_an_answer_signed_by_another_carrier_is_refused(centre):
    req = block_input(ROGUE, ROGUE_NUMBER)
    centre.rogue.answer = rogue_answer(req)
    centre.rogue.key = centre.keys[CARRIER]  # a valid signature, of the wrong carrier
    err = await final(centre.telecom.request_number_block, req, ERR_ANSWER_REJECTED)
    assert f"signed by '{CARRIER}'" in err.message


@pytest.mark.parametrize(
    ("report", "why"),
    [
        (dict(idempotency_key="other", phone_number=ROGUE_NUMBER, served=True), "report is for request"),
        (dict(idempotency_key=key("locate", ROGUE_NUMBER), phone_number=TWO[1], served=True), "report is about"),
        (dict(idempotency_key=key("locate", ROGUE_NUMBER), phone_number=ROGUE_NUMBER, served=True, served_by=OTHER),
         "served here and by"),
    ],
)
async def test_a_number_report_that_does_not_fit_the_query_is_refused(centre, report, why):
    centre.rogue.answer = telecom_pb2.NumberReport(**report)
    err = await final(centre.telecom.locate_number, LocateNumberInput(key("locate", ROGUE_NUMBER), CASE, ROGUE_NUMBER),
                      ERR_ANSWER_REJECTED)  # fmt: skip
    assert why in err.message


# --- telling the telecom regulator ---------------------------------------------------------------


def notice_input(kind: InterceptionKind = InterceptionKind.BLOCKED) -> InterceptionNoticeInput:
    return InterceptionNoticeInput(key(f"notify-{kind.value}"), CASE, OTHER, [PORTED], kind, "suspect number",
                                   datetime(2026, 11, 25, 1, 12, tzinfo=UTC))  # fmt: skip


async def test_the_telecom_regulator_is_told_once_per_notice(centre):
    receipt = await run(centre.telecom.notify_telecom_regulator, notice_input())
    again = await run(centre.telecom.notify_telecom_regulator, notice_input(), attempt=2)  # a retry

    assert receipt.regulator == TELECOM_REGULATOR
    assert receipt.reference == f"{TELECOM_REGULATOR}-IN-000001" and again == receipt
    [filed] = centre.institutions[TELECOM_REGULATOR].reports.interception_notices()
    notice = filed.message
    assert (notice.carrier, list(notice.phone_numbers), notice.kind) == (OTHER, [PORTED], regulator_pb2.INTERCEPTION_KIND_BLOCKED)
    lifted = await run(centre.telecom.notify_telecom_regulator, notice_input(InterceptionKind.UNBLOCKED))
    assert lifted.reference == f"{TELECOM_REGULATOR}-IN-000002"


async def test_without_a_telecom_regulator_the_notice_waits_for_an_operator(centre):
    centre.use_registry(centre.make_registry(without=(TELECOM_REGULATOR,)))
    with pytest.raises(ApplicationError) as caught:
        await run(centre.telecom.notify_telecom_regulator, notice_input())
    assert caught.value.type == ERR_NO_REGULATOR and not caught.value.non_retryable
    assert "lists no telecom_regulator" in caught.value.message
    assert centre.entries() == []


# --- reporting a breach, with the signed log as evidence -------------------------------------------


def breach_input(institution: str, request_key: str, request_type=RequestType.BLOCK_NUMBERS) -> BreachInput:
    asked = datetime(2026, 11, 25, 1, 10, tzinfo=UTC)
    return BreachInput(f"{request_key}/breach", CASE, institution, request_type, request_key, asked,
                       asked + timedelta(minutes=30), detail="no answer in 30 minutes")  # fmt: skip


async def test_a_breach_report_cites_every_signed_attempt_the_hub_sent(centre):
    req = block_input(CARRIER, SERVED)
    centre.carrier.faults.refuse_all_with = grpc.StatusCode.UNAVAILABLE  # the carrier never answers
    for attempt in (1, 2, 3):
        with pytest.raises(InstitutionError):
            await run(centre.telecom.request_number_block, req, attempt=attempt)
        # Other traffic, to the same carrier and to another: not evidence of this request.
        if attempt == 2:
            with pytest.raises(InstitutionError):
                await run(centre.telecom.request_number_unblock, unblock_input(CARRIER, SERVED))
            await run(centre.telecom.request_number_block, block_input(OTHER, PORTED))

    result = await run(centre.supervision.report_breach, breach_input(CARRIER, req.idempotency_key))

    assert result.regulator == TELECOM_REGULATOR  # a carrier's regulator, found by kind
    assert result.reference == f"{TELECOM_REGULATOR}-BR-000001"
    assert result.evidence_entries == 3
    [filed] = centre.institutions[TELECOM_REGULATOR].reports.breach_reports()
    report = filed.message
    assert (report.institution, report.request_type, report.request_idempotency_key) == (
        CARRIER, regulator_pb2.REQUEST_TYPE_BLOCK_NUMBERS, req.idempotency_key,
    )  # fmt: skip
    assert report.detail == "no answer in 30 minutes"
    # Each cited entry is in the log, hashes to the cited leaf hash, and is a signed order the hub
    # sent the carrier under the request's key.
    stored = {i: (leaf, h) for i, leaf, h in centre.audit.store.leaves()}
    assert report.log_size <= len(stored)
    assert len(report.evidence) == 3 and sorted(r.index for r in report.evidence) == [r.index for r in report.evidence]
    for ref in report.evidence:
        leaf, leaf_hash = stored[ref.index]
        assert ref.index < report.log_size
        assert ref.leaf_hash == leaf_hash == hash_leaf(leaf)
        entry = AuditEntry.decode(leaf)
        assert (entry.kind, entry.direction, entry.institution, entry.case_id) == (EntryKind.ENVELOPE, Direction.OUT, CARRIER, CASE)
        envelope = envelope_pb2.Envelope.FromString(entry.payload)
        assert envelope.signer == HUB and envelope.payload_type == "stopline.v1.NumberBlockOrder"
        assert telecom_pb2.NumberBlockOrder.FromString(envelope.payload).idempotency_key == req.idempotency_key
    # The report itself went out signed and its receipt came back: both logged under its own key.
    assert logged(centre, f"{req.idempotency_key}/breach") == [
        (Direction.OUT, EntryKind.ENVELOPE, TELECOM_REGULATOR), (Direction.IN, EntryKind.ENVELOPE, TELECOM_REGULATOR),
    ]  # fmt: skip


async def test_a_retried_breach_report_is_stored_once_at_the_regulator(centre):
    req = block_input(CARRIER, SERVED)
    centre.carrier.faults.refuse_all_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(InstitutionError):
        await run(centre.telecom.request_number_block, req)
    regulator = centre.institutions[TELECOM_REGULATOR]
    regulator.faults.fail_after_apply = 1  # the regulator files it, the receipt is lost
    with pytest.raises(InstitutionError):
        await run(centre.supervision.report_breach, breach_input(CARRIER, req.idempotency_key))
    # Meanwhile the hub asked the carrier again: the retried report cites one more attempt...
    with pytest.raises(InstitutionError):
        await run(centre.telecom.request_number_block, req, attempt=2)
    result = await run(centre.supervision.report_breach, breach_input(CARRIER, req.idempotency_key), attempt=2)

    # ...and is still the one report the regulator filed first.
    [filed] = regulator.reports.breach_reports()
    assert result.reference == filed.reference == f"{TELECOM_REGULATOR}-BR-000001"
    assert result.evidence_entries == 2
    assert len(filed.message.evidence) == 1


async def test_a_bank_that_left_a_stop_unanswered_is_reported_to_the_bank_regulator(centre):
    stop = StopPaymentInput(f"{WF}/stop/{BANK}/{MULE}/1", CASE, POLICE, Account(BANK, MULE), Amount(80_000_000, "CNY"),
                            datetime(2026, 11, 25, 0, 41, tzinfo=UTC), "Liu Jianguo")  # fmt: skip
    centre.institutions[BANK].faults.refuse_all_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(InstitutionError):
        await run(centre.banks.request_stop_payment, stop)

    result = await run(centre.supervision.report_breach, breach_input(BANK, stop.idempotency_key, RequestType.STOP_PAYMENT))

    assert (result.regulator, result.evidence_entries) == (BANK_REGULATOR, 1)
    [filed] = centre.institutions[BANK_REGULATOR].reports.breach_reports()
    assert filed.message.request_type == regulator_pb2.REQUEST_TYPE_STOP_PAYMENT
    assert centre.institutions[TELECOM_REGULATOR].reports.received() == []


async def test_a_breach_with_nothing_in_the_log_to_cite_is_not_reported(centre):
    err = await final(centre.supervision.report_breach, breach_input(CARRIER, key("never-sent")), ERR_NO_EVIDENCE)
    assert "holds no request" in err.message
    # A request sent to another institution under that key is not this institution's breach.
    await run(centre.telecom.request_number_block, block_input(OTHER, PORTED))
    await final(centre.supervision.report_breach, breach_input(CARRIER, key("block")), ERR_NO_EVIDENCE)
    assert centre.institutions[TELECOM_REGULATOR].reports.received() == []


async def test_an_institution_without_a_regulator_waits_for_an_operator(centre):
    centre.use_registry(centre.make_registry(without=(TELECOM_REGULATOR,)))
    with pytest.raises(ApplicationError) as caught:
        await run(centre.supervision.report_breach, breach_input(CARRIER, key("block")))
    assert caught.value.type == ERR_NO_REGULATOR and not caught.value.non_retryable


# --- the worker ------------------------------------------------------------------------------------


async def test_the_worker_runs_every_number_and_supervision_activity(centre, client):
    worker = build_worker(client, "tq-telecom-registration", hub_key=centre.keys[HUB], registry=lambda: centre.registry,
                          channels=centre.channels, audit=centre.audit, telecom_timeout_seconds=3.0)  # fmt: skip
    names = set(worker._activity_worker._activities)  # noqa: SLF001 - what the worker will answer to
    assert {"locate_number", "request_number_block", "request_number_unblock", "notify_telecom_regulator",
            "report_breach"} <= names  # fmt: skip
