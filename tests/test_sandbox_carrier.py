"""The sandbox telecom carriers, tested as a carrier's integrator would: two real carriers on
loopback (mutual TLS under a local CA, real Ed25519 keys, a SQLite file each), one of which holds
the range of a number that was ported to the other. Every check looks at what the hub would see
(the signed answer, the gRPC status) and at the carrier's books (what is blocked)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from adapters.channels import open_channel
from sandbox import Sandbox, SandboxInstitution, ScenarioError, load_scenario
from sandbox.scenario import parse_scenario, scenario_path
from stopline.v1 import envelope_pb2, telecom_pb2, telecom_pb2_grpc
from trust.envelope import open_envelope, seal
from trust.errors import BadSignature
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA, TlsIdentity

HUB = "hub"
CARRIER = "zibo-mobile"  # holds +86170...; the suspect number was ported away from it
OTHER = "boxing-unicom"  # serves the ported number now
BANK = "qilu-bank"
POLICE = "police-boxing"
CALL_TIMEOUT = 5.0
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)

SERVED = "+8613455501001"  # a zibo-mobile subscriber
SERVED_2 = "+8617012340000"
PORTED = "+8617012345678"  # in zibo-mobile's range, served by boxing-unicom
UNKNOWN = "+8613812345678"  # nobody's
CASE = "BX-2026-0001"
REASON = "suspect number in fraud case BX-2026-0001"

BLOCKED = telecom_pb2.NUMBER_OUTCOME_BLOCKED
ALREADY_BLOCKED = telecom_pb2.NUMBER_OUTCOME_ALREADY_BLOCKED
NOT_SERVED = telecom_pb2.NUMBER_OUTCOME_NOT_SERVED
UNBLOCKED = telecom_pb2.NUMBER_OUTCOME_UNBLOCKED
NOT_BLOCKED = telecom_pb2.NUMBER_OUTCOME_NOT_BLOCKED


# --- the centre: keys, certificates, registry; the two carriers ---------------------------------

KINDS = {
    HUB: InstitutionKind.HUB,
    CARRIER: InstitutionKind.CARRIER,
    OTHER: InstitutionKind.CARRIER,
    BANK: InstitutionKind.BANK,
    POLICE: InstitutionKind.POLICE_UNIT,
}
PREFIXES = {CARRIER: ("+86170", "+86134"), OTHER: ("+86186",)}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {i: SigningKey.generate(i) for i in KINDS}


@pytest.fixture(scope="module")
def tls() -> dict[str, TlsIdentity]:
    ca = LocalCA.create()
    return {i: ca.issue(i, ("127.0.0.1",)) for i in KINDS}


@pytest.fixture(scope="module")
def registry(keys, tls) -> Registry:
    return Registry(
        [
            Institution(i, i, kind, keys=(registered_key(keys[i].public_key, keys[i].key_id, VALID_FROM),),
                        tls_cert_sha256=tls[i].cert_sha256, number_prefixes=PREFIXES.get(i, ()))  # fmt: skip
            for i, kind in KINDS.items()
        ]
    )


@pytest.fixture
async def carriers(tmp_path, keys, tls, registry):
    running = {
        CARRIER: SandboxInstitution(CARRIER, keys[CARRIER], registry, tmp_path / f"{CARRIER}.db", tls=tls[CARRIER],
                                    kind="carrier"),
        OTHER: SandboxInstitution(OTHER, keys[OTHER], registry, tmp_path / f"{OTHER}.db", tls=tls[OTHER]),
    }  # fmt: skip
    running[CARRIER].numbers.seed([SERVED, SERVED_2], {PORTED: OTHER})
    running[OTHER].numbers.seed([PORTED])
    for inst in running.values():
        await inst.start()
    yield running
    for inst in running.values():
        await inst.stop()


@pytest.fixture
def carrier(carriers) -> SandboxInstitution:
    return carriers[CARRIER]


class Caller:
    """Speaks to the carriers as `party` (its TLS certificate), signing with `key`."""

    def __init__(self, carriers, tls, registry, party: str, key: SigningKey):
        self.carriers, self.tls, self.registry, self.party, self.key = carriers, tls, registry, party, key
        self._channels: list[grpc.aio.Channel] = []

    def stub(self, carrier: str = CARRIER) -> telecom_pb2_grpc.TelecomServiceStub:
        channel = open_channel(self.carriers[carrier].endpoint, carrier, self.tls[self.party])
        self._channels.append(channel)
        return telecom_pb2_grpc.TelecomServiceStub(channel)

    async def send(self, method: str, message, carrier: str = CARRIER, envelope: envelope_pb2.Envelope | None = None,
                   deadline: float = CALL_TIMEOUT):  # fmt: skip
        request_type = getattr(telecom_pb2, f"{method}Request")
        envelope = envelope if envelope is not None else seal(message, self.key)
        return await getattr(self.stub(carrier), method)(request_type(envelope=envelope), timeout=deadline)

    async def answer(self, method: str, message, carrier: str = CARRIER):
        """Send signed; open the answer as the hub would (signer must be the carrier asked)."""
        response = await self.send(method, message, carrier)
        answer_type = telecom_pb2.NumberReport if method == "QueryNumber" else telecom_pb2.NumberBlockAnswer
        return open_envelope(response.envelope, answer_type, self.registry, expected_signer=carrier)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


@pytest.fixture
async def hub(carriers, tls, registry, keys):
    caller = Caller(carriers, tls, registry, HUB, keys[HUB])
    yield caller
    await caller.close()


def block(*numbers: str, key: str = "case-BX-2026-0001/block/1", case_id: str = CASE, reason: str = REASON,
          requested_by: str = POLICE) -> telecom_pb2.NumberBlockOrder:  # fmt: skip
    return telecom_pb2.NumberBlockOrder(idempotency_key=key, case_id=case_id, requested_by=requested_by,
                                        phone_numbers=list(numbers), reason=reason)  # fmt: skip


def unblock(*numbers: str, key: str = "case-BX-2026-0001/unblock/1", case_id: str = CASE,
            reason: str = "the number belongs to an innocent courier", decided_by: str = POLICE,
            officer: str = "Officer Sun Li") -> telecom_pb2.NumberUnblockOrder:  # fmt: skip
    return telecom_pb2.NumberUnblockOrder(idempotency_key=key, case_id=case_id, phone_numbers=list(numbers),
                                          reason=reason, decided_by=decided_by, officer=officer)  # fmt: skip


def query(number: str, key: str = "case-BX-2026-0001/locate/1") -> telecom_pb2.NumberQuery:
    return telecom_pb2.NumberQuery(idempotency_key=key, case_id=CASE, phone_number=number)


async def rpc_error(awaitable, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


def outcomes(answer: telecom_pb2.NumberBlockAnswer) -> list[tuple[str, int]]:
    return [(r.phone_number, r.outcome) for r in answer.results]


# --- blocking at the carrier that serves the number ---------------------------------------------


async def test_a_served_number_is_blocked_with_the_reason_recorded(hub, carrier):
    answer = await hub.answer("BlockNumbers", block(SERVED))

    assert (answer.idempotency_key, answer.case_id) == ("case-BX-2026-0001/block/1", CASE)
    [result] = answer.results
    assert (result.phone_number, result.outcome) == (SERVED, BLOCKED)
    assert result.block_id.startswith(f"{CARRIER}-B")
    assert abs(answer.answered_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=30)
    [stored] = carrier.numbers.blocks()
    assert (stored.block_id, stored.number, stored.case_id, stored.reason, stored.requested_by) == (
        result.block_id, SERVED, CASE, REASON, POLICE,
    )  # fmt: skip
    assert stored.in_force
    report = await hub.answer("QueryNumber", query(SERVED))
    assert (report.served, report.served_by, report.blocked) == (True, "", True)


async def test_a_ported_number_is_blocked_where_it_is_served_not_at_the_range_holder(hub, carriers):
    report = await hub.answer("QueryNumber", query(PORTED), carrier=CARRIER)
    assert (report.idempotency_key, report.phone_number) == ("case-BX-2026-0001/locate/1", PORTED)
    assert (report.served, report.served_by, report.blocked) == (False, OTHER, False)

    at_range_holder = await hub.answer("BlockNumbers", block(PORTED, SERVED), carrier=CARRIER)
    assert outcomes(at_range_holder) == [(PORTED, NOT_SERVED), (SERVED, BLOCKED)]
    assert at_range_holder.results[0].served_by == OTHER
    assert [b.number for b in carriers[CARRIER].numbers.blocks()] == [SERVED]  # nothing for the ported one

    at_server = await hub.answer("BlockNumbers", block(PORTED, key="case-BX-2026-0001/block/2"), carrier=OTHER)
    assert outcomes(at_server) == [(PORTED, BLOCKED)]
    assert at_server.results[0].block_id.startswith(f"{OTHER}-B")
    assert [b.number for b in carriers[OTHER].numbers.blocks()] == [PORTED]
    assert (await hub.answer("QueryNumber", query(PORTED), carrier=OTHER)).blocked


async def test_an_unknown_number_is_not_served_and_nothing_is_blocked(hub, carrier):
    answer = await hub.answer("BlockNumbers", block(UNKNOWN))
    assert outcomes(answer) == [(UNKNOWN, NOT_SERVED)]
    assert answer.results[0].served_by == ""
    assert carrier.numbers.blocks() == []
    report = await hub.answer("QueryNumber", query(UNKNOWN))
    assert (report.served, report.served_by, report.blocked) == (False, "", False)


# --- at most once --------------------------------------------------------------------------------


async def test_a_repeated_order_gets_the_same_answer_and_blocks_once(hub, carrier):
    first = await hub.send("BlockNumbers", block(SERVED, SERVED_2))
    again = await hub.send("BlockNumbers", block(SERVED, SERVED_2))

    assert again.envelope.payload == first.envelope.payload  # the stored answer, byte for byte
    assert again.envelope.nonce != first.envelope.nonce  # in a fresh envelope: not a replay
    assert len(carrier.numbers.blocks()) == 2


async def test_another_order_for_a_number_already_blocked_for_the_case_blocks_nothing_new(hub, carrier):
    [first] = (await hub.answer("BlockNumbers", block(SERVED))).results
    answer = await hub.answer("BlockNumbers", block(SERVED, key="case-BX-2026-0001/block/again"))
    [result] = answer.results
    assert (result.outcome, result.block_id) == (ALREADY_BLOCKED, first.block_id)
    assert len(carrier.numbers.blocks()) == 1
    # Another case is its own block (each case lifts only its own).
    other_case = await hub.answer("BlockNumbers", block(SERVED, key="case-QD-1/block/1", case_id="QD-1"))
    assert outcomes(other_case) == [(SERVED, BLOCKED)]
    assert other_case.results[0].block_id != first.block_id
    assert len(carrier.numbers.blocks(SERVED)) == 2


async def test_concurrent_duplicates_block_once(hub, carrier):
    answers = await asyncio.gather(*(hub.send("BlockNumbers", block(SERVED)) for _ in range(8)))
    assert len({a.envelope.payload for a in answers}) == 1
    assert len(carrier.numbers.blocks()) == 1


async def test_a_reused_key_with_other_content_is_already_exists_and_changes_nothing(hub, carrier):
    await hub.answer("BlockNumbers", block(SERVED))
    details = await rpc_error(hub.send("BlockNumbers", block(SERVED_2)), grpc.StatusCode.ALREADY_EXISTS)
    assert "case-BX-2026-0001/block/1" in details
    await rpc_error(hub.send("BlockNumbers", block(SERVED, reason="another reason")), grpc.StatusCode.ALREADY_EXISTS)
    assert [b.number for b in carrier.numbers.blocks()] == [SERVED]


async def test_keys_are_per_order_type(hub, carrier):
    """A block and an unblock may carry the same key: each order type keeps its own."""
    same = "case-BX-2026-0001/number/1"
    blocked = await hub.answer("BlockNumbers", block(SERVED, key=same))
    lifted = await hub.answer("UnblockNumbers", unblock(SERVED, key=same))
    assert outcomes(blocked) == [(SERVED, BLOCKED)] and outcomes(lifted) == [(SERVED, UNBLOCKED)]


async def test_an_answer_lost_after_the_block_is_answered_on_retry_without_a_second_block(hub, carrier):
    carrier.faults.fail_after_apply = 1
    details = await rpc_error(hub.send("BlockNumbers", block(SERVED)), grpc.StatusCode.UNAVAILABLE)
    assert "answer lost after apply" in details
    [stored] = carrier.numbers.blocks()  # the carrier did the work

    answer = await hub.answer("BlockNumbers", block(SERVED))
    assert outcomes(answer) == [(SERVED, BLOCKED)]  # the first answer, not "already blocked"
    assert answer.results[0].block_id == stored.block_id
    assert len(carrier.numbers.blocks()) == 1


async def test_blocks_survive_a_restart(hub, carrier):
    [result] = (await hub.answer("BlockNumbers", block(SERVED))).results
    port = carrier.port
    await carrier.restart()
    assert carrier.port == port
    carrier.numbers.seed([SERVED, SERVED_2], {PORTED: OTHER})  # a re-seed changes nothing
    assert (await hub.answer("QueryNumber", query(SERVED))).blocked
    again = await hub.answer("BlockNumbers", block(SERVED, key="case-BX-2026-0001/block/after-restart"))
    assert [(r.outcome, r.block_id) for r in again.results] == [(ALREADY_BLOCKED, result.block_id)]


# --- unblocking ----------------------------------------------------------------------------------


async def test_unblock_lifts_the_block_and_records_why_and_who(hub, carrier):
    [blocked] = (await hub.answer("BlockNumbers", block(SERVED))).results
    answer = await hub.answer("UnblockNumbers", unblock(SERVED))

    assert (answer.idempotency_key, answer.case_id) == ("case-BX-2026-0001/unblock/1", CASE)
    [result] = answer.results
    assert (result.phone_number, result.outcome, result.block_id) == (SERVED, UNBLOCKED, blocked.block_id)
    [stored] = carrier.numbers.blocks()
    assert not stored.in_force
    assert (stored.unblock_reason, stored.unblocked_by, stored.unblock_officer) == (
        "the number belongs to an innocent courier", POLICE, "Officer Sun Li",
    )  # fmt: skip
    assert not (await hub.answer("QueryNumber", query(SERVED))).blocked

    # Nothing left to lift: NOT_BLOCKED; a number served elsewhere: NOT_SERVED.
    again = await hub.answer("UnblockNumbers", unblock(SERVED, PORTED, UNKNOWN, key="case-BX-2026-0001/unblock/2"))
    assert outcomes(again) == [(SERVED, NOT_BLOCKED), (PORTED, NOT_SERVED), (UNKNOWN, NOT_SERVED)]
    assert again.results[1].served_by == OTHER
    # A repeat of the first unblock is its stored answer, and the number can be blocked again.
    repeat = await hub.send("UnblockNumbers", unblock(SERVED))
    assert telecom_pb2.NumberBlockAnswer.FromString(repeat.envelope.payload) == answer
    reblocked = await hub.answer("BlockNumbers", block(SERVED, key="case-BX-2026-0001/block/2"))
    assert outcomes(reblocked) == [(SERVED, BLOCKED)] and reblocked.results[0].block_id != blocked.block_id


async def test_unblock_lifts_only_the_cases_own_block(hub, carrier):
    await hub.answer("BlockNumbers", block(SERVED))
    await hub.answer("BlockNumbers", block(SERVED, key="case-QD-1/block/1", case_id="QD-1"))
    answer = await hub.answer("UnblockNumbers", unblock(SERVED))
    assert outcomes(answer) == [(SERVED, UNBLOCKED)]
    assert [b.case_id for b in carrier.numbers.blocks(SERVED) if b.in_force] == ["QD-1"]
    assert (await hub.answer("QueryNumber", query(SERVED))).blocked  # still blocked for the other case


# --- refused before anything changes ------------------------------------------------------------


async def test_a_forged_order_is_unauthenticated_and_blocks_nothing(hub, carrier, keys):
    envelope = seal(block(SERVED), keys[HUB])
    envelope.payload = block(SERVED, SERVED_2).SerializeToString()  # more numbers under the old signature
    details = await rpc_error(hub.send("BlockNumbers", None, envelope=envelope), grpc.StatusCode.UNAUTHENTICATED)
    assert "does not verify" in details
    impostor = SigningKey.generate(HUB)  # claims to be the hub, with a key nobody registered
    await rpc_error(hub.send("BlockNumbers", None, envelope=seal(block(SERVED), impostor)), grpc.StatusCode.UNAUTHENTICATED)
    assert carrier.numbers.blocks() == []


async def test_an_unsigned_order_is_unauthenticated(hub, carrier, keys):
    envelope = seal(block(SERVED), keys[HUB])
    envelope.signature = b""
    await rpc_error(hub.send("BlockNumbers", None, envelope=envelope), grpc.StatusCode.UNAUTHENTICATED)
    await rpc_error(hub.stub().BlockNumbers(telecom_pb2.BlockNumbersRequest(), timeout=CALL_TIMEOUT),
                    grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert carrier.numbers.blocks() == []


@pytest.mark.parametrize("signer", [POLICE, BANK])
async def test_an_order_validly_signed_by_anyone_but_the_hub_is_permission_denied(carriers, carrier, tls, registry,
                                                                                  keys, signer):  # fmt: skip
    caller = Caller(carriers, tls, registry, signer, keys[signer])  # over its own certificate
    try:
        details = await rpc_error(caller.send("BlockNumbers", block(SERVED)), grpc.StatusCode.PERMISSION_DENIED)
        assert signer in details
        await rpc_error(caller.send("UnblockNumbers", unblock(SERVED)), grpc.StatusCode.PERMISSION_DENIED)
        await rpc_error(caller.send("QueryNumber", query(SERVED)), grpc.StatusCode.PERMISSION_DENIED)
    finally:
        await caller.close()
    assert carrier.numbers.blocks() == []


async def test_the_hubs_envelope_over_another_partys_certificate_is_unauthenticated(carriers, carrier, tls, registry,
                                                                                     keys):  # fmt: skip
    caller = Caller(carriers, tls, registry, BANK, keys[HUB])  # the bank's TLS identity, the hub's signature
    try:
        details = await rpc_error(caller.send("BlockNumbers", block(SERVED)), grpc.StatusCode.UNAUTHENTICATED)
        assert "TLS client certificate" in details
    finally:
        await caller.close()
    assert carrier.numbers.blocks() == []


async def test_a_replayed_order_is_unauthenticated(hub, carrier, keys):
    envelope = seal(block(SERVED), keys[HUB])
    await hub.send("BlockNumbers", None, envelope=envelope)
    details = await rpc_error(hub.send("BlockNumbers", None, envelope=envelope), grpc.StatusCode.UNAUTHENTICATED)
    assert "nonce" in details or "replay" in details.lower()
    assert len(carrier.numbers.blocks()) == 1


async def test_a_payload_of_another_type_is_invalid_argument(hub, carrier):
    await rpc_error(hub.send("BlockNumbers", unblock(SERVED)), grpc.StatusCode.INVALID_ARGUMENT)
    assert carrier.numbers.blocks() == []


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (block(), "phone_numbers: must name at least one number"),
        (block(*[f"+86134555{n:05d}" for n in range(101)]), "phone_numbers: 101 numbers, at most 100"),
        (block("8613455501001"), "phone_numbers[0]: '8613455501001' is not an E.164 number"),
        (block("+86 134 5550 1001"), "phone_numbers[0]: '+86 134 5550 1001' is not in E.164 form"),
        (block(SERVED, "+8612345"), "phone_numbers[1]: '+8612345' is not a valid phone number"),
        (block(SERVED, SERVED_2, SERVED), "phone_numbers[2]: +8613455501001 repeats phone_numbers[0]"),
        (block(SERVED, reason="  "), "reason"),
        (block(SERVED, requested_by=""), "requested_by"),
        (block(SERVED, key=""), "idempotency_key"),
        (block(SERVED, case_id=""), "case_id"),
        (unblock(SERVED, reason=""), "reason"),
        (unblock(SERVED, decided_by=""), "decided_by"),
        (unblock(), "phone_numbers: must name at least one number"),
        (query("+8612345"), "phone_number: '+8612345' is not a valid phone number"),
        (query(SERVED, key=""), "idempotency_key"),
    ],
)
async def test_invalid_orders_are_invalid_argument_naming_the_field(hub, carrier, order, field):
    method = {telecom_pb2.NumberBlockOrder: "BlockNumbers", telecom_pb2.NumberUnblockOrder: "UnblockNumbers",
              telecom_pb2.NumberQuery: "QueryNumber"}[type(order)]  # fmt: skip
    details = await rpc_error(hub.send(method, order), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(field), details
    assert carrier.numbers.blocks() == []


async def test_a_hundred_numbers_are_answered_one_result_each_in_order(hub, carrier):
    numbers = [f"+86134555{n:05d}" for n in range(99)] + [SERVED]
    answer = await hub.answer("BlockNumbers", block(*numbers))
    assert [r.phone_number for r in answer.results] == numbers
    assert outcomes(answer)[-1] == (SERVED, BLOCKED)
    assert {o for _, o in outcomes(answer)[:-1]} == {NOT_SERVED}


# --- faults ------------------------------------------------------------------------------------------


async def test_forged_answers_fail_verification(hub, carrier, registry):
    carrier.faults.forge_answers = True
    response = await hub.send("BlockNumbers", block(SERVED))
    assert response.envelope.signer == CARRIER
    with pytest.raises(BadSignature):
        open_envelope(response.envelope, telecom_pb2.NumberBlockAnswer, registry, expected_signer=CARRIER)


async def test_refuse_all_with_aborts_and_blocks_nothing(hub, carrier):
    carrier.faults.refuse_all_with = grpc.StatusCode.UNAVAILABLE
    await rpc_error(hub.send("BlockNumbers", block(SERVED)), grpc.StatusCode.UNAVAILABLE)
    await rpc_error(hub.send("QueryNumber", query(SERVED)), grpc.StatusCode.UNAVAILABLE)
    assert carrier.numbers.blocks() == []
    assert carrier.requests_received == 2


async def test_a_slow_carrier_lets_the_callers_deadline_fire(hub, carrier):
    carrier.faults.delay_seconds = 2.0
    await rpc_error(hub.send("BlockNumbers", block(SERVED), deadline=0.3), grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_health_is_serving_and_reflection_lists_the_telecom_service(carrier, tls):
    async with open_channel(carrier.endpoint, CARRIER, tls[HUB]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "stopline.v1.TelecomService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=CALL_TIMEOUT)]
        names = {s.name for s in reply.list_services_response.service}
        assert "stopline.v1.TelecomService" in names and "stopline.v1.BankService" not in names


# --- the shipped scenarios --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["boxing", "qingdao", "shengli", "layered"])
def test_every_shipped_scenario_serves_its_suspect_numbers_with_one_ported(name):
    scenario = load_scenario(name)
    carriers = [i for i in scenario.institutions if i.kind is InstitutionKind.CARRIER]
    kinds = [i.kind for i in scenario.institutions]
    assert len(carriers) == 2
    assert kinds.count(InstitutionKind.TELECOM_REGULATOR) == kinds.count(InstitutionKind.BANK_REGULATOR) == 1
    registry = Registry([Institution(i.id, i.name, i.kind, number_prefixes=i.number_prefixes) for i in scenario.institutions])
    ported = 0
    for number in scenario.case["suspect_phone_numbers"]:
        [server] = [c for c in carriers if number in c.subscribers]
        holder = scenario.institution(registry.carrier_for_number(number))
        if holder.id != server.id:
            assert holder.ported_out[number] == server.id
            ported += 1
    assert ported == 1
    # The registry's regulators are found by kind.
    assert registry.regulator_of(carriers[0].id) == registry.telecom_regulator()
    bank = next(i for i in scenario.institutions if i.keeps_accounts)
    assert registry.regulator_of(bank.id) == registry.bank_regulator()


async def test_the_boxing_sandbox_runs_its_carriers_and_regulators(tmp_path):
    scenario = load_scenario("boxing")
    keys = {i.id: SigningKey.generate(i.id) for i in scenario.institutions} | {HUB: SigningKey.generate(HUB)}
    kinds = {i.id: i.kind for i in scenario.institutions} | {HUB: InstitutionKind.HUB}
    prefixes = {i.id: i.number_prefixes for i in scenario.institutions}
    registry = Registry([Institution(i, i, kinds[i], keys=(registered_key(k.public_key, k.key_id, VALID_FROM),),
                                     number_prefixes=prefixes.get(i, ())) for i, k in keys.items()])  # fmt: skip
    sandbox = Sandbox(scenario, tmp_path, lambda: registry, keys, use_scenario_ports=False)
    await sandbox.start()
    try:
        services = {i: inst.service_name for i, inst in sandbox.institutions.items()}
        assert services["qilu-bank"] == "stopline.v1.BankService"
        assert services["zibo-mobile"] == services["boxing-unicom"] == "stopline.v1.TelecomService"
        assert services["zibo-telecom-regulator"] == services["zibo-bank-regulator"] == "stopline.v1.RegulatorService"
        assert sandbox.institutions["zibo-mobile"].numbers.path == tmp_path / "sandbox" / "zibo-mobile.db"
        [number] = scenario.case["suspect_phone_numbers"]
        holder = registry.carrier_for_number(number)
        async with grpc.aio.insecure_channel(sandbox.institutions[holder].endpoint) as channel:
            response = await telecom_pb2_grpc.TelecomServiceStub(channel).QueryNumber(
                telecom_pb2.QueryNumberRequest(envelope=seal(query(number), keys[HUB])), timeout=CALL_TIMEOUT
            )
        report = open_envelope(response.envelope, telecom_pb2.NumberReport, registry, expected_signer=holder)
        assert (holder, report.served, report.served_by) == ("zibo-mobile", False, "boxing-unicom")
    finally:
        await sandbox.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["institutions"][3].update(number_prefixes=["86170"]),
         "institutions[3] (zibo-mobile).number_prefixes[0]: '86170' is not"),
        (lambda d: d["institutions"][3].update(subscribers=["+8612345"]),
         "institutions[3] (zibo-mobile).subscribers[0]: '+8612345' is not a valid phone number"),
        (lambda d: d["institutions"][3].update(ported_out={"+8617012345678": "nowhere-mobile"}),
         "'nowhere-mobile' is not another carrier of the scenario"),
        (lambda d: d["institutions"][3].update(ported_out={"+8618612345678": "boxing-unicom"}),
         "is in none of this carrier's number_prefixes"),
        (lambda d: d["institutions"][4].update(subscribers=["+8613455501001"]),
         "+8613455501001 is also served by zibo-mobile"),
        (lambda d: d["institutions"][4].update(subscribers=["+8618655501003"]),
         "ported to boxing-unicom, which does not list it among its subscribers"),
        (lambda d: d["institutions"][4].update(number_prefixes=["+86170"]),
         "'+86170' is also held by zibo-mobile"),
        (lambda d: d["institutions"][5].update(accounts=[]),
         "institutions[5] (zibo-telecom-regulator).accounts: a telecom_regulator has no accounts"),
        (lambda d: d["institutions"][0].update(subscribers=[]),
         "institutions[0] (qilu-bank).subscribers: a bank has no subscribers"),
        (lambda d: d["case"]["transfers"][0]["to"].update(institution="zibo-mobile"),
         "case.transfers[0].to.institution: 'zibo-mobile' is not one of the scenario's banks"),
    ],
)
def test_a_bad_carrier_in_a_scenario_is_refused_naming_the_field(change, message):
    data = json.loads(scenario_path("boxing").read_text("utf-8"))
    change(data)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    assert message in str(caught.value)
