"""Fast freeze and release at a sandbox institution, tested as a bank's integrator would: real gRPC
on loopback (an OS-picked port), real Ed25519 keys, a real SQLite ledger file per test. Time-bound
rules (lapses, renewals) are tested on the ledger with an explicit `now`."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from sandbox import Account, Freeze, Ledger, SandboxInstitution
from sandbox.ledger import IdempotencyConflict
from sandbox.wire import InvalidField
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2
from tests.test_sandbox_bank import (
    ACCOUNTS,
    BANK,
    CALL_TIMEOUT,
    FULL,
    OTHER,
    PARTIAL,
    POLICE,
    make_registry,
    order,
    rpc_error,
)
from trust.envelope import open_envelope, seal
from trust.errors import BadSignature
from trust.keys import SigningKey

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
SIX_MONTHS = timedelta(days=183)
DOC = "Boxing PSB freeze decision [2026] No. 117"

# --- orders --------------------------------------------------------------------------------------


def freeze_order(
    hold_id: str = "",
    amount: int = 80_000_000,
    *,
    key: str = "case-BX-1/freeze/1",
    case_id: str = "BX-1",
    account: str = FULL,
    currency: str = "CNY",
    renews: str = "",
    duration: timedelta | None = SIX_MONTHS,
    doc: str = DOC,
) -> bank_pb2.FreezeOrder:
    o = bank_pb2.FreezeOrder(
        idempotency_key=key,
        case_id=case_id,
        account=common_pb2.AccountRef(institution=BANK, account_number=account),
        amount=common_pb2.Money(minor_units=amount, currency=currency),
        hold_id=hold_id,
        renews_freeze_id=renews,
        approval=bank_pb2.FreezeApproval(
            approved_by=POLICE, officer="Sun Wei (No. 031477)", document_ref=doc
        ),
    )
    o.approval.approved_at.FromDatetime(T0 - timedelta(hours=1))
    if duration is not None:
        o.freeze_duration.FromTimedelta(duration)
    return o


def release_order(
    *,
    hold_id: str = "",
    freeze_id: str = "",
    key: str = "case-BX-1/release/1",
    case_id: str = "BX-1",
    account: str = FULL,
    reason: str = "innocent merchant: goods sold to the mule",
    decided_by: str = POLICE,
) -> bank_pb2.ReleaseOrder:
    return bank_pb2.ReleaseOrder(
        idempotency_key=key,
        case_id=case_id,
        account=common_pb2.AccountRef(institution=BANK, account_number=account),
        hold_id=hold_id,
        freeze_id=freeze_id,
        reason=reason,
        decided_by=decided_by,
    )


# --- the ledger, with time in hand ---------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / f"{BANK}.db", BANK)
    ledger.seed(ACCOUNTS)
    yield ledger
    ledger.close()


def held(ledger: Ledger, number: str = FULL) -> int:
    return ledger.account(number).held_minor


def stop_at(ledger: Ledger, at: datetime, amount: int = 80_000_000, **kw) -> str:
    answer = ledger.apply_stop(order(kw.pop("account", FULL), amount, **kw), at).answer
    assert answer.hold_id
    return answer.hold_id


def test_freezing_a_live_hold_keeps_its_money_past_48_hours_until_the_freeze_lapses(ledger):
    hold_id = stop_at(ledger, T0)
    at = T0 + timedelta(hours=30)
    answer = ledger.apply_freeze(freeze_order(hold_id), at).answer

    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN
    assert answer.frozen == common_pb2.Money(minor_units=80_000_000, currency="CNY")
    assert answer.freeze_id == f"{BANK}-F000001"
    assert (answer.idempotency_key, answer.case_id, answer.account.account_number) == (
        "case-BX-1/freeze/1",
        "BX-1",
        FULL,
    )
    assert answer.frozen_at.ToDatetime(tzinfo=UTC) == at
    expires = at + SIX_MONTHS
    assert answer.freeze_expires_at.ToDatetime(tzinfo=UTC) == expires
    assert held(ledger) == 80_000_000  # the same money, now frozen

    [hold] = ledger.holds(FULL)
    assert (hold.state, hold.frozen_as, hold.in_force) == ("converted", answer.freeze_id, False)
    assert ledger.freezes(FULL) == [
        Freeze(
            answer.freeze_id, FULL, "BX-1", 80_000_000, "CNY", hold_id, expires, None, None,
            at, DOC, POLICE, "Sun Wei (No. 031477)",
        )
    ]  # fmt: skip
    assert ledger.freezes(PARTIAL) == []

    ledger.lapse_expired(T0 + timedelta(hours=49))  # the hold's own expiry has passed
    assert held(ledger) == 80_000_000
    assert ledger.holds(FULL)[0].lapsed_at is None
    ledger.lapse_expired(expires - timedelta(microseconds=1))
    assert held(ledger) == 80_000_000 and ledger.freeze(answer.freeze_id).in_force
    ledger.lapse_expired(expires)
    assert held(ledger) == 0
    lapsed = ledger.freeze(answer.freeze_id)
    assert (lapsed.state, lapsed.lapsed_at, lapsed.released_at) == ("lapsed", expires, None)
    ledger.lapse_expired(expires + timedelta(days=1))  # once only
    assert held(ledger) == 0 and ledger.freeze(answer.freeze_id).lapsed_at == expires
    assert ledger.account(FULL).balance_minor == 100_000_000  # frozen and freed, never taken


def test_freezing_less_than_was_held_releases_the_rest_at_once(ledger):
    hold_id = stop_at(ledger, T0)
    answer = ledger.apply_freeze(freeze_order(hold_id, 50_000_000), T0 + timedelta(hours=1)).answer

    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN
    assert answer.frozen.minor_units == 50_000_000
    assert answer.detail == (
        f"hold {hold_id} frozen as {answer.freeze_id}: 500,000.00 CNY; the other 300,000.00 CNY held is released"
    )
    assert held(ledger) == 50_000_000
    ledger.lapse_expired(T0 + timedelta(hours=1) + SIX_MONTHS)
    assert held(ledger) == 0  # the freeze's 50,000,000 only: never below zero


def test_a_renewal_keeps_the_freeze_id_and_moves_the_expiry_on_continuously(ledger):
    hold_id = stop_at(ledger, T0)
    first = ledger.apply_freeze(freeze_order(hold_id), T0 + timedelta(hours=2)).answer
    old_expiry = first.freeze_expires_at.ToDatetime(tzinfo=UTC)
    renewed_at = old_expiry - timedelta(days=10)
    renewal = freeze_order(
        renews=first.freeze_id, amount=60_000_000, key="case-BX-1/freeze/2", doc="renewal [2027] No. 9"
    )
    answer = ledger.apply_freeze(renewal, renewed_at).answer

    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN
    assert answer.freeze_id == first.freeze_id
    assert answer.frozen.minor_units == 60_000_000
    assert answer.frozen_at.ToDatetime(tzinfo=UTC) == renewed_at
    new_expiry = old_expiry + SIX_MONTHS  # not renewed_at + six months: no gap, no overlap
    assert answer.freeze_expires_at.ToDatetime(tzinfo=UTC) == new_expiry
    assert held(ledger) == 60_000_000  # the 20,000,000 no longer frozen is free
    [freeze] = ledger.freezes()
    assert (freeze.freeze_id, freeze.amount_minor, freeze.expires_at) == (
        first.freeze_id,
        60_000_000,
        new_expiry,
    )

    ledger.lapse_expired(old_expiry)
    assert held(ledger) == 60_000_000 and ledger.freeze(first.freeze_id).in_force
    ledger.lapse_expired(new_expiry)
    assert held(ledger) == 0 and ledger.freeze(first.freeze_id).state == "lapsed"


def test_renewing_a_lapsed_freeze_is_refused_and_changes_nothing(ledger):
    hold_id = stop_at(ledger, T0)
    first = ledger.apply_freeze(freeze_order(hold_id), T0).answer
    late = T0 + SIX_MONTHS + timedelta(seconds=1)
    answer = ledger.apply_freeze(freeze_order(renews=first.freeze_id, key="k-renew"), late).answer

    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_REFUSED
    assert answer.frozen == common_pb2.Money(minor_units=0, currency="CNY")
    assert (
        answer.detail
        == f"freeze {first.freeze_id} lapsed at 2027-05-27T01:00:01.000000Z: nothing is frozen to renew"
    )
    assert answer.freeze_id == "" and not answer.HasField("freeze_expires_at")
    assert held(ledger) == 0
    assert ledger.freeze(first.freeze_id).expires_at == T0 + SIX_MONTHS


@pytest.mark.parametrize("how", ["lapsed", "released", "frozen"])
def test_freezing_a_hold_no_longer_in_force_is_refused_and_changes_nothing(ledger, how):
    hold_id = stop_at(ledger, T0)
    at = T0 + timedelta(hours=1)
    if how == "lapsed":
        at = T0 + timedelta(hours=48)  # exactly at its expiry
        expected = f"hold {hold_id} lapsed at 2026-11-27T01:00:00.000000Z: nothing is held to freeze"
    elif how == "released":
        ledger.apply_release(release_order(hold_id=hold_id), T0)
        expected = f"hold {hold_id} was released at 2026-11-25T01:00:00.000000Z: nothing is held to freeze"
    else:
        ledger.apply_freeze(freeze_order(hold_id, 70_000_000, key="k-first"), T0)
        expected = f"hold {hold_id} was frozen as {BANK}-F000001: nothing is held to freeze"
    before = (held(ledger), ledger.holds(), ledger.freezes())

    answer = ledger.apply_freeze(freeze_order(hold_id, 70_000_000), at).answer

    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_REFUSED
    assert answer.detail == expected
    assert answer.frozen.minor_units == 0 and answer.freeze_id == ""
    if how != "lapsed":  # a lapse is the clock's doing, not the order's
        assert (held(ledger), ledger.holds(), ledger.freezes()) == before
    else:
        assert held(ledger) == 0 and ledger.freezes() == []


def test_releasing_a_hold_frees_its_money_now_and_it_never_lapses_later(ledger):
    hold_id = stop_at(ledger, T0)
    at = T0 + timedelta(hours=3)
    result = ledger.apply_release(release_order(hold_id=hold_id), at)

    answer = result.answer
    assert answer.released == common_pb2.Money(minor_units=80_000_000, currency="CNY")
    assert answer.released_at.ToDatetime(tzinfo=UTC) == at
    assert answer.detail == f"hold {hold_id} released: 800,000.00 CNY"
    assert held(ledger) == 0
    [hold] = ledger.holds()
    assert (hold.state, hold.released_at, hold.lapsed_at) == ("released", at, None)
    ledger.lapse_expired(T0 + timedelta(hours=49))
    assert held(ledger) == 0 and ledger.holds()[0].lapsed_at is None


def test_releasing_a_freeze_frees_its_money_and_it_never_lapses_later(ledger):
    hold_id = stop_at(ledger, T0)
    freeze_id = ledger.apply_freeze(freeze_order(hold_id, 50_000_000), T0).answer.freeze_id
    at = T0 + timedelta(days=20)
    answer = ledger.apply_release(release_order(freeze_id=freeze_id), at).answer

    assert answer.released.minor_units == 50_000_000
    assert held(ledger) == 0
    freeze = ledger.freeze(freeze_id)
    assert (freeze.state, freeze.released_at) == ("released", at)
    ledger.lapse_expired(T0 + SIX_MONTHS + timedelta(days=1))
    assert held(ledger) == 0 and ledger.freeze(freeze_id).lapsed_at is None


def test_releasing_what_is_already_gone_releases_nothing_and_says_why(ledger):
    hold_id = stop_at(ledger, T0)
    lapsed = ledger.apply_release(release_order(hold_id=hold_id, key="r1"), T0 + timedelta(hours=50)).answer
    assert lapsed.released == common_pb2.Money(minor_units=0, currency="CNY")
    assert lapsed.released_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=50)  # when it lapsed
    assert lapsed.detail == f"hold {hold_id} lapsed at 2026-11-27T03:00:00.000000Z: nothing released now"

    second = stop_at(ledger, T0 + timedelta(hours=51), key="k2")
    freeze_id = ledger.apply_freeze(freeze_order(second, key="f1"), T0 + timedelta(hours=52)).answer.freeze_id
    converted = ledger.apply_release(release_order(hold_id=second, key="r2"), T0 + timedelta(hours=53)).answer
    assert converted.released.minor_units == 0 and not converted.HasField("released_at")
    assert converted.detail == f"hold {second} was frozen as {freeze_id}: nothing released now"
    assert held(ledger) == 80_000_000  # the freeze still keeps it

    at = T0 + timedelta(hours=54)
    assert ledger.apply_release(
        release_order(freeze_id=freeze_id, key="r3"), at
    ).answer.released.minor_units == (80_000_000)
    again = ledger.apply_release(release_order(freeze_id=freeze_id, key="r4"), at + timedelta(hours=1)).answer
    assert again.released.minor_units == 0
    assert again.released_at.ToDatetime(tzinfo=UTC) == at
    assert (
        again.detail
        == f"freeze {freeze_id} was released at 2026-11-27T07:00:00.000000Z: nothing released now"
    )
    assert held(ledger) == 0


def test_a_second_stop_on_a_frozen_hold_is_a_new_stop(ledger):
    hold_id = stop_at(ledger, T0, 50_000_000)
    ledger.apply_freeze(freeze_order(hold_id, 50_000_000), T0)
    extension = order(FULL, 50_000_000, key="case-BX-1/stop/2")
    extension.extends_hold_id = hold_id
    answer = ledger.apply_stop(extension, T0 + timedelta(hours=40)).answer
    assert answer.hold_id != hold_id  # the frozen hold is not extended: its money is the freeze's
    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD
    assert held(ledger) == 100_000_000


def test_the_ledger_refuses_malformed_orders_before_its_transaction(ledger):
    hold_id = stop_at(ledger, T0)
    with pytest.raises(InvalidField, match=r"^freeze_duration: "):
        ledger.apply_freeze(freeze_order(hold_id, duration=timedelta(days=367)), T0)
    with pytest.raises(InvalidField, match=r"^amount\.minor_units: "):
        ledger.apply_freeze(freeze_order(hold_id, 80_000_001), T0)
    with pytest.raises(InvalidField, match=r"^reason: "):
        ledger.apply_release(release_order(hold_id=hold_id, reason=""), T0)
    assert held(ledger) == 80_000_000 and ledger.freezes() == [] and ledger.holds()[0].in_force
    # No key was used up: the same keys work for the corrected orders.
    assert ledger.apply_freeze(freeze_order(hold_id), T0).replayed is False


def test_one_key_names_one_order_whatever_its_kind(ledger):
    hold_id = stop_at(ledger, T0, key="case-BX-1/stop/1")
    with pytest.raises(IdempotencyConflict):
        ledger.apply_freeze(freeze_order(hold_id, key="case-BX-1/stop/1"), T0)
    ledger.apply_freeze(freeze_order(hold_id, key="k"), T0)
    with pytest.raises(IdempotencyConflict):
        ledger.apply_release(release_order(hold_id=hold_id, key="k"), T0)
    with pytest.raises(IdempotencyConflict):
        ledger.apply_freeze(freeze_order(hold_id, key="k", duration=timedelta(days=30)), T0)
    assert len(ledger.freezes()) == 1 and held(ledger) == 80_000_000


def test_a_ledger_file_from_before_freezes_gains_them_and_keeps_its_holds(tmp_path):
    path = tmp_path / "old.db"
    ledger = Ledger(path, BANK)
    ledger.seed(ACCOUNTS)
    hold_id = stop_at(ledger, T0)
    ledger.close()
    with sqlite3.connect(path) as conn:  # what a ledger file written before freezes existed lacks
        for table in ("freeze_renewals", "freezes_lapsed", "hold_releases", "freeze_releases", "freezes"):
            conn.execute(f"DROP TABLE {table}")

    ledger = Ledger(path, BANK)
    try:
        assert [h.hold_id for h in ledger.holds()] == [hold_id] and ledger.holds()[0].in_force
        answer = ledger.apply_freeze(freeze_order(hold_id), T0 + timedelta(hours=1)).answer
        assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN and held(ledger) == 80_000_000
    finally:
        ledger.close()


# --- over gRPC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {i: SigningKey.generate(i) for i in ("hub", BANK, OTHER, POLICE)}


@pytest.fixture(scope="module")
def registry(keys):
    return make_registry(keys)


@pytest.fixture
async def bank(tmp_path, keys, registry):
    inst = SandboxInstitution(BANK, keys[BANK], registry, tmp_path / f"{BANK}.db")
    inst.ledger.seed([*ACCOUNTS, Account("6229110000000006", "Qian Li", "CNY", 100_000_000)])
    await inst.start()
    yield inst
    await inst.stop()


@pytest.fixture
async def stub(bank):
    async with grpc.aio.insecure_channel(bank.endpoint) as channel:
        yield bank_pb2_grpc.BankServiceStub(channel)


async def send_freeze(stub, message, signer: SigningKey) -> bank_pb2.FreezeResponse:
    return await stub.Freeze(bank_pb2.FreezeRequest(envelope=seal(message, signer)), timeout=CALL_TIMEOUT)


async def send_release(stub, message, signer: SigningKey) -> bank_pb2.ReleaseResponse:
    return await stub.Release(bank_pb2.ReleaseRequest(envelope=seal(message, signer)), timeout=CALL_TIMEOUT)


async def freeze(stub, keys, registry, message) -> bank_pb2.FreezeAnswer:
    response = await send_freeze(stub, message, keys["hub"])
    return open_envelope(response.envelope, bank_pb2.FreezeAnswer, registry, expected_signer=BANK)


async def release(stub, keys, registry, message) -> bank_pb2.ReleaseAnswer:
    response = await send_release(stub, message, keys["hub"])
    return open_envelope(response.envelope, bank_pb2.ReleaseAnswer, registry, expected_signer=BANK)


async def hold_on(
    stub, keys, registry, number=FULL, amount=80_000_000, key="case-BX-1/stop/1", case_id="BX-1"
):
    response = await stub.StopPayment(
        bank_pb2.StopPaymentRequest(
            envelope=seal(order(number, amount, key=key, case_id=case_id), keys["hub"])
        ),
        timeout=CALL_TIMEOUT,
    )
    answer = open_envelope(response.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK)
    assert answer.hold_id
    return answer.hold_id


def books(bank: SandboxInstitution):
    """Everything a freeze or release may change."""
    ledger = bank.ledger
    return [a.held_minor for a in ledger.accounts()], ledger.holds(), ledger.freezes()


async def test_freeze_and_release_over_grpc_are_signed_and_change_the_books(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    frozen = await freeze(stub, keys, registry, freeze_order(hold_id, 70_000_000))
    assert frozen.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN
    assert frozen.freeze_id == f"{BANK}-F000001"
    frozen_at = frozen.frozen_at.ToDatetime(tzinfo=UTC)
    assert abs(datetime.now(UTC) - frozen_at) < timedelta(seconds=30)
    assert frozen.freeze_expires_at.ToDatetime(tzinfo=UTC) - frozen_at == SIX_MONTHS
    assert bank.ledger.account(FULL).held_minor == 70_000_000
    assert bank.ledger.hold(hold_id).state == "converted"

    renewed = await freeze(
        stub,
        keys,
        registry,
        freeze_order(renews=frozen.freeze_id, amount=70_000_000, key="case-BX-1/freeze/2"),
    )
    assert renewed.freeze_id == frozen.freeze_id
    assert (
        renewed.freeze_expires_at.ToDatetime(tzinfo=UTC)
        == frozen.freeze_expires_at.ToDatetime(tzinfo=UTC) + SIX_MONTHS
    )

    released = await release(stub, keys, registry, release_order(freeze_id=frozen.freeze_id))
    assert released.released == common_pb2.Money(minor_units=70_000_000, currency="CNY")
    assert (released.idempotency_key, released.case_id, released.account.account_number) == (
        "case-BX-1/release/1",
        "BX-1",
        FULL,
    )
    assert bank.ledger.account(FULL).held_minor == 0
    assert bank.ledger.freeze(frozen.freeze_id).state == "released"


async def test_release_of_a_hold_over_grpc(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry, PARTIAL, 37_500_000)
    answer = await release(stub, keys, registry, release_order(hold_id=hold_id, account=PARTIAL))
    assert answer.released == common_pb2.Money(minor_units=12_640_000, currency="CNY")  # what was held
    assert bank.ledger.account(PARTIAL).held_minor == 0
    assert bank.ledger.hold(hold_id).state == "released"


async def test_freezing_a_lapsed_hold_is_a_signed_refusal_and_changes_nothing(bank, stub, keys, registry):
    # A hold placed 49 hours ago (through the ledger, to set the clock back): it has run out.
    long_ago = datetime.now(UTC) - timedelta(hours=49)
    hold_id = bank.ledger.apply_stop(order(FULL, 80_000_000), long_ago).answer.hold_id
    response = await send_freeze(stub, freeze_order(hold_id), keys["hub"])

    assert response.envelope.signer == BANK
    answer = open_envelope(response.envelope, bank_pb2.FreezeAnswer, registry, expected_signer=BANK)
    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_REFUSED
    assert answer.detail.startswith(f"hold {hold_id} lapsed at ") and answer.detail.endswith(
        ": nothing is held to freeze"
    )
    assert bank.ledger.freezes() == []
    assert bank.ledger.hold(hold_id).state == "lapsed" and bank.ledger.account(FULL).held_minor == 0


ANOTHER = "6229110000000006"


def _freeze_cases():
    """(change to a valid first-freeze order, the field the error must name)."""

    def amount(o, minor=None, currency=None):
        if minor is not None:
            o.amount.minor_units = minor
        if currency is not None:
            o.amount.currency = currency

    def approval(o, **values):
        for name, value in values.items():
            setattr(o.approval, name, value)

    return [
        (lambda o: setattr(o, "idempotency_key", ""), "idempotency_key"),
        (lambda o: setattr(o, "case_id", ""), "case_id"),
        (lambda o: setattr(o.account, "institution", OTHER), "account.institution"),
        (lambda o: setattr(o.account, "account_number", ""), "account.account_number"),
        (lambda o: amount(o, minor=0), "amount.minor_units"),
        (lambda o: amount(o, minor=-5), "amount.minor_units"),
        (lambda o: amount(o, minor=80_000_001), "amount.minor_units"),  # more than the hold keeps
        (lambda o: amount(o, currency="cny"), "amount.currency"),
        (lambda o: amount(o, currency="USD"), "amount.currency"),  # the hold is in CNY
        (lambda o: setattr(o, "hold_id", ""), "hold_id"),
        (lambda o: setattr(o, "hold_id", f"{BANK}-H999999"), "hold_id"),
        (lambda o: setattr(o, "case_id", "BX-OTHER"), "hold_id"),  # a hold of another case
        (lambda o: setattr(o.account, "account_number", ANOTHER), "hold_id"),  # of another account
        (lambda o: setattr(o, "renews_freeze_id", f"{BANK}-F000001"), "renews_freeze_id"),  # and hold_id
        (lambda o: o.ClearField("freeze_duration"), "freeze_duration"),
        (lambda o: o.freeze_duration.FromTimedelta(timedelta(0)), "freeze_duration"),
        (lambda o: o.freeze_duration.FromTimedelta(timedelta(days=-1)), "freeze_duration"),
        (lambda o: o.freeze_duration.FromTimedelta(timedelta(days=367)), "freeze_duration"),
        (lambda o: o.freeze_duration.CopyFrom(Duration(seconds=10, nanos=10**9)), "freeze_duration"),
        (lambda o: o.ClearField("approval"), "approval"),
        (lambda o: approval(o, approved_by=""), "approval.approved_by"),
        (lambda o: approval(o, officer=""), "approval.officer"),
        (lambda o: approval(o, document_ref=""), "approval.document_ref"),
        (lambda o: o.approval.ClearField("approved_at"), "approval.approved_at"),
        (lambda o: setattr(o.approval.approved_at, "seconds", 10**12), "approval.approved_at"),
    ]


@pytest.mark.parametrize(("change", "field"), _freeze_cases())
async def test_a_malformed_freeze_names_the_field_and_changes_nothing(
    bank, stub, keys, registry, change, field
):
    hold_id = await hold_on(stub, keys, registry)
    await hold_on(stub, keys, registry, ANOTHER, 1_000, key="other-account-hold")
    bad = freeze_order(hold_id)
    change(bad)
    before = books(bank)

    details = await rpc_error(send_freeze(stub, bad, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)

    assert details.startswith(f"{field}: "), details
    assert books(bank) == before
    if field != "idempotency_key":  # the key was not used up: the corrected order goes through
        answer = await freeze(stub, keys, registry, freeze_order(hold_id))
        assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: setattr(o, "renews_freeze_id", f"{BANK}-F999999"), "renews_freeze_id"),
        (lambda o: setattr(o, "case_id", "BX-OTHER"), "renews_freeze_id"),
        (lambda o: setattr(o.amount, "minor_units", 70_000_001), "amount.minor_units"),
    ],
)
async def test_a_malformed_renewal_names_the_field_and_changes_nothing(
    bank, stub, keys, registry, change, field
):
    hold_id = await hold_on(stub, keys, registry)
    freeze_id = (await freeze(stub, keys, registry, freeze_order(hold_id, 70_000_000))).freeze_id
    bad = freeze_order(renews=freeze_id, amount=70_000_000, key="case-BX-1/freeze/2")
    change(bad)
    before = books(bank)
    details = await rpc_error(send_freeze(stub, bad, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(f"{field}: "), details
    assert books(bank) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": ""}, "idempotency_key"),
        ({"case_id": ""}, "case_id"),
        ({"account": ""}, "account.account_number"),
        ({"hold_id": ""}, "hold_id"),  # neither hold_id nor freeze_id
        ({"freeze_id": f"{BANK}-F000001"}, "freeze_id"),  # both
        ({"reason": ""}, "reason"),
        ({"decided_by": ""}, "decided_by"),
        ({"hold_id": f"{BANK}-H999999"}, "hold_id"),
        ({"case_id": "BX-OTHER"}, "hold_id"),
        ({"account": ANOTHER}, "hold_id"),
        ({"hold_id": "", "freeze_id": f"{BANK}-F999999"}, "freeze_id"),
    ],
)
async def test_a_malformed_release_names_the_field_and_changes_nothing(
    bank, stub, keys, registry, changes, field
):
    hold_id = await hold_on(stub, keys, registry)
    await hold_on(stub, keys, registry, ANOTHER, 1_000, key="other-account-hold")
    before = books(bank)
    details = await rpc_error(
        send_release(stub, release_order(**{"hold_id": hold_id, **changes}), keys["hub"]),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith(f"{field}: "), details
    assert books(bank) == before


async def test_a_release_of_another_cases_freeze_is_invalid_argument(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    freeze_id = (await freeze(stub, keys, registry, freeze_order(hold_id))).freeze_id
    before = books(bank)
    details = await rpc_error(
        send_release(stub, release_order(freeze_id=freeze_id, case_id="BX-OTHER"), keys["hub"]),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details == f"freeze_id: '{freeze_id}' is not a freeze on this account for case 'BX-OTHER'"
    assert books(bank) == before


# --- idempotency over gRPC -----------------------------------------------------------------------


async def test_a_repeated_freeze_gets_the_same_answer_and_freezes_once(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    first = await send_freeze(stub, freeze_order(hold_id, 60_000_000), keys["hub"])
    again = await send_freeze(stub, freeze_order(hold_id, 60_000_000), keys["hub"])

    assert again.envelope.payload == first.envelope.payload  # byte-identical answer...
    assert again.envelope.nonce != first.envelope.nonce  # ...in a fresh envelope
    answer = open_envelope(again.envelope, bank_pb2.FreezeAnswer, registry, expected_signer=BANK)
    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN  # not "already frozen"
    assert len(bank.ledger.freezes()) == 1 and bank.ledger.account(FULL).held_minor == 60_000_000


async def test_a_repeated_release_replays_what_it_released(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    first = await send_release(stub, release_order(hold_id=hold_id), keys["hub"])
    again = await send_release(stub, release_order(hold_id=hold_id), keys["hub"])
    assert again.envelope.payload == first.envelope.payload
    answer = open_envelope(again.envelope, bank_pb2.ReleaseAnswer, registry, expected_signer=BANK)
    assert answer.released.minor_units == 80_000_000
    assert bank.ledger.account(FULL).held_minor == 0


async def test_concurrent_duplicate_freezes_are_applied_once(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    responses = await asyncio.gather(
        *(send_freeze(stub, freeze_order(hold_id, 50_000_000), keys["hub"]) for _ in range(5))
    )
    assert len({r.envelope.payload for r in responses}) == 1
    assert len(bank.ledger.freezes()) == 1 and bank.ledger.account(FULL).held_minor == 50_000_000


@pytest.mark.parametrize("rpc", ["freeze", "release"])
async def test_a_reused_key_for_another_order_is_failed_precondition_and_changes_nothing(
    bank, stub, keys, registry, rpc
):
    hold_id = await hold_on(stub, keys, registry)
    if rpc == "freeze":
        await freeze(stub, keys, registry, freeze_order(hold_id, 60_000_000))
        conflicting = send_freeze(stub, freeze_order(hold_id, 50_000_000), keys["hub"])
    else:
        await release(stub, keys, registry, release_order(hold_id=hold_id))
        conflicting = send_release(stub, release_order(hold_id=hold_id, reason="another reason"), keys["hub"])
    before = books(bank)
    details = await rpc_error(conflicting, grpc.StatusCode.FAILED_PRECONDITION)
    assert "different order" in details
    assert books(bank) == before


async def test_a_stop_payments_key_reused_for_a_freeze_is_failed_precondition(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry, key="case-BX-1/step/7")
    await rpc_error(
        send_freeze(stub, freeze_order(hold_id, key="case-BX-1/step/7"), keys["hub"]),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert bank.ledger.freezes() == []


# --- who may ask: refused before anything happens -------------------------------------------------


@pytest.mark.parametrize("how", ["impostor", "unsigned", "tampered"])
@pytest.mark.parametrize("rpc", ["freeze", "release"])
async def test_a_forged_or_unsigned_order_is_unauthenticated_and_changes_nothing(
    bank, stub, keys, registry, rpc, how
):
    hold_id = await hold_on(stub, keys, registry)
    message = freeze_order(hold_id) if rpc == "freeze" else release_order(hold_id=hold_id)
    signer = SigningKey.generate("hub") if how == "impostor" else keys["hub"]
    envelope = seal(message, signer)
    if how == "unsigned":
        envelope.ClearField("signature")
    elif how == "tampered":  # another valid order under the old signature
        other = freeze_order(hold_id, 1) if rpc == "freeze" else release_order(hold_id=hold_id, reason="x")
        envelope.payload = other.SerializeToString()
    before = books(bank)
    call = (
        stub.Freeze(bank_pb2.FreezeRequest(envelope=envelope), timeout=CALL_TIMEOUT)
        if rpc == "freeze"
        else stub.Release(bank_pb2.ReleaseRequest(envelope=envelope), timeout=CALL_TIMEOUT)
    )
    await rpc_error(call, grpc.StatusCode.UNAUTHENTICATED)
    assert books(bank) == before


async def test_orders_signed_by_police_are_permission_denied(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    await rpc_error(send_freeze(stub, freeze_order(hold_id), keys[POLICE]), grpc.StatusCode.PERMISSION_DENIED)
    await rpc_error(
        send_release(stub, release_order(hold_id=hold_id), keys[POLICE]), grpc.StatusCode.PERMISSION_DENIED
    )
    assert bank.ledger.freezes() == [] and bank.ledger.hold(hold_id).in_force


async def test_a_missing_envelope_is_invalid_argument(bank, stub):
    await rpc_error(
        stub.Freeze(bank_pb2.FreezeRequest(), timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    await rpc_error(
        stub.Release(bank_pb2.ReleaseRequest(), timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )


# --- faults ----------------------------------------------------------------------------------------


async def test_a_freeze_answer_lost_after_apply_is_answered_on_retry_without_a_second_freeze(
    bank, stub, keys, registry
):
    hold_id = await hold_on(stub, keys, registry)
    bank.faults.fail_after_apply = 1
    await rpc_error(send_freeze(stub, freeze_order(hold_id), keys["hub"]), grpc.StatusCode.UNAVAILABLE)
    [applied] = bank.ledger.freezes()  # the bank did the work
    answer = await freeze(stub, keys, registry, freeze_order(hold_id))
    assert answer.freeze_id == applied.freeze_id
    assert len(bank.ledger.freezes()) == 1


async def test_a_release_answer_lost_after_apply_is_answered_on_retry(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    bank.faults.fail_after_apply = 1
    await rpc_error(
        send_release(stub, release_order(hold_id=hold_id), keys["hub"]), grpc.StatusCode.UNAVAILABLE
    )
    assert bank.ledger.account(FULL).held_minor == 0
    answer = await release(stub, keys, registry, release_order(hold_id=hold_id))
    assert answer.released.minor_units == 80_000_000  # the stored answer, not "nothing released"


async def test_forged_freeze_and_release_answers_fail_verification(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    bank.faults.forge_answers = True
    frozen = await send_freeze(stub, freeze_order(hold_id), keys["hub"])
    released = await send_release(stub, release_order(hold_id=hold_id), keys["hub"])
    for response, answer_type in ((frozen, bank_pb2.FreezeAnswer), (released, bank_pb2.ReleaseAnswer)):
        assert response.envelope.key_id == keys[BANK].key_id
        with pytest.raises(BadSignature):
            open_envelope(response.envelope, answer_type, registry, expected_signer=BANK)


async def test_refuse_all_with_and_delay_apply_to_freeze_and_release(bank, stub, keys, registry):
    hold_id = await hold_on(stub, keys, registry)
    bank.faults.refuse_all_with = grpc.StatusCode.RESOURCE_EXHAUSTED
    before = books(bank)
    await rpc_error(send_freeze(stub, freeze_order(hold_id), keys["hub"]), grpc.StatusCode.RESOURCE_EXHAUSTED)
    await rpc_error(
        send_release(stub, release_order(hold_id=hold_id), keys["hub"]), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert books(bank) == before
    bank.faults.refuse_all_with = None
    bank.faults.delay_seconds = 2.0
    call = stub.Freeze(bank_pb2.FreezeRequest(envelope=seal(freeze_order(hold_id), keys["hub"])), timeout=0.3)
    await rpc_error(call, grpc.StatusCode.DEADLINE_EXCEEDED)
