"""The sandbox's cross-border recall channels, tested as the hub meets them: real CrossBorderService
servers on loopback (OS-picked ports, mutual TLS under a local CA, real Ed25519 keys, a SQLite file
each), and a small recording HubService on loopback, registered as "hub", that takes the channels'
signed RecallUpdate callbacks the way the hub does (the TLS client must be the signer, the envelope
must verify, updates apply in sequence: a repeat is ALREADY_EXISTS, a gap FAILED_PRECONDITION).

Also: the scenario format of channels and their scripts (errors name the field), the shipped
jining.json, and the amount a transfer abroad was sent in, kept by the ledger and reported on the
AccountReport."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from adapters.channels import open_channel
from sandbox import (
    Abroad,
    Account,
    Ledger,
    Sandbox,
    SandboxInstitution,
    ScenarioError,
    Transfer,
    load_scenario,
)
from sandbox.crossborder import CROSS_BORDER_SERVICE, DELIVERED, PENDING, REFUSED, WITHHELD
from sandbox.scenario import ForeignPlace, RecallScript, ScriptedUpdate, parse_scenario, scenario_path
from stopline.v1 import (
    bank_pb2,
    bank_pb2_grpc,
    common_pb2,
    crossborder_pb2,
    crossborder_pb2_grpc,
    envelope_pb2,
    hub_pb2,
    hub_pb2_grpc,
)
from trust.envelope import open_envelope, seal
from trust.keys import SigningKey
from trust.registry import RECALL_CHANNELS, Institution, InstitutionKind, Registry, registered_key
from trust.tls import LocalCA, TlsIdentity, tls_peer

HUB = "hub"
DESK = "gpi-recall-desk"  # the correspondent channel
POLICE_CHANNEL = "interpol-ncb-beijing"
BANK = "jining-bank"
CALL_TIMEOUT = 5.0
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
KINDS = {
    HUB: InstitutionKind.HUB,
    DESK: InstitutionKind.CORRESPONDENT_CHANNEL,
    POLICE_CHANNEL: InstitutionKind.POLICE_CHANNEL,
    BANK: InstitutionKind.BANK,
}

CASE = "JN-2026-0309"
RECOVERY = "recovery-JN-2026-0309-1"
UETR = "d4c16c2f-cc01-4795-a381-bcf237b806e7"
FRANKFURT = ForeignPlace("FICTDEFFXXX", "DE97500999990004418812", UETR)
LISBON = ForeignPlace("FICTPTPLXXX", "PT77009999990012770511427", "6ac497d0-37a6-4cc0-8af3-fb622f54c70f")
SENT_AT = datetime(2026, 3, 9, 1, 42, tzinfo=UTC)
# The correspondent's foreign side: located at 3 s, held at 6 s, returned at 15 s.
SCRIPT = RecallScript(UETR, (
    ScriptedUpdate(3, "located", location=LISBON, amount_minor=70_000_000, currency="EUR"),
    ScriptedUpdate(6, "held", location=FRANKFURT, amount_minor=119_600_000, currency="EUR"),
    ScriptedUpdate(15, "returned", location=FRANKFURT, amount_minor=119_600_000, currency="EUR",
                   return_reference="0397a1b9-665b-4396-a3c5-14f7b03c777a"),
))  # fmt: skip


def ts(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


def recall(
    key: str = f"{RECOVERY}/recall/correspondent/1",
    channel: int = crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT,
    destination: ForeignPlace = FRANKFURT,
    **changes,
) -> crossborder_pb2.RecallOrder:
    order = crossborder_pb2.RecallOrder(
        idempotency_key=key, recovery_id=RECOVERY, case_id=CASE, requested_by="police-jining", channel=channel,
        from_account=common_pb2.AccountRef(institution=BANK, account_number="6230580000240519"),
        destination=common_pb2.ForeignDestination(
            bic=destination.bic, account=destination.account, payment_reference=destination.payment_reference
        ),
        amount=common_pb2.Money(minor_units=189_600_000, currency="EUR"), sent_at=ts(SENT_AT),
        reason="tampered supplier e-mail: invoice paid to a fraudster's account",
    )  # fmt: skip
    for name, value in changes.items():
        if name == "clear":
            for field in value:
                order.ClearField(field) if "." not in field else order.destination.ClearField(field.split(".")[1])
        elif name in ("destination.bic", "destination.account", "destination.payment_reference"):
            setattr(order.destination, name.split(".")[1], value)
        elif name in ("from_account.institution", "from_account.account_number"):
            setattr(order.from_account, name.split(".")[1], value)
        elif name == "amount":
            order.amount.CopyFrom(value)
        else:
            setattr(order, name, value)
    return order


# --- the recording hub ---------------------------------------------------------------------------


class RecordingHub(hub_pb2_grpc.HubServiceServicer):
    """HubService.ReportRecallUpdate as the gateway takes it in: over TLS the client must be the
    signer; the envelope must verify; per channel and recovery the updates apply in sequence (a
    repeat ALREADY_EXISTS, a gap FAILED_PRECONDITION). `refuse` makes it refuse a sequence number
    with a status, as a hub that finds the update wrong would. Every applied update is recorded."""

    def __init__(self, registry, key: SigningKey, *, tls: bool = True):
        self._registry = registry
        self._key = key
        self._tls = tls
        self.refuse: dict[int, grpc.StatusCode] = {}
        self.applied: list[tuple[str, envelope_pb2.Envelope, crossborder_pb2.RecallUpdate]] = []
        self.calls = 0
        self._last: dict[tuple[str, str], int] = {}
        self.arrived = asyncio.Event()

    async def ReportRecallUpdate(self, request, context):
        self.calls += 1
        signer = request.envelope.signer
        if self._tls:
            peer = tls_peer(context)
            if peer is None or peer.common_name != signer:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "TLS client is not the signer")
        update = open_envelope(request.envelope, crossborder_pb2.RecallUpdate, self._registry(), expected_signer=signer)
        if update.sequence in self.refuse:
            await context.abort(self.refuse[update.sequence], f"update {update.sequence} refused (test hub)")
        last = self._last.get((signer, update.recovery_id), 0)
        if update.sequence <= last:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"update {update.sequence} was applied")
        if update.sequence != last + 1:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"update {last + 1} first")
        self._last[(signer, update.recovery_id)] = update.sequence
        copied = envelope_pb2.Envelope()
        copied.CopyFrom(request.envelope)
        self.applied.append((signer, copied, update))
        self.arrived.set()
        receipt = hub_pb2.CallbackReceipt(idempotency_key=update.idempotency_key)
        receipt.accepted_at.GetCurrentTime()
        return hub_pb2.ReportRecallUpdateResponse(envelope=seal(receipt, self._key))

    def sequences(self) -> list[int]:
        return [u.sequence for _, _, u in self.applied]


class World:
    """Two channels (the correspondent desk, the police channel), a bank (a valid signer that is
    not the hub) and the recording hub, each with a certificate from one local CA; the hub's
    endpoint is in the registry the channels read on every call, once it listens."""

    def __init__(self, tmp_path, keys: dict[str, SigningKey]):
        ca = LocalCA.create()
        self.tls: dict[str, TlsIdentity] = {i: ca.issue(i, hosts=("127.0.0.1",)) for i in KINDS}
        self.keys = keys
        self.hub_port = 0
        self.hub = RecordingHub(self.registry, keys[HUB])
        self._server: grpc.aio.Server | None = None
        self.desk = SandboxInstitution(DESK, keys[DESK], self.registry, tmp_path / f"{DESK}.db", tls=self.tls[DESK],
                                       recall_scripts=[SCRIPT])  # fmt: skip
        self.police = SandboxInstitution(POLICE_CHANNEL, keys[POLICE_CHANNEL], self.registry,
                                         tmp_path / f"{POLICE_CHANNEL}.db", tls=self.tls[POLICE_CHANNEL])  # fmt: skip

    def registry(self) -> Registry:
        return Registry(
            [
                Institution(
                    i, i, kind, endpoint=f"127.0.0.1:{self.hub_port}" if i == HUB and self.hub_port else None,
                    keys=(registered_key(self.keys[i].public_key, self.keys[i].key_id, VALID_FROM),),
                    tls_cert_sha256=self.tls[i].cert_sha256,
                )  # fmt: skip
                for i, kind in KINDS.items()
            ]
        )

    async def start_hub(self) -> None:
        """Listen (on an OS-picked port the first time, on the same port after stop_hub)."""
        server = grpc.aio.server()
        hub_pb2_grpc.add_HubServiceServicer_to_server(self.hub, server)
        self.hub_port = server.add_secure_port(f"127.0.0.1:{self.hub_port}", self.tls[HUB].server_credentials())
        await server.start()
        self._server = server

    async def stop_hub(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(None)

    async def send(self, order, *, to: SandboxInstitution | None = None, signer: str = HUB, envelope=None):
        """RequestRecall at `to` (the desk), signed by `signer` over mutual TLS as `signer`."""
        to = to or self.desk
        async with open_channel(to.endpoint, to.institution_id, self.tls[signer]) as channel:
            stub = crossborder_pb2_grpc.CrossBorderServiceStub(channel)
            request = crossborder_pb2.RequestRecallRequest(envelope=envelope or seal(order, self.keys[signer]))
            return await stub.RequestRecall(request, timeout=CALL_TIMEOUT)

    async def ack(self, order, *, to: SandboxInstitution | None = None) -> crossborder_pb2.RecallAcknowledgement:
        to = to or self.desk
        response = await self.send(order, to=to)
        return open_envelope(
            response.envelope, crossborder_pb2.RecallAcknowledgement, self.registry(), expected_signer=to.institution_id
        )


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {i: SigningKey.generate(i) for i in KINDS}


@pytest.fixture
async def world(tmp_path, keys):
    w = World(tmp_path, keys)
    await w.start_hub()
    await w.desk.start()
    await w.police.start()
    try:
        yield w
    finally:
        await w.desk.stop()
        await w.police.stop()
        await w.stop_hub()


async def rpc_error(awaitable, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


# --- RequestRecall -------------------------------------------------------------------------------


async def test_a_recall_is_acknowledged_with_a_signed_answer_and_stored_once(world):
    response = await world.send(recall())
    assert response.envelope.signer == DESK
    assert response.envelope.payload_type == "stopline.v1.RecallAcknowledgement"
    ack = open_envelope(response.envelope, crossborder_pb2.RecallAcknowledgement, world.registry(), expected_signer=DESK)
    assert (ack.idempotency_key, ack.recovery_id, ack.reference) == (recall().idempotency_key, RECOVERY, f"{DESK}-RC-000001")
    assert abs(ack.acknowledged_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=30)

    again = await world.send(recall())  # the hub's retry after a lost answer
    assert again.envelope.payload == response.envelope.payload  # the very same acknowledgement
    assert again.envelope.nonce != response.envelope.nonce  # in a fresh envelope
    [stored] = world.desk.recall_orders()
    assert (stored.reference, stored.recovery_id, stored.reminder) == (ack.reference, RECOVERY, 0)
    assert stored.order == recall() and stored.acknowledgement == ack
    open_envelope(stored.envelope, crossborder_pb2.RecallOrder, world.registry(), expected_signer=HUB)  # kept as signed
    # The script was scheduled once, from the acknowledgement.
    updates = world.desk.recall_updates()
    assert [(u.sequence, u.state) for u in updates] == [(1, PENDING), (2, PENDING), (3, PENDING)]
    acknowledged = ack.acknowledged_at.ToDatetime(tzinfo=UTC)
    assert [u.due_at - acknowledged for u in updates] == [timedelta(seconds=s) for s in (3, 6, 15)]
    assert all(u.update.idempotency_key == recall().idempotency_key and u.update.case_id == CASE for u in updates)


async def test_reminders_and_follow_ups_get_the_same_reference_and_never_restart_the_script(world):
    first = await world.ack(recall())
    reminder = await world.ack(recall(key=f"{RECOVERY}/recall/correspondent/1/reminder/1", reminder=1))
    # The money was located at Lisbon: the hub sends its request on there, under a key of its own.
    follow_up = await world.ack(recall(key=f"{RECOVERY}/recall/correspondent/2", destination=LISBON))
    assert reminder.reference == follow_up.reference == first.reference
    assert reminder.idempotency_key.endswith("/reminder/1") and follow_up.idempotency_key.endswith("/2")
    assert [o.reminder for o in world.desk.recall_orders()] == [0, 1, 0]
    updates = world.desk.recall_updates()
    assert [u.sequence for u in updates] == [1, 2, 3]  # scheduled by the first order only
    assert updates[0].due_at - first.acknowledged_at.ToDatetime(tzinfo=UTC) == timedelta(seconds=3)
    # Another recovery is another reference.
    other = await world.ack(recall(key="recovery-2/recall/correspondent/1", recovery_id="recovery-2"))
    assert other.reference == f"{DESK}-RC-000002"


async def test_the_same_key_for_another_order_is_already_exists(world):
    await world.ack(recall())
    details = await rpc_error(world.send(recall(reason="another reason")), grpc.StatusCode.ALREADY_EXISTS)
    assert "idempotency key" in details
    assert len(world.desk.recall_orders()) == 1


async def test_a_recovery_is_one_case_at_a_channel(world):
    await world.ack(recall())
    details = await rpc_error(world.send(recall(key="k-2", case_id="JN-OTHER")), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith("case_id: recovery")
    assert len(world.desk.recall_orders()) == 1


async def test_a_recall_for_another_channel_is_invalid_argument_naming_channel(world):
    details = await rpc_error(
        world.send(recall(), to=world.police), grpc.StatusCode.INVALID_ARGUMENT
    )  # a correspondent recall sent to the police channel
    assert details == "channel: this is the police channel (RECALL_CHANNEL_POLICE), not RECALL_CHANNEL_CORRESPONDENT"
    assert world.police.recall_orders() == []
    police = await world.ack(recall(channel=crossborder_pb2.RECALL_CHANNEL_POLICE), to=world.police)
    assert police.reference == f"{POLICE_CHANNEL}-RC-000001"
    assert world.police.recall_updates() == []  # no script: a silent channel


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": ""}, "idempotency_key"),
        ({"recovery_id": ""}, "recovery_id"),
        ({"case_id": ""}, "case_id"),
        ({"channel": crossborder_pb2.RECALL_CHANNEL_UNSPECIFIED}, "channel: this is the correspondent channel"),
        ({"from_account.institution": ""}, "from_account.institution"),
        ({"from_account.account_number": ""}, "from_account.account_number"),
        ({"clear": ["destination"]}, "destination: required"),
        ({"destination.bic": "fictdeff"}, "destination.bic: 'fictdeff' is not a BIC"),
        ({"destination.bic": "FICTDEFFXX"}, "destination.bic"),
        ({"destination.account": ""}, "destination.account"),
        ({"destination.payment_reference": ""}, "destination.payment_reference"),
        ({"amount": common_pb2.Money(minor_units=0, currency="EUR")}, "amount.minor_units"),
        ({"amount": common_pb2.Money(minor_units=5, currency="eur")}, "amount.currency"),
        ({"clear": ["amount"]}, "amount: required"),
        ({"clear": ["sent_at"]}, "sent_at: required"),
    ],
)
async def test_a_malformed_recall_is_invalid_argument_naming_the_field(world, changes, field):
    details = await rpc_error(world.send(recall(**changes)), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(field), details
    assert world.desk.recall_orders() == [] and world.desk.recall_updates() == []


async def test_a_recall_signed_by_anyone_but_the_hub_is_permission_denied(world):
    details = await rpc_error(world.send(recall(), signer=BANK), grpc.StatusCode.PERMISSION_DENIED)
    assert BANK in details
    assert world.desk.recall_orders() == []


async def test_a_forged_recall_is_unauthenticated(world):
    envelope = seal(recall(), world.keys[HUB])
    envelope.payload = recall(destination=LISBON).SerializeToString()
    await rpc_error(world.send(None, envelope=envelope), grpc.StatusCode.UNAUTHENTICATED)
    assert world.desk.recall_orders() == []


async def test_a_lost_acknowledgement_is_the_same_on_retry(world):
    world.desk.faults.fail_after_apply = 1
    await rpc_error(world.send(recall()), grpc.StatusCode.UNAVAILABLE)
    [stored] = world.desk.recall_orders()
    ack = await world.ack(recall())
    assert ack == stored.acknowledgement
    assert len(world.desk.recall_updates()) == 3


async def test_health_and_reflection_list_the_cross_border_service(world):
    async with open_channel(world.desk.endpoint, DESK, world.tls[HUB]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", CROSS_BORDER_SERVICE):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=CALL_TIMEOUT)]
        names = {s.name for s in reply.list_services_response.service}
    assert CROSS_BORDER_SERVICE == "stopline.v1.CrossBorderService" and CROSS_BORDER_SERVICE in names
    assert "stopline.v1.BankService" not in names


# --- the outbox: scripted updates, called back to the hub ------------------------------------------


async def test_scripted_updates_reach_the_hub_in_sequence_signed_by_the_channel_as_they_fall_due(world):
    ack = await world.ack(recall())
    acknowledged = ack.acknowledged_at.ToDatetime(tzinfo=UTC)

    assert await world.desk.deliver_recall_updates(acknowledged + timedelta(seconds=4)) == 1  # 6 s and 15 s wait
    assert world.hub.sequences() == [1]
    assert await world.desk.deliver_recall_updates(acknowledged + timedelta(seconds=10)) == 1
    assert await world.desk.deliver_recall_updates(acknowledged + timedelta(seconds=10)) == 0
    assert world.hub.sequences() == [1, 2]
    assert await world.desk.deliver_recall_updates() == 1  # None: whatever their time
    assert world.hub.sequences() == [1, 2, 3]

    for signer, envelope, update in world.hub.applied:
        assert signer == envelope.signer == DESK and envelope.payload_type == "stopline.v1.RecallUpdate"
        open_envelope(envelope, crossborder_pb2.RecallUpdate, world.registry(), expected_signer=DESK)
        assert (update.idempotency_key, update.recovery_id, update.case_id) == (recall().idempotency_key, RECOVERY, CASE)
    located, held, returned = (u for _, _, u in world.hub.applied)
    assert located.status == crossborder_pb2.RECALL_STATUS_LOCATED
    assert (located.location.bic, located.location.payment_reference) == (LISBON.bic, LISBON.payment_reference)
    assert located.location.amount == common_pb2.Money(minor_units=70_000_000, currency="EUR")
    assert held.status == crossborder_pb2.RECALL_STATUS_HELD and held.location.bic == FRANKFURT.bic
    assert held.amount == common_pb2.Money(minor_units=119_600_000, currency="EUR")
    assert returned.status == crossborder_pb2.RECALL_STATUS_RETURNED
    assert returned.return_reference == "0397a1b9-665b-4396-a3c5-14f7b03c777a"
    assert returned.amount.minor_units == 119_600_000
    # Delivered early (the test did not wait): reported_at is when it was sent, never after its due time.
    stored = world.desk.recall_updates()
    assert [u.state for u in stored] == [DELIVERED] * 3
    for u in stored:
        assert acknowledged <= u.update.reported_at.ToDatetime(tzinfo=UTC) <= u.due_at
        assert u.attempts == 1 and u.delivered_at is not None


async def test_updates_wait_while_the_hub_is_down_and_go_once_it_is_back(world):
    await world.ack(recall())
    await world.stop_hub()
    assert await world.desk.deliver_recall_updates() == 0
    assert await world.desk.deliver_recall_updates() == 0
    stored = world.desk.recall_updates()
    assert [(u.state, u.attempts) for u in stored] == [(PENDING, 2), (PENDING, 0), (PENDING, 0)]  # none ahead of 1
    first_try = stored[0].update

    await world.start_hub()  # back on the same port
    assert await world.desk.deliver_recall_updates() == 3
    assert world.hub.sequences() == [1, 2, 3]
    assert world.hub.applied[0][2] == first_try  # the same update, reported_at as first fixed
    assert [u.state for u in world.desk.recall_updates()] == [DELIVERED] * 3


async def test_an_update_the_hub_has_already_counts_as_delivered(world):
    """A lost answer: the hub applied update 1, the channel did not hear. ALREADY_EXISTS = it has it."""
    await world.ack(recall())
    world.hub._last[(DESK, RECOVERY)] = 1
    assert await world.desk.deliver_recall_updates() == 3
    assert world.hub.sequences() == [2, 3]
    assert [u.state for u in world.desk.recall_updates()] == [DELIVERED] * 3


async def test_an_update_the_hub_refuses_is_recorded_and_not_retried_and_later_ones_are_withheld(world):
    await world.ack(recall())
    world.hub.refuse[2] = grpc.StatusCode.FAILED_PRECONDITION
    assert await world.desk.deliver_recall_updates() == 1
    assert world.hub.calls == 2
    one, two, three = world.desk.recall_updates()
    assert (one.state, two.state, three.state) == (DELIVERED, REFUSED, WITHHELD)
    assert two.refused_code == "FAILED_PRECONDITION" and "refused (test hub)" in two.refused_details
    assert await world.desk.deliver_recall_updates() == 0
    assert world.hub.calls == 2  # never retried, nothing sent past it


async def test_each_recovery_keeps_its_own_sequence(world):
    await world.ack(recall())
    await world.ack(recall(key="recovery-2/recall/correspondent/1", recovery_id="recovery-2"))
    assert await world.desk.deliver_recall_updates() == 6
    by_recovery = {}
    for _, _, u in world.hub.applied:
        by_recovery.setdefault(u.recovery_id, []).append(u.sequence)
    assert by_recovery == {RECOVERY: [1, 2, 3], "recovery-2": [1, 2, 3]}


async def test_the_outbox_survives_a_restart(world):
    ack = await world.ack(recall())
    acknowledged = ack.acknowledged_at.ToDatetime(tzinfo=UTC)
    assert await world.desk.deliver_recall_updates(acknowledged + timedelta(seconds=3)) == 1
    await world.desk.restart()
    assert (await world.ack(recall())).reference == ack.reference
    assert await world.desk.deliver_recall_updates() == 2
    assert world.hub.sequences() == [1, 2, 3]


# --- the scenario: channels and their scripts ------------------------------------------------------


def jining() -> dict:
    return json.loads(scenario_path("jining").read_text("utf-8"))


DESK_AT = 1  # institutions[1] is the correspondent desk, [3] the police channel
UPDATES = f"institutions[{DESK_AT}] ({DESK}).recalls[0].updates"


def _desk_update(i: int):
    return lambda d: d["institutions"][DESK_AT]["recalls"][0]["updates"][i]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["institutions"][0].update(recalls=[]), "institutions[0] (jining-bank).recalls: a bank has no recalls"),
        (lambda d: d["institutions"][DESK_AT].update(accounts=[]),
         f"institutions[1] ({DESK}).accounts: a correspondent_channel has no accounts"),
        (lambda d: d["institutions"][DESK_AT].update(kind="recall_desk"), "institutions[1] (gpi-recall-desk).kind: 'recall_desk'"),
        (lambda d: _desk_update(0)(d).update(status="found"), f"{UPDATES}[0].status: 'found' is not one of located"),
        (lambda d: _desk_update(0)(d).pop("location"), f"{UPDATES}[0].location: required for a 'located' update"),
        (lambda d: _desk_update(0)(d).pop("currency"), f"{UPDATES}[0].currency: required with amount_minor"),
        (lambda d: _desk_update(0)(d)["location"].update(bic="fictptpl"), f"{UPDATES}[0].location.bic: 'fictptpl' is not a BIC"),
        (lambda d: _desk_update(0)(d)["location"].pop("payment_reference"), f"{UPDATES}[0].location.payment_reference"),
        (lambda d: _desk_update(1)(d).pop("amount_minor"), f"{UPDATES}[1].amount_minor: required for a 'held' update"),
        (lambda d: _desk_update(1)(d).pop("location"), f"{UPDATES}[1].location: required for a 'held' update"),
        (lambda d: _desk_update(1)(d).update(reason="x"), f"{UPDATES}[1].reason: a 'held' update has no reason"),
        (lambda d: _desk_update(1)(d).update(currency="eur"), f"{UPDATES}[1].currency: 'eur' must be upper case"),
        (lambda d: _desk_update(1)(d).update(after_seconds=2), f"{UPDATES}[1].after_seconds: 2 is before the update above it"),
        (lambda d: _desk_update(2)(d).pop("return_reference"), f"{UPDATES}[2].return_reference: required for a 'returned'"),
        (lambda d: _desk_update(2)(d).update(amount_minor=0), f"{UPDATES}[2].amount_minor: must be >= 1"),
        (lambda d: _desk_update(0)(d).update(status="refused"), f"{UPDATES}[0].amount_minor: a 'refused' update has no amount_minor"),
        (lambda d: _desk_update(1)(d).clear() or _desk_update(1)(d).update(after_seconds=6, status="refused"),
         f"{UPDATES}[1].reason: required for a 'refused' update"),
        (lambda d: _desk_update(1)(d).clear() or _desk_update(1)(d).update(after_seconds=6, status="no_answer", reason="x"),
         f"{UPDATES}[2].status: nothing follows 'no_answer'"),
        (lambda d: d["institutions"][DESK_AT]["recalls"].append(d["institutions"][DESK_AT]["recalls"][0]),
         f"institutions[1] ({DESK}).recalls[1].payment_reference: '{UETR}' has a script already"),
        (lambda d: d["institutions"][DESK_AT]["recalls"][0].update(updates=[]), f"{UPDATES}: must not be empty"),
        (lambda d: d["institutions"][DESK_AT]["recalls"][0].update(channel="x"), "recalls[0].channel: unknown key"),
        # The amount a transfer abroad was sent in: both or neither.
        (lambda d: d["institutions"][0]["transfers_out"][0]["abroad"].pop("currency"),
         "institutions[0] (jining-bank).transfers_out[0].abroad.currency: required with amount_minor"),
        (lambda d: d["institutions"][0]["transfers_out"][0]["abroad"].update(currency="XXY"),
         "transfers_out[0].abroad.currency: 'XXY' is not an ISO 4217 currency code"),
        # The case's transfer abroad: `abroad` instead of `to`.
        (lambda d: d["case"]["transfers"][0].update(to={"institution": BANK, "account_number": "1"}),
         "case.transfers[0].to: a transfer abroad names its destination in 'abroad', not 'to'"),
        (lambda d: d["case"]["transfers"][0]["abroad"].update(bic="DE12"), "case.transfers[0].abroad.bic: 'DE12' is not a BIC"),
        (lambda d: d["case"]["transfers"][0]["abroad"].pop("payment_reference"),
         "case.transfers[0].abroad.payment_reference: must be a non-empty string"),
        (lambda d: d["case"]["transfers"][0].pop("abroad"), "case.transfers[0].to: must be an object"),
        (lambda d: d["case"]["transfers"].append(d["case"]["transfers"][0] | {"amount": {"minor_units": 1, "currency": "CNY"}}),
         "case.transfers: one currency per case, got CNY, EUR"),
    ],
)
def test_a_bad_channel_or_script_in_a_scenario_is_refused_naming_the_field(change, message):
    data = jining()
    change(data)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    assert message in str(caught.value)


def test_jining_loads_with_its_three_channels_and_a_story_that_adds_up():
    scenario = load_scenario("jining")
    by_kind = {i.kind: i for i in scenario.institutions}
    assert {k: by_kind[k].id for k in RECALL_CHANNELS} == {
        InstitutionKind.CORRESPONDENT_CHANNEL: DESK,
        InstitutionKind.CENTRAL_BANK_CHANNEL: "pboc-international",
        InstitutionKind.POLICE_CHANNEL: POLICE_CHANNEL,
    }
    [transfer] = scenario.case["transfers"]
    assert "to" not in transfer and transfer["abroad"]["payment_reference"] == UETR
    assert transfer["amount"] == {"minor_units": 189_600_000, "currency": "EUR"}
    [sent] = scenario.institution(BANK).transfers_out
    assert sent.abroad == Abroad(FRANKFURT.bic, FRANKFURT.account, UETR, 189_600_000, "EUR")
    # Every channel's script is found by the payment the hub recalls; the whole story within 25 s.
    updates = [u for k in RECALL_CHANNELS for s in by_kind[k].recalls if s.payment_reference == UETR for u in s.updates]
    assert max(u.after_seconds for u in updates) <= 25
    returned = sum(u.amount_minor for u in updates if u.status == "returned")
    assert returned == 184_600_000 and 189_600_000 - returned == 5_000_000  # 1,846,000.00 back, 50,000.00 lost
    located = next(u for u in updates if u.status == "located")
    held_there = sum(u.amount_minor for u in updates if u.status == "held" and u.location == located.location)
    assert located.amount_minor - held_there == 5_000_000  # withdrawn at Lisbon before the hold
    assert [u.status for u in by_kind[InstitutionKind.CENTRAL_BANK_CHANNEL].recalls[0].updates] == ["no_answer"]
    # Its own block of ports, clear of every other shipped scenario's.
    ports = {i.port for i in scenario.institutions}
    assert ports <= set(range(50111, 50121)) and len(ports) == len(scenario.institutions)
    for other in ("boxing", "qingdao", "shengli", "layered"):
        assert not ports & {i.port for i in load_scenario(other).institutions}


def test_jining_serves_its_suspect_number_with_one_ported_and_has_both_regulators():
    scenario = load_scenario("jining")
    registry = Registry([Institution(i.id, i.name, i.kind, number_prefixes=i.number_prefixes) for i in scenario.institutions])
    [number] = scenario.case["suspect_phone_numbers"]
    holder = scenario.institution(registry.carrier_for_number(number))
    [server] = [i for i in scenario.institutions if number in i.subscribers]
    assert holder.id != server.id and holder.ported_out[number] == server.id
    assert registry.telecom_regulator() and registry.bank_regulator()


def test_set_up_registers_the_channels_by_kind(tmp_path):
    from stopline.config import Settings
    from stopline.setup import initialise

    settings = Settings(data_dir=tmp_path / "data")
    keys = initialise(settings, load_scenario("jining"))
    registry = Registry.load(settings.registry_path)
    assert registry.recall_channels() == {
        InstitutionKind.CORRESPONDENT_CHANNEL: DESK,
        InstitutionKind.CENTRAL_BANK_CHANNEL: "pboc-international",
        InstitutionKind.POLICE_CHANNEL: POLICE_CHANNEL,
    }
    assert registry.endpoint(DESK).endswith(":50112") and DESK in keys


# --- the jining sandbox: every channel at once -----------------------------------------------------


def _jining_keys_and_registry(scenario, hub_endpoint: list[str]):
    keys = {i.id: SigningKey.generate(i.id) for i in scenario.institutions} | {HUB: SigningKey.generate(HUB)}
    kinds = {i.id: i.kind for i in scenario.institutions} | {HUB: InstitutionKind.HUB}
    prefixes = {i.id: i.number_prefixes for i in scenario.institutions}

    def registry() -> Registry:
        return Registry([
            Institution(i, i, kinds[i], endpoint=hub_endpoint[0] if i == HUB and hub_endpoint else None,
                        keys=(registered_key(k.public_key, k.key_id, VALID_FROM),), number_prefixes=prefixes.get(i, ()))
            for i, k in keys.items()
        ])  # fmt: skip

    return keys, registry


async def _plain_hub(registry, key) -> tuple[RecordingHub, grpc.aio.Server, str]:
    hub = RecordingHub(registry, key, tls=False)
    server = grpc.aio.server()
    hub_pb2_grpc.add_HubServiceServicer_to_server(hub, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return hub, server, f"127.0.0.1:{port}"


async def _recall_everywhere(sandbox: Sandbox, keys, registry) -> dict[str, crossborder_pb2.RecallAcknowledgement]:
    """What the hub does for the case's transfer abroad: one recall per channel, at once."""
    acks = {}
    channel_of = {InstitutionKind.CORRESPONDENT_CHANNEL: crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT,
                  InstitutionKind.CENTRAL_BANK_CHANNEL: crossborder_pb2.RECALL_CHANNEL_CENTRAL_BANK,
                  InstitutionKind.POLICE_CHANNEL: crossborder_pb2.RECALL_CHANNEL_POLICE}  # fmt: skip
    for inst_id, inst in sandbox.institutions.items():
        if inst.kind not in RECALL_CHANNELS:
            continue
        order = recall(key=f"{RECOVERY}/recall/{inst.kind.value}/1", channel=channel_of[inst.kind])
        async with grpc.aio.insecure_channel(inst.endpoint) as channel:
            response = await crossborder_pb2_grpc.CrossBorderServiceStub(channel).RequestRecall(
                crossborder_pb2.RequestRecallRequest(envelope=seal(order, keys[HUB])), timeout=CALL_TIMEOUT
            )
        acks[inst_id] = open_envelope(response.envelope, crossborder_pb2.RecallAcknowledgement, registry(),
                                      expected_signer=inst_id)  # fmt: skip
    return acks


async def test_the_jining_story_reaches_the_hub_from_every_channel(tmp_path):
    scenario = load_scenario("jining")
    hub_endpoint: list[str] = []
    keys, registry = _jining_keys_and_registry(scenario, hub_endpoint)
    hub, server, endpoint = await _plain_hub(registry, keys[HUB])
    hub_endpoint.append(endpoint)
    sandbox = Sandbox(scenario, tmp_path, registry, keys, use_scenario_ports=False, deliver_recalls=False)
    await sandbox.start()
    try:
        assert {i: inst.service_name for i, inst in sandbox.institutions.items() if inst.kind in RECALL_CHANNELS} == {
            DESK: CROSS_BORDER_SERVICE, "pboc-international": CROSS_BORDER_SERVICE, POLICE_CHANNEL: CROSS_BORDER_SERVICE,
        }  # fmt: skip
        acks = await _recall_everywhere(sandbox, keys, registry)
        start = min(a.acknowledged_at.ToDatetime(tzinfo=UTC) for a in acks.values())
        channels = [sandbox.institutions[i] for i in acks]

        async def deliver(until: float) -> None:
            for inst in channels:
                await inst.deliver_recall_updates(start + timedelta(seconds=until))

        await deliver(10)  # located, held at Frankfurt, held at Lisbon
        assert [(s, u.status) for s, _, u in hub.applied] == [
            (DESK, crossborder_pb2.RECALL_STATUS_LOCATED), (DESK, crossborder_pb2.RECALL_STATUS_HELD),
            (POLICE_CHANNEL, crossborder_pb2.RECALL_STATUS_HELD),
        ]  # fmt: skip
        await deliver(30)
        returned = sum(u.amount.minor_units for _, _, u in hub.applied if u.status == crossborder_pb2.RECALL_STATUS_RETURNED)
        assert returned == 184_600_000
        [(signer, _, gave_up)] = [a for a in hub.applied if a[2].status == crossborder_pb2.RECALL_STATUS_NO_ANSWER]
        assert signer == "pboc-international" and gave_up.reason == "the foreign central bank did not answer"
        # The correspondent and the police channel close their part for the rest (gone).
        assert [s for s, _, u in hub.applied if u.status == crossborder_pb2.RECALL_STATUS_REFUSED] == [DESK, POLICE_CHANNEL]
        assert len(hub.applied) == 8
    finally:
        await sandbox.stop()
        await server.stop(None)


async def test_a_sandbox_delivers_due_updates_by_itself(tmp_path):
    data = jining()
    data["institutions"][2]["recalls"][0]["updates"][0]["after_seconds"] = 0  # the central bank gives up at once
    scenario = parse_scenario(data)
    hub_endpoint: list[str] = []
    keys, registry = _jining_keys_and_registry(scenario, hub_endpoint)
    hub, server, endpoint = await _plain_hub(registry, keys[HUB])
    hub_endpoint.append(endpoint)
    sandbox = Sandbox(scenario, tmp_path, registry, keys, use_scenario_ports=False)  # deliver_recalls=True
    await sandbox.start()
    try:
        await _recall_everywhere(sandbox, keys, registry)
        await asyncio.wait_for(hub.arrived.wait(), 5)
        [(signer, _, update)] = hub.applied
        assert signer == "pboc-international" and update.status == crossborder_pb2.RECALL_STATUS_NO_ANSWER
        pboc = sandbox.institutions["pboc-international"]
        for _ in range(100):  # the hub has it; the channel marks it once the answer is in
            if pboc.recall_updates()[0].state == DELIVERED:
                break
            await asyncio.sleep(0.05)
        assert pboc.recall_updates()[0].state == DELIVERED
        assert sandbox.institutions[DESK].recall_updates()[0].state == PENDING  # due in 3 s
    finally:
        await sandbox.stop()
        await server.stop(None)


# --- the amount a transfer abroad was sent in ------------------------------------------------------


ACCOUNT = "6230580000240519"
OLD_SCHEMA_ABROAD = """CREATE TABLE abroad_transfers (
    transfer_id INTEGER PRIMARY KEY REFERENCES transfers_out (id),
    bic TEXT NOT NULL, account TEXT NOT NULL, reference TEXT NOT NULL)"""


def test_an_older_ledger_file_gains_the_abroad_amount_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_SCHEMA_ABROAD)
    ledger = Ledger(path, BANK)
    sent = Transfer(ACCOUNT, "", "", 189_600_000, "EUR", SENT_AT, "abroad", Abroad(FRANKFURT.bic, FRANKFURT.account, UETR))
    ledger.seed([Account(ACCOUNT, "Jining Hengtai", "EUR", 41_238_055)], [sent])
    [stored] = ledger.transfers(ACCOUNT)
    assert stored.abroad == Abroad(FRANKFURT.bic, FRANKFURT.account, UETR, None, None)
    ledger.close()
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(abroad_transfers)")]
    assert columns[-2:] == ["amount_minor", "currency"]
    Ledger(path, BANK).close()  # opening again adds nothing twice


async def test_the_abroad_amount_is_reported_on_the_account_report(tmp_path, keys):
    registry = Registry([
        Institution(i, i, KINDS[i], keys=(registered_key(keys[i].public_key, keys[i].key_id, VALID_FROM),))
        for i in (HUB, BANK)
    ])  # fmt: skip
    bank = SandboxInstitution(BANK, keys[BANK], registry, tmp_path / f"{BANK}.db")
    cny_debit = Abroad("FICTKHPPXXX", "001258812015", "UETR-2", 1_250_000, "USD")  # sent as USD from a CNY account
    bank.ledger.seed(
        [Account(ACCOUNT, "Jining Hengtai", "EUR", 41_238_055), Account("6230580000000001", "Jining Hengtai", "CNY", 10)],
        [Transfer(ACCOUNT, "", "", 189_600_000, "EUR", SENT_AT, "abroad",
                  Abroad(FRANKFURT.bic, FRANKFURT.account, UETR, 189_600_000, "EUR")),
         Transfer(ACCOUNT, "", "", 5_000, "EUR", SENT_AT + timedelta(minutes=1), "abroad",
                  Abroad(FRANKFURT.bic, FRANKFURT.account, "UETR-3")),
         Transfer("6230580000000001", "", "", 9_000_000, "CNY", SENT_AT, "abroad", cny_debit)],
    )  # fmt: skip
    await bank.start()
    try:
        async with grpc.aio.insecure_channel(bank.endpoint) as channel:
            stub = bank_pb2_grpc.BankServiceStub(channel)
            reports = {}
            for number in (ACCOUNT, "6230580000000001"):
                query = bank_pb2.AccountQuery(idempotency_key=f"q-{number}", case_id=CASE,
                                              account=common_pb2.AccountRef(institution=BANK, account_number=number))  # fmt: skip
                response = await stub.QueryAccount(bank_pb2.QueryAccountRequest(envelope=seal(query, keys[HUB])),
                                                   timeout=CALL_TIMEOUT)  # fmt: skip
                reports[number] = open_envelope(response.envelope, bank_pb2.AccountReport, registry, expected_signer=BANK)
    finally:
        await bank.stop()
    eur, untold = reports[ACCOUNT].transfers
    assert eur.abroad.amount == common_pb2.Money(minor_units=189_600_000, currency="EUR")
    assert (eur.abroad.bic, eur.abroad.payment_reference) == (FRANKFURT.bic, UETR)
    assert not untold.abroad.HasField("amount")  # as debited
    [usd] = reports["6230580000000001"].transfers
    assert usd.amount == common_pb2.Money(minor_units=9_000_000, currency="CNY")
    assert usd.abroad.amount == common_pb2.Money(minor_units=1_250_000, currency="USD")


def test_a_scripted_update_keeps_its_fields(tmp_path):
    """RecallStore on its own: the script's fields become the RecallUpdate's, sequence by sequence."""
    from sandbox.crossborder import RecallStore, check_recall_order

    store = RecallStore(tmp_path / "desk.db", DESK)
    order = recall()
    now = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    envelope = envelope_pb2.Envelope(payload=order.SerializeToString())
    first = store.receive(order, check_recall_order(order, crossborder_pb2.RECALL_CHANNEL_CORRESPONDENT), envelope, now, SCRIPT)
    assert (first.opened, first.scheduled, first.replayed) == (True, 3, False)
    assert [len(batch) for batch in store.deliverable(now + timedelta(seconds=6))] == [2]
    assert store.deliverable(now) == []
    scripted, returned = SCRIPT.updates[2], store.updates()[2].update
    assert (returned.sequence, returned.return_reference, returned.amount.minor_units) == (
        3, scripted.return_reference, scripted.amount_minor,
    )  # fmt: skip
    assert not returned.HasField("reported_at")  # fixed at the first delivery attempt
