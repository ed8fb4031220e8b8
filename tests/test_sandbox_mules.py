"""Mules and scenario times in the sandbox: money that moves on unless held, seeded history shifted
to the case's report, and the shipped scenarios' bookkeeping.

Real ledgers in tmp_path and real gRPC on OS-picked loopback ports; the race clock is driven by
hand (run_mules=False, `mules.step(until=...)`), so nothing waits on real time."""

from __future__ import annotations

import copy
import json
import re
import runpy
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from sandbox import (
    Abroad,
    End,
    Ledger,
    Mules,
    Sandbox,
    ScenarioError,
    Transfer,
    load_scenario,
    scenario_money_map,
    seed_shift,
)
from sandbox.scenario import parse_scenario, scenario_path
from stopline.casefile import rebase_report, report_from_dict
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2
from trust.envelope import open_envelope, seal
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key

CALL_TIMEOUT = 5.0
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
SHIPPED = ("boxing", "qingdao", "shengli", "layered", "jining")

MULE = "6229110000800001"  # qilu-bank: received 800,000.00 from the victim
NEXT = "HXP-8800-3000-0003"  # huaxia-pay: the next layer
DOLLARS = "6229110000000005"
WUYI = "wuyi-village-bank"  # not on the platform
ABROAD = {"bic": "FICTDEFFXXX", "account": "DE00 0000 0000 0000 0000 01", "reference": "UETR 0b6e-test-0001"}


def small_scenario() -> dict:
    """A victim outside the sandbox pays 800,000.00 CNY to MULE, who moves it on after the report:
    300,000.00 to NEXT at 0.5 s, 50,000.00 cash and 50,000.00 abroad at 1 s, 10,000.00 off the
    platform at 2 s; NEXT withdraws 300,000.00 in cash at 3 s."""
    return {
        "name": "mules-test",
        "institutions": [
            {
                "id": "qilu-bank",
                "kind": "bank",
                "accounts": [
                    {"number": MULE, "holder": "Liu Jianguo", "currency": "CNY", "balance_minor": 80_000_000},
                    {"number": DOLLARS, "holder": "Zhou Lei", "currency": "USD", "balance_minor": 1_000},
                ],
                "moves": [
                    {"account": MULE, "to": {"institution": "huaxia-pay", "account_number": NEXT},
                     "amount_minor": 30_000_000, "currency": "CNY", "after_seconds": 0.5, "channel": "transfer"},
                    {"account": MULE, "amount_minor": 5_000_000, "currency": "CNY", "after_seconds": 1.0,
                     "channel": "cash"},
                    {"account": MULE, "amount_minor": 5_000_000, "currency": "CNY", "after_seconds": 1.0,
                     "channel": "abroad", "abroad": dict(ABROAD)},
                    {"account": MULE, "to": {"institution": WUYI, "account_number": "WY-0001"},
                     "amount_minor": 1_000_000, "currency": "CNY", "after_seconds": 2},
                ],
            },
            {
                "id": "huaxia-pay",
                "kind": "payment_company",
                "accounts": [{"number": NEXT, "holder": "Sun Lihua", "currency": "CNY", "balance_minor": 0}],
                "moves": [
                    {"account": NEXT, "amount_minor": 30_000_000, "currency": "CNY", "after_seconds": 3,
                     "channel": "cash"},
                ],
            },
        ],
        "off_platform_institutions": [{"id": WUYI, "name": "Wuyi Village Bank (not on the platform)"}],
        "police_units": [{"id": "police-boxing", "name": "Boxing County PSB"}],
        "case": {
            "case_id": "MT-1",
            "reporting_unit": "police-boxing",
            "reported_at": "2026-11-25T01:10:00Z",
            "transfers": [
                {"from": {"institution": "jinan-bank", "account_number": "6217000000000001"},
                 "to": {"institution": "qilu-bank", "account_number": MULE},
                 "amount": {"minor_units": 80_000_000, "currency": "CNY"},
                 "transferred_at": "2026-11-25T00:41:00Z"},
            ],
        },
    }  # fmt: skip


# --- helpers: keys, registry, a sandbox, the hub's calls ------------------------------------------


def keys_for(scenario) -> dict[str, SigningKey]:
    return {i: SigningKey.generate(i) for i in ("hub", *(inst.id for inst in scenario.institutions))}


def registry_for(scenario, keys: dict[str, SigningKey]) -> Registry:
    kinds = {"hub": InstitutionKind.HUB} | {
        inst.id: InstitutionKind(inst.kind) for inst in scenario.institutions
    }
    return Registry(
        [
            Institution(i, i, kinds[i], keys=(registered_key(k.public_key, k.key_id, VALID_FROM),))
            for i, k in keys.items()
        ]
    )


class Hub:
    """The hub's two calls, signed and opened as the hub would."""

    def __init__(self, sandbox: Sandbox, keys, registry):
        self.sandbox, self.keys, self.registry = sandbox, keys, registry
        self._n = 0

    async def _call(self, institution: str, method: str, message, answer_type):
        self._n += 1
        async with grpc.aio.insecure_channel(self.sandbox.institutions[institution].endpoint) as channel:
            stub = bank_pb2_grpc.BankServiceStub(channel)
            request = getattr(bank_pb2, f"{method}Request")(envelope=seal(message, self.keys["hub"]))
            response = await getattr(stub, method)(request, timeout=CALL_TIMEOUT)
        return open_envelope(response.envelope, answer_type, self.registry, expected_signer=institution)

    async def stop(self, institution: str, account: str, amount: int, case_id: str = "MT-1"):
        self._n += 1
        order = bank_pb2.StopPaymentOrder(
            idempotency_key=f"{case_id}/stop/{self._n}",
            case_id=case_id,
            account=common_pb2.AccountRef(institution=institution, account_number=account),
            amount=common_pb2.Money(minor_units=amount, currency="CNY"),
            requested_by="police-boxing",
            hold_duration=Duration(seconds=48 * 3600),
        )
        return await self._call(institution, "StopPayment", order, bank_pb2.StopPaymentAnswer)

    async def query(self, institution: str, account: str, since: datetime | None = None):
        self._n += 1
        query = bank_pb2.AccountQuery(
            idempotency_key=f"MT-1/query/{self._n}",
            case_id="MT-1",
            account=common_pb2.AccountRef(institution=institution, account_number=account),
        )
        if since is not None:
            query.transfers_since.FromDatetime(since)
        return await self._call(institution, "QueryAccount", query, bank_pb2.AccountReport)


@pytest.fixture
def small():
    return parse_scenario(small_scenario())


@pytest.fixture
async def running(tmp_path, small):
    """The small scenario's sandbox, started, with the race clock driven by hand."""
    keys = keys_for(small)
    registry = registry_for(small, keys)
    sandbox = Sandbox(
        small,
        tmp_path,
        lambda: registry,
        keys,
        use_scenario_ports=False,
        anchor=datetime.now(UTC),
        run_mules=False,
    )
    await sandbox.start()
    try:
        yield sandbox, Hub(sandbox, keys, registry)
    finally:
        await sandbox.stop()


def balance(sandbox: Sandbox, institution: str, account: str) -> int:
    return sandbox.institutions[institution].ledger.account(account).balance_minor


# --- scenario times follow the report ------------------------------------------------------------


def test_seed_shift_is_the_anchor_minus_the_report_time():
    reported = datetime(2026, 11, 25, 1, 10, tzinfo=UTC)
    anchor = datetime(2027, 3, 1, 8, 0, 30, 123456, tzinfo=UTC)
    assert seed_shift(reported, anchor) == anchor - reported
    assert reported + seed_shift(reported, anchor) == anchor
    assert seed_shift(reported, None) == timedelta(0)  # no anchor: the file's own times
    assert seed_shift(None, anchor) == timedelta(0)  # no case to anchor to
    assert seed_shift(reported, reported - timedelta(days=1)) == timedelta(days=-1)
    with pytest.raises(ValueError, match="time zone"):
        seed_shift(reported, datetime(2027, 3, 1))
    assert load_scenario("boxing").seed_shift(anchor) == anchor - reported


async def test_a_sandbox_seeds_history_as_if_the_case_were_reported_at_the_anchor(tmp_path):
    scenario = load_scenario("boxing")
    anchor = datetime.now(UTC).replace(microsecond=0)
    keys = keys_for(scenario)
    registry = registry_for(scenario, keys)
    sandbox = Sandbox(
        scenario, tmp_path, lambda: registry, keys, use_scenario_ports=False, anchor=anchor, run_mules=False
    )
    await sandbox.start()
    try:
        shift = anchor - datetime(2026, 11, 25, 1, 10, tzinfo=UTC)
        ledger = sandbox.institutions["qilu-bank"].ledger
        assert ledger.seed_shift() == shift
        assert [t.transferred_at for t in ledger.transfers("6229110000375002")] == [
            datetime(2026, 11, 25, 0, 52, tzinfo=UTC) + shift,  # 18 min before the report
            datetime(2026, 11, 25, 1, 3, tzinfo=UTC) + shift,
        ]
        # What the hub does: rebase the case to the same moment, query since the money arrived.
        report = rebase_report(report_from_dict(scenario.case), anchor, "BX-REBASED")
        arrived = report.transfers[1].transferred_at.ToDatetime(tzinfo=UTC)
        assert arrived == anchor - timedelta(minutes=23)
        answer = await Hub(sandbox, keys, registry).query("qilu-bank", "6229110000375002", since=arrived)
        assert [(t.channel, t.amount.minor_units) for t in answer.transfers] == [
            (bank_pb2.TRANSFER_CHANNEL_TRANSFER, 15_000_000),
            (bank_pb2.TRANSFER_CHANNEL_CASH, 9_860_000),
        ]
    finally:
        await sandbox.stop()


def test_without_an_anchor_the_history_keeps_the_files_times(tmp_path):
    scenario = load_scenario("boxing")
    keys = keys_for(scenario)
    sandbox = Sandbox(scenario, tmp_path, registry_for(scenario, keys), keys, use_scenario_ports=False)
    ledger = sandbox.institutions["qilu-bank"].ledger
    try:
        assert ledger.seed_shift() == timedelta(0)
        assert ledger.transfers("6229110000375002")[0].transferred_at == datetime(
            2026, 11, 25, 0, 52, tzinfo=UTC
        )
    finally:
        ledger.close()


def test_a_restarted_sandbox_keeps_the_history_where_its_first_seed_put_it(tmp_path):
    scenario = load_scenario("boxing")
    keys = keys_for(scenario)
    registry = registry_for(scenario, keys)
    reported = datetime(2026, 11, 25, 1, 10, tzinfo=UTC)
    for days in (10, 20):  # a restart on the same files, with a later anchor
        sandbox = Sandbox(
            scenario, tmp_path, registry, keys, anchor=reported + timedelta(days=days), run_mules=False
        )
        ledger = sandbox.institutions["qilu-bank"].ledger
        try:
            assert ledger.seed_shift() == timedelta(days=10)
            times = [t.transferred_at for t in ledger.transfers("6229110000375002")]
            assert times == [
                t.transferred_at + timedelta(days=10) for t in scenario.institution("qilu-bank").transfers_out
            ]
        finally:
            ledger.close()


def test_a_ledger_seed_applies_exactly_the_shift_it_is_given(tmp_path):
    """Seeding more rows into a seeded ledger (as a test adds accounts) places them as told; the
    first seed's shift stays recorded."""
    inst = load_scenario("boxing").institution("qilu-bank")
    at = datetime(2026, 11, 25, 1, 20, tzinfo=UTC)
    ledger = Ledger(tmp_path / "q.db", "qilu-bank")
    try:
        ledger.seed(inst.accounts, inst.transfers_out, shift=timedelta(days=10))
        ledger.seed(inst.accounts, inst.transfers_out, shift=timedelta(days=10))  # the same again: no double
        ledger.seed([], [Transfer(MULE, "", "", 100, "CNY", at, "cash")])
        assert ledger.seed_shift() == timedelta(days=10)
        assert len(ledger.transfers("6229110000375002")) == 2
        assert [t.transferred_at for t in ledger.transfers(MULE)] == [at]
    finally:
        ledger.close()


def test_a_ledger_seeded_before_shifts_were_recorded_counts_as_unshifted(tmp_path):
    ledger = Ledger(tmp_path / "old.db", "qilu-bank")
    inst = load_scenario("boxing").institution("qilu-bank")
    try:
        assert ledger.seed_shift() is None
        ledger.seed(inst.accounts, inst.transfers_out)
        with ledger._lock:  # as an older version left the file: no record of a shift
            ledger._connection().execute("DELETE FROM seed_info")
        assert ledger.seed_shift() == timedelta(0)
    finally:
        ledger.close()


# --- moves ---------------------------------------------------------------------------------------


async def test_a_move_happens_when_due_and_the_query_reports_it(running):
    sandbox, hub = running
    anchor = sandbox.anchor

    assert await sandbox.mules.step(until=0.49) == []
    assert balance(sandbox, "qilu-bank", MULE) == 80_000_000

    [moved] = await sandbox.mules.step(until=0.5)
    assert (moved.move.id, moved.sent_minor, moved.kept_minor, moved.credited) == (
        "qilu-bank/moves[0]",
        30_000_000,
        0,
        True,
    )
    assert anchor <= moved.at <= datetime.now(UTC)
    assert balance(sandbox, "qilu-bank", MULE) == 50_000_000
    assert balance(sandbox, "huaxia-pay", NEXT) == 30_000_000

    report = await hub.query("qilu-bank", MULE, since=anchor)
    [out] = report.transfers
    assert out.channel == bank_pb2.TRANSFER_CHANNEL_TRANSFER
    assert out.amount == common_pb2.Money(minor_units=30_000_000, currency="CNY")
    assert (out.to_account.institution, out.to_account.account_number) == ("huaxia-pay", NEXT)
    assert out.transferred_at.ToDatetime(tzinfo=UTC) == moved.at >= anchor
    assert report.balance.minor_units == 50_000_000

    cash, abroad = await sandbox.mules.step(until=1.0)
    assert (cash.move.channel, cash.sent_minor, abroad.move.channel, abroad.sent_minor) == (
        "cash",
        5_000_000,
        "abroad",
        5_000_000,
    )
    assert moved.at < cash.at < abroad.at  # transfer times never go backwards
    report = await hub.query("qilu-bank", MULE, since=moved.at + timedelta(microseconds=1))
    assert [(t.channel, t.amount.minor_units, t.HasField("to_account")) for t in report.transfers] == [
        (bank_pb2.TRANSFER_CHANNEL_CASH, 5_000_000, False),
        (bank_pb2.TRANSFER_CHANNEL_ABROAD, 5_000_000, False),
    ]
    # AccountReport has no field for the foreign destination yet; the ledger keeps it.
    stored = sandbox.institutions["qilu-bank"].ledger.transfers(MULE, since=abroad.at)
    assert stored[-1].abroad == Abroad(**ABROAD)

    [off] = await sandbox.mules.step(until=2.0)
    assert (off.sent_minor, off.credited) == (1_000_000, False)  # off the platform: only a debit
    [last] = await sandbox.mules.step(until=3.0)
    assert (last.move.institution, last.sent_minor) == ("huaxia-pay", 30_000_000)
    assert balance(sandbox, "huaxia-pay", NEXT) == 0
    assert sandbox.mules.pending() == [] and sandbox.mules.next_due() is None
    assert balance(sandbox, "qilu-bank", MULE) == 80_000_000 - 30_000_000 - 5_000_000 - 5_000_000 - 1_000_000


async def test_held_money_never_moves(running):
    sandbox, hub = running
    answer = await hub.stop("qilu-bank", MULE, 70_000_000)
    assert answer.outcome == bank_pb2.STOP_PAYMENT_OUTCOME_HELD

    [partly] = await sandbox.mules.step(until=0.5)  # wants 300,000.00; 100,000.00 is not held
    assert (partly.sent_minor, partly.kept_minor, partly.skipped) == (10_000_000, 20_000_000, False)
    cash, abroad = await sandbox.mules.step(until=1.0)  # nothing left that is not held
    assert cash.skipped and abroad.skipped and cash.kept_minor == abroad.kept_minor == 5_000_000
    ledger = sandbox.institutions["qilu-bank"].ledger
    assert ledger.account(MULE).balance_minor == ledger.account(MULE).held_minor == 70_000_000
    assert ledger.move_record(cash.move.id).skipped  # recorded: a skipped move is not tried again
    assert [t.amount_minor for t in ledger.transfers(MULE)] == [10_000_000]
    assert balance(sandbox, "huaxia-pay", NEXT) == 10_000_000

    # A stop that comes after the move holds only what is left.
    [cashed] = [r for r in await sandbox.mules.step(until=3.0) if r.move.institution == "huaxia-pay"]
    assert cashed.sent_minor == 10_000_000
    late = await hub.stop("huaxia-pay", NEXT, 10_000_000)
    assert late.refusal_reason == bank_pb2.REFUSAL_REASON_NO_FUNDS


async def test_a_move_credits_the_other_institution_once_across_a_restart(tmp_path, small):
    keys = keys_for(small)
    registry = registry_for(small, keys)

    def sandbox() -> Sandbox:
        return Sandbox(small, tmp_path, lambda: registry, keys, use_scenario_ports=False, run_mules=False)

    first = sandbox()
    await first.start()
    try:
        await first.mules.step(until=0.5)
    finally:
        await first.stop()

    again = sandbox()  # same ledger files: what a restarted `stopline up` does
    await again.start()
    try:
        assert [r.move.id for r in again.mules.results] == ["qilu-bank/moves[0]"]
        assert again.mules.results[0].replayed
        await again.mules.step(until=100)  # the first move is not run again
        assert balance(again, "huaxia-pay", NEXT) == 0  # credited once, then withdrawn once
        assert len(again.institutions["qilu-bank"].ledger.transfers(MULE)) == 4
        assert [t.amount_minor for t in again.institutions["huaxia-pay"].ledger.transfers(NEXT)] == [
            30_000_000
        ]
    finally:
        await again.stop()


async def test_a_credit_lost_between_debit_and_credit_is_delivered_once_on_restart(tmp_path, small):
    keys = keys_for(small)
    registry = registry_for(small, keys)
    move = small.moves[0]
    for attempt in range(2):  # the restart that delivers the credit, then one more
        sandbox = Sandbox(small, tmp_path, lambda: registry, keys, use_scenario_ports=False, run_mules=False)
        if attempt == 0:  # the debit committed, then the process died before crediting huaxia-pay
            record = sandbox.institutions["qilu-bank"].ledger.send_on(
                move.id, move.transfer(datetime.now(UTC))
            )
            assert record.sent_minor == 30_000_000 and balance(sandbox, "huaxia-pay", NEXT) == 0
        await sandbox.start()
        try:
            assert sandbox.mules.result(move.id).credited
            assert balance(sandbox, "huaxia-pay", NEXT) == 30_000_000
            assert balance(sandbox, "qilu-bank", MULE) == 50_000_000
        finally:
            await sandbox.stop()


async def test_in_normal_runs_a_background_task_runs_the_moves(tmp_path):
    data = small_scenario()
    for inst in data["institutions"]:
        for move in inst["moves"]:
            move["after_seconds"] = 0  # due at once: no waiting on real time
    scenario = parse_scenario(data)
    keys = keys_for(scenario)
    sandbox = Sandbox(scenario, tmp_path, registry_for(scenario, keys), keys, use_scenario_ports=False)
    await sandbox.start()
    try:
        await sandbox.wait_for_mules()
        assert sandbox.mules.pending() == []
        assert balance(sandbox, "qilu-bank", MULE) == 80_000_000 - 41_000_000
        assert balance(sandbox, "huaxia-pay", NEXT) == 0
    finally:
        await sandbox.stop()


def test_the_race_clock_counts_from_start():
    now = [100.0]
    mules = Mules(
        parse_scenario(small_scenario()), {"qilu-bank": None, "huaxia-pay": None}, clock=lambda: now[0]
    )
    with pytest.raises(RuntimeError, match="not started"):
        mules.elapsed()
    mules.start()
    now[0] = 101.25
    assert mules.elapsed() == 1.25
    assert [m.after_seconds for m in mules.pending()] == [0.5, 1.0, 1.0, 2.0, 3.0]
    mules.start()  # start over, e.g. when the case is reported
    assert mules.elapsed() == 0


# --- shipped scenarios ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_loads_and_its_money_adds_up(name):
    scenario = load_scenario(name)
    assert scenario.case is not None
    money = scenario_money_map(scenario)
    assert money.unaccounted() == {}
    assert sum(money.disputed.values()) == sum(t["amount"]["minor_units"] for t in scenario.case["transfers"])
    if scenario.expected is not None:
        assert (
            money.totals()
            == {"balance": 0, "cash": 0, "abroad": 0, "off_platform": 0} | scenario.expected["ends_minor"]
        )
    # Every transfer's destination is known: a sandbox account or an institution off the platform.
    off = {o.id for o in scenario.off_platform}
    for end in (e for ends in money.ends.values() for e in ends):
        assert end.kind in ("balance", "cash", "abroad", "off_platform")
        if end.kind == "off_platform":
            assert end.institution in off


def test_shipped_scenarios_use_distinct_ports():
    seen: dict[int, str] = {}
    for name in SHIPPED:
        for inst in load_scenario(name).institutions:
            assert inst.port is not None, (name, inst.id)
            assert inst.port not in seen, f"{name}/{inst.id} and {seen.get(inst.port)} share port {inst.port}"
            seen[inst.port] = f"{name}/{inst.id}"
    shipped = sorted(p.stem for p in scenario_path("boxing").parent.glob("*.json"))
    assert shipped == sorted(SHIPPED)


def test_the_layered_scenario_is_large_and_layered():
    scenario = load_scenario("layered")
    victims = {t["from"]["account_number"] for t in scenario.case["transfers"]}
    mules = [
        (inst.id, a.number)
        for inst in scenario.institutions
        for a in inst.accounts
        if a.number not in victims
    ]
    assert len(mules) >= 100
    keepers = [inst for inst in scenario.institutions if inst.keeps_accounts]
    assert len(keepers) >= 5 and {inst.kind for inst in keepers} == {
        InstitutionKind.BANK,
        InstitutionKind.PAYMENT_COMPANY,
    }

    # Layers: the longest chain of transfers from a first-hop account; a cycle: money back to an
    # account that had already sent money on.
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for inst in scenario.institutions:
        for t in (*inst.transfers_out, *inst.moves):
            if t.channel == "transfer" and t.to_institution in {i.id for i in scenario.institutions}:
                edges.setdefault((inst.id, t.account), set()).add((t.to_institution, t.to_account))
    first_hops = {(t["to"]["institution"], t["to"]["account_number"]) for t in scenario.case["transfers"]}

    def depth(node, path=()):
        if node in path:
            return 0
        return 1 + max((depth(n, (*path, node)) for n in edges.get(node, ())), default=0)

    assert 4 <= max(depth(f) for f in first_hops) <= 6
    assert any(a in reachable for a, reachable in _reach(edges).items()), "no cycle"
    money = scenario_money_map(scenario)
    assert all(money.totals()[kind] > 0 for kind in ("balance", "cash", "abroad", "off_platform"))
    merges = [
        n
        for n in {n for targets in edges.values() for n in targets}
        if sum(n in t for t in edges.values()) > 1
    ]
    splits = [n for n, targets in edges.items() if len(targets) > 1]
    assert len(merges) >= 5 and len(splits) >= 10


def test_layered_json_is_what_make_layered_writes():
    script = runpy.run_path(
        str(scenario_path("layered").with_name("make_layered.py")), run_name="make_layered"
    )
    assert script["dump"](script["generate"]()) + "\n" == scenario_path("layered").read_text("utf-8")


def _reach(edges):
    out = {}
    for start in edges:
        seen, stack = set(), list(edges[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(edges.get(node, ()))
        out[start] = seen
    return out


@pytest.mark.parametrize("name", ["qingdao", "shengli", "layered"])
async def test_with_nothing_held_the_ledgers_end_where_the_money_map_says(tmp_path, name):
    """The generator's bookkeeping, the money map and the real ledgers agree to the fen."""
    scenario = load_scenario(name)
    keys = keys_for(scenario)
    sandbox = Sandbox(
        scenario, tmp_path, registry_for(scenario, keys), keys, use_scenario_ports=False, run_mules=False
    )
    try:
        results = await sandbox.mules.step(until=float("inf"))
        assert len(results) == len(scenario.moves) and not any(r.skipped for r in results)
        money = scenario_money_map(scenario)
        actual = {
            (inst_id, a.number): a.balance_minor
            for inst_id, inst in sandbox.institutions.items()
            if inst.ledger is not None  # carriers and regulators keep no accounts
            for a in inst.ledger.accounts()
        }
        assert actual == money.balances
    finally:
        await sandbox.stop()


async def test_boxing_a_fast_chase_saves_the_second_layer_and_a_slow_one_does_not(tmp_path):
    scenario = load_scenario("boxing")
    [move] = scenario.moves
    assert (move.institution, move.account, move.after_seconds) == ("huaxia-pay", "HXP-8800-1500-0004", 30)
    saved = {}
    for speed, stop_before in (("fast", True), ("slow", False)):
        keys = keys_for(scenario)
        registry = registry_for(scenario, keys)
        sandbox = Sandbox(scenario, tmp_path / speed, lambda r=registry: r, keys, use_scenario_ports=False,
                          anchor=datetime.now(UTC), run_mules=False)  # fmt: skip
        await sandbox.start()
        try:
            hub = Hub(sandbox, keys, registry)
            if stop_before:
                await hub.stop("huaxia-pay", "HXP-8800-1500-0004", 15_000_000, case_id="BX-1")
            await sandbox.mules.step(until=30)
            if not stop_before:
                await hub.stop("huaxia-pay", "HXP-8800-1500-0004", 15_000_000, case_id="BX-1")
            saved[speed] = sandbox.institutions["huaxia-pay"].ledger.account("HXP-8800-1500-0004").held_minor
        finally:
            await sandbox.stop()
    assert saved == {"fast": 15_000_000, "slow": 0}


def test_shengli_has_a_slow_institution_whose_delay_costs_money():
    scenario = load_scenario("shengli")
    slow = [inst for inst in scenario.institutions if inst.faults.delay_seconds > 0]
    assert slow
    first_hops = {t["to"]["account_number"] for t in scenario.case["transfers"]}
    # Money sits at a first-hop account of the slow institution and leaves sooner than one
    # answer from there takes: a hub that waits on it loses the race.
    assert any(
        m.account in first_hops and m.after_seconds < inst.faults.delay_seconds
        for inst in slow
        for m in inst.moves
    )


def test_the_money_map_follows_own_money_first_and_tags_by_first_hop():
    money = scenario_money_map(parse_scenario(small_scenario()))
    mule = ("qilu-bank", MULE)
    assert money.disputed == {mule: 80_000_000}
    assert money.ends[mule] == {
        End("balance", "qilu-bank", MULE): 39_000_000,
        End("cash", "huaxia-pay", NEXT): 30_000_000,
        End("cash", "qilu-bank", MULE): 5_000_000,
        End("abroad", "FICTDEFFXXX", ABROAD["account"]): 5_000_000,
        End("off_platform", WUYI, "WY-0001"): 1_000_000,
    }


def test_the_money_map_refuses_a_history_that_does_not_add_up():
    data = small_scenario()
    mule = data["institutions"][0]
    # 500,000.00 leaves before the victim's money arrived, from an account that had nothing then.
    mule["accounts"][0]["balance_minor"] = 30_000_000
    mule["transfers_out"] = [
        {"account": MULE, "amount_minor": 50_000_000, "currency": "CNY", "transferred_at": "2026-11-25T00:30:00Z",
         "channel": "cash"},
    ]  # fmt: skip
    with pytest.raises(
        ScenarioError, match=rf"qilu-bank account {MULE}: sends 50000000 at 2026-11-25T00:30:00"
    ):
        scenario_money_map(parse_scenario(data))
    mule["transfers_out"] = []  # now the balance is less than what arrived, and nothing left
    with pytest.raises(
        ScenarioError, match=rf"qilu-bank account {MULE}: the history brings in 50000000 more"
    ):
        scenario_money_map(parse_scenario(data))


# --- validation ----------------------------------------------------------------------------------

M0 = ("institutions", 0, "moves", 0)
M1 = ("institutions", 0, "moves", 1)
M2 = ("institutions", 0, "moves", 2)
WHERE0 = "institutions[0] (qilu-bank).moves[0]"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ((*M0, "account"), "6229119999999999", f"{WHERE0}.account: '6229119999999999' is not one of"),
        ((*M0, "to", "institution"), "nowhere-bank", f"{WHERE0}.to.institution: 'nowhere-bank' is neither"),
        ((*M0, "to", "account_number"), "HXP-0000", f"{WHERE0}.to.account_number: huaxia-pay has no account"),
        ((*M0, "to"), None, f"{WHERE0}.to: must be an object"),
        ((*M0, "amount_minor"), 0, f"{WHERE0}.amount_minor: must be >= 1"),
        ((*M0, "amount_minor"), -5, f"{WHERE0}.amount_minor: must be >= 1"),
        ((*M0, "amount_minor"), 1.5, f"{WHERE0}.amount_minor: must be an integer"),
        ((*M0, "after_seconds"), -0.1, f"{WHERE0}.after_seconds: must be >= 0"),
        ((*M0, "after_seconds"), "soon", f"{WHERE0}.after_seconds: must be a number of seconds"),
        ((*M0, "after_seconds"), True, f"{WHERE0}.after_seconds: must be a number of seconds"),
        ((*M0, "channel"), "wire", f"{WHERE0}.channel: 'wire' is not one of transfer, cash, abroad"),
        ((*M0, "currency"), "USD", f"{WHERE0}.currency: USD but account {MULE} is kept in CNY"),
        ((*M0, "account"), DOLLARS, f"{WHERE0}.currency: CNY but account {DOLLARS} is kept in USD"),
        ((*M0, "to"), {"institution": "qilu-bank", "account_number": MULE},
         f"{WHERE0}.to: an account cannot send money to itself"),
        ((*M1, "to"), {"institution": "huaxia-pay", "account_number": NEXT},
         "institutions[0] (qilu-bank).moves[1].to: a cash withdrawal has no receiving account"),
        ((*M2, "abroad"), None, "institutions[0] (qilu-bank).moves[2].abroad: a transfer abroad needs its details"),
        ((*M2, "abroad", "bic"), "deut", "institutions[0] (qilu-bank).moves[2].abroad.bic: 'deut' is not a BIC"),
        ((*M2, "abroad", "reference"), "", "institutions[0] (qilu-bank).moves[2].abroad.reference: must be"),
        ((*M2, "to"), {"institution": "huaxia-pay", "account_number": NEXT},
         "institutions[0] (qilu-bank).moves[2].to: a transfer abroad names its destination in 'abroad'"),
        (("off_platform_institutions", 0, "id"), "huaxia-pay", "off_platform_institutions[0].id: 'huaxia-pay' is"),
        (("expected",), {"disputed_minor": 80_000_000, "ends_minor": {"balance": 1}},
         "expected.ends_minor: adds up to 1, not disputed_minor 80000000"),
        (("expected",), {"disputed_minor": 5, "ends_minor": {"cash": 5}},
         "expected.disputed_minor: 5, but the case's transfers add up to 80000000"),
    ],
)  # fmt: skip
def test_a_bad_move_is_refused_naming_the_field(path, value, message):
    data = small_scenario()
    target = data
    for step in path[:-1]:
        target = target[step]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(ScenarioError, match="^" + re.escape(message)):
        parse_scenario(data)


def test_history_transfers_name_a_known_destination_too():
    data = json.loads(scenario_path("boxing").read_text("utf-8"))
    bad = copy.deepcopy(data)
    bad["institutions"][0]["transfers_out"][0]["to"]["institution"] = "huaxia-payy"
    with pytest.raises(
        ScenarioError, match=re.escape("institutions[0] (qilu-bank).transfers_out[0].to.institution")
    ):
        parse_scenario(bad)
    # History abroad may carry its details, which the ledger keeps.
    data["institutions"][0]["transfers_out"][1] |= {"channel": "abroad", "abroad": dict(ABROAD)}
    scenario = parse_scenario(data)
    assert scenario.institution("qilu-bank").transfers_out[1].abroad == Abroad(**ABROAD)


def test_history_abroad_details_are_seeded(tmp_path):
    ledger = Ledger(tmp_path / "a.db", "qilu-bank")
    at = datetime(2026, 11, 25, 1, 3, tzinfo=UTC)
    try:
        ledger.seed(
            load_scenario("boxing").institution("qilu-bank").accounts,
            [Transfer(MULE, "", "", 100, "CNY", at, "abroad", Abroad(**ABROAD))],
            shift=timedelta(hours=1),
        )
        [t] = ledger.transfers(MULE)
        assert (t.transferred_at, t.abroad) == (at + timedelta(hours=1), Abroad(**ABROAD))
    finally:
        ledger.close()
