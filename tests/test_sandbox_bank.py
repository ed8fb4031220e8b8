"""The sandbox institutions, tested as a bank's integrator would: real gRPC on loopback, real
Ed25519 keys, a real SQLite ledger file per test. Every check looks at what the hub would see (the
signed answer, the gRPC status) and at the bank's books (what is held)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandbox import (
    Account,
    Faults,
    Ledger,
    Sandbox,
    SandboxInstitution,
    ScenarioError,
    Transfer,
    load_scenario,
)
from sandbox.scenario import parse_scenario, scenario_path
from sandbox.wire import InvalidField, to_datetime, to_timedelta
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2
from trust.envelope import open_envelope, seal
from trust.errors import BadSignature
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key

BANK = "qilu-bank"
OTHER = "huaxia-pay"
POLICE = "police-boxing"
CALL_TIMEOUT = 5.0  # every call carries a deadline: a hung server fails the test, not the suite
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)

FULL = "6229110000000001"  # 1,000,000.00 CNY
PARTIAL = "6229110000000002"  # 126,400.00 CNY, part of the mule money already moved on
EMPTY = "6229110000000003"  # 0.00 CNY
CLOSED = "6229110000000004"
DOLLARS = "6229110000000005"  # kept in USD
UNKNOWN = "6229119999999999"

ACCOUNTS = [
    Account(FULL, "Liu Jianguo", "CNY", 100_000_000),
    Account(PARTIAL, "Zhao Mingyu", "CNY", 12_640_000),
    Account(EMPTY, "Chen Hao", "CNY", 0),
    Account(CLOSED, "Wu Fang", "CNY", 5_000_000, status="closed"),
    Account(DOLLARS, "Zhou Lei", "USD", 5_000_000),
]
TRANSFERS = [
    Transfer(
        PARTIAL, OTHER, "HXP-0004", 15_000_000, "CNY", datetime(2026, 11, 25, 0, 52, tzinfo=UTC), "transfer"
    ),
    Transfer(PARTIAL, "", "", 9_860_000, "CNY", datetime(2026, 11, 25, 1, 3, tzinfo=UTC), "cash"),
    Transfer(
        PARTIAL, "", "", 100_000, "CNY", datetime(2026, 11, 1, 9, 0, tzinfo=UTC), "cash"
    ),  # before the fraud
]


# --- keys, registry, server, stub -----------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {i: SigningKey.generate(i) for i in ("hub", BANK, OTHER, POLICE)}


def make_registry(keys: dict[str, SigningKey], more_kinds: dict[str, InstitutionKind] | None = None) -> Registry:
    kinds = {
        "hub": InstitutionKind.HUB,
        BANK: InstitutionKind.BANK,
        OTHER: InstitutionKind.PAYMENT_COMPANY,
        POLICE: InstitutionKind.POLICE_UNIT,
        "boxing-rcb": InstitutionKind.BANK,
    } | (more_kinds or {})
    return Registry(
        [
            Institution(i, i, kinds[i], keys=(registered_key(k.public_key, k.key_id, VALID_FROM),))
            for i, k in keys.items()
        ]
    )


@pytest.fixture(scope="module")
def registry(keys) -> Registry:
    return make_registry(keys)


@pytest.fixture
async def bank(tmp_path, keys, registry):
    inst = SandboxInstitution(BANK, keys[BANK], registry, tmp_path / f"{BANK}.db")
    inst.ledger.seed(ACCOUNTS, TRANSFERS)
    await inst.start()
    yield inst
    await inst.stop()


@pytest.fixture
async def stub(bank):
    async with grpc.aio.insecure_channel(bank.endpoint) as channel:
        yield bank_pb2_grpc.BankServiceStub(channel)


def order(
    account: str = FULL,
    amount: int = 80_000_000,
    *,
    key: str = "case-BX-1/stop/1",
    case_id: str = "BX-1",
    holder: str = "",
    currency: str = "CNY",
    institution: str = BANK,
) -> bank_pb2.StopPaymentOrder:
    o = bank_pb2.StopPaymentOrder(
        idempotency_key=key,
        case_id=case_id,
        account=common_pb2.AccountRef(institution=institution, account_number=account),
        account_holder_name=holder,
        amount=common_pb2.Money(minor_units=amount, currency=currency),
        requested_by=POLICE,
        hold_duration=Duration(seconds=48 * 3600),
    )
    o.transfer_time.FromDatetime(datetime(2026, 11, 25, 0, 41, tzinfo=UTC))
    return o


async def send(stub, message, signer: SigningKey) -> bank_pb2.StopPaymentResponse:
    return await stub.StopPayment(
        bank_pb2.StopPaymentRequest(envelope=seal(message, signer)), timeout=CALL_TIMEOUT
    )


async def stop(stub, keys, registry, message) -> bank_pb2.StopPaymentAnswer:
    """Send an order signed by the hub; open the answer as the hub would."""
    response = await send(stub, message, keys["hub"])
    return open_envelope(response.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK)


async def rpc_error(awaitable, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


def held_on(bank: SandboxInstitution, number: str) -> int:
    return bank.ledger.account(number).held_minor


# --- what a stop-payment holds ---------------------------------------------------------------


async def test_full_hold_holds_the_ordered_amount_for_48_hours(bank, stub, keys, registry):
    answer = await stop(stub, keys, registry, order(FULL, 80_000_000, holder="Liu Jianguo"))

    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    assert answer.held == common_pb2.Money(minor_units=80_000_000, currency="CNY")
    assert answer.requested == common_pb2.Money(minor_units=80_000_000, currency="CNY")
    assert answer.refusal_reason == bank_pb2.REFUSAL_REASON_UNSPECIFIED
    assert (answer.idempotency_key, answer.case_id, answer.account.account_number) == (
        "case-BX-1/stop/1",
        "BX-1",
        FULL,
    )
    held_at = answer.held_at.ToDatetime(tzinfo=UTC)
    assert abs(datetime.now(UTC) - held_at) < timedelta(seconds=30)
    assert answer.hold_expires_at.ToDatetime(tzinfo=UTC) - held_at == timedelta(hours=48)

    [hold] = bank.ledger.holds(FULL)
    assert (hold.hold_id, hold.amount_minor, hold.case_id) == (answer.hold_id, 80_000_000, "BX-1")
    assert hold.hold_id.startswith(f"{BANK}-H")
    assert held_on(bank, FULL) == 80_000_000
    assert bank.ledger.account(FULL).balance_minor == 100_000_000  # held, not taken


async def test_partial_hold_holds_what_is_left_and_says_so(bank, stub, keys, registry):
    answer = await stop(stub, keys, registry, order(PARTIAL, 37_500_000))

    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD
    assert answer.held.minor_units == 12_640_000
    assert answer.requested.minor_units == 37_500_000
    assert answer.detail == "only 126,400.00 of 375,000.00 CNY available"
    assert answer.hold_id
    assert [h.amount_minor for h in bank.ledger.holds(PARTIAL)] == [12_640_000]
    assert held_on(bank, PARTIAL) == 12_640_000


async def test_a_second_order_only_holds_what_the_first_left_available(bank, stub, keys, registry):
    await stop(stub, keys, registry, order(FULL, 80_000_000, key="k1", case_id="BX-1"))
    answer = await stop(stub, keys, registry, order(FULL, 50_000_000, key="k2", case_id="BX-2"))
    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD
    assert answer.held.minor_units == 20_000_000
    assert held_on(bank, FULL) == 100_000_000


@pytest.mark.parametrize(
    ("account", "holder", "currency", "reason"),
    [
        (UNKNOWN, "", "CNY", bank_pb2.REFUSAL_REASON_UNKNOWN_ACCOUNT),
        (CLOSED, "", "CNY", bank_pb2.REFUSAL_REASON_ACCOUNT_CLOSED),
        (FULL, "Liu Jianhua", "CNY", bank_pb2.REFUSAL_REASON_NAME_MISMATCH),
        (DOLLARS, "", "CNY", bank_pb2.REFUSAL_REASON_CURRENCY_MISMATCH),
        (EMPTY, "", "CNY", bank_pb2.REFUSAL_REASON_NO_FUNDS),
    ],
    ids=["unknown-account", "closed", "name-mismatch", "currency-mismatch", "no-funds"],
)
async def test_refusals_are_signed_answers_that_hold_nothing(
    bank, stub, keys, registry, account, holder, currency, reason
):
    answer = await stop(stub, keys, registry, order(account, 1_000_000, holder=holder, currency=currency))

    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED
    assert answer.refusal_reason == reason
    assert answer.held == common_pb2.Money(minor_units=0, currency=currency)
    assert answer.hold_id == ""
    assert not answer.HasField("hold_expires_at")
    assert answer.detail
    # No customer data in what operators read: neither the real holder nor the balance.
    for account_data in ACCOUNTS:
        assert account_data.holder_name not in answer.detail
    assert bank.ledger.holds() == []
    assert all(bank.ledger.account(a.number).held_minor == 0 for a in ACCOUNTS)


async def test_holder_name_matches_despite_extra_whitespace(bank, stub, keys, registry):
    answer = await stop(stub, keys, registry, order(FULL, 1_000, holder="  Liu   Jianguo "))
    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD


async def test_one_account_is_stopped_at_most_twice_per_case(bank, stub, keys, registry):
    for step in (1, 2):
        answer = await stop(stub, keys, registry, order(FULL, 1_000_000, key=f"k{step}"))
        assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    third = await stop(stub, keys, registry, order(FULL, 1_000_000, key="k3"))
    assert third.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED
    assert third.refusal_reason == bank_pb2.REFUSAL_REASON_STOP_LIMIT_REACHED
    # Another case may still stop the same account.
    other_case = await stop(stub, keys, registry, order(FULL, 1_000_000, key="k4", case_id="BX-9"))
    assert other_case.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    assert held_on(bank, FULL) == 3_000_000


# --- idempotency -----------------------------------------------------------------------------


async def test_a_repeated_order_gets_the_same_answer_and_is_held_once(bank, stub, keys, registry):
    first = await send(stub, order(FULL, 80_000_000), keys["hub"])
    again = await send(stub, order(FULL, 80_000_000), keys["hub"])  # a retry: a freshly signed envelope

    assert again.envelope.payload == first.envelope.payload  # byte-identical answer
    assert again.envelope.nonce != first.envelope.nonce  # in a fresh envelope
    open_envelope(again.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK)
    assert len(bank.ledger.holds()) == 1
    assert held_on(bank, FULL) == 80_000_000


async def test_a_reused_key_for_another_order_is_refused_and_changes_nothing(bank, stub, keys, registry):
    first = await stop(stub, keys, registry, order(FULL, 80_000_000))
    details = await rpc_error(
        send(stub, order(FULL, 90_000_000), keys["hub"]), grpc.StatusCode.FAILED_PRECONDITION
    )

    assert "case-BX-1/stop/1" in details and "different order" in details
    assert [h.hold_id for h in bank.ledger.holds()] == [first.hold_id]
    assert held_on(bank, FULL) == 80_000_000


async def test_concurrent_duplicates_are_applied_once(bank, stub, keys, registry):
    responses = await asyncio.gather(*(send(stub, order(FULL, 80_000_000), keys["hub"]) for _ in range(5)))

    assert len({r.envelope.payload for r in responses}) == 1
    assert len(bank.ledger.holds()) == 1
    assert held_on(bank, FULL) == 80_000_000


# --- faults ----------------------------------------------------------------------------------


async def test_an_answer_lost_after_apply_is_answered_on_retry_without_a_second_hold(
    bank, stub, keys, registry
):
    bank.faults.fail_after_apply = 1

    details = await rpc_error(send(stub, order(FULL, 80_000_000), keys["hub"]), grpc.StatusCode.UNAVAILABLE)
    assert "answer lost after apply" in details
    [hold] = bank.ledger.holds()  # the bank did the work
    assert bank.faults.fail_after_apply == 0

    answer = await stop(stub, keys, registry, order(FULL, 80_000_000))
    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    assert answer.hold_id == hold.hold_id
    assert len(bank.ledger.holds()) == 1
    assert held_on(bank, FULL) == 80_000_000


async def test_forged_answers_fail_verification(bank, stub, keys, registry):
    bank.faults.forge_answers = True
    response = await send(stub, order(FULL, 80_000_000), keys["hub"])

    assert response.envelope.signer == BANK
    assert response.envelope.key_id == keys[BANK].key_id  # claims the real key...
    with pytest.raises(BadSignature):  # ...but the signature gives it away
        open_envelope(response.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK)


async def test_refuse_all_with_aborts_every_request_and_holds_nothing(bank, stub, keys):
    bank.faults.refuse_all_with = grpc.StatusCode.RESOURCE_EXHAUSTED
    await rpc_error(send(stub, order(FULL, 80_000_000), keys["hub"]), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert bank.ledger.holds() == []
    assert bank.requests_received == 1


async def test_a_slow_bank_lets_the_callers_deadline_fire(bank, stub, keys):
    bank.faults.delay_seconds = 2.0
    envelope = seal(order(FULL, 80_000_000), keys["hub"])
    call = stub.StopPayment(bank_pb2.StopPaymentRequest(envelope=envelope), timeout=0.3)
    await rpc_error(call, grpc.StatusCode.DEADLINE_EXCEEDED)


# --- protocol errors: refused before anything happens ----------------------------------------


async def test_request_signed_by_an_unregistered_key_is_unauthenticated(bank, stub):
    impostor = SigningKey.generate("hub")
    details = await rpc_error(send(stub, order(FULL, 80_000_000), impostor), grpc.StatusCode.UNAUTHENTICATED)
    assert "not registered" in details
    assert bank.ledger.holds() == []


@pytest.mark.parametrize("tamper", ["flip-last-byte", "swap-amount"])
async def test_tampered_request_is_unauthenticated(bank, stub, keys, tamper):
    envelope = seal(order(FULL, 1_000), keys["hub"])
    if tamper == "flip-last-byte":
        envelope.payload = envelope.payload[:-1] + bytes([envelope.payload[-1] ^ 0x01])
    else:  # a valid order for more money under the old signature
        envelope.payload = order(FULL, 99_000_000).SerializeToString(deterministic=True)
    details = await rpc_error(
        stub.StopPayment(bank_pb2.StopPaymentRequest(envelope=envelope), timeout=CALL_TIMEOUT),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    assert "does not verify" in details
    assert bank.ledger.holds() == []


async def test_order_validly_signed_by_a_non_hub_institution_is_permission_denied(bank, stub, keys):
    details = await rpc_error(
        send(stub, order(FULL, 80_000_000), keys[POLICE]), grpc.StatusCode.PERMISSION_DENIED
    )
    assert POLICE in details
    assert bank.ledger.holds() == []


async def test_wrong_payload_type_is_invalid_argument(bank, stub, keys):
    query = bank_pb2.AccountQuery(
        idempotency_key="q",
        case_id="BX-1",
        account=common_pb2.AccountRef(institution=BANK, account_number=FULL),
    )
    details = await rpc_error(send(stub, query, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert "stopline.v1.AccountQuery" in details
    assert bank.ledger.holds() == []


async def test_order_for_another_institution_is_invalid_argument(bank, stub, keys):
    details = await rpc_error(
        send(stub, order(FULL, 80_000_000, institution=OTHER), keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details == f"account.institution: order is for institution '{OTHER}', this is '{BANK}'"
    assert bank.ledger.holds() == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": ""}, "idempotency_key"),
        ({"case_id": ""}, "case_id"),
        ({"account": ""}, "account.account_number"),
        ({"amount": 0}, "amount.minor_units"),
        ({"amount": -5}, "amount.minor_units"),
        ({"amount": -(2**63)}, "amount.minor_units"),
        ({"currency": ""}, "amount.currency"),
        ({"currency": "cny"}, "amount.currency"),
        ({"currency": "RMB1"}, "amount.currency"),
        ({"hold_seconds": 0}, "hold_duration"),
        ({"hold_seconds": 10**12}, "hold_duration"),
    ],
)
async def test_malformed_orders_name_the_field(bank, stub, keys, changes, field):
    hold_seconds = changes.pop("hold_seconds", None)
    bad = order(**changes)
    if hold_seconds is not None:
        bad.hold_duration.seconds = hold_seconds
    details = await rpc_error(send(stub, bad, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(f"{field}:")
    assert bank.ledger.holds() == []


@pytest.mark.parametrize(
    ("field", "seconds", "nanos"),
    [
        ("hold_duration", 48 * 3600, 10**9),  # nanos past a second: protobuf would fold it in
        ("hold_duration", 48 * 3600, -5),  # seconds and nanos of opposite signs
        ("hold_duration", 2**63 - 1, 0),  # overflowed timedelta: was UNKNOWN
        ("transfer_time", 10**12, 0),  # past 9999-12-31
        ("transfer_time", 1_795_000_000, -5),
    ],
    ids=[
        "hold-nanos-too-big",
        "hold-nanos-opposite-sign",
        "hold-seconds-max-int64",
        "transfer-time-seconds-1e12",
        "transfer-time-nanos-negative",
    ],
)
async def test_out_of_range_times_in_an_order_are_invalid_argument_and_apply_nothing(
    bank, stub, keys, registry, field, seconds, nanos
):
    bad = order(FULL, 1_000_000)
    getattr(bad, field).seconds = seconds
    getattr(bad, field).nanos = nanos
    details = await rpc_error(send(stub, bad, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)

    assert details.startswith(f"{field}: out of range"), details
    assert bank.ledger.holds() == []
    assert held_on(bank, FULL) == 0
    # Not even the idempotency key was used up: the corrected order under the same key is applied.
    answer = await stop(stub, keys, registry, order(FULL, 1_000_000))
    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    assert held_on(bank, FULL) == 1_000_000


async def test_extreme_but_well_formed_orders_get_signed_answers(bank, stub, keys, registry):
    biggest = await stop(stub, keys, registry, order(PARTIAL, 2**63 - 1, key="max"))
    assert biggest.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD
    assert (biggest.held.minor_units, biggest.requested.minor_units) == (12_640_000, 2**63 - 1)

    for n, number in enumerate(["9" * 100_000, "62291100\x000001", "账户 6229"]):
        answer = await stop(stub, keys, registry, order(number, 1_000, key=f"odd/{n}"))
        assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED
        assert answer.refusal_reason == bank_pb2.REFUSAL_REASON_UNKNOWN_ACCOUNT
        assert answer.account.account_number == number
    assert [h.account for h in bank.ledger.holds()] == [PARTIAL]


def test_the_ledger_refuses_an_out_of_range_hold_duration_and_writes_nothing(tmp_path):
    # Below the servicer's validation: the ledger converts through the same helper and rolls back.
    ledger = Ledger(tmp_path / "l.db", BANK)
    try:
        ledger.seed(ACCOUNTS)
        bad = order(FULL, 1_000)
        bad.hold_duration.seconds = 2**62
        with pytest.raises(InvalidField, match=r"^hold_duration: out of range"):
            ledger.apply_stop(bad, datetime.now(UTC))
        assert ledger.holds() == [] and ledger.account(FULL).held_minor == 0
        assert ledger.apply_stop(order(FULL, 1_000), datetime.now(UTC)).replayed is False  # key unused
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (-62_135_596_800, 0, True),  # 0001-01-01T00:00:00Z
        (253_402_300_799, 999_999_999, True),  # 9999-12-31T23:59:59.999999999Z
        (-62_135_596_801, 0, False),
        (253_402_300_800, 0, False),
        (0, -1, False),
        (0, 10**9, False),
        (-(2**63), 0, False),
    ],
)
def test_timestamp_range_is_the_protobuf_one(seconds, nanos, ok):
    ts = Timestamp(seconds=seconds, nanos=nanos)
    if ok:
        assert to_datetime(ts, "t").tzinfo == UTC
    else:
        with pytest.raises(InvalidField, match=r"^t: out of range"):
            to_datetime(ts, "t")


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (315_576_000_000, 999_999_999, True),
        (-315_576_000_000, -999_999_999, True),
        (0, -5, True),  # negative, but a valid Duration (the servicer refuses it as not positive)
        (315_576_000_001, 0, False),
        (-(2**63), 0, False),
        (0, 10**9, False),
        (1, -1, False),
        (-1, 1, False),
    ],
)
def test_duration_range_is_the_protobuf_one(seconds, nanos, ok):
    d = Duration(seconds=seconds, nanos=nanos)
    if ok:
        assert to_timedelta(d, "d") == d.ToTimedelta()
    else:
        with pytest.raises(InvalidField, match=r"^d: out of range"):
            to_timedelta(d, "d")


async def test_a_reloaded_registry_is_picked_up_without_restart(tmp_path, keys):
    # The bank starts before the hub's key is registered, then the operator reloads the registry.
    current = {"registry": make_registry({k: v for k, v in keys.items() if k != "hub"})}
    inst = SandboxInstitution(BANK, keys[BANK], lambda: current["registry"], tmp_path / "b.db")
    inst.ledger.seed(ACCOUNTS)
    await inst.start()
    try:
        async with grpc.aio.insecure_channel(inst.endpoint) as channel:
            stub = bank_pb2_grpc.BankServiceStub(channel)
            await rpc_error(send(stub, order(FULL, 1_000), keys["hub"]), grpc.StatusCode.UNAUTHENTICATED)
            current["registry"] = make_registry(keys)
            answer = await stop(stub, keys, current["registry"], order(FULL, 1_000))
            assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    finally:
        await inst.stop()


# --- running: restart, health, reflection ------------------------------------------------------


async def test_restart_comes_back_on_the_same_port_with_the_same_ledger(bank, keys, registry):
    port = bank.port
    async with grpc.aio.insecure_channel(bank.endpoint) as channel:
        stub = bank_pb2_grpc.BankServiceStub(channel)
        first = await stop(stub, keys, registry, order(FULL, 80_000_000))

        await bank.stop()
        await rpc_error(send(stub, order(FULL, 80_000_000), keys["hub"]), grpc.StatusCode.UNAVAILABLE)

        await bank.restart()
        assert bank.port == port
        # The hub's retry; wait_for_ready rides out the channel's reconnect backoff.
        response = await stub.StopPayment(
            bank_pb2.StopPaymentRequest(envelope=seal(order(FULL, 80_000_000), keys["hub"])),
            timeout=CALL_TIMEOUT,
            wait_for_ready=True,
        )
        again = open_envelope(response.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK)
    assert again.hold_id == first.hold_id
    assert len(bank.ledger.holds()) == 1
    assert held_on(bank, FULL) == 80_000_000


async def test_health_is_serving_and_reflection_lists_the_bank_service(bank):
    async with grpc.aio.insecure_channel(bank.endpoint) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "stopline.v1.BankService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=CALL_TIMEOUT)]
        names = {s.name for s in reply.list_services_response.service}
        assert "stopline.v1.BankService" in names


# --- immediate query -------------------------------------------------------------------------


def query_message(number: str, since: datetime | None = None) -> bank_pb2.AccountQuery:
    q = bank_pb2.AccountQuery(
        idempotency_key="case-BX-1/query/1",
        case_id="BX-1",
        account=common_pb2.AccountRef(institution=BANK, account_number=number),
    )
    if since:
        q.transfers_since.FromDatetime(since)
    return q


async def send_query(stub, q: bank_pb2.AccountQuery, signer: SigningKey) -> bank_pb2.QueryAccountResponse:
    return await stub.QueryAccount(
        bank_pb2.QueryAccountRequest(envelope=seal(q, signer)), timeout=CALL_TIMEOUT
    )


async def query(stub, keys, registry, number, since=None) -> bank_pb2.AccountReport:
    response = await send_query(stub, query_message(number, since), keys["hub"])
    return open_envelope(response.envelope, bank_pb2.AccountReport, registry, expected_signer=BANK)


async def test_query_reports_balance_held_and_onward_transfers_since(bank, stub, keys, registry):
    await stop(stub, keys, registry, order(PARTIAL, 37_500_000))
    report = await query(stub, keys, registry, PARTIAL, since=datetime(2026, 11, 25, 0, 41, tzinfo=UTC))

    assert report.found
    assert report.idempotency_key == "case-BX-1/query/1"
    assert report.holder_name == "Zhao Mingyu"
    assert report.balance == common_pb2.Money(minor_units=12_640_000, currency="CNY")
    assert report.held == common_pb2.Money(minor_units=12_640_000, currency="CNY")
    # Oldest first; the withdrawal before the fraud is not reported.
    assert [
        (t.channel, t.amount.minor_units, t.to_account.institution, t.to_account.account_number)
        for t in report.transfers
    ] == [
        (bank_pb2.TRANSFER_CHANNEL_TRANSFER, 15_000_000, OTHER, "HXP-0004"),
        (bank_pb2.TRANSFER_CHANNEL_CASH, 9_860_000, "", ""),
    ]
    assert report.transfers[0].transferred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 25, 0, 52, tzinfo=UTC
    )
    assert not report.transfers[1].HasField("to_account")

    everything = await query(stub, keys, registry, PARTIAL)
    assert len(everything.transfers) == 3


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, -5), (1_795_000_000, 10**9), (10**12, 0), (-(2**63), 0)],
    ids=["nanos-negative", "nanos-too-big", "seconds-1e12", "seconds-min-int64"],
)
async def test_query_with_an_out_of_range_transfers_since_is_invalid_argument(
    bank, stub, keys, seconds, nanos
):
    q = query_message(PARTIAL)
    q.transfers_since.seconds = seconds
    q.transfers_since.nanos = nanos
    details = await rpc_error(send_query(stub, q, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith("transfers_since: out of range"), details


@pytest.mark.parametrize("since", [datetime(1, 1, 1, tzinfo=UTC), datetime(999, 12, 31, tzinfo=UTC)])
async def test_query_since_long_ago_reports_every_transfer(bank, stub, keys, registry, since):
    # Ledger times compare as text: a year before 1000 must still sort before 2026.
    report = await query(stub, keys, registry, PARTIAL, since=since)
    assert len(report.transfers) == len(TRANSFERS)


async def test_query_for_an_unknown_account_says_not_found(bank, stub, keys, registry):
    report = await query(stub, keys, registry, UNKNOWN)
    assert not report.found
    assert report.holder_name == "" and not report.HasField("balance") and not report.transfers


async def test_query_signed_by_a_non_hub_institution_is_permission_denied(bank, stub, keys):
    q = bank_pb2.AccountQuery(
        idempotency_key="q",
        case_id="BX-1",
        account=common_pb2.AccountRef(institution=BANK, account_number=FULL),
    )
    await rpc_error(
        stub.QueryAccount(bank_pb2.QueryAccountRequest(envelope=seal(q, keys[OTHER])), timeout=CALL_TIMEOUT),
        grpc.StatusCode.PERMISSION_DENIED,
    )


# --- the ledger file ---------------------------------------------------------------------------


async def test_reseeding_an_existing_ledger_keeps_balances_and_holds(bank, stub, keys, registry):
    answer = await stop(stub, keys, registry, order(FULL, 80_000_000))
    await bank.stop()

    ledger = Ledger(bank.ledger.path, BANK)  # what `stopline up` does on its next start
    try:
        richer = [dataclasses.replace(a, balance_minor=a.balance_minor + 1) for a in ACCOUNTS]
        added = ledger.seed([*richer, Account("6229110000000099", "New Holder", "CNY", 10)], TRANSFERS)
        assert added == 1
        assert ledger.account(FULL).balance_minor == 100_000_000
        assert ledger.account(FULL).held_minor == 80_000_000
        assert [h.hold_id for h in ledger.holds()] == [answer.hold_id]
        assert len(ledger.transfers(PARTIAL)) == len(TRANSFERS)  # history not doubled
        assert ledger.account("6229110000000099").balance_minor == 10
    finally:
        ledger.close()


def test_ledger_file_is_in_wal_mode(tmp_path):
    ledger = Ledger(tmp_path / "x.db", BANK)
    try:
        with sqlite3.connect(tmp_path / "x.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        ledger.close()


# --- the shipped scenario ----------------------------------------------------------------------


async def test_the_boxing_scenario_holds_what_the_demo_expects(tmp_path):
    scenario = load_scenario("boxing")
    ids = [i.id for i in scenario.institutions]
    keys = {i: SigningKey.generate(i) for i in (*ids, "hub", POLICE)}
    registry = make_registry(keys, {i.id: i.kind for i in scenario.institutions})  # carriers, regulators too
    sandbox = Sandbox(scenario, tmp_path, lambda: registry, keys, use_scenario_ports=False)
    await sandbox.start()
    try:
        assert sandbox.institutions["qilu-bank"].ledger.path == tmp_path / "sandbox" / "qilu-bank.db"
        outcomes = {}
        for n, t in enumerate(scenario.case["transfers"]):
            to = t["to"]
            o = order(
                to["account_number"],
                t["amount"]["minor_units"],
                key=f"demo/{n}",
                case_id=scenario.case["case_id"],
                holder=t["to_holder_name"],
                institution=to["institution"],
            )
            async with grpc.aio.insecure_channel(sandbox.institutions[to["institution"]].endpoint) as channel:
                response = await send(bank_pb2_grpc.BankServiceStub(channel), o, keys["hub"])
            answer = open_envelope(
                response.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=to["institution"]
            )
            outcomes[to["account_number"]] = (
                bank_pb2.StopPaymentOutcome.Name(answer.outcome),
                answer.held.minor_units,
            )
    finally:
        await sandbox.stop()

    assert sum(t["amount"]["minor_units"] for t in scenario.case["transfers"]) == 147_500_000
    assert outcomes == {
        "6229110000800001": ("STOP_PAYMENT_OUTCOME_HELD", 80_000_000),
        "6229110000375002": ("STOP_PAYMENT_OUTCOME_PARTIALLY_HELD", 12_640_000),
        "HXP-8800-3000-0003": ("STOP_PAYMENT_OUTCOME_HELD", 30_000_000),
    }


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("institutions", 0, "accounts", 0, "currency"),
            "cny",
            "institutions[0] (qilu-bank).accounts[0].currency",
        ),
        (
            ("institutions", 0, "accounts", 0, "balance_minor"),
            12.5,
            "accounts[0].balance_minor: must be an integer",
        ),
        (("institutions", 0, "kind"), "police_unit", "institutions[0] (qilu-bank).kind"),
        (("institutions", 0, "kind"), "carrier", "institutions[0] (qilu-bank).accounts: a carrier has no accounts"),
        (("institutions", 0, "faults"), {"forge": True}, "faults.forge: unknown fault"),
        (("case", "transfers", 0, "to", "institution"), "nowhere-bank", "case.transfers[0].to.institution"),
        (("case", "suspect_phone_numbers", 0), "17012345678", "case.suspect_phone_numbers[0]"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_field(path, value, message):
    data = json.loads(scenario_path("boxing").read_text("utf-8"))
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario(data)


def test_scenario_faults_are_parsed():
    faults = Faults.from_dict({"delay_seconds": 1, "fail_after_apply": 2, "refuse_all_with": "UNAVAILABLE"})
    assert faults == Faults(
        delay_seconds=1.0, fail_after_apply=2, refuse_all_with=grpc.StatusCode.UNAVAILABLE
    )


async def test_a_replayed_request_envelope_is_unauthenticated(bank, stub, keys):
    """The same signed envelope sent twice (captured and replayed) is refused; a retry that is
    signed afresh is not (see test_a_repeated_order_gets_the_same_answer_and_is_held_once)."""
    envelope = seal(order(PARTIAL, 10_000_000, key="case-BX-1/stop/replay"), keys["hub"])
    await stub.StopPayment(bank_pb2.StopPaymentRequest(envelope=envelope), timeout=CALL_TIMEOUT)
    details = await rpc_error(
        stub.StopPayment(bank_pb2.StopPaymentRequest(envelope=envelope), timeout=CALL_TIMEOUT),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    assert "replayed" in details
    assert len(bank.ledger.holds()) == 1


# --- the second stop extends; an expired hold lapses --------------------------------------------


def test_the_second_stop_extends_the_first_hold_and_holds_nothing_new(tmp_path):
    ledger = Ledger(tmp_path / "l.db", BANK)
    try:
        ledger.seed(ACCOUNTS)
        t0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
        first = ledger.apply_stop(order(FULL, 80_000_000, key="case-BX-1/stop/1"), t0).answer
        second = order(FULL, 80_000_000, key="case-BX-1/stop/2")
        second.extends_hold_id = first.hold_id
        answer = ledger.apply_stop(second, t0 + timedelta(hours=47)).answer
        assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD and answer.hold_id == first.hold_id
        assert answer.hold_expires_at.ToDatetime(tzinfo=UTC) == t0 + timedelta(hours=96)
        [hold] = ledger.holds(FULL)
        assert hold.expires_at == t0 + timedelta(hours=96) and ledger.account(FULL).held_minor == 80_000_000
        # A third, extension or not, is past the limit of two.
        third = order(FULL, 80_000_000, key="case-BX-1/stop/3")
        third.extends_hold_id = first.hold_id
        refused = ledger.apply_stop(third, t0 + timedelta(hours=90)).answer
        assert refused.refusal_reason == bank_pb2.REFUSAL_REASON_STOP_LIMIT_REACHED
        assert ledger.holds(FULL)[0].expires_at == t0 + timedelta(hours=96)
        # The extended hold lapses at its new expiry: the money is free again.
        ledger.lapse_expired(t0 + timedelta(hours=95))
        assert ledger.account(FULL).held_minor == 80_000_000
        ledger.lapse_expired(t0 + timedelta(hours=96))
        assert ledger.account(FULL).held_minor == 0
        ledger.lapse_expired(t0 + timedelta(hours=97))  # once only
        assert ledger.account(FULL).held_minor == 0
    finally:
        ledger.close()


def test_extending_a_lapsed_hold_is_a_new_stop_and_another_cases_hold_is_refused(tmp_path):
    ledger = Ledger(tmp_path / "l.db", BANK)
    try:
        ledger.seed(ACCOUNTS)
        t0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
        first = ledger.apply_stop(order(FULL, 80_000_000, key="k1"), t0).answer
        foreign = order(FULL, 1_000, key="k-other", case_id="BX-OTHER")
        foreign.extends_hold_id = first.hold_id
        with pytest.raises(InvalidField, match=r"^extends_hold_id: "):
            ledger.apply_stop(foreign, t0 + timedelta(hours=1))
        late = order(FULL, 80_000_000, key="k2")
        late.extends_hold_id = first.hold_id
        answer = ledger.apply_stop(late, t0 + timedelta(hours=49)).answer  # the first lapsed at 48 h
        assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD and answer.hold_id != first.hold_id
        assert answer.hold_expires_at.ToDatetime(tzinfo=UTC) == t0 + timedelta(hours=97)
        assert ledger.account(FULL).held_minor == 80_000_000  # the lapsed hold released its money
    finally:
        ledger.close()
