"""Return of frozen money to victims: who gets how much of each frozen account.

The rule (资金返还): frozen money goes back to the victims whose money reached the account; straight
to the victim where it traces to one victim, otherwise pro rata among the victims after a 30-day
public notice. Precisely, for pools of frozen money (one per frozen account) and each victim's
reported loss:

1. A pool whose money traces to one victim is returned to that victim ("direct"), up to what the
   victim has not yet been returned.
2. A pool whose money traces to several victims is split among them in proportion to their
   reported losses ("pro rata"), by the largest-remainder (Hamilton) method in integer minor
   units: each victim first gets floor(pool × loss ÷ total loss), the total loss being that of the
   pool's victims taking part; the minor units left over then go one each to the victims with the
   largest remainders (pool × loss mod total loss), ties broken by the larger loss, then by the
   victim's place in the pool's list (the order they were reported in).
3. Nobody is returned more than their reported loss, across all pools. A victim whose share of a
   pool is more than they can still take gets exactly what they can still take and drops out; the
   rest of the pool is split again among the pool's other victims by rule 2, and so on. A victim
   already returned their whole loss takes no part. What none of a pool's victims can take stays
   in the pool, unallocated (`ReturnPlan.leftover`), for the officer to decide on.
4. Pools are settled one at a time, in a fixed order that does not depend on the order they are
   given in: first every direct pool, then the pro rata pools, each group in order of the frozen
   account (institution code, then account number). Direct pools go first so that money traced to
   one victim alone is never left unallocated because a shared pool covered that victim first.
5. For every pool, what is allocated plus what is left over equals the pool, to the minor unit;
   no allocation is of zero.

This module only decides the amounts. Pro rata returns wait for the 30-day public notice
(`PUBLIC_NOTICE`) before they are ordered; that wait, and the institution's 3 working days to
complete a return (workflows/calendar.py), belong to the workflow.

Pure and deterministic (integer arithmetic only, no clock, no randomness, no I/O): it runs inside
Temporal's workflow sandbox and imports only the standard library and stopline.domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from stopline.domain import Account, Amount

DIRECT = "direct"
PRO_RATA = "pro rata"
PUBLIC_NOTICE = timedelta(days=30)


@dataclass(frozen=True)
class FrozenPool:
    """Money frozen on one account, and the victims whose money reached it, in the order they
    were reported."""

    account: Account
    amount: Amount
    victims: tuple[Account, ...]


@dataclass(frozen=True)
class Allocation:
    """Return `amount` from the frozen `account` to `victim`, under `rule` ("direct" or "pro rata")."""

    account: Account
    victim: Account
    amount: Amount
    rule: str


@dataclass(frozen=True)
class ReturnPlan:
    """Every allocation (pools in the order given, each pool's victims in their order), and per
    frozen account what nobody could take (only accounts with something left over appear)."""

    allocations: list[Allocation]
    leftover: dict[Account, Amount] = field(default_factory=dict)

    def returned_to(self, victim: Account) -> int:
        """Minor units allocated to `victim` across all pools."""
        return sum(a.amount.minor_units for a in self.allocations if a.victim == victim)


def allocate(pools: Sequence[FrozenPool], losses: Mapping[Account, Amount]) -> list[Allocation]:
    """The allocations of `plan_returns(pools, losses)`; see that for what is left over."""
    return plan_returns(pools, losses).allocations


def plan_returns(pools: Sequence[FrozenPool], losses: Mapping[Account, Amount]) -> ReturnPlan:
    """Split each frozen pool among its victims by the rule in this module's docstring.

    `losses` holds each victim's reported loss (positive, in the currency of every pool the victim
    appears in). Raises ValueError, saying what is wrong, for a pool with no victims or the same
    victim twice, a victim without a reported loss, a loss that is not positive, a pool that is
    negative, a currency mismatch between a pool and a loss, or the same account given as two pools.
    """
    _validate(pools, losses)
    # What each victim can still be returned, in minor units.
    room = {victim: loss.minor_units for victim, loss in losses.items()}
    settled: dict[Account, list[tuple[Account, int]]] = {}
    leftover: dict[Account, Amount] = {}
    for pool in sorted(pools, key=lambda p: (len(p.victims) > 1, p.account)):
        shares = _settle(pool, losses, room)
        settled[pool.account] = shares
        rest = pool.amount.minor_units - sum(units for _, units in shares)
        if rest:
            leftover[pool.account] = Amount(rest, pool.amount.currency)
    allocations: list[Allocation] = []
    for pool in pools:
        rule = DIRECT if len(pool.victims) == 1 else PRO_RATA
        by_victim = dict(settled[pool.account])
        for victim in pool.victims:
            units = by_victim.get(victim, 0)
            if units:
                allocations.append(
                    Allocation(pool.account, victim, Amount(units, pool.amount.currency), rule)
                )
    ordered_leftover = {p.account: leftover[p.account] for p in pools if p.account in leftover}
    return ReturnPlan(allocations, ordered_leftover)


def hamilton(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` minor units in proportion to positive integer `weights` by largest remainder.

    Each gets floor(amount × weight ÷ total); the units left over go one each to the largest
    remainders, ties broken by the larger weight, then by position. The result sums to `amount`
    and each part is within one unit of its exact share.
    """
    if amount < 0:
        raise ValueError(f"cannot split a negative amount ({amount})")
    if not weights or any(w <= 0 for w in weights):
        raise ValueError(f"weights must be positive and at least one: {list(weights)}")
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    short = amount - sum(parts)  # 0 <= short < len(weights)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], -weights[i], i))
    for i in order[:short]:
        parts[i] += 1
    return parts


def _settle(
    pool: FrozenPool, losses: Mapping[Account, Amount], room: dict[Account, int]
) -> list[tuple[Account, int]]:
    """(victim, minor units) for one pool, taken from `room` (updated); victims in pool order."""
    taking = [v for v in pool.victims if room[v] > 0]
    remaining = pool.amount.minor_units
    got: dict[Account, int] = {}
    while taking and remaining:
        parts = hamilton(remaining, [losses[v].minor_units for v in taking])
        capped = [(v, room[v]) for v, part in zip(taking, parts, strict=True) if part > room[v]]
        if not capped:
            got.update(zip(taking, parts, strict=True))
            break
        # Everyone whose share is more than they can take gets what they can take; the others'
        # shares can only grow when the pool is split again without them.
        for victim, units in capped:
            got[victim] = units
            remaining -= units
        capped_victims = {v for v, _ in capped}
        taking = [v for v in taking if v not in capped_victims]
    for victim, units in got.items():
        room[victim] -= units
    return [(v, got[v]) for v in pool.victims if got.get(v)]


def _validate(pools: Sequence[FrozenPool], losses: Mapping[Account, Amount]) -> None:
    for victim, loss in losses.items():
        if not _is_units(loss.minor_units):
            raise ValueError(
                f"loss of victim {victim} is not a whole number of minor units: {loss.minor_units!r}"
            )
        if loss.minor_units <= 0:
            raise ValueError(f"loss of victim {victim} is not positive: {loss.minor_units} {loss.currency}")
    seen: set[Account] = set()
    for pool in pools:
        if pool.account in seen:
            raise ValueError(f"frozen account {pool.account} is given as two pools; give its total once")
        seen.add(pool.account)
        if not _is_units(pool.amount.minor_units):
            raise ValueError(
                f"pool of {pool.account} is not a whole number of minor units: {pool.amount.minor_units!r}"
            )
        if pool.amount.minor_units < 0:
            raise ValueError(
                f"pool of {pool.account} is negative: {pool.amount.minor_units} {pool.amount.currency}"
            )
        if not pool.victims:
            raise ValueError(f"pool of {pool.account} has no victims")
        if len(set(pool.victims)) != len(pool.victims):
            raise ValueError(f"pool of {pool.account} lists a victim twice: {[str(v) for v in pool.victims]}")
        for victim in pool.victims:
            loss = losses.get(victim)
            if loss is None:
                raise ValueError(f"victim {victim} of the pool of {pool.account} has no reported loss")
            if loss.currency != pool.amount.currency:
                raise ValueError(
                    f"currency mismatch: the pool of {pool.account} is in {pool.amount.currency} "
                    f"but victim {victim}'s loss is in {loss.currency}"
                )


def _is_units(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
