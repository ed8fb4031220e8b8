"""Hostile input at the front door: whatever a caller sends HubService (random, oversize,
wrong-typed or missing fields, another message's bytes, garbage instead of a request, a flood of
reports), it gets a clear status it can act on, never a crash (UNKNOWN/INTERNAL), and nothing
it sent wrongly starts a case. Real gateway, real Temporal, real gRPC over mutual TLS."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
import pytest_asyncio
from google.protobuf import descriptor as pb_descriptor
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError, RPCStatusCode

from adapters.channels import open_channel
from gateway.ratelimit import CallerRateLimit
from gateway.server import start_gateway
from gateway.service import HubServicer
from stopline.hubclient import HUB_ID, HubClient
from stopline.v1 import bank_pb2, crossborder_pb2, envelope_pb2, hub_pb2
from tests.world import POLICE, hub_world
from trust.envelope import seal, seal_bytes

HUB = hub_pb2.DESCRIPTOR.services_by_name["HubService"]
# The payload each method opens, and who calls it in real life (a bank answers about holds).
PAYLOADS = {
    "ReportCase": (hub_pb2.CaseReport, POLICE),
    "GetCase": (hub_pb2.CaseQuery, POLICE),
    "ListCases": (hub_pb2.CaseListQuery, POLICE),
    "DecideHold": (hub_pb2.HoldDecision, POLICE),
    "ReportFreezeResult": (bank_pb2.FreezeAnswer, "qilu-bank"),
    "UnblockNumber": (hub_pb2.NumberUnblockDecision, POLICE),
    "ConcludeCase": (hub_pb2.CaseConclusion, POLICE),
    "AcknowledgeEscalation": (hub_pb2.EscalationAcknowledgement, POLICE),
    "ReportReturnResult": (bank_pb2.ReturnReceipt, "qilu-bank"),
    "FindCases": (hub_pb2.CaseSearch, POLICE),
    "ReportRecallUpdate": (crossborder_pb2.RecallUpdate, "qilu-bank"),
}
# Well-formed but pointing at nothing, or not allowed: the documented answers. OK for valid input.
ANSWERS = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS,
}  # fmt: skip
REFUSED_ENVELOPE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED}
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)

assert set(PAYLOADS) == set(HUB.methods_by_name), "a HubService method without hostile-input tests"


def test_every_method_is_covered():
    """A new HubService method must be added to PAYLOADS (and so to every test below)."""
    assert set(PAYLOADS) == set(HUB.methods_by_name)


# --- strategies: any message of a type, filled field by field --------------------------------

TEXT = st.one_of(
    st.text(max_size=40),  # unicode, surrogates excluded by hypothesis, control characters included
    st.text(alphabet="A-Za-z0-9._-", max_size=70),
    st.sampled_from(["", " ", "BX-1", "case-BX-1", "qilu-bank", POLICE, "+8613800138000", "张伟", "\u202e\u0000",
                     "6229110000800001", "CNY", "XAU", "a" * 300, "Ω" * 5000]),
)  # fmt: skip
INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63), 2**31]))
UINTS = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**64 - 1]))


def _scalar(field: pb_descriptor.FieldDescriptor):
    t = field.type
    if t == field.TYPE_STRING:
        return TEXT
    if t == field.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == field.TYPE_BOOL:
        return st.booleans()
    if t == field.TYPE_ENUM:
        return st.integers(-5, 20)  # open enums: unknown numbers must be handled too
    if t in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == field.TYPE_FLOAT else 64)
    if t in (field.TYPE_UINT64, field.TYPE_FIXED64):
        return UINTS
    if t in (field.TYPE_UINT32, field.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32):
        return st.integers(-(2**31), 2**31 - 1)
    return INTS


@st.composite
def messages(draw, cls, depth: int = 0, max_repeat: int = 4):
    """A `cls` with each field left unset or given a random value of its type (nested messages to
    depth 3, repeated fields up to `max_repeat` items)."""
    msg = cls()
    for field in cls.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue  # missing field
        is_message = field.type == field.TYPE_MESSAGE
        if is_message and depth >= 3:
            continue
        if field.is_repeated:
            if is_message and field.message_type.GetOptions().map_entry:
                continue
            count = draw(st.integers(0, max_repeat))
            for _ in range(count):
                if is_message:
                    getattr(msg, field.name).add().CopyFrom(draw(messages(GetMessageClass(field.message_type), depth + 1)))
                else:
                    getattr(msg, field.name).append(draw(_scalar(field)))
        elif is_message:
            getattr(msg, field.name).CopyFrom(draw(messages(GetMessageClass(field.message_type), depth + 1)))
        else:
            setattr(msg, field.name, draw(_scalar(field)))
    return msg


def request_of(method: str, envelope: envelope_pb2.Envelope | None):
    cls = GetMessageClass(HUB.methods_by_name[method].input_type)
    return cls() if envelope is None else cls(envelope=envelope)


# --- one hub for the module: a world costs seconds, an example milliseconds ---------------------


class Caller:
    """Calls any HubService method with any envelope, from the event loop the world lives on; the
    hypothesis examples run in a thread and hand each call over (hypothesis drives sync code)."""

    def __init__(self, w, loop):
        self.w = w
        self.loop = loop
        self.channels = {inst: open_channel(w.gateway_address, HUB_ID, w.tls[inst]) for inst in {c for _, c in PAYLOADS.values()}}
        self.ok_reports: set[str] = set()

    async def call(self, method: str, request, caller: str) -> tuple[grpc.StatusCode, str]:
        stub = self.channels[caller].unary_unary(
            f"/{HUB.full_name}/{method}", request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
            response_deserializer=None,
        )  # fmt: skip
        try:
            await stub(request, timeout=15)
        except grpc.aio.AioRpcError as e:
            return e.code(), e.details() or ""
        return grpc.StatusCode.OK, ""

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def started(self, case_id: str) -> bool:
        if len(f"case-{case_id}".encode()) > 1000:
            return False  # past Temporal's workflow id limit: no such workflow can exist
        try:
            await self.w.client.get_workflow_handle(f"case-{case_id}").describe()
        except RPCError as e:
            if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                return False
            raise
        return True

    async def close(self):
        for channel in self.channels.values():
            await channel.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hub(env, tmp_path_factory):
    async with hub_world(env.client, tmp_path_factory.mktemp("hostile")) as w:
        caller = Caller(w, asyncio.get_running_loop())
        yield caller
        for case_id in caller.ok_reports:
            w._case_ids.add(case_id)  # ended with the world
        await caller.close()


def check_answer(method: str, code: grpc.StatusCode, details: str, allowed=ANSWERS):
    assert code in allowed, f"{method} answered {code.name}: {details!r}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        # Names what is wrong: "field: problem" (or the envelope's own complaint).
        assert details and (":" in details or "envelope" in details), f"{method}: unclear refusal {details!r}"


# --- 1. every method, random payloads -----------------------------------------------------------


@pytest.mark.parametrize("method", sorted(PAYLOADS))
async def test_random_payloads_get_a_clear_answer_and_never_start_a_case(hub, method):
    """Each method, signed properly by its real caller, with random messages of its own type:
    every field random, missing, oversize, unicode, negative or overflowing."""
    cls, caller = PAYLOADS[method]
    key = hub.w.keys[caller]

    @EXAMPLES
    @given(messages(cls))
    def example(payload):
        code, details = hub.run(hub.call(method, request_of(method, seal(payload, key)), caller))
        check_answer(method, code, details)
        if method == "ReportCase":
            if code == grpc.StatusCode.OK:
                hub.ok_reports.add(payload.case_id)
            elif payload.case_id not in hub.ok_reports:
                assert not hub.run(hub.started(payload.case_id)), f"refused report {payload.case_id!r} started a case"

    await asyncio.to_thread(example)


def _mutations(w):
    """A valid report with one thing wrong: the way a buggy police client really fails."""
    neg = st.integers(-(2**63), 0)
    big = st.integers(2**62, 2**63 - 1)

    def set_amount(minor):
        def mutate(r):
            r.transfers[0].amount.minor_units = minor
        return mutate

    def many_transfers(n):
        def mutate(r):
            base = r.transfers[0]
            del r.transfers[:]
            for _ in range(n):
                r.transfers.add().CopyFrom(base)
        return mutate

    def set_text(path, value):
        def mutate(r):
            *parents, name = path.split(".")
            target = r
            for p in parents:
                target = target.transfers[0] if p == "transfers[0]" else getattr(target, p)
            setattr(target, name, value)
        return mutate

    def drop(field):
        def mutate(r):
            r.transfers[0].ClearField(field)
        return mutate

    def overflow_total(r):
        for t in r.transfers:
            t.amount.minor_units = 2**63 - 1

    def phones(numbers):
        def mutate(r):
            del r.suspect_phone_numbers[:]
            r.suspect_phone_numbers.extend(numbers)
        return mutate

    return st.one_of(
        neg.map(set_amount), big.map(set_amount), st.just(overflow_total),
        st.sampled_from([0, 1001, 3000]).map(many_transfers),
        st.sampled_from(["from_account", "to_account", "amount", "transferred_at"]).map(drop),
        st.text(max_size=300).map(lambda s: set_text("transfers[0].to_account_holder_name", s)),
        st.text(max_size=600).map(lambda s: set_text("summary", s)),
        st.text(max_size=80).map(lambda s: set_text("transfers[0].to_account.account_number", s)),
        st.text(max_size=80).map(lambda s: set_text("transfers[0].to_account.institution", s)),
        st.text(max_size=8).map(lambda s: set_text("transfers[0].amount.currency", s)),
        st.text(max_size=80).map(lambda s: set_text("reporting_unit", s)),
        st.lists(TEXT, max_size=120).map(phones),
        st.lists(st.text(max_size=140), max_size=25).map(lambda ds: lambda r: r.device_ids.extend(ds)),
        INTS.map(lambda s: lambda r: setattr(r.reported_at, "seconds", s)),
        st.integers(-(2**31), 2**31 - 1).map(lambda n: lambda r: setattr(r.transfers[0].transferred_at, "nanos", n)),
    )  # fmt: skip


async def test_valid_reports_with_one_thing_wrong_are_refused_by_field_or_accepted(hub):
    """Starting from a real report, one field at a time made hostile (negative and 64-bit
    overflowing amounts, thousands of transfers, unicode names, bad numbers): a report that is
    refused names its field and starts nothing; one that is still valid is accepted."""
    w = hub.w
    key = w.keys[POLICE]

    @EXAMPLES
    @given(_mutations(w))
    def example(mutate):
        case_id = f"HX-{uuid.uuid4().hex[:12]}"
        report = w.report(case_id)
        mutate(report)
        code, details = hub.run(hub.call("ReportCase", request_of("ReportCase", seal(report, key)), POLICE))
        check_answer("ReportCase", code, details)
        if code == grpc.StatusCode.OK:
            hub.ok_reports.add(case_id)
        else:
            assert code == grpc.StatusCode.INVALID_ARGUMENT, details
            assert not hub.run(hub.started(case_id)), f"refused report started a case: {details}"

    await asyncio.to_thread(example)


# --- 2. malformed envelopes and protobuf bytes ---------------------------------------------------


@pytest.mark.parametrize("method", sorted(PAYLOADS))
async def test_broken_envelopes_are_refused_cleanly(hub, method):
    """Truncated or random payload bytes, another message type's payload (honestly labelled, or
    labelled as the expected type), no envelope, a signature over other bytes: INVALID_ARGUMENT or
    UNAUTHENTICATED, audited, and no case started."""
    cls, caller = PAYLOADS[method]
    w = hub.w
    key = w.keys[caller]
    case_id = f"ENV-{uuid.uuid4().hex[:12]}"
    if cls is hub_pb2.CaseReport:
        valid = w.report(case_id)
    elif "case_id" in cls.DESCRIPTOR.fields_by_name:
        valid = cls(case_id=case_id)
    else:
        valid = hub_pb2.CaseSearch(device_id=case_id) if cls is hub_pb2.CaseSearch else cls(page_size=3)
    good = valid.SerializeToString()
    expected_type = cls.DESCRIPTOR.full_name
    other = hub_pb2.CaseQuery(case_id=case_id) if cls is not hub_pb2.CaseQuery else hub_pb2.CaseConclusion(case_id=case_id)
    forged = seal(valid, key)
    forged.payload = good[:-1] + bytes([good[-1] ^ 1])  # signed bytes were other bytes
    envelopes = {
        "truncated": seal_bytes(good[: len(good) // 2], expected_type, key),
        "random bytes": seal_bytes(b"\xff\xfe\x00garbage\x12\x99" * 7, expected_type, key),
        "other type, honest label": seal(other, key),
        "other type, our label": seal_bytes(other.SerializeToString(), expected_type, key),
        "unknown payload_type": seal_bytes(good, "stopline.v1.NoSuchThing", key),
        "signature over other bytes": forged,
        "empty envelope": envelope_pb2.Envelope(),
    }
    audited_before = w.audit.store.size()
    for what, envelope in envelopes.items():
        code, details = await hub.call(method, request_of(method, envelope), caller)
        # Cut or foreign bytes may still parse as a (wrong) message of the expected type: then it
        # is that message's answer, but never OK and never a crash.
        reparsed = (what == "truncated" and code in ANSWERS - {grpc.StatusCode.OK}) or (
            what == "other type, our label" and code in ANSWERS
        )
        assert code in REFUSED_ENVELOPE or reparsed, \
            f"{method}, {what}: {code.name} {details!r}"  # fmt: skip
    code, details = await hub.call(method, request_of(method, None), caller)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "envelope" in details, (code, details)
    if audited_before is not None:
        assert w.audit.store.size() >= audited_before + len(envelopes)  # every refusal on record
    assert not await hub.started(case_id)


@pytest.mark.parametrize("method", sorted(PAYLOADS))
async def test_garbage_instead_of_a_request_is_refused(hub, method):
    """Bytes that are not the request message at all (the server must parse them): refused with
    INVALID_ARGUMENT (or UNAUTHENTICATED once parsed into an envelope that fails), never a crash,
    and on record in the audit log."""
    _, caller = PAYLOADS[method]
    garbage = [b"\xff" * 33, b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05\x0a\x03abc", bytes(range(256)), b"\x08\x96\x01",
               b"\x0a"]  # fmt: skip
    audited_before = hub.w.audit.store.size()
    for raw in garbage:
        code, details = await hub.call(method, raw, caller)
        assert code in REFUSED_ENVELOPE, f"{method} on {raw[:12]!r}: {code.name} {details!r}"
    assert hub.w.audit.store.size() >= audited_before + len(garbage)  # every refusal on record


# --- 3. a caller flooding ReportCase --------------------------------------------------------------


async def test_a_flooding_unit_is_slowed_down_while_another_unit_is_served(hub):
    """One police unit sends 60 reports at once against a limit of 2 a second in bursts of 5:
    some are told RESOURCE_EXHAUSTED (slow down), none is lost: every report answered OK has its
    case running, every refused one started nothing. Another unit's reports in the same moment
    all go through."""
    w = hub.w
    limited = HubServicer(w.client, w.registry, w.keys["hub"], w.task_queue, w.audit,
                          report_limit=CallerRateLimit(rate_per_second=2, burst=5))  # fmt: skip
    server, port = await start_gateway("127.0.0.1:0", limited, w.tls["hub"])
    flooder = HubClient(f"127.0.0.1:{port}", w.registry, w.keys[POLICE], w.tls[POLICE])
    other_unit = "city-leader"  # a second police unit in the world's registry
    calm = HubClient(f"127.0.0.1:{port}", w.registry, w.keys[other_unit], w.tls[other_unit])

    async def report(client, unit, case_id):
        w._case_ids.add(case_id)
        r = w.report(case_id, reporting_unit=unit)
        try:
            await client.report_case(r)
        except grpc.aio.AioRpcError as e:
            return case_id, e.code(), e.details()
        return case_id, grpc.StatusCode.OK, ""

    try:
        tag = uuid.uuid4().hex[:8]
        flood = [report(flooder, POLICE, f"FL-{tag}-{i}") for i in range(60)]
        others = [report(calm, other_unit, f"OT-{tag}-{i}") for i in range(4)]
        results = await asyncio.gather(*flood, *others)
    finally:
        await flooder.close()
        await calm.close()
        await server.stop(None)

    flood_results, other_results = results[:60], results[60:]
    exhausted = [r for r in flood_results if r[1] == grpc.StatusCode.RESOURCE_EXHAUSTED]
    accepted = [r for r in flood_results if r[1] == grpc.StatusCode.OK]
    assert exhausted and len(accepted) >= 5, [r[1].name for r in flood_results]
    assert len(exhausted) + len(accepted) == 60, {r[1].name for r in flood_results}
    assert "slow down" in exhausted[0][2]
    assert all(code == grpc.StatusCode.OK for _, code, _ in other_results), other_results
    for case_id, _, _ in accepted + other_results:
        assert await hub.started(case_id), f"{case_id} was accepted but has no case"
    for case_id, _, _ in exhausted:
        assert not await hub.started(case_id), f"{case_id} was refused but started"
    # Told to slow down, the unit gets through once it does.
    await asyncio.sleep(0.6)
    server, port = await start_gateway("127.0.0.1:0", limited, w.tls["hub"])
    try:
        async with HubClient(f"127.0.0.1:{port}", w.registry, w.keys[POLICE], w.tls[POLICE]) as again:
            case_id = exhausted[0][0]
            receipt = await again.report_case(w.report(case_id))
            assert receipt.created
    finally:
        await server.stop(None)


def test_bucket_refills_at_its_rate():
    """The limit is an average with bursts: a full bucket spends `burst` at once, then one per
    1/rate seconds, and says how long to wait."""
    now = [0.0]
    limit = CallerRateLimit(2, 3, clock=lambda: now[0])
    assert [limit.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a") == pytest.approx(0.5)
    assert limit.take("b") == 0.0  # another caller has its own bucket
    now[0] += 0.5
    assert limit.take("a") == 0.0 and limit.take("a") > 0

