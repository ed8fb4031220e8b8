"""workflows/returns.py: who gets how much of each frozen account (pure; one test runs it in
Temporal's workflow sandbox)."""

from __future__ import annotations

import ast
import random
import sys

from temporalio import workflow

# The test's own tools pass through the sandbox; the module under test is imported afresh in it.
with workflow.unsafe.imports_passed_through():
    from pathlib import Path

    import pytest

    from tests.conftest import new_worker
from stopline.domain import Account, Amount
from workflows.returns import (
    DIRECT,
    PRO_RATA,
    Allocation,
    FrozenPool,
    ReturnPlan,
    allocate,
    hamilton,
    plan_returns,
)

MULE = Account("icbc", "6222000000000001")
MULE2 = Account("abc", "6228000000000002")
MULE3 = Account("ccb", "6217000000000003")
A = Account("boc", "1001")
B = Account("boc", "1002")
C = Account("cmb", "1003")
D = Account("cmb", "1004")


def cny(units: int) -> Amount:
    return Amount(units, "CNY")


def lines(plan_or_list) -> list[tuple[Account, Account, int, str]]:
    allocations = plan_or_list.allocations if isinstance(plan_or_list, ReturnPlan) else plan_or_list
    return [(a.account, a.victim, a.amount.minor_units, a.rule) for a in allocations]


# --- worked examples ---------------------------------------------------------------------------


def test_one_victim_gets_the_whole_pool_directly():
    assert allocate([FrozenPool(MULE, cny(5_000_00), (A,))], {A: cny(8_000_00)}) == [
        Allocation(MULE, A, cny(5_000_00), DIRECT)
    ]


def test_100_over_equal_losses_gives_the_extra_fen_to_the_first_reported():
    # 10000 fen / 3: floor 3333 each, one fen left; remainders equal (1), losses equal, so the
    # victim reported first gets it: 33.34 / 33.33 / 33.33.
    losses = {A: cny(50_00), B: cny(50_00), C: cny(50_00)}
    assert lines(allocate([FrozenPool(MULE, cny(100_00), (A, B, C))], losses)) == [
        (MULE, A, 33_34, PRO_RATA),
        (MULE, B, 33_33, PRO_RATA),
        (MULE, C, 33_33, PRO_RATA),
    ]
    # Reported in another order, the extra fen follows the order.
    assert lines(allocate([FrozenPool(MULE, cny(100_00), (C, A, B))], losses)) == [
        (MULE, C, 33_34, PRO_RATA),
        (MULE, A, 33_33, PRO_RATA),
        (MULE, B, 33_33, PRO_RATA),
    ]


def test_equal_remainders_go_to_the_larger_loss_then_to_the_first_reported():
    # 2 fen over losses 0.02 / 0.07 / 0.01 (total 10): exact shares 0.4, 1.4, 0.2; floors 0, 1, 0
    # and one fen left; remainders 4, 4, 2: A and B tie, B lost more and gets it.
    losses = {A: cny(2), B: cny(7), C: cny(1)}
    assert lines(allocate([FrozenPool(MULE, cny(2), (A, B, C))], losses)) == [(MULE, B, 2, PRO_RATA)]
    # The larger loss wins the tie wherever it stands in the list.
    assert hamilton(2, [2, 7, 1]) == [0, 2, 0]
    assert hamilton(2, [7, 2, 1]) == [2, 0, 0]
    # Same remainder and same loss: the one reported first. 5 over 2:3:3:2 (total 10): shares
    # 1, 1.5, 1.5, 1; floors 1, 1, 1, 1 and one left; the two 3s tie -> the first of them.
    assert hamilton(5, [2, 3, 3, 2]) == [1, 2, 1, 1]
    assert hamilton(1, [2, 4, 2, 4]) == [0, 1, 0, 0]


def test_a_larger_remainder_beats_a_larger_loss():
    # 3 over 1:4 (total 5): shares 0.6 and 2.4; floors 0, 2; remainders 3, 2 -> the smaller loss.
    assert hamilton(3, [1, 4]) == [1, 2]
    # 2 fen over 3:2:1 (total 6): shares 1, 0.67, 0.33; floors 1, 0, 0; remainders 0, 4, 2 -> B.
    assert lines(allocate([FrozenPool(MULE, cny(2), (A, B, C))], {A: cny(3), B: cny(2), C: cny(1)})) == [
        (MULE, A, 1, PRO_RATA),
        (MULE, B, 1, PRO_RATA),
    ]


def test_pro_rata_by_reported_loss():
    # 120,000.00 frozen, losses 300,000 / 100,000 / 200,000 -> 60,000 / 20,000 / 40,000.
    losses = {A: cny(300_000_00), B: cny(100_000_00), C: cny(200_000_00)}
    plan = plan_returns([FrozenPool(MULE, cny(120_000_00), (A, B, C))], losses)
    assert lines(plan) == [
        (MULE, A, 60_000_00, PRO_RATA),
        (MULE, B, 20_000_00, PRO_RATA),
        (MULE, C, 40_000_00, PRO_RATA),
    ]
    assert plan.leftover == {}


def test_capped_victim_passes_the_rest_to_the_others_and_nobody_over_their_loss():
    # 1,000.00 frozen; A lost 100.00, B 300.00, C 600.00 — together exactly 1,000.00.
    losses = {A: cny(100_00), B: cny(300_00), C: cny(600_00)}
    # A direct pool already returned A 80.00 of their 100.00; the shared pool would give A
    # 100.00 but A can take only 20.00. The 80.00 A cannot take is split 1:2 between B and C.
    plan = plan_returns(
        [FrozenPool(MULE, cny(1_000_00), (A, B, C)), FrozenPool(MULE2, cny(80_00), (A,))],
        losses,
    )
    assert lines(plan) == [
        (MULE, A, 20_00, PRO_RATA),
        (MULE, B, 300_00, PRO_RATA),
        (MULE, C, 600_00, PRO_RATA),
        (MULE2, A, 80_00, DIRECT),
    ]
    assert plan.leftover == {MULE: cny(80_00)}  # 1,080.00 frozen for 1,000.00 lost


def test_direct_pools_are_settled_before_shared_ones_whatever_the_order_given():
    # A lost 100.00. Their own pool (direct) holds 100.00; a shared pool with B holds 100.00.
    # Direct first: A's own 100.00 covers A, the shared pool goes entirely to B.
    losses = {A: cny(100_00), B: cny(500_00)}
    pools = [FrozenPool(MULE, cny(100_00), (A, B)), FrozenPool(MULE2, cny(100_00), (A,))]
    for given in (pools, pools[::-1]):
        plan = plan_returns(given, losses)
        assert sorted(lines(plan)) == sorted([(MULE, B, 100_00, PRO_RATA), (MULE2, A, 100_00, DIRECT)])
        assert plan.leftover == {}


def test_what_nobody_can_take_stays_unallocated():
    losses = {A: cny(40_00), B: cny(60_00)}
    plan = plan_returns(
        [
            FrozenPool(MULE, cny(250_00), (A, B)),
            FrozenPool(MULE2, cny(30_00), (A,)),
            FrozenPool(MULE3, cny(0), (B,)),
        ],
        losses,
    )
    # MULE2 first (direct): A 30.00 of 40.00. MULE: shares 100.00 / 150.00, both capped: A 10.00,
    # B 60.00; 180.00 left. MULE3 is empty: no line, nothing left.
    assert lines(plan) == [(MULE, A, 10_00, PRO_RATA), (MULE, B, 60_00, PRO_RATA), (MULE2, A, 30_00, DIRECT)]
    assert plan.leftover == {MULE: cny(180_00)}
    assert plan.returned_to(A) == 40_00 and plan.returned_to(B) == 60_00


def test_direct_pool_larger_than_the_loss_leaves_the_rest():
    plan = plan_returns([FrozenPool(MULE, cny(900_00), (A,))], {A: cny(700_00)})
    assert lines(plan) == [(MULE, A, 700_00, DIRECT)]
    assert plan.leftover == {MULE: cny(200_00)}


def test_a_victim_already_covered_takes_no_part_and_gets_no_zero_line():
    losses = {A: cny(10_00), B: cny(10_00), C: cny(10_00)}
    plan = plan_returns(
        [FrozenPool(MULE2, cny(10_00), (A,)), FrozenPool(MULE, cny(7), (A, B, C))],
        losses,
    )
    # A is covered by the direct pool; 7 fen over B and C: 4 / 3 (B reported before C).
    assert lines(plan) == [(MULE2, A, 10_00, DIRECT), (MULE, B, 4, PRO_RATA), (MULE, C, 3, PRO_RATA)]
    # 1 fen over three equal losses: one line, not three.
    assert lines(allocate([FrozenPool(MULE, cny(1), (A, B, C))], losses)) == [(MULE, A, 1, PRO_RATA)]


def test_shared_pools_are_settled_in_account_order():
    # A lost 10.00 and is in two shared pools; the pool on the smaller account (abc < icbc) is
    # settled first and fills A, so in the other A takes nothing and B takes it all.
    losses = {A: cny(10_00), B: cny(10_00)}
    pools = [FrozenPool(MULE, cny(20_00), (A, B)), FrozenPool(MULE2, cny(20_00), (A, B))]
    assert MULE2 < MULE
    for given in (pools, pools[::-1]):
        plan = plan_returns(given, losses)
        assert sorted(lines(plan)) == sorted([(MULE2, A, 10_00, PRO_RATA), (MULE2, B, 10_00, PRO_RATA)])
        assert plan.leftover == {MULE: cny(20_00)}


def test_other_currencies_are_kept_apart():
    usd_victim = Account("hsbc", "9")
    plan = plan_returns(
        [FrozenPool(MULE, cny(300), (A,)), FrozenPool(MULE2, Amount(250, "USD"), (usd_victim,))],
        {A: cny(1000), usd_victim: Amount(100, "USD")},
    )
    assert plan.allocations == [
        Allocation(MULE, A, cny(300), DIRECT),
        Allocation(MULE2, usd_victim, Amount(100, "USD"), DIRECT),
    ]
    assert plan.leftover == {MULE2: Amount(150, "USD")}


def test_no_pools_no_allocations():
    assert plan_returns([], {A: cny(1)}) == ReturnPlan([], {})


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pools", "losses", "message"),
    [
        ([FrozenPool(MULE, cny(100), (A,))], {A: Amount(100, "USD")}, "currency mismatch"),
        ([FrozenPool(MULE, cny(100), (A,))], {A: cny(0)}, "not positive"),
        ([FrozenPool(MULE, cny(100), (A,))], {A: cny(-5)}, "not positive"),
        ([FrozenPool(MULE, cny(100), (A, B))], {A: cny(5)}, "has no reported loss"),
        ([FrozenPool(MULE, cny(100), ())], {A: cny(5)}, "has no victims"),
        ([FrozenPool(MULE, cny(100), (A, A))], {A: cny(5)}, "lists a victim twice"),
        ([FrozenPool(MULE, cny(-1), (A,))], {A: cny(5)}, "negative"),
        ([FrozenPool(MULE, cny(1), (A,)), FrozenPool(MULE, cny(2), (A,))], {A: cny(5)}, "two pools"),
        ([FrozenPool(MULE, Amount(1.5, "CNY"), (A,))], {A: cny(5)}, "whole number"),  # type: ignore[arg-type]
        ([FrozenPool(MULE, cny(1), (A,))], {A: Amount(2.0, "CNY")}, "whole number"),  # type: ignore[arg-type]
        ([], {B: cny(0)}, "not positive"),  # every loss is checked, in a pool or not
    ],
)
def test_bad_input_says_what_is_wrong(pools, losses, message):
    with pytest.raises(ValueError, match=message):
        plan_returns(pools, losses)
    with pytest.raises(ValueError, match=message):
        allocate(pools, losses)


def test_hamilton_refuses_nonsense():
    with pytest.raises(ValueError):
        hamilton(-1, [1])
    with pytest.raises(ValueError):
        hamilton(1, [])
    with pytest.raises(ValueError):
        hamilton(1, [1, 0])


# --- properties over random cases --------------------------------------------------------------


def random_case(rng: random.Random) -> tuple[list[FrozenPool], dict[Account, Amount]]:
    victims = [Account(rng.choice(["boc", "cmb", "icbc"]), f"v{i}") for i in range(rng.randint(1, 8))]
    scale = rng.choice([10, 1_000, 100_000, 10_000_000])
    losses = {v: cny(rng.randint(1, scale)) for v in victims}
    if rng.random() < 0.3:  # equal losses make ties
        same = rng.randint(1, scale)
        losses = {v: cny(same) for v in victims}
    pools = []
    for j in range(rng.randint(0, 6)):
        k = 1 if rng.random() < 0.3 else rng.randint(1, len(victims))
        pool_victims = tuple(rng.sample(victims, k))
        amount = rng.choice([0, rng.randint(0, 20), rng.randint(0, scale * 3)])
        pools.append(
            FrozenPool(Account(rng.choice(["abc", "ccb", "psbc"]), f"m{j}"), cny(amount), pool_victims)
        )
    return pools, losses


def check_invariants(pools: list[FrozenPool], losses: dict[Account, Amount], plan: ReturnPlan) -> None:
    by_pool: dict[Account, list[Allocation]] = {p.account: [] for p in pools}
    for a in plan.allocations:
        by_pool[a.account].append(a)
        assert a.amount.minor_units > 0, "no zero lines"
        assert a.amount.currency == "CNY"
    for pool in pools:
        allocated = sum(a.amount.minor_units for a in by_pool[pool.account])
        left = plan.leftover.get(pool.account, cny(0)).minor_units
        assert allocated + left == pool.amount.minor_units, "conservation to the fen"
        assert left >= 0
        assert pool.account not in plan.leftover or left > 0
        assert {a.victim for a in by_pool[pool.account]} <= set(pool.victims)
        assert [a.victim for a in by_pool[pool.account]] == [
            v for v in pool.victims if v in {a.victim for a in by_pool[pool.account]}
        ], "in the pool's victim order"
        rule = DIRECT if len(pool.victims) == 1 else PRO_RATA
        assert all(a.rule == rule for a in by_pool[pool.account])
        # Something is left over only when every victim of the pool has their whole loss back.
        if left:
            assert all(plan.returned_to(v) == losses[v].minor_units for v in pool.victims)
    for victim, loss in losses.items():
        assert plan.returned_to(victim) <= loss.minor_units, "nobody over their loss"


def check_proportional(pools: list[FrozenPool], losses: dict[Account, Amount], plan: ReturnPlan) -> None:
    """With each victim in one pool only (no caps from elsewhere) and losses covering the pool,
    every share is within one fen of pool × loss ÷ total loss."""
    for pool in pools:
        total = sum(losses[v].minor_units for v in pool.victims)
        got = {a.victim: a.amount.minor_units for a in plan.allocations if a.account == pool.account}
        for v in pool.victims:
            exact_times_total = pool.amount.minor_units * losses[v].minor_units
            assert abs(got.get(v, 0) * total - exact_times_total) < total


def test_random_cases_conserve_cap_and_are_deterministic():
    rng = random.Random(20260101)
    for _ in range(1_000):
        pools, losses = random_case(rng)
        plan = plan_returns(pools, losses)
        check_invariants(pools, losses, plan)
        assert plan_returns(pools, losses) == plan, "same input, same output"
        assert allocate(pools, losses) == plan.allocations
        shuffled = list(pools)
        rng.shuffle(shuffled)
        other = plan_returns(shuffled, dict(reversed(list(losses.items()))))
        assert sorted(lines(other)) == sorted(lines(plan)), "order of pools given changes nothing"
        assert other.leftover == plan.leftover
        for victim in losses:
            assert other.returned_to(victim) == plan.returned_to(victim)


def test_random_cases_are_proportional_within_one_fen():
    rng = random.Random(7)
    for case in range(1_000):
        # Disjoint victims per pool, each pool at most the pool's total loss: no cap binds.
        pools, losses = [], {}
        for j in range(rng.randint(1, 4)):
            victims = tuple(Account("boc", f"p{case}-{j}-{i}") for i in range(rng.randint(1, 7)))
            for v in victims:
                losses[v] = cny(rng.randint(1, rng.choice([3, 1_000, 50_000_000])))
            total = sum(losses[v].minor_units for v in victims)
            pools.append(FrozenPool(Account("icbc", f"m{j}"), cny(rng.randint(0, total)), victims))
        plan = plan_returns(pools, losses)
        check_invariants(pools, losses, plan)
        check_proportional(pools, losses, plan)
        assert plan.leftover == {}


def test_random_cases_among_those_not_capped_stay_proportional():
    """Within a pool, the victims who were not capped split what the capped ones left in
    proportion to their losses, within one fen."""
    rng = random.Random(99)
    for _ in range(1_000):
        pools, losses = random_case(rng)
        plan = plan_returns(pools, losses)
        for pool in pools:
            got = {a.victim: a.amount.minor_units for a in plan.allocations if a.account == pool.account}
            # Victims who did not end at their full loss were not capped in this pool.
            free = [v for v in pool.victims if plan.returned_to(v) < losses[v].minor_units]
            if len(free) < 2:
                continue
            share = sum(got.get(v, 0) for v in free)
            total = sum(losses[v].minor_units for v in free)
            for v in free:
                assert abs(got.get(v, 0) * total - share * losses[v].minor_units) < total


def test_hamilton_random():
    rng = random.Random(3)
    for _ in range(1_000):
        weights = [rng.randint(1, 10 ** rng.randint(0, 9)) for _ in range(rng.randint(1, 9))]
        amount = rng.randint(0, 10**12)
        parts = hamilton(amount, weights)
        total = sum(weights)
        assert sum(parts) == amount
        assert all(abs(p * total - amount * w) < total for p, w in zip(parts, weights, strict=True))
        # Quota rule: everyone gets their floor or floor + 1, never less.
        assert all(
            amount * w // total <= p <= amount * w // total + 1 for p, w in zip(parts, weights, strict=True)
        )


# --- sandbox safety ----------------------------------------------------------------------------


def test_imports_only_the_standard_library_and_domain():
    """It runs in Temporal's workflow sandbox: no I/O, no clock, no randomness."""
    source = Path(__file__).resolve().parents[1] / "workflows" / "returns.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    for name in imported:
        assert name == "stopline.domain" or name.split(".")[0] in sys.stdlib_module_names, name
    assert not {n.split(".")[0] for n in imported} & {
        "random",
        "time",
        "os",
        "uuid",
        "secrets",
        "io",
        "socket",
    }


def described(seed: int) -> list[str]:
    pools, losses = random_case(random.Random(seed))  # a seeded Random: deterministic
    plan = plan_returns(pools, losses)
    return [f"{a.account}>{a.victim}:{a.amount.minor_units}:{a.rule}" for a in plan.allocations] + [
        f"left {account}:{amount.minor_units}" for account, amount in plan.leftover.items()
    ]


@workflow.defn(sandboxed=True)
class AllocationWorkflow:
    @workflow.run
    async def run(self, seeds: list[int]) -> list[list[str]]:
        return [described(seed) for seed in seeds]


async def test_runs_inside_the_workflow_sandbox(time_skipping_env):
    client = time_skipping_env.client
    seeds = list(range(1, 30))
    async with new_worker(client, AllocationWorkflow, workflow_failure_exception_types=[Exception]) as worker:
        inside = await client.execute_workflow(
            AllocationWorkflow.run, seeds, id=f"allocation-{worker.task_queue}", task_queue=worker.task_queue
        )
    assert inside == [described(seed) for seed in seeds]
    assert sum(len(lines) for lines in inside) > 50
