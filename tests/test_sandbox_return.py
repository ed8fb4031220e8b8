"""Return of frozen funds to victims (资金返还) at a sandbox institution, tested as a bank's
integrator would: the ledger with time in hand, then real gRPC on loopback (OS-picked ports), real
Ed25519 keys, a real SQLite ledger file per test, and for the "accepted now, receipt later" path a
listening HubService over mutual TLS with certificates from a local CA."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from sandbox import FundsReturn, Ledger, SandboxInstitution
from sandbox.faults import Faults, FaultsError
from sandbox.ledger import IdempotencyConflict
from sandbox.wire import InvalidField
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2, envelope_pb2, hub_pb2, hub_pb2_grpc
from tests.test_sandbox_bank import (
    ACCOUNTS,
    BANK,
    CALL_TIMEOUT,
    CLOSED,
    DOLLARS,
    EMPTY,
    FULL,
    OTHER,
    PARTIAL,
    POLICE,
    UNKNOWN,
    VALID_FROM,
    make_registry,
    order,
    rpc_error,
)
from tests.test_sandbox_freeze import SIX_MONTHS, T0, freeze_order, release_order
from trust.envelope import open_envelope, seal
from trust.errors import BadSignature
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA, TlsIdentity, target_name_options, tls_peer

DOC = "Boxing PSB refund notice [2027] No. 12"
OFFICER = "Sun Wei (No. 031477)"
VICTIM_HERE = EMPTY  # "Chen Hao", 0.00 CNY: a victim who banks where the mule does
VICTIM_ELSEWHERE = (OTHER, "HXP-0099-0001")  # a victim at another institution
FROZEN = 80_000_000  # 800,000.00 CNY frozen on FULL (1,000,000.00 CNY)

# --- orders --------------------------------------------------------------------------------------


def return_order(
    freeze_id: str,
    amount: int = 30_000_000,
    *,
    key: str = "case-BX-1/return/1",
    case_id: str = "BX-1",
    account: str = FULL,
    to: tuple[str, str] = (BANK, VICTIM_HERE),
    currency: str = "CNY",
    due_by: datetime | None = T0 + timedelta(days=3),
    decided_by: str = POLICE,
    officer: str = OFFICER,
    doc: str = DOC,
) -> bank_pb2.ReturnOrder:
    o = bank_pb2.ReturnOrder(
        idempotency_key=key,
        case_id=case_id,
        account=common_pb2.AccountRef(institution=BANK, account_number=account),
        freeze_id=freeze_id,
        to_account=common_pb2.AccountRef(institution=to[0], account_number=to[1]),
        amount=common_pb2.Money(minor_units=amount, currency=currency),
        decided_by=decided_by,
        officer=officer,
        document_ref=doc,
    )
    if due_by is not None:
        o.due_by.FromDatetime(due_by)
    return o


# --- the ledger, with time in hand ---------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / f"{BANK}.db", BANK)
    ledger.seed(ACCOUNTS)
    yield ledger
    ledger.close()


def freeze_on(ledger: Ledger, at: datetime = T0, amount: int = FROZEN, *, case_id: str = "BX-1") -> str:
    """A stop-payment then a freeze of `amount` on FULL at `at`; the freeze id."""
    hold_id = ledger.apply_stop(order(FULL, amount, key=f"{case_id}/stop", case_id=case_id), at).answer.hold_id
    answer = ledger.apply_freeze(freeze_order(hold_id, amount, key=f"{case_id}/freeze", case_id=case_id), at).answer
    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN
    return answer.freeze_id


def money_of(ledger: Ledger) -> dict[str, tuple[int, int]]:
    """Every account's (balance, held)."""
    return {a.number: (a.balance_minor, a.held_minor) for a in ledger.accounts()}


def books(ledger: Ledger):
    """Everything a return may change."""
    return money_of(ledger), ledger.freezes(), ledger.returns()


def test_a_return_pays_the_victims_account_here_out_of_the_freeze(ledger):
    freeze_id = freeze_on(ledger)
    at = T0 + timedelta(days=40)
    result = ledger.apply_return(return_order(freeze_id), at)

    receipt = result.answer
    assert result.replayed is False
    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
    assert receipt.returned == common_pb2.Money(minor_units=30_000_000, currency="CNY")
    assert receipt.return_id == f"{BANK}-R000001"
    assert receipt.returned_at.ToDatetime(tzinfo=UTC) == at
    assert (receipt.idempotency_key, receipt.case_id, receipt.account.account_number) == (
        "case-BX-1/return/1",
        "BX-1",
        FULL,
    )
    assert (receipt.to_account.institution, receipt.to_account.account_number) == (BANK, VICTIM_HERE)
    assert receipt.detail == (
        f"300,000.00 CNY out of freeze {freeze_id} paid into the victim's account here; 500,000.00 CNY still frozen"
    )
    # The money left the frozen account (balance and frozen part alike) and reached the victim.
    assert money_of(ledger)[FULL] == (70_000_000, 50_000_000)
    assert money_of(ledger)[VICTIM_HERE] == (30_000_000, 0)
    freeze = ledger.freeze(freeze_id)
    assert (freeze.state, freeze.amount_minor, freeze.remaining_minor) == ("frozen", 50_000_000, 50_000_000)
    assert ledger.returns() == [
        FundsReturn(
            f"{BANK}-R000001", freeze_id, FULL, "BX-1", 30_000_000, "CNY", BANK, VICTIM_HERE, "credit",
            "case-BX-1/return/1", T0 + timedelta(days=3), at,
        )
    ]  # fmt: skip


def test_a_retried_return_pays_once_and_gets_the_same_receipt(ledger):
    freeze_id = freeze_on(ledger)
    first = ledger.apply_return(return_order(freeze_id), T0 + timedelta(days=40))
    after = books(ledger)

    again = ledger.apply_return(return_order(freeze_id), T0 + timedelta(days=41))

    assert again.replayed is True
    assert again.answer_payload == first.answer_payload  # the stored receipt, byte for byte
    assert books(ledger) == after


def test_two_returns_from_one_freeze_add_up_and_the_last_ends_it(ledger):
    """Pro rata to two victims: one banks here, one elsewhere. Each takes its part; the second
    takes the rest and the freeze ends, so it never lapses or releases anything afterwards."""
    freeze_id = freeze_on(ledger)
    here = ledger.apply_return(return_order(freeze_id, 50_000_000, key="r/victim-1"), T0 + timedelta(days=40))
    elsewhere = ledger.apply_return(
        return_order(freeze_id, 30_000_000, key="r/victim-2", to=VICTIM_ELSEWHERE), T0 + timedelta(days=41)
    )

    assert here.answer.outcome == elsewhere.answer.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
    assert (here.answer.return_id, elsewhere.answer.return_id) == (f"{BANK}-R000001", f"{BANK}-R000002")
    assert elsewhere.answer.detail == (
        f"300,000.00 CNY out of freeze {freeze_id} sent to the victim's account at {OTHER} (return transfer);"
        f" freeze {freeze_id} is returned in full and ends"
    )
    assert money_of(ledger)[FULL] == (20_000_000, 0)  # 1,000,000.00 - 800,000.00, nothing held
    assert money_of(ledger)[VICTIM_HERE] == (50_000_000, 0)
    returns = ledger.returns(FULL)
    assert sum(r.amount_minor for r in returns) == FROZEN
    assert [(r.to_institution, r.to_account, r.paid_by) for r in returns] == [
        (BANK, VICTIM_HERE, "credit"),
        (*VICTIM_ELSEWHERE, "transfer"),  # the outgoing return transfer
    ]
    freeze = ledger.freeze(freeze_id)
    assert (freeze.state, freeze.returned_at, freeze.remaining_minor) == ("returned", T0 + timedelta(days=41), 0)
    assert not freeze.in_force

    ledger.lapse_expired(T0 + SIX_MONTHS + timedelta(days=1))  # its expiry frees nothing: it ended
    assert money_of(ledger)[FULL] == (20_000_000, 0) and ledger.freeze(freeze_id).lapsed_at is None
    released = ledger.apply_release(release_order(freeze_id=freeze_id), T0 + timedelta(days=42)).answer
    assert released.released.minor_units == 0
    assert released.detail == (
        f"freeze {freeze_id} was returned in full at 2027-01-05T01:00:00.000000Z: nothing released now"
    )
    renewal = freeze_order(renews=freeze_id, amount=30_000_000, key="renew")
    assert ledger.apply_freeze(renewal, T0 + timedelta(days=42)).answer.outcome == bank_pb2.FREEZE_OUTCOME_REFUSED
    assert money_of(ledger)[FULL] == (20_000_000, 0)


def test_a_return_above_what_remains_is_refused_and_nothing_moves(ledger):
    freeze_id = freeze_on(ledger)
    ledger.apply_return(return_order(freeze_id, 50_000_000, key="r/victim-1"), T0 + timedelta(days=40))
    before = books(ledger)

    result = ledger.apply_return(return_order(freeze_id, 30_000_001, key="r/victim-2"), T0 + timedelta(days=41))

    receipt = result.answer
    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_REFUSED
    assert receipt.returned == common_pb2.Money(minor_units=0, currency="CNY")
    assert receipt.return_id == "" and not receipt.HasField("returned_at")
    assert receipt.detail == (
        f"300,000.01 CNY is more than the 300,000.00 CNY freeze {freeze_id} still keeps: nothing returned"
    )
    assert books(ledger) == before
    # The refusal is the key's answer: a retry gets it again, even once the money would fit.
    replay = ledger.apply_return(return_order(freeze_id, 30_000_001, key="r/victim-2"), T0 + timedelta(days=42))
    assert replay.replayed and replay.answer_payload == result.answer_payload
    # The rest, ordered exactly, goes.
    ok = ledger.apply_return(return_order(freeze_id, 30_000_000, key="r/victim-2b"), T0 + timedelta(days=42))
    assert ok.answer.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
    assert ledger.freeze(freeze_id).state == "returned"


@pytest.mark.parametrize("how", ["lapsed", "released", "returned", "unknown", "other-case", "other-account"])
def test_a_return_out_of_no_live_freeze_is_refused_and_nothing_moves(ledger, how):
    freeze_id = freeze_on(ledger)
    at = T0 + timedelta(days=40)
    changes: dict = {}
    if how == "lapsed":
        at = T0 + SIX_MONTHS  # exactly at its expiry
        expected = f"freeze {freeze_id} lapsed at 2027-05-27T01:00:00.000000Z"
    elif how == "released":
        ledger.apply_release(release_order(freeze_id=freeze_id), T0 + timedelta(days=1))
        expected = f"freeze {freeze_id} was released at 2026-11-26T01:00:00.000000Z"
    elif how == "returned":
        ledger.apply_return(return_order(freeze_id, FROZEN, key="r/all"), T0 + timedelta(days=2))
        expected = f"freeze {freeze_id} was returned in full at 2026-11-27T01:00:00.000000Z"
    elif how == "unknown":
        changes = {"freeze_id": f"{BANK}-F999999"}
        expected = f"no freeze '{BANK}-F999999' on this account for case 'BX-1'"
    elif how == "other-case":
        changes = {"case_id": "BX-OTHER"}
        expected = f"no freeze '{freeze_id}' on this account for case 'BX-OTHER'"
    else:
        changes = {"account": PARTIAL}
        expected = f"no freeze '{freeze_id}' on this account for case 'BX-1'"
    if how != "lapsed":
        before = books(ledger)

    receipt = ledger.apply_return(return_order(**{"freeze_id": freeze_id, **changes}), at).answer

    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_REFUSED
    assert receipt.detail == f"{expected}: nothing returned"
    assert receipt.returned.minor_units == 0 and receipt.return_id == ""
    if how == "lapsed":  # the clock's doing, not the order's: the money is free, nobody was paid
        assert money_of(ledger)[FULL] == (100_000_000, 0) and ledger.returns() == []
    else:
        assert books(ledger) == before


@pytest.mark.parametrize(
    ("victim", "why"),
    [
        (UNKNOWN, f"the victim's account is not kept at {BANK}"),
        (CLOSED, "the victim's account is closed"),
        (DOLLARS, "the victim's account is kept in USD, the freeze in CNY"),
    ],
)
def test_a_victims_account_here_that_cannot_take_the_money_is_refused(ledger, victim, why):
    freeze_id = freeze_on(ledger)
    before = books(ledger)
    receipt = ledger.apply_return(return_order(freeze_id, to=(BANK, victim)), T0 + timedelta(days=40)).answer
    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_REFUSED
    assert receipt.detail == f"{why}: nothing returned"
    assert books(ledger) == before


def test_the_ledger_refuses_malformed_returns_and_keeps_the_key_unused(ledger):
    freeze_id = freeze_on(ledger)
    before = books(ledger)
    with pytest.raises(InvalidField, match=r"^amount\.currency: freeze .* is kept in CNY, the order is in USD$"):
        ledger.apply_return(return_order(freeze_id, currency="USD"), T0)
    with pytest.raises(InvalidField, match=r"^amount\.minor_units: "):
        ledger.apply_return(return_order(freeze_id, 0), T0)
    with pytest.raises(InvalidField, match=r"^to_account: .*frozen account itself"):
        ledger.apply_return(return_order(freeze_id, to=(BANK, FULL)), T0)
    with pytest.raises(InvalidField, match=r"^due_by: "):
        ledger.apply_return(return_order(freeze_id, due_by=None), T0)
    assert books(ledger) == before
    assert ledger.apply_return(return_order(freeze_id), T0).replayed is False  # the key was not used up


def test_one_key_names_one_return(ledger):
    freeze_id = freeze_on(ledger)
    ledger.apply_return(return_order(freeze_id, key="k"), T0)
    after = books(ledger)
    for other in (
        return_order(freeze_id, 30_000_001, key="k"),
        return_order(freeze_id, key="k", to=VICTIM_ELSEWHERE),
        return_order(freeze_id, key="k", doc="another notice"),
        return_order(freeze_id, key="k", due_by=T0 + timedelta(days=4)),
    ):
        with pytest.raises(IdempotencyConflict):
            ledger.apply_return(other, T0)
    with pytest.raises(IdempotencyConflict):  # a freeze's key is not a return's
        ledger.apply_return(return_order(freeze_id, key="BX-1/freeze"), T0)
    assert books(ledger) == after


def test_a_ledger_file_from_before_returns_gains_them_and_keeps_its_freezes(tmp_path):
    path = tmp_path / "old.db"
    ledger = Ledger(path, BANK)
    ledger.seed(ACCOUNTS)
    freeze_id = freeze_on(ledger)
    ledger.close()
    with sqlite3.connect(path) as conn:  # what a ledger file written before returns existed lacks
        for table in ("freeze_returns", "freezes_returned"):
            conn.execute(f"DROP TABLE {table}")

    ledger = Ledger(path, BANK)
    try:
        assert ledger.freeze(freeze_id).in_force
        receipt = ledger.apply_return(return_order(freeze_id, FROZEN), T0 + timedelta(days=1)).answer
        assert receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
        assert ledger.freeze(freeze_id).state == "returned" and money_of(ledger)[FULL] == (20_000_000, 0)
    finally:
        ledger.close()


def test_the_fault_is_read_from_a_scenario():
    assert Faults.from_dict({"return_receipt_after_seconds": 2}).return_receipt_after_seconds == 2.0
    assert Faults.from_dict({}).return_receipt_after_seconds is None
    for bad in (-1, True, "soon"):
        with pytest.raises(FaultsError, match=r"^faults\.return_receipt_after_seconds: must be a number >= 0"):
            Faults.from_dict({"return_receipt_after_seconds": bad})


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
    inst.ledger.seed(ACCOUNTS)
    await inst.start()
    yield inst
    await inst.stop()


@pytest.fixture
async def stub(bank):
    async with grpc.aio.insecure_channel(bank.endpoint) as channel:
        yield bank_pb2_grpc.BankServiceStub(channel)


async def send_return(stub, message, signer: SigningKey) -> bank_pb2.ReturnFundsResponse:
    return await stub.ReturnFunds(bank_pb2.ReturnFundsRequest(envelope=seal(message, signer)), timeout=CALL_TIMEOUT)


async def return_funds(stub, keys, registry, message) -> bank_pb2.ReturnReceipt:
    response = await send_return(stub, message, keys["hub"])
    return open_envelope(response.envelope, bank_pb2.ReturnReceipt, registry, expected_signer=BANK)


async def frozen_over_grpc(stub, keys, registry, amount: int = FROZEN) -> str:
    """A stop-payment and a freeze of `amount` on FULL, ordered as the hub orders them."""
    stop = await stub.StopPayment(
        bank_pb2.StopPaymentRequest(envelope=seal(order(FULL, amount), keys["hub"])), timeout=CALL_TIMEOUT
    )
    hold_id = open_envelope(stop.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK).hold_id
    response = await stub.Freeze(
        bank_pb2.FreezeRequest(envelope=seal(freeze_order(hold_id, amount), keys["hub"])), timeout=CALL_TIMEOUT
    )
    answer = open_envelope(response.envelope, bank_pb2.FreezeAnswer, registry, expected_signer=BANK)
    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN
    return answer.freeze_id


async def test_a_return_over_grpc_is_signed_and_moves_the_money(bank, stub, keys, registry):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    response = await send_return(stub, return_order(freeze_id), keys["hub"])

    assert response.envelope.signer == BANK
    assert response.envelope.payload_type == "stopline.v1.ReturnReceipt"
    receipt = open_envelope(response.envelope, bank_pb2.ReturnReceipt, registry, expected_signer=BANK)
    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
    assert receipt.returned == common_pb2.Money(minor_units=30_000_000, currency="CNY")
    assert receipt.return_id == f"{BANK}-R000001"
    assert abs(datetime.now(UTC) - receipt.returned_at.ToDatetime(tzinfo=UTC)) < timedelta(seconds=30)
    assert money_of(bank.ledger)[FULL] == (70_000_000, 50_000_000)
    assert money_of(bank.ledger)[VICTIM_HERE] == (30_000_000, 0)


async def test_a_return_answer_lost_after_apply_pays_once_and_the_retry_gets_the_receipt(bank, stub, keys, registry):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    bank.faults.fail_after_apply = 1
    await rpc_error(send_return(stub, return_order(freeze_id), keys["hub"]), grpc.StatusCode.UNAVAILABLE)
    [applied] = bank.ledger.returns()  # the bank paid; the hub never heard
    assert money_of(bank.ledger)[VICTIM_HERE] == (30_000_000, 0)

    receipt = await return_funds(stub, keys, registry, return_order(freeze_id))
    again = await return_funds(stub, keys, registry, return_order(freeze_id))

    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED  # the stored receipt, not a refusal
    assert receipt.return_id == again.return_id == applied.return_id
    assert len(bank.ledger.returns()) == 1
    assert money_of(bank.ledger)[FULL] == (70_000_000, 50_000_000)
    assert money_of(bank.ledger)[VICTIM_HERE] == (30_000_000, 0)


async def test_concurrent_duplicate_returns_pay_once(bank, stub, keys, registry):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    responses = await asyncio.gather(*(send_return(stub, return_order(freeze_id), keys["hub"]) for _ in range(5)))
    assert len({r.envelope.payload for r in responses}) == 1
    assert len(bank.ledger.returns()) == 1 and money_of(bank.ledger)[VICTIM_HERE] == (30_000_000, 0)


async def test_a_return_above_what_is_frozen_over_grpc_is_a_signed_refusal(bank, stub, keys, registry):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    before = books(bank.ledger)
    receipt = await return_funds(stub, keys, registry, return_order(freeze_id, FROZEN + 1))
    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_REFUSED
    assert receipt.detail.endswith("still keeps: nothing returned")
    assert books(bank.ledger) == before


def _return_cases():
    """(change to a valid return order, the field the error must name)."""

    def set_(path: str, value):
        def change(o):
            *parents, name = path.split(".")
            target = o
            for p in parents:
                target = getattr(target, p)
            setattr(target, name, value)

        return change

    return [
        (set_("idempotency_key", ""), "idempotency_key"),
        (set_("case_id", ""), "case_id"),
        (set_("account.institution", OTHER), "account.institution"),
        (set_("account.account_number", ""), "account.account_number"),
        (set_("freeze_id", ""), "freeze_id"),
        (lambda o: o.ClearField("to_account"), "to_account"),
        (set_("to_account.institution", ""), "to_account.institution"),
        (set_("to_account.account_number", ""), "to_account.account_number"),
        (set_("to_account.account_number", FULL), "to_account"),  # the frozen account itself
        (set_("amount.minor_units", 0), "amount.minor_units"),
        (set_("amount.minor_units", -5), "amount.minor_units"),
        (set_("amount.currency", "cny"), "amount.currency"),
        (set_("amount.currency", "USD"), "amount.currency"),  # the freeze is in CNY
        (lambda o: o.ClearField("due_by"), "due_by"),
        (set_("due_by.seconds", 10**12), "due_by"),
        (set_("due_by.nanos", -1), "due_by"),
        (set_("decided_by", ""), "decided_by"),
        (set_("officer", ""), "officer"),
        (set_("document_ref", ""), "document_ref"),
    ]


@pytest.mark.parametrize(("change", "field"), _return_cases())
async def test_a_malformed_return_names_the_field_and_changes_nothing(bank, stub, keys, registry, change, field):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    bad = return_order(freeze_id)
    change(bad)
    before = books(bank.ledger)

    details = await rpc_error(send_return(stub, bad, keys["hub"]), grpc.StatusCode.INVALID_ARGUMENT)

    assert details.startswith(f"{field}: "), details
    assert books(bank.ledger) == before
    if field != "idempotency_key":  # the key was not used up: the corrected order goes through
        receipt = await return_funds(stub, keys, registry, return_order(freeze_id))
        assert receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED


async def test_a_reused_key_for_another_return_is_failed_precondition(bank, stub, keys, registry):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    await return_funds(stub, keys, registry, return_order(freeze_id))
    before = books(bank.ledger)
    details = await rpc_error(
        send_return(stub, return_order(freeze_id, 20_000_000), keys["hub"]), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "different order" in details
    assert books(bank.ledger) == before


@pytest.mark.parametrize("how", ["impostor", "unsigned", "tampered", "police"])
async def test_only_the_hub_may_order_a_return(bank, stub, keys, registry, how):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    signer = {"impostor": SigningKey.generate("hub"), "police": keys[POLICE]}.get(how, keys["hub"])
    envelope = seal(return_order(freeze_id), signer)
    if how == "unsigned":
        envelope.ClearField("signature")
    elif how == "tampered":  # another valid order (to another account) under the old signature
        envelope.payload = return_order(freeze_id, to=VICTIM_ELSEWHERE).SerializeToString()
    before = books(bank.ledger)
    code = grpc.StatusCode.PERMISSION_DENIED if how == "police" else grpc.StatusCode.UNAUTHENTICATED
    await rpc_error(stub.ReturnFunds(bank_pb2.ReturnFundsRequest(envelope=envelope), timeout=CALL_TIMEOUT), code)
    assert books(bank.ledger) == before
    await rpc_error(
        stub.ReturnFunds(bank_pb2.ReturnFundsRequest(), timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_a_forged_receipt_fails_verification(bank, stub, keys, registry):
    freeze_id = await frozen_over_grpc(stub, keys, registry)
    bank.faults.forge_answers = True
    response = await send_return(stub, return_order(freeze_id), keys["hub"])
    assert response.envelope.key_id == keys[BANK].key_id
    with pytest.raises(BadSignature):
        open_envelope(response.envelope, bank_pb2.ReturnReceipt, registry, expected_signer=BANK)


# --- accepted now, receipt later: the callback to a listening hub over mutual TLS ------------------


class ListeningHub(hub_pb2_grpc.HubServiceServicer):
    """The two callback RPCs of HubService, as the gateway would take them in: the TLS client
    must be the envelope's signer, the envelope must verify; each verified result is queued."""

    def __init__(self, registry, key: SigningKey):
        self._registry = registry
        self._key = key
        self.calls: asyncio.Queue = asyncio.Queue()

    async def _take(self, request, context, message_type):
        peer = tls_peer(context)
        if peer is None or peer.common_name != request.envelope.signer:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "TLS client is not the signer")
        result = open_envelope(request.envelope, message_type, self._registry(), expected_signer=peer.common_name)
        copy = envelope_pb2.Envelope()
        copy.CopyFrom(request.envelope)
        await self.calls.put((peer.common_name, copy, result))
        receipt = hub_pb2.CallbackReceipt(idempotency_key=result.idempotency_key)
        receipt.accepted_at.GetCurrentTime()
        return seal(receipt, self._key)

    async def ReportReturnResult(self, request, context):
        envelope = await self._take(request, context, bank_pb2.ReturnReceipt)
        return hub_pb2.ReportReturnResultResponse(envelope=envelope)

    async def ReportFreezeResult(self, request, context):
        envelope = await self._take(request, context, bank_pb2.FreezeAnswer)
        return hub_pb2.ReportFreezeResultResponse(envelope=envelope)


class TlsWorld:
    """A sandbox bank and a listening hub, each with its certificate from one local CA; the hub's
    endpoint is in the registry the bank reads on every call."""

    def __init__(self, tmp_path, keys):
        ca = LocalCA.create()
        self.tls: dict[str, TlsIdentity] = {i: ca.issue(i, hosts=("127.0.0.1",)) for i in ("hub", BANK)}
        self.keys = keys
        self.hub_port = 0
        self.hub = ListeningHub(self.registry, keys["hub"])
        self._server: grpc.aio.Server | None = None
        self.bank: SandboxInstitution | None = None  # the registry is read while it is made
        self.bank = SandboxInstitution(BANK, keys[BANK], self.registry, tmp_path / f"{BANK}.db", tls=self.tls[BANK])
        self.bank.ledger.seed(ACCOUNTS)

    def registry(self) -> Registry:
        kinds = {"hub": InstitutionKind.HUB, BANK: InstitutionKind.BANK, OTHER: InstitutionKind.PAYMENT_COMPANY}
        endpoints = {
            "hub": f"127.0.0.1:{self.hub_port}" if self.hub_port else None,
            BANK: self.bank.endpoint if self.bank is not None else None,
        }
        return Registry(
            [
                Institution(
                    i, i, kind, endpoint=endpoints.get(i),
                    keys=(registered_key(self.keys[i].public_key, self.keys[i].key_id, VALID_FROM),),
                    tls_cert_sha256=self.tls[i].cert_sha256 if i in self.tls else None,
                )  # fmt: skip
                for i, kind in kinds.items()
            ]
        )

    async def start_hub(self) -> None:
        """Listen (on an OS-picked port the first time, on the same port after stop_hub)."""
        server = grpc.aio.server()
        hub_pb2_grpc.add_HubServiceServicer_to_server(self.hub, server)
        self.hub_port = server.add_secure_port(f"127.0.0.1:{self.hub_port}", self.tls["hub"].server_credentials())
        await server.start()
        self._server = server

    async def stop_hub(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(None)

    def channel(self) -> grpc.aio.Channel:
        """The hub's channel to the bank: its own certificate, the bank's id as TLS target name."""
        return grpc.aio.secure_channel(
            self.bank.endpoint, self.tls["hub"].channel_credentials(), options=target_name_options(BANK)
        )


@pytest.fixture
async def tls_world(tmp_path, keys):
    world = TlsWorld(tmp_path, keys)
    await world.start_hub()
    await world.bank.start()
    try:
        yield world
    finally:
        await world.bank.stop()
        await world.stop_hub()


async def _next_call(world: TlsWorld, within: float = 10.0):
    return await asyncio.wait_for(world.hub.calls.get(), within)


async def test_an_accepted_return_is_applied_now_and_its_signed_receipt_reaches_the_hub(tls_world):
    w = tls_world
    async with w.channel() as channel:
        stub = bank_pb2_grpc.BankServiceStub(channel)
        registry = w.registry()
        freeze_id = await frozen_over_grpc(stub, w.keys, registry)
        w.bank.faults.return_receipt_after_seconds = 0.2  # a back office
        response = await send_return(stub, return_order(freeze_id), w.keys["hub"])

    accepted = open_envelope(response.envelope, bank_pb2.ReturnReceipt, registry, expected_signer=BANK)
    assert accepted.outcome == bank_pb2.RETURN_OUTCOME_ACCEPTED
    assert accepted.returned == common_pb2.Money(minor_units=0, currency="CNY")
    assert accepted.return_id == "" and not accepted.HasField("returned_at")
    assert (accepted.idempotency_key, accepted.to_account.account_number) == ("case-BX-1/return/1", VICTIM_HERE)
    assert money_of(w.bank.ledger)[VICTIM_HERE] == (30_000_000, 0)  # applied at once

    caller, envelope, receipt = await _next_call(w)
    assert caller == BANK  # over mutual TLS, as the bank
    assert envelope.signer == BANK and envelope.payload_type == "stopline.v1.ReturnReceipt"
    assert receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
    assert receipt.returned == common_pb2.Money(minor_units=30_000_000, currency="CNY")
    assert receipt.return_id == f"{BANK}-R000001" and receipt.HasField("returned_at")
    # The stored receipt itself: a repeated order gets the same bytes, and nothing is paid twice.
    [stored] = w.bank.ledger.returns()
    assert stored.return_id == receipt.return_id
    assert len(w.bank.ledger.returns()) == 1 and money_of(w.bank.ledger)[FULL] == (70_000_000, 50_000_000)


async def test_the_receipt_is_retried_while_the_hub_is_unreachable(tls_world):
    w = tls_world
    async with w.channel() as channel:
        stub = bank_pb2_grpc.BankServiceStub(channel)
        freeze_id = await frozen_over_grpc(stub, w.keys, w.registry())
        await w.stop_hub()  # the hub is down when the back office calls back
        w.bank.faults.return_receipt_after_seconds = 0
        response = await send_return(stub, return_order(freeze_id, FROZEN), w.keys["hub"])
    assert bank_pb2.ReturnReceipt.FromString(response.envelope.payload).outcome == bank_pb2.RETURN_OUTCOME_ACCEPTED
    await asyncio.sleep(0.5)
    assert w.hub.calls.empty()
    await w.start_hub()  # back on the same port

    caller, envelope, receipt = await _next_call(w)
    assert caller == BANK and receipt.outcome == bank_pb2.RETURN_OUTCOME_RETURNED
    assert receipt.returned.minor_units == FROZEN
    assert w.bank.ledger.freeze(freeze_id).state == "returned"


async def test_freeze_results_go_back_by_the_same_path(tls_world):
    w = tls_world
    async with w.channel() as channel:
        stub = bank_pb2_grpc.BankServiceStub(channel)
        registry = w.registry()
        stop = await stub.StopPayment(
            bank_pb2.StopPaymentRequest(envelope=seal(order(FULL, FROZEN), w.keys["hub"])), timeout=CALL_TIMEOUT
        )
        hold_id = open_envelope(stop.envelope, bank_pb2.StopPaymentAnswer, registry, expected_signer=BANK).hold_id
        w.bank.faults.freeze_result_after_seconds = 0
        response = await stub.Freeze(
            bank_pb2.FreezeRequest(envelope=seal(freeze_order(hold_id), w.keys["hub"])), timeout=CALL_TIMEOUT
        )
    assert bank_pb2.FreezeAnswer.FromString(response.envelope.payload).outcome == bank_pb2.FREEZE_OUTCOME_ACCEPTED
    caller, envelope, answer = await _next_call(w)
    assert caller == BANK and envelope.payload_type == "stopline.v1.FreezeAnswer"
    assert answer.outcome == bank_pb2.FREEZE_OUTCOME_FROZEN and answer.freeze_id == f"{BANK}-F000001"
