"""The hub's checks on a stop-payment answer and a return-of-funds receipt, against a rogue bank;
and the return of funds against a real sandbox bank over mutual TLS.

The real `request_stop_payment` activity runs in Temporal's ActivityEnvironment (so
`activity.info().attempt` is whatever the test says) and calls, through the real BankClient and
ChannelPool, a real grpc.aio server on a loopback port the OS picks. That server is a rogue bank: it
checks nothing and answers with whatever StopPaymentAnswer the test sets, sealed with whichever
Ed25519 key the test chooses, or aborts with a chosen gRPC status. Every answer that does not fit
the order, or is not signed by the institution that keeps the account, must be refused; an answer
that cannot be verified *yet* (registry lag, clock skew) must be retried, but not for ever.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.convert import account_pb, money_pb, return_result_of, time_of, timestamp_pb
from activities.institutions import HEALABLE_ATTEMPTS, InstitutionActivities
from adapters.bank import BankClient
from adapters.channels import ChannelPool
from adapters.errors import InstitutionError
from sandbox import Account as SandboxAccount
from sandbox import SandboxInstitution
from stopline.domain import (
    ERR_ANSWER_REJECTED,
    ERR_ANSWER_UNVERIFIED,
    ERR_REQUEST_REJECTED,
    REQUEST_RETURN_FUNDS,
    REQUEST_STOP_PAYMENT,
    STOP_PAYMENT_HOLD,
    Account,
    AccountQueryInput,
    Amount,
    Channel,
    ForeignDestination,
    ReturnInput,
    ReturnOutcome,
    ReturnResult,
    StopOutcome,
    StopPaymentInput,
    StopPaymentResult,
    stop_step_id,
)
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2, envelope_pb2
from tests.test_sandbox_bank import order as stop_order
from tests.test_sandbox_freeze import freeze_order
from trust.envelope import open_envelope, seal
from trust.errors import BadSignature
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA

HUB = "hub"
BANK = "qilu-bank"
OTHER = "huaxia-pay"
POLICE = "police-boxing"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

MULE = Account(BANK, "6229110000800001")
AMOUNT = Amount(80_000_000, "CNY")  # 800,000.00 CNY
CASE_ID = "BX-ROGUE-1"
KEY = f"case-{CASE_ID}/{stop_step_id(MULE)}"

HELD = bank_pb2.STOP_PAYMENT_OUTCOME_HELD
PARTIALLY_HELD = bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD
REFUSED = bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED


# --- the rogue bank ---------------------------------------------------------------------------


@dataclass
class RogueBank(bank_pb2_grpc.BankServiceServicer):
    """Answers StopPayment with `answer` sealed by `key` (then passed through `tamper`), or aborts
    with `abort`. It acts on nothing it receives; it only records each order envelope and whether
    the hub's signature over it verified."""

    registry: Callable[[], Registry]
    key: SigningKey
    answer: Message | None = None
    abort: tuple[grpc.StatusCode, str] | None = None
    tamper: Callable[[envelope_pb2.Envelope], None] | None = None
    signed_at: datetime | None = None
    delay: float = 0.0
    received: list[envelope_pb2.Envelope] = field(default_factory=list)
    opened: list[Message | Exception] = field(default_factory=list)

    async def StopPayment(self, request, context):
        return bank_pb2.StopPaymentResponse(envelope=await self._answer(request, context, bank_pb2.StopPaymentOrder))

    async def ReturnFunds(self, request, context):
        return bank_pb2.ReturnFundsResponse(envelope=await self._answer(request, context, bank_pb2.ReturnOrder))

    async def QueryAccount(self, request, context):
        return bank_pb2.QueryAccountResponse(envelope=await self._answer(request, context, bank_pb2.AccountQuery))

    async def _answer(self, request, context, order_type: type[Message]) -> envelope_pb2.Envelope:
        envelope = envelope_pb2.Envelope()
        envelope.CopyFrom(request.envelope)
        self.received.append(envelope)
        try:
            self.opened.append(open_envelope(envelope, order_type, self.registry(), expected_signer=HUB))
        except Exception as e:  # recorded for the test; a rogue bank answers regardless
            self.opened.append(e)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.abort is not None:
            await context.abort(*self.abort)
        assert self.answer is not None, "the test set no answer"
        sealed = seal(self.answer, self.key, now=self.signed_at)
        if self.tamper is not None:
            self.tamper(sealed)
        return sealed


@dataclass
class Hub:
    keys: dict[str, SigningKey]
    registry: Registry  # what the hub's registry says now; a test may replace it
    bank: RogueBank
    channels: ChannelPool
    activities: InstitutionActivities = field(init=False)

    def __post_init__(self) -> None:
        self.use_bank_timeout(2.0)

    def use_bank_timeout(self, seconds: float) -> None:
        """The activities as the worker builds them, with this deadline on every bank call."""
        registry = lambda: self.registry  # noqa: E731  (read on every call, as RegistryFile is)
        self.activities = InstitutionActivities(
            self.keys[HUB], registry, BankClient(self.channels, registry, timeout_seconds=seconds)
        )


@pytest_asyncio.fixture
async def hub() -> AsyncIterator[Hub]:
    keys = {inst: SigningKey.generate(inst) for inst in (HUB, BANK, OTHER, POLICE)}
    holder: list[Hub] = []
    bank = RogueBank(lambda: holder[0].registry, keys[BANK])
    server = grpc.aio.server()
    bank_pb2_grpc.add_BankServiceServicer_to_server(bank, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    kinds = {
        HUB: InstitutionKind.HUB,
        BANK: InstitutionKind.BANK,
        OTHER: InstitutionKind.PAYMENT_COMPANY,
        POLICE: InstitutionKind.POLICE_UNIT,
    }
    endpoints = {BANK: f"127.0.0.1:{port}", OTHER: "127.0.0.1:1"}  # huaxia-pay is never called
    registry = Registry(
        [
            Institution(
                id=inst,
                name=inst,
                kind=kind,
                endpoint=endpoints.get(inst),
                keys=(registered_key(keys[inst].public_key, keys[inst].key_id, EPOCH),),
            )
            for inst, kind in kinds.items()
        ]
    )
    channels = ChannelPool()
    holder.append(Hub(keys, registry, bank, channels))
    try:
        yield holder[0]
    finally:
        await channels.close()
        await server.stop(None)


# --- helpers ----------------------------------------------------------------------------------


def order(**changes) -> StopPaymentInput:
    req = StopPaymentInput(
        idempotency_key=KEY,
        case_id=CASE_ID,
        requested_by=POLICE,
        account=MULE,
        amount=AMOUNT,
        transfer_time=datetime(2026, 3, 2, 9, 41, 7, tzinfo=UTC),
        holder_name="ZHANG San",
    )
    return dataclasses.replace(req, **changes)


HELD_AT = datetime(2026, 3, 2, 9, 43, 12, tzinfo=UTC)


def answer(req: StopPaymentInput, outcome: int = HELD, **changes) -> bank_pb2.StopPaymentAnswer:
    """What an honest bank would answer to `req`; `changes` replace fields (a None value clears one)."""
    held = {HELD: req.amount, PARTIALLY_HELD: Amount(req.amount.minor_units // 4, req.amount.currency)}
    msg = bank_pb2.StopPaymentAnswer(
        idempotency_key=req.idempotency_key,
        case_id=req.case_id,
        account=account_pb(req.account),
        outcome=outcome,
        requested=money_pb(req.amount),
        detail=f"outcome {outcome}",
    )
    if outcome in held:
        msg.held.CopyFrom(money_pb(held[outcome]))
        msg.hold_id = "QL-HOLD-000042"
        msg.held_at.CopyFrom(timestamp_pb(HELD_AT))
        msg.hold_expires_at.CopyFrom(timestamp_pb(HELD_AT + STOP_PAYMENT_HOLD))
    else:
        msg.refusal_reason = bank_pb2.REFUSAL_REASON_UNKNOWN_ACCOUNT
        msg.held.CopyFrom(common_pb2.Money(minor_units=0, currency=req.amount.currency))
    for name, value in changes.items():
        if value is None:
            msg.ClearField(name)
        elif isinstance(value, Message):
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def money(minor_units: int, currency: str = "CNY") -> common_pb2.Money:
    return common_pb2.Money(minor_units=minor_units, currency=currency)


async def request(hub: Hub, req: StopPaymentInput, attempt: int = 1) -> StopPaymentResult:
    """Run the real activity as Temporal's worker would on call number `attempt`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        activity_type=REQUEST_STOP_PAYMENT,
        activity_id=stop_step_id(req.account),
        workflow_id=f"case-{req.case_id}",
    )
    return await env.run(hub.activities.request_stop_payment, req)


async def final_failure(
    hub: Hub, req: StopPaymentInput, error_type: str, attempt: int = 1
) -> ApplicationError:
    """The activity fails for good: the workflow's retry policy must not call again, and the
    operator learns how many calls it took."""
    with pytest.raises(ApplicationError) as caught:
        await request(hub, req, attempt)
    err = caught.value
    assert err.type == error_type, err
    assert err.non_retryable is True, err
    assert err.details[0]["attempts"] == attempt
    return err


async def refused(hub: Hub, req: StopPaymentInput, why: str, attempt: int = 1) -> ApplicationError:
    """The answer is refused for good, and the reason operators see (the workflow shows the
    message as the stop's reason) names `why`."""
    err = await final_failure(hub, req, ERR_ANSWER_REJECTED, attempt)
    assert err.message.startswith(f"answer from {BANK} refused: "), err.message
    assert why in err.message, err.message
    return err


# --- answers that fit the order ---------------------------------------------------------------


async def test_held_answer_is_handed_over_as_verified(hub):
    req = order()
    hub.bank.answer = answer(req, HELD)

    result = await request(hub, req, attempt=3)

    assert result == StopPaymentResult(
        outcome=StopOutcome.HELD,
        held=AMOUNT,
        refusal_reason="",
        detail=f"outcome {HELD}",
        hold_id="QL-HOLD-000042",
        answered_at=HELD_AT,
        hold_expires_at=HELD_AT + timedelta(hours=48),
        attempts=3,
    )


async def test_partially_held_answer_is_handed_over_with_the_part(hub):
    req = order()
    hub.bank.answer = answer(req, PARTIALLY_HELD, held=money(12_640_000))

    result = await request(hub, req)

    assert result.outcome is StopOutcome.PARTIALLY_HELD
    assert result.held == Amount(12_640_000, "CNY")
    assert result.hold_id == "QL-HOLD-000042"
    assert result.hold_expires_at == HELD_AT + STOP_PAYMENT_HOLD
    assert result.refusal_reason == ""
    assert result.attempts == 1


@pytest.mark.parametrize("unset_held", [False, True], ids=["held-zero", "held-unset"])
async def test_refused_answer_carries_the_reason_and_holds_nothing(hub, unset_held):
    req = order()
    hub.bank.answer = answer(req, REFUSED, detail="no such account", **({"held": None} if unset_held else {}))
    assert hub.bank.answer.HasField("held") is not unset_held

    result = await request(hub, req, attempt=2)

    assert result == StopPaymentResult(
        outcome=StopOutcome.REFUSED,
        held=Amount(0, "CNY"),  # in the order's currency, even when the bank left `held` unset
        refusal_reason="unknown account",
        detail="no such account",
        hold_id="",
        answered_at=None,
        hold_expires_at=None,
        attempts=2,
    )


async def test_refusal_reason_is_named_in_words(hub):
    req = order()
    hub.bank.answer = answer(req, REFUSED, refusal_reason=bank_pb2.REFUSAL_REASON_STOP_LIMIT_REACHED)
    assert (await request(hub, req)).refusal_reason == "stop limit reached"


# --- answers from the wrong signer, or tampered with --------------------------------------------


async def test_answer_signed_by_another_institution_is_refused(hub):
    """huaxia-pay's signature is valid, but huaxia-pay does not keep this account."""
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.key = hub.keys[OTHER]

    err = await refused(hub, req, "signed by 'huaxia-pay'")
    assert hub.bank.received, "the order was sent"
    assert err.details[0] == {"attempts": 1}


async def test_answer_signed_by_the_hub_itself_is_refused(hub):
    """A bank that signs with a stolen hub key (or echoes a hub-signed message) is not the bank."""
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.key = hub.keys[HUB]
    await refused(hub, req, "signed by 'hub'")


async def test_order_echoed_back_instead_of_an_answer_is_refused(hub):
    """The bank's own signature over a message that is not a StopPaymentAnswer does not count."""
    req = order()
    hub.bank.answer = bank_pb2.StopPaymentOrder(
        idempotency_key=req.idempotency_key, case_id=req.case_id, account=account_pb(req.account)
    )
    await refused(hub, req, "expected 'stopline.v1.StopPaymentAnswer'")


def flip_payload_byte(envelope: envelope_pb2.Envelope) -> None:
    payload = bytearray(envelope.payload)
    # One bit of the signed bytes, as a tamperer on the way would change an amount or an account.
    payload[len(payload) // 2] ^= 0x01
    envelope.payload = bytes(payload)


def flip_signature_byte(envelope: envelope_pb2.Envelope) -> None:
    signature = bytearray(envelope.signature)
    signature[0] ^= 0x80
    envelope.signature = bytes(signature)


def claim_other_signing_time(envelope: envelope_pb2.Envelope) -> None:
    envelope.signed_at.seconds -= 1


@pytest.mark.parametrize("tamper", [flip_payload_byte, flip_signature_byte, claim_other_signing_time])
async def test_tampered_answer_is_refused_and_not_retried(hub, tamper):
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.tamper = tamper
    await refused(hub, req, "does not verify")


async def test_tampered_answer_is_refused_even_on_the_last_healable_attempt(hub):
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.tamper = flip_payload_byte
    await refused(hub, req, "does not verify", attempt=HEALABLE_ATTEMPTS - 1)


# --- answers that do not fit the order ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (
            {"account": common_pb2.AccountRef(institution=BANK, account_number="6229110000375002")},
            "about account",
        ),
        ({"account": common_pb2.AccountRef(institution=OTHER, account_number=MULE.number)}, "about account"),
        ({"account": None}, "about account"),
        ({"idempotency_key": f"case-BX-OTHER/{stop_step_id(MULE)}"}, "is for request"),
        ({"idempotency_key": ""}, "is for request"),
        ({"case_id": "BX-OTHER"}, "is for case"),
        ({"case_id": ""}, "is for case"),
        ({"requested": money(AMOUNT.minor_units * 2)}, "echoes an order of"),
        ({"requested": money(AMOUNT.minor_units, "USD")}, "echoes an order of"),
        ({"requested": None}, "echoes an order of"),
    ],
    ids=[
        "other-account",
        "same-number-other-institution",
        "no-account",
        "other-idempotency-key",
        "no-idempotency-key",
        "other-case",
        "no-case",
        "other-requested-amount",
        "other-requested-currency",
        "no-requested-amount",
    ],
)
async def test_answer_about_another_order_is_refused(hub, changes, why):
    """A well-signed HELD answer from the right bank, about some other order, proves nothing
    about this one (a replayed or mixed-up answer)."""
    req = order()
    hub.bank.answer = answer(req, HELD, **changes)
    await refused(hub, req, why)


@pytest.mark.parametrize(
    ("outcome", "held", "why"),
    [
        (HELD, money(AMOUNT.minor_units - 1), "held but holds less"),
        (HELD, money(0), "held but holds less"),
        (HELD, None, "held but holds less"),
        (PARTIALLY_HELD, money(AMOUNT.minor_units), "not a part"),
        (PARTIALLY_HELD, money(0), "not a part"),
        (PARTIALLY_HELD, None, "not a part"),
        (REFUSED, money(1), "refused but holds money"),
        (REFUSED, money(AMOUNT.minor_units), "refused but holds money"),
    ],
    ids=[
        "held-one-fen-short",
        "held-nothing",
        "held-unset",
        "partial-the-whole-amount",
        "partial-nothing",
        "partial-unset",
        "refused-holding-a-fen",
        "refused-holding-everything",
    ],
)
async def test_outcome_that_contradicts_the_held_amount_is_refused(hub, outcome, held, why):
    req = order()
    hub.bank.answer = answer(req, outcome, held=held)
    await refused(hub, req, why)


@pytest.mark.parametrize("outcome", [HELD, PARTIALLY_HELD, REFUSED])
@pytest.mark.parametrize("minor_units", [AMOUNT.minor_units + 1, -1], ids=["more-than-ordered", "negative"])
async def test_held_amount_outside_the_order_is_refused(hub, outcome, minor_units):
    req = order()
    hub.bank.answer = answer(req, outcome, held=money(minor_units))
    await refused(hub, req, f"outside 0..{AMOUNT.minor_units}")


@pytest.mark.parametrize("outcome", [HELD, PARTIALLY_HELD])
@pytest.mark.parametrize("currency", ["USD", "cny", ""])
async def test_held_amount_in_another_currency_is_refused(hub, outcome, currency):
    req = order()
    held = AMOUNT.minor_units if outcome == HELD else 12_640_000
    hub.bank.answer = answer(req, outcome, held=money(held, currency))
    await refused(hub, req, "the order was in CNY")


async def test_refusal_holding_zero_in_another_currency_is_refused(hub):
    req = order()
    hub.bank.answer = answer(req, REFUSED, held=money(0, "USD"))
    await refused(hub, req, "answer holds USD")


@pytest.mark.parametrize(
    "outcome", [bank_pb2.STOP_PAYMENT_OUTCOME_UNSPECIFIED, 99], ids=["unspecified", "unknown"]
)
async def test_answer_without_a_valid_outcome_is_refused(hub, outcome):
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.answer.outcome = outcome
    await refused(hub, req, "no valid outcome")


# --- answers that cannot be verified yet --------------------------------------------------------


def unregistered_bank_key(hub: Hub) -> None:
    """A rotated key the hub's registry does not list yet: signer qilu-bank, unknown key id."""
    hub.bank.key = SigningKey.generate(BANK)
    assert hub.bank.key.key_id not in {k.key_id for k in hub.registry.institution(BANK).keys}


def skewed_clock(hub: Hub) -> None:
    """The bank's clock is ten minutes behind (outside the five-minute window)."""
    hub.bank.signed_at = datetime.now(UTC) - timedelta(minutes=10)


UNVERIFIABLE = [unregistered_bank_key, skewed_clock]


@pytest.mark.parametrize("cause", UNVERIFIABLE)
@pytest.mark.parametrize("attempt", [1, HEALABLE_ATTEMPTS - 1])
async def test_unverifiable_answer_is_retried_while_it_may_heal(hub, cause, attempt):
    req = order()
    hub.bank.answer = answer(req, HELD)
    cause(hub)

    with pytest.raises(ApplicationError) as caught:
        await request(hub, req, attempt)

    err = caught.value
    assert err.type == ERR_ANSWER_UNVERIFIED
    assert err.non_retryable is False
    assert err.message.startswith(f"answer from {BANK} not verifiable: ")


@pytest.mark.parametrize("cause", UNVERIFIABLE)
@pytest.mark.parametrize("attempt", [HEALABLE_ATTEMPTS, HEALABLE_ATTEMPTS + 7])
async def test_unverifiable_answer_is_refused_once_healing_time_is_up(hub, cause, attempt):
    req = order()
    hub.bank.answer = answer(req, HELD)
    cause(hub)

    err = await final_failure(hub, req, ERR_ANSWER_REJECTED, attempt)
    assert err.message.startswith(f"answer from {BANK} not verifiable: ")


async def test_answer_signed_with_a_key_not_yet_valid_is_retried_then_refused(hub):
    """qilu-bank's next key is registered from tomorrow: an answer signed with it today is not
    valid yet."""
    next_key = SigningKey.generate(BANK)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    bank = hub.registry.institution(BANK)
    hub.registry = Registry(
        [i for i in hub.registry if i.id != BANK]
        + [
            dataclasses.replace(
                bank, keys=(*bank.keys, registered_key(next_key.public_key, next_key.key_id, tomorrow))
            )
        ]
    )
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.key = next_key

    with pytest.raises(ApplicationError) as caught:
        await request(hub, req, HEALABLE_ATTEMPTS - 1)
    assert caught.value.type == ERR_ANSWER_UNVERIFIED and caught.value.non_retryable is False
    assert "not valid before" in caught.value.message

    await final_failure(hub, req, ERR_ANSWER_REJECTED, HEALABLE_ATTEMPTS)


# --- the bank refuses the call ----------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, HEALABLE_ATTEMPTS, HEALABLE_ATTEMPTS + 7])
@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
async def test_bank_outage_is_retried_whatever_the_attempt(hub, code, attempt):
    req = order()
    hub.bank.abort = (code, "down for maintenance")

    with pytest.raises(InstitutionError) as caught:
        await request(hub, req, attempt)

    err = caught.value
    assert not isinstance(err, ApplicationError)  # Temporal retries it under the workflow's policy
    assert err.code == code and err.retryable
    assert err.institution == BANK and err.message == "down for maintenance"


async def test_bank_too_slow_to_answer_is_retried(hub):
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.delay = 1.0
    hub.use_bank_timeout(0.2)

    with pytest.raises(InstitutionError) as caught:
        await request(hub, req)
    assert not isinstance(caught.value, ApplicationError)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and caught.value.retryable


async def test_a_slow_bank_cut_off_at_the_first_call_is_heard_by_a_later_one(hub):
    """The deadline doubles per call (0.2 s, 0.4 s, 0.8 s here): a bank answering in 0.5 s is cut
    off at calls 1 and 2 and heard at call 3, whose answer counts 3 calls. A local first try
    (prior_attempts=1) makes the regular activity's first call the second."""
    req = order()
    hub.bank.answer = answer(req, HELD)
    hub.bank.delay = 0.5
    hub.use_bank_timeout(0.2)
    for attempt in (1, 2):
        with pytest.raises(InstitutionError) as caught:
            await request(hub, req, attempt)
        assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and caught.value.retryable
    result = await request(hub, req, 3)
    assert result.outcome is StopOutcome.HELD and result.attempts == 3
    result = await request(hub, dataclasses.replace(req, prior_attempts=2), 1)  # call 3 again
    assert result.outcome is StopOutcome.HELD and result.attempts == 3


def test_a_calls_deadline_doubles_per_attempt_up_to_a_minute():
    from adapters.channels import MAX_TIMEOUT_SECONDS, call_deadline

    assert [call_deadline(5.0, n) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert MAX_TIMEOUT_SECONDS == 60.0
    assert call_deadline(90.0, 3) == 90.0  # a first deadline set above the cap is kept, not cut


async def test_a_call_still_waiting_heartbeats_so_a_dead_worker_is_noticed(hub):
    """A call that waits on its bank tells Temporal the worker is alive every 2 s (the heartbeat
    timeout, 10 s, then notices a dead worker however long the call may run); a quick call sends
    none."""
    from activities.exchange import WAITING_HEARTBEAT_SECONDS

    req = order()
    hub.bank.answer = answer(req, HELD)
    beats: list[float] = []
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_type=REQUEST_STOP_PAYMENT, workflow_id=f"case-{CASE_ID}")
    env.on_heartbeat = lambda *details: beats.append(asyncio.get_running_loop().time())
    await env.run(hub.activities.request_stop_payment, req)
    assert beats == []
    hub.bank.delay = 2 * WAITING_HEARTBEAT_SECONDS + 0.5
    hub.use_bank_timeout(10.0)
    result = await env.run(hub.activities.request_stop_payment, req)  # the same order, answered slowly
    assert result.outcome is StopOutcome.HELD
    assert len(beats) == 2


@pytest.mark.parametrize("attempt", [1, HEALABLE_ATTEMPTS])
@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
    ],
)
async def test_bank_refusing_the_order_is_final(hub, code, attempt):
    req = order()
    hub.bank.abort = (code, "idempotency key reused for a different order")

    err = await final_failure(hub, req, ERR_REQUEST_REJECTED, attempt)
    assert err.message == f"{BANK}: {code.name}: idempotency key reused for a different order"


@pytest.mark.parametrize("attempt", [1, HEALABLE_ATTEMPTS - 1])
async def test_bank_not_trusting_our_signature_yet_is_retried(hub, attempt):
    """The bank's registry may lag the hub's key rotation: UNAUTHENTICATED can heal."""
    req = order()
    hub.bank.abort = (grpc.StatusCode.UNAUTHENTICATED, "key hub-0000 is not registered for 'hub'")

    with pytest.raises(InstitutionError) as caught:
        await request(hub, req, attempt)
    assert not isinstance(caught.value, ApplicationError)
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("attempt", [HEALABLE_ATTEMPTS, HEALABLE_ATTEMPTS + 7])
async def test_bank_not_trusting_our_signature_for_too_long_is_final(hub, attempt):
    req = order()
    hub.bank.abort = (grpc.StatusCode.UNAUTHENTICATED, "key hub-0000 is not registered for 'hub'")

    err = await final_failure(hub, req, ERR_REQUEST_REJECTED, attempt)
    assert err.message == f"{BANK}: UNAUTHENTICATED: key hub-0000 is not registered for 'hub'"


# --- what the bank receives -------------------------------------------------------------------


async def test_order_is_signed_by_the_hub_over_the_bytes_sent(hub):
    req = order()
    hub.bank.answer = answer(req, HELD)

    await request(hub, req)
    await request(hub, req, attempt=2)

    assert len(hub.bank.received) == len(hub.bank.opened) == 2
    for envelope, opened in zip(hub.bank.received, hub.bank.opened, strict=True):
        assert isinstance(opened, bank_pb2.StopPaymentOrder), opened  # verified in the servicer
        assert envelope.signer == HUB and envelope.key_id == hub.keys[HUB].key_id
        assert envelope.payload_type == "stopline.v1.StopPaymentOrder"
        assert opened == bank_pb2.StopPaymentOrder(
            idempotency_key=KEY,
            case_id=CASE_ID,
            account=common_pb2.AccountRef(institution=BANK, account_number=MULE.number),
            account_holder_name="ZHANG San",
            amount=common_pb2.Money(minor_units=80_000_000, currency="CNY"),
            transfer_time=timestamp_pb(req.transfer_time),
            requested_by=POLICE,
            hold_duration=opened.hold_duration,
        )
        assert opened.hold_duration.ToTimedelta() == timedelta(hours=48)
        assert time_of(opened.transfer_time) == req.transfer_time

        # The signature covers exactly those bytes: one bit changed and it no longer verifies.
        changed = envelope_pb2.Envelope()
        changed.CopyFrom(envelope)
        flip_payload_byte(changed)
        with pytest.raises(BadSignature):
            open_envelope(changed, bank_pb2.StopPaymentOrder, hub.registry, expected_signer=HUB)
    # Retries send the same order under the same key (fresh signature time and nonce).
    assert hub.bank.received[0].payload == hub.bank.received[1].payload
    assert hub.bank.received[0].nonce != hub.bank.received[1].nonce


async def test_order_is_sent_even_when_the_answer_is_then_refused(hub):
    """Refusing the answer is the hub's decision after the call: the bank did get the order, so
    the workflow must not assume nothing happened there."""
    req = order()
    hub.bank.answer = answer(req, HELD, case_id="BX-OTHER")
    await refused(hub, req, "is for case")
    assert len(hub.bank.opened) == 1 and isinstance(hub.bank.opened[0], bank_pb2.StopPaymentOrder)


# --- return of funds: the receipt must fit the order ------------------------------------------

VICTIM = Account(BANK, "6229110000900007")  # the victim banks where the mule does
RETURN_KEY = f"case-{CASE_ID}/return/{BANK}/{MULE.number}/{VICTIM.institution}/{VICTIM.number}/1"
RETURNED_AT = datetime(2026, 6, 2, 3, 4, 5, tzinfo=UTC)
RETURNED = bank_pb2.RETURN_OUTCOME_RETURNED
ACCEPTED = bank_pb2.RETURN_OUTCOME_ACCEPTED
RETURN_REFUSED = bank_pb2.RETURN_OUTCOME_REFUSED


def return_input(**changes) -> ReturnInput:
    req = ReturnInput(
        idempotency_key=RETURN_KEY,
        case_id=CASE_ID,
        account=MULE,
        freeze_id="qilu-bank-F000001",
        to_account=VICTIM,
        amount=Amount(30_000_000, "CNY"),
        due_by=datetime(2026, 6, 5, 16, 0, tzinfo=UTC),
        decided_by=POLICE,
        officer="Sun Wei (No. 031477)",
        document_ref="Boxing PSB refund notice [2026] No. 12",
    )
    return dataclasses.replace(req, **changes)


def receipt(req: ReturnInput, outcome: int = RETURNED, **changes) -> bank_pb2.ReturnReceipt:
    """What an honest bank would answer to `req`; `changes` replace fields (a None value clears one)."""
    msg = bank_pb2.ReturnReceipt(
        idempotency_key=req.idempotency_key,
        case_id=req.case_id,
        account=account_pb(req.account),
        to_account=account_pb(req.to_account),
        outcome=outcome,
        detail=f"outcome {outcome}",
    )
    if outcome == RETURNED:
        msg.returned.CopyFrom(money_pb(req.amount))
        msg.return_id = "qilu-bank-R000001"
        msg.returned_at.CopyFrom(timestamp_pb(RETURNED_AT))
    else:
        msg.returned.CopyFrom(money(0, req.amount.currency))
    for name, value in changes.items():
        if value is None:
            msg.ClearField(name)
        elif isinstance(value, Message):
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


async def request_return(activities: InstitutionActivities, req: ReturnInput, attempt: int = 1) -> ReturnResult:
    """Run the real request_return_funds as Temporal's worker would on call number `attempt`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, attempt=attempt, activity_type=REQUEST_RETURN_FUNDS,
        activity_id=f"return/{req.account.institution}/{req.account.number}", workflow_id=f"case-{req.case_id}/hold",
    )  # fmt: skip
    return await env.run(activities.request_return_funds, req)


async def return_refused(hub: Hub, req: ReturnInput, why: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        await request_return(hub.activities, req)
    err = caught.value
    assert err.type == ERR_ANSWER_REJECTED and err.non_retryable is True, err
    assert err.message.startswith(f"answer from {BANK} refused: "), err.message
    assert why in err.message, err.message


async def test_a_returned_receipt_is_handed_over_as_verified(hub):
    req = return_input()
    hub.bank.answer = receipt(req)

    result = await request_return(hub.activities, req)

    assert result == ReturnResult(
        outcome=ReturnOutcome.RETURNED, returned=Amount(30_000_000, "CNY"), return_id="qilu-bank-R000001",
        returned_at=RETURNED_AT, detail=f"outcome {RETURNED}",
    )  # fmt: skip
    [opened] = hub.bank.opened  # what the bank received, signed by the hub over the bytes sent
    assert hub.bank.received[0].payload_type == "stopline.v1.ReturnOrder"
    assert opened == bank_pb2.ReturnOrder(
        idempotency_key=RETURN_KEY, case_id=CASE_ID, account=account_pb(MULE), freeze_id="qilu-bank-F000001",
        to_account=account_pb(VICTIM), amount=money(30_000_000), due_by=timestamp_pb(req.due_by),
        decided_by=POLICE, officer="Sun Wei (No. 031477)", document_ref="Boxing PSB refund notice [2026] No. 12",
    )  # fmt: skip


@pytest.mark.parametrize("unset", [False, True], ids=["zero", "unset"])
async def test_an_accepted_receipt_means_one_follows_and_returns_nothing_yet(hub, unset):
    req = return_input()
    hub.bank.answer = receipt(req, ACCEPTED, **({"returned": None} if unset else {}))
    result = await request_return(hub.activities, req)
    assert result == ReturnResult(outcome=ReturnOutcome.ACCEPTED, returned=Amount(0, "CNY"), detail=f"outcome {ACCEPTED}")


@pytest.mark.parametrize("unset", [False, True], ids=["zero", "unset"])
async def test_a_refused_receipt_returns_nothing_and_says_why(hub, unset):
    req = return_input()
    hub.bank.answer = receipt(req, RETURN_REFUSED, detail="freeze lapsed", **({"returned": None} if unset else {}))
    result = await request_return(hub.activities, req)
    assert result == ReturnResult(outcome=ReturnOutcome.REFUSED, returned=Amount(0, "CNY"), detail="freeze lapsed")


@pytest.mark.parametrize(
    ("outcome", "changes", "why"),
    [
        (RETURNED, {"idempotency_key": "case-BX-OTHER/return/1"}, "is for request"),
        (RETURNED, {"case_id": "BX-OTHER"}, "is for case"),
        (RETURNED, {"account": common_pb2.AccountRef(institution=BANK, account_number="6229110000375002")}, "about account"),
        (RETURNED, {"to_account": common_pb2.AccountRef(institution=BANK, account_number="6229110000375002")}, "receipt pays account"),
        (RETURNED, {"to_account": None}, "receipt pays account"),
        (ACCEPTED, {"to_account": account_pb(Account(OTHER, VICTIM.number))}, "receipt pays account"),
        (RETURNED, {"returned": money(29_999_999)}, "the order was for exactly"),
        (RETURNED, {"returned": money(30_000_001)}, "the order was for exactly"),
        (RETURNED, {"returned": money(30_000_000, "USD")}, "the order was for exactly"),
        (RETURNED, {"returned": None}, "the order was for exactly"),
        (RETURNED, {"return_id": ""}, "no return id or time"),
        (RETURNED, {"returned_at": None}, "no return id or time"),
        (ACCEPTED, {"returned": money(30_000_000)}, "says accepted but returns"),
        (ACCEPTED, {"returned": money(0, "USD")}, "says accepted but returns"),
        (RETURN_REFUSED, {"returned": money(1)}, "says refused but returns"),
        (RETURN_REFUSED, {"returned": money(0, "USD")}, "the order was in CNY"),
        (bank_pb2.RETURN_OUTCOME_UNSPECIFIED, {}, "no valid outcome"),
        (99, {}, "no valid outcome"),
    ],
)
async def test_a_receipt_that_does_not_fit_the_order_is_refused(hub, outcome, changes, why):
    req = return_input()
    hub.bank.answer = receipt(req, outcome, **changes)
    await return_refused(hub, req, why)


@pytest.mark.parametrize("how", ["other-institution", "hub-key", "impostor", "tampered"])
async def test_a_forged_receipt_is_refused(hub, how):
    req = return_input()
    hub.bank.answer = receipt(req)
    if how == "other-institution":  # huaxia-pay's valid signature: it does not keep the account
        hub.bank.key = hub.keys[OTHER]
        why = "signed by 'huaxia-pay'"
    elif how == "hub-key":
        hub.bank.key = hub.keys[HUB]
        why = "signed by 'hub'"
    elif how == "impostor":  # claims qilu-bank's key id, signs with another key
        hub.bank.key = SigningKey(BANK, hub.keys[BANK].key_id, Ed25519PrivateKey.generate())
        why = "does not verify"
    else:
        hub.bank.tamper = flip_payload_byte
        why = "does not verify"
    await return_refused(hub, req, why)


def test_return_result_of_checks_a_callbacks_receipt_without_the_order():
    """The gateway converts a callback's receipt knowing no order: it checks the receipt is final
    and whole; the hold's workflow, which knows the order, checks the amount."""
    req = return_input()
    assert return_result_of(receipt(req), None) == ReturnResult(
        ReturnOutcome.RETURNED, Amount(30_000_000, "CNY"), "qilu-bank-R000001", RETURNED_AT, f"outcome {RETURNED}"
    )
    assert return_result_of(receipt(req), req.amount).returned == req.amount
    assert return_result_of(receipt(req, RETURN_REFUSED, detail="lapsed"), None).outcome is ReturnOutcome.REFUSED
    for bad, why in (
        (receipt(req, ACCEPTED), "not a final outcome"),
        (receipt(req, returned=money(0)), "says returned but returns"),
        (receipt(req, returned_at=None), "no return id or time"),
        (receipt(req, RETURN_REFUSED, returned=money(5)), "says refused but returns"),
    ):
        with pytest.raises(ValueError, match=why):
            return_result_of(bad, None)
    with pytest.raises(ValueError, match="the order was for exactly"):
        return_result_of(receipt(req), Amount(20_000_000, "CNY"))


# --- return of funds against a real sandbox bank, over mutual TLS ------------------------------


@dataclass
class SandboxWorld:
    bank: SandboxInstitution
    activities: InstitutionActivities
    keys: dict[str, SigningKey]
    registry: Registry
    freeze_id: str = ""


@pytest_asyncio.fixture
async def sandbox(tmp_path) -> AsyncIterator[SandboxWorld]:
    keys = {inst: SigningKey.generate(inst) for inst in (HUB, BANK)}
    ca = LocalCA.create()
    tls = {inst: ca.issue(inst, hosts=("127.0.0.1",)) for inst in (HUB, BANK)}
    kinds = {HUB: InstitutionKind.HUB, BANK: InstitutionKind.BANK}

    def registry_with(bank_endpoint: str | None) -> Registry:
        return Registry(
            [
                Institution(
                    id=inst, name=inst, kind=kind, endpoint=bank_endpoint if inst == BANK else None,
                    keys=(registered_key(keys[inst].public_key, keys[inst].key_id, EPOCH),),
                    tls_cert_sha256=tls[inst].cert_sha256,
                )  # fmt: skip
                for inst, kind in kinds.items()
            ]
        )

    holder = [registry_with(None)]
    registry = lambda: holder[0]  # noqa: E731  (read on every call, as RegistryFile is)
    bank = SandboxInstitution(BANK, keys[BANK], registry, tmp_path / f"{BANK}.db", tls=tls[BANK])
    bank.ledger.seed([SandboxAccount(MULE.number, "Liu Jianguo", "CNY", 100_000_000),
                      SandboxAccount(VICTIM.number, "Chen Hao", "CNY", 0)])  # fmt: skip
    await bank.start()
    holder[0] = registry_with(bank.endpoint)  # the OS picked the port
    channels = ChannelPool(tls[HUB])
    # The freeze the money comes out of: 800,000.00 CNY of the mule's 1,000,000.00 CNY.
    at = datetime.now(UTC)
    hold_id = bank.ledger.apply_stop(stop_order(MULE.number, 80_000_000, case_id=CASE_ID), at).answer.hold_id
    freeze = bank.ledger.apply_freeze(freeze_order(hold_id, 80_000_000, case_id=CASE_ID, account=MULE.number), at)
    world = SandboxWorld(
        bank, InstitutionActivities(keys[HUB], registry, BankClient(channels, registry, timeout_seconds=5.0)),
        keys, holder[0], freeze.answer.freeze_id,
    )  # fmt: skip
    try:
        yield world
    finally:
        await channels.close()
        await bank.stop()


def balances(bank: SandboxInstitution) -> dict[str, tuple[int, int]]:
    return {a.number: (a.balance_minor, a.held_minor) for a in bank.ledger.accounts()}


async def test_a_return_pays_the_victim_once_across_a_lost_answer_and_retries(sandbox):
    req = return_input(freeze_id=sandbox.freeze_id)
    sandbox.bank.faults.fail_after_apply = 1  # the bank pays, the answer is lost

    with pytest.raises(InstitutionError) as caught:
        await request_return(sandbox.activities, req, attempt=1)
    assert not isinstance(caught.value, ApplicationError)  # Temporal retries it
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and caught.value.retryable
    assert balances(sandbox.bank)[VICTIM.number] == (30_000_000, 0)

    second = await request_return(sandbox.activities, req, attempt=2)
    third = await request_return(sandbox.activities, req, attempt=3)

    assert second.outcome is ReturnOutcome.RETURNED and second.returned == Amount(30_000_000, "CNY")
    assert second == third  # the stored receipt, every time
    [paid] = sandbox.bank.ledger.returns()
    assert paid.return_id == second.return_id and paid.amount_minor == 30_000_000
    assert balances(sandbox.bank)[MULE.number] == (70_000_000, 50_000_000)
    assert balances(sandbox.bank)[VICTIM.number] == (30_000_000, 0)


async def test_two_returns_from_one_freeze_add_up_and_a_third_is_refused(sandbox):
    other_victim = Account(OTHER, "HXP-0099-0001")
    first = await request_return(sandbox.activities, return_input(freeze_id=sandbox.freeze_id, amount=Amount(50_000_000, "CNY")))
    second = await request_return(
        sandbox.activities,
        return_input(freeze_id=sandbox.freeze_id, to_account=other_victim, idempotency_key="k/2", amount=Amount(30_000_000, "CNY")),
    )  # fmt: skip
    third = await request_return(sandbox.activities, return_input(freeze_id=sandbox.freeze_id, idempotency_key="k/3", amount=Amount(1, "CNY")))

    assert first.outcome is second.outcome is ReturnOutcome.RETURNED
    assert first.returned.minor_units + second.returned.minor_units == 80_000_000
    assert third.outcome is ReturnOutcome.REFUSED and third.returned == Amount(0, "CNY")
    assert "was returned in full" in third.detail
    assert balances(sandbox.bank)[MULE.number] == (20_000_000, 0)
    assert balances(sandbox.bank)[VICTIM.number] == (50_000_000, 0)
    assert [r.paid_by for r in sandbox.bank.ledger.returns()] == ["credit", "transfer"]


async def test_a_return_above_what_is_frozen_is_refused_and_nothing_moves(sandbox):
    before = balances(sandbox.bank)
    result = await request_return(
        sandbox.activities, return_input(freeze_id=sandbox.freeze_id, amount=Amount(80_000_001, "CNY"))
    )
    assert result.outcome is ReturnOutcome.REFUSED and "still keeps" in result.detail
    assert balances(sandbox.bank) == before and sandbox.bank.ledger.returns() == []


async def test_an_invalid_return_is_a_final_failure_naming_the_field(sandbox):
    before = balances(sandbox.bank)
    req = return_input(freeze_id=sandbox.freeze_id, document_ref="")
    with pytest.raises(ApplicationError) as caught:
        await request_return(sandbox.activities, req)
    assert caught.value.type == ERR_REQUEST_REJECTED and caught.value.non_retryable
    assert caught.value.message == f"{BANK}: INVALID_ARGUMENT: document_ref: must not be empty: a return rests on a decision"
    assert balances(sandbox.bank) == before


async def test_a_bank_that_forges_its_receipts_is_refused_by_the_activity(sandbox):
    sandbox.bank.faults.forge_answers = True
    with pytest.raises(ApplicationError) as caught:
        await request_return(sandbox.activities, return_input(freeze_id=sandbox.freeze_id))
    assert caught.value.type == ERR_ANSWER_REJECTED and "does not verify" in caught.value.message


async def test_a_back_office_bank_answers_accepted_and_has_paid(sandbox):
    sandbox.bank.faults.return_receipt_after_seconds = 3600  # the receipt comes later (not in this test)
    result = await request_return(sandbox.activities, return_input(freeze_id=sandbox.freeze_id))
    assert result == ReturnResult(
        outcome=ReturnOutcome.ACCEPTED, returned=Amount(0, "CNY"), detail="accepted: the receipt follows by callback"
    )
    assert balances(sandbox.bank)[VICTIM.number] == (30_000_000, 0)


# --- a foreign destination in an account report --------------------------------------------------


def query_input() -> AccountQueryInput:
    return AccountQueryInput(idempotency_key=f"{KEY}-q", case_id=CASE_ID, requested_by=POLICE, account=MULE,
                             transfers_since=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # fmt: skip


def report_abroad(req: AccountQueryInput, bic: str = "FICTKHPPXXX") -> bank_pb2.AccountReport:
    report = bank_pb2.AccountReport(idempotency_key=req.idempotency_key, account=account_pb(req.account), found=True)
    out = report.transfers.add(amount=common_pb2.Money(minor_units=5_000_000, currency="CNY"),
                               channel=bank_pb2.TRANSFER_CHANNEL_ABROAD)  # fmt: skip
    out.transferred_at.FromDatetime(datetime(2026, 3, 2, 9, 50, tzinfo=UTC))
    out.abroad.CopyFrom(common_pb2.ForeignDestination(bic=bic, account="KH-0012-7781-44", payment_reference="uetr-1"))
    return report


async def test_a_transfer_abroad_keeps_its_foreign_bank_account_and_reference(hub):
    req = query_input()
    hub.bank.answer = report_abroad(req)
    result = await ActivityEnvironment().run(hub.activities.request_account_query, req)
    (transfer,) = result.transfers
    assert transfer.channel is Channel.ABROAD
    assert transfer.abroad == ForeignDestination("FICTKHPPXXX", "KH-0012-7781-44", "uetr-1")


async def test_a_foreign_destination_that_a_recall_could_not_quote_is_refused(hub):
    req = query_input()
    hub.bank.answer = report_abroad(req, bic="not a bic")
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(hub.activities.request_account_query, req)
    assert caught.value.type == ERR_ANSWER_REJECTED and "transfers[0].abroad.bic" in caught.value.message
