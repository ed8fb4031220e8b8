"""The sandbox regulator, as the hub meets it: a real RegulatorService on loopback under mutual
TLS, real keys, a SQLite file. It files breach reports and interception notices once per key,
answers a repeat with the first receipt (same reference), and refuses what is not the hub's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.channels import open_channel
from sandbox import SandboxInstitution
from stopline.v1 import regulator_pb2, regulator_pb2_grpc
from trust.envelope import open_envelope, seal
from trust.errors import BadSignature
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA

HUB = "hub"
REGULATOR = "zibo-bank-regulator"
BANK = "qilu-bank"
CALL_TIMEOUT = 5.0
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
ASKED = datetime(2026, 11, 25, 1, 10, tzinfo=UTC)
KINDS = {HUB: InstitutionKind.HUB, REGULATOR: InstitutionKind.BANK_REGULATOR, BANK: InstitutionKind.BANK}


@pytest.fixture(scope="module")
def keys():
    return {i: SigningKey.generate(i) for i in KINDS}


@pytest.fixture(scope="module")
def tls():
    ca = LocalCA.create()
    return {i: ca.issue(i, ("127.0.0.1",)) for i in KINDS}


@pytest.fixture(scope="module")
def registry(keys, tls) -> Registry:
    return Registry(
        [
            Institution(i, i, kind, keys=(registered_key(keys[i].public_key, keys[i].key_id, VALID_FROM),),
                        tls_cert_sha256=tls[i].cert_sha256)  # fmt: skip
            for i, kind in KINDS.items()
        ]
    )


@pytest.fixture
async def regulator(tmp_path, keys, tls, registry):
    inst = SandboxInstitution(REGULATOR, keys[REGULATOR], registry, tmp_path / f"{REGULATOR}.db", tls=tls[REGULATOR])
    await inst.start()
    yield inst
    await inst.stop()


@pytest.fixture
async def channels(regulator, tls):
    opened = {}

    def channel(party: str = HUB):
        if party not in opened:
            opened[party] = open_channel(regulator.endpoint, REGULATOR, tls[party])
        return opened[party]

    yield channel
    for c in opened.values():
        await c.close()


def ts(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


def breach(key: str = "case-BX-1/stop/qilu-bank/6229110000800001/1/breach", **changes) -> regulator_pb2.BreachReport:
    report = regulator_pb2.BreachReport(
        idempotency_key=key, case_id="BX-1", institution=BANK, request_type=regulator_pb2.REQUEST_TYPE_STOP_PAYMENT,
        request_idempotency_key="case-BX-1/stop/qilu-bank/6229110000800001/1", asked_at=ts(ASKED),
        answer_due_at=ts(ASKED + timedelta(minutes=10)), log_size=9, detail="no answer in 10 minutes",
        evidence=[regulator_pb2.LogEntryRef(index=3, leaf_hash=hashlib.sha256(b"3").digest()),
                  regulator_pb2.LogEntryRef(index=7, leaf_hash=hashlib.sha256(b"7").digest())],
    )  # fmt: skip
    for name, value in changes.items():
        if name in ("asked_at", "answer_due_at"):
            getattr(report, name).CopyFrom(value)
        elif name == "evidence":
            del report.evidence[:]
            report.evidence.extend(value)
        else:
            setattr(report, name, value)
    return report


def notice(key: str = "case-BX-1/number/+8617012345678/notify-blocked/1", **changes) -> regulator_pb2.InterceptionNotice:
    n = regulator_pb2.InterceptionNotice(
        idempotency_key=key, case_id="BX-1", carrier="boxing-unicom", phone_numbers=["+8617012345678"],
        kind=regulator_pb2.INTERCEPTION_KIND_BLOCKED, reason="suspect number", acted_at=ts(ASKED),
    )  # fmt: skip
    for name, value in changes.items():
        if name == "phone_numbers":
            del n.phone_numbers[:]
            n.phone_numbers.extend(value)
        else:
            setattr(n, name, value)
    return n


async def send(channel, message, key: SigningKey):
    stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
    if isinstance(message, regulator_pb2.BreachReport):
        return await stub.ReportBreach(regulator_pb2.ReportBreachRequest(envelope=seal(message, key)), timeout=CALL_TIMEOUT)
    return await stub.NotifyInterception(
        regulator_pb2.NotifyInterceptionRequest(envelope=seal(message, key)), timeout=CALL_TIMEOUT
    )


async def receipt(channels, keys, registry, message) -> regulator_pb2.RegulatorReceipt:
    response = await send(channels(), message, keys[HUB])
    return open_envelope(response.envelope, regulator_pb2.RegulatorReceipt, registry, expected_signer=REGULATOR)


async def rpc_error(awaitable, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


async def test_a_breach_report_is_filed_with_its_evidence_and_a_signed_receipt(regulator, channels, keys, registry):
    got = await receipt(channels, keys, registry, breach())

    assert got.idempotency_key == breach().idempotency_key
    assert got.reference == f"{REGULATOR}-BR-000001"
    assert abs(got.received_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=30)
    [filed] = regulator.reports.breach_reports()
    assert (filed.reference, filed.case_id, filed.about) == (got.reference, "BX-1", BANK)
    assert filed.message == breach()
    open_envelope(filed.envelope, regulator_pb2.BreachReport, registry, expected_signer=HUB)  # kept as signed


async def test_a_repeated_breach_report_is_stored_once_with_the_first_receipt(regulator, channels, keys, registry):
    first = await receipt(channels, keys, registry, breach())
    # The hub's retry: the log grew meanwhile (another attempt at the request), the report is the same.
    grown = breach(log_size=12, evidence=[*breach().evidence, regulator_pb2.LogEntryRef(index=10, leaf_hash=b"x" * 32)])
    again = await receipt(channels, keys, registry, grown)

    assert again == first
    assert len(regulator.reports.breach_reports()) == 1
    assert regulator.reports.interception_notices() == []


async def test_the_same_key_for_another_report_is_already_exists(regulator, channels, keys, registry):
    await receipt(channels, keys, registry, breach())
    details = await rpc_error(send(channels(), breach(institution="huaxia-pay"), keys[HUB]), grpc.StatusCode.ALREADY_EXISTS)
    assert "idempotency key" in details
    assert len(regulator.reports.breach_reports()) == 1


async def test_interception_notices_are_filed_once_per_key(regulator, channels, keys, registry):
    blocked = await receipt(channels, keys, registry, notice())
    assert await receipt(channels, keys, registry, notice()) == blocked
    lifted = await receipt(channels, keys, registry, notice(key="case-BX-1/number/+8617012345678/notify-unblocked/1",
                                                            kind=regulator_pb2.INTERCEPTION_KIND_UNBLOCKED))  # fmt: skip
    assert blocked.reference == f"{REGULATOR}-IN-000001" and lifted.reference == f"{REGULATOR}-IN-000002"
    assert [n.message.kind for n in regulator.reports.interception_notices()] == [
        regulator_pb2.INTERCEPTION_KIND_BLOCKED, regulator_pb2.INTERCEPTION_KIND_UNBLOCKED,
    ]  # fmt: skip
    await rpc_error(send(channels(), notice(reason="another"), keys[HUB]), grpc.StatusCode.ALREADY_EXISTS)


async def test_a_lost_receipt_is_the_same_receipt_on_retry(regulator, channels, keys, registry):
    regulator.faults.fail_after_apply = 1
    await rpc_error(send(channels(), breach(), keys[HUB]), grpc.StatusCode.UNAVAILABLE)
    [filed] = regulator.reports.breach_reports()
    got = await receipt(channels, keys, registry, breach())
    assert got.reference == filed.reference
    assert len(regulator.reports.breach_reports()) == 1


async def test_reports_survive_a_restart(regulator, channels, keys, registry, tls):
    first = await receipt(channels, keys, registry, breach())
    await regulator.restart()
    async with open_channel(regulator.endpoint, REGULATOR, tls[HUB]) as channel:
        response = await send(channel, breach(), keys[HUB])
    again = open_envelope(response.envelope, regulator_pb2.RegulatorReceipt, registry, expected_signer=REGULATOR)
    assert again == first
    assert len(regulator.reports.breach_reports()) == 1


async def test_a_report_signed_by_anyone_but_the_hub_is_permission_denied(regulator, channels, keys):
    details = await rpc_error(send(channels(BANK), breach(), keys[BANK]), grpc.StatusCode.PERMISSION_DENIED)
    assert BANK in details
    await rpc_error(send(channels(BANK), notice(), keys[BANK]), grpc.StatusCode.PERMISSION_DENIED)
    assert regulator.reports.received() == []


async def test_a_forged_or_unsigned_report_is_unauthenticated(regulator, channels, keys):
    stub = regulator_pb2_grpc.RegulatorServiceStub(channels())
    envelope = seal(breach(), keys[HUB])
    envelope.payload = breach(institution="huaxia-pay").SerializeToString()
    await rpc_error(stub.ReportBreach(regulator_pb2.ReportBreachRequest(envelope=envelope), timeout=CALL_TIMEOUT),
                    grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    envelope = seal(breach(), keys[HUB])
    envelope.signature = b""
    await rpc_error(stub.ReportBreach(regulator_pb2.ReportBreachRequest(envelope=envelope), timeout=CALL_TIMEOUT),
                    grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    assert regulator.reports.received() == []


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (breach(key=""), "idempotency_key"),
        (breach(institution=""), "institution"),
        (breach(request_type=regulator_pb2.REQUEST_TYPE_UNSPECIFIED), "request_type"),
        (breach(request_type=99), "request_type"),
        (breach(request_idempotency_key=""), "request_idempotency_key"),
        (breach(answer_due_at=ts(ASKED - timedelta(seconds=1))), "answer_due_at: is before asked_at"),
        (breach(evidence=[regulator_pb2.LogEntryRef(index=1, leaf_hash=b"short")]), "evidence[0].leaf_hash"),
        (breach(evidence=[regulator_pb2.LogEntryRef(index=9, leaf_hash=b"x" * 32)]), "evidence[0].index"),
        (notice(carrier=""), "carrier"),
        (notice(phone_numbers=[]), "phone_numbers: must name at least one number"),
        (notice(phone_numbers=["+8617012345678", "0531 1234"]), "phone_numbers[1]"),
        (notice(kind=regulator_pb2.INTERCEPTION_KIND_UNSPECIFIED), "kind"),
        (notice(reason=""), "reason"),
    ],
)
async def test_invalid_reports_are_invalid_argument_naming_the_field(regulator, channels, keys, message, field):
    details = await rpc_error(send(channels(), message, keys[HUB]), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(field), details
    assert regulator.reports.received() == []


async def test_forged_receipts_fail_verification(regulator, channels, keys, registry):
    regulator.faults.forge_answers = True
    response = await send(channels(), breach(), keys[HUB])
    with pytest.raises(BadSignature):
        open_envelope(response.envelope, regulator_pb2.RegulatorReceipt, registry, expected_signer=REGULATOR)


async def test_health_lists_the_regulator_service(regulator, channels):
    health = health_pb2_grpc.HealthStub(channels())
    reply = await health.Check(health_pb2.HealthCheckRequest(service="stopline.v1.RegulatorService"), timeout=CALL_TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
