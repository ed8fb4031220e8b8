"""The rule the chase follows money by (workflows/flow.py): pure, so checked exhaustively here,
including that every fen ends in exactly one place."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from stopline.domain import Account, Amount, Channel, FlowKind, OnwardTransfer
from workflows.flow import follow, totals

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
MULE = Account("qilu-bank", "6229110000375002")
NEXT = Account("huaxia-pay", "HXP-8800-1500-0004")


def cny(fen: int) -> Amount:
    return Amount(fen, "CNY")


def out(fen: int, minutes: int, channel=Channel.TRANSFER, to=NEXT, on_platform=True) -> OnwardTransfer:
    return OnwardTransfer(cny(fen), T0 + timedelta(minutes=minutes), channel, to if channel is Channel.TRANSFER else None,
                          on_platform)  # fmt: skip


def test_the_unheld_part_follows_the_transfers_oldest_first():
    flows = follow(MULE, cny(37_500_000), cny(12_640_000), T0,
                   [out(9_860_000, 16, Channel.CASH), out(15_000_000, 5)], depth=1, max_depth=8)  # fmt: skip
    assert [(f.kind, f.amount.minor_units, f.to_account) for f in flows] == [
        (FlowKind.ONWARD, 15_000_000, NEXT),
        (FlowKind.CASH, 9_860_000, None),
    ]


def test_only_the_disputed_amount_is_followed_and_a_transfer_gives_at_most_its_own_amount():
    flows = follow(MULE, cny(1_000), cny(0), T0, [out(600, 1), out(5_000, 2), out(7_000, 3)], depth=1, max_depth=8)
    assert [f.amount.minor_units for f in flows] == [600, 400]


def test_transfers_before_the_money_arrived_or_in_another_currency_are_not_the_disputed_money():
    early = out(500, -10)
    euros = OnwardTransfer(Amount(500, "EUR"), T0 + timedelta(minutes=1), Channel.ABROAD)
    flows = follow(MULE, cny(500), cny(0), T0, [early, euros], depth=1, max_depth=8, why_not_traced="no funds")
    assert [(f.kind, f.amount.minor_units, f.note) for f in flows] == [(FlowKind.NOT_TRACED, 500, "no funds")]


def test_each_destination_is_classified():
    abroad = OnwardTransfer(cny(1), T0, Channel.ABROAD)
    off = out(1, 0, on_platform=False)
    flows = follow(MULE, cny(4), cny(0), T0, [out(1, 0, Channel.CASH), abroad, off, out(1, 0)], depth=3, max_depth=3)
    assert [f.kind for f in flows] == [FlowKind.CASH, FlowKind.ABROAD, FlowKind.OFF_PLATFORM, FlowKind.BEYOND_DEPTH]


def test_all_held_means_nothing_to_follow_and_holding_more_than_disputed_is_refused():
    assert follow(MULE, cny(100), cny(100), T0, [out(100, 1)], depth=1, max_depth=8) == []
    with pytest.raises(ValueError, match="more than the disputed"):
        follow(MULE, cny(100), cny(101), T0, [], depth=1, max_depth=8)


@pytest.mark.parametrize("seed", range(200))
def test_every_fen_ends_in_exactly_one_place(seed):
    rng = random.Random(seed)
    disputed = rng.randint(1, 10_000_000)
    held = rng.choice([0, disputed, rng.randint(0, disputed)])
    transfers = [
        out(rng.randint(1, 5_000_000), rng.randint(-5, 60), rng.choice(list(Channel)), on_platform=rng.random() < 0.8)
        for _ in range(rng.randint(0, 8))
    ]
    flows = follow(MULE, cny(disputed), cny(held), T0, transfers, depth=rng.randint(1, 4), max_depth=3)
    assert held + sum(f.amount.minor_units for f in flows) == disputed
    assert all(f.amount.minor_units > 0 for f in flows)
    lost, abroad, at_large = totals(cny(disputed), cny(held), flows)
    onward = sum(f.amount.minor_units for f in flows if f.kind is FlowKind.ONWARD)
    assert held + lost.minor_units + abroad.minor_units + at_large.minor_units == disputed
    assert at_large.minor_units == onward + sum(f.amount.minor_units for f in flows if f.kind.at_large)


def test_only_the_disputed_share_of_a_payment_abroad_is_followed_in_its_own_currency():
    """800,000.00 CNY left as 104,000.00 EUR, of which 400,000.00 CNY was the victims' money: the
    recall counts 52,000.00 EUR, never the mule's own half."""
    from stopline.domain import ForeignDestination

    where = ForeignDestination("FICTFRPPXXX", "FR76300060000112345678", "uetr-1", Amount(10_400_000, "EUR"))
    payment = OnwardTransfer(cny(80_000_000), T0 + timedelta(minutes=1), Channel.ABROAD, abroad=where)
    (half,) = follow(MULE, cny(40_000_000), cny(0), T0, [payment], depth=1, max_depth=8)
    assert (half.kind, half.amount, half.abroad.amount) == (FlowKind.ABROAD, cny(40_000_000), Amount(5_200_000, "EUR"))
    assert (half.abroad.bic, half.abroad.payment_reference) == ("FICTFRPPXXX", "uetr-1")
    (whole,) = follow(MULE, cny(90_000_000), cny(10_000_000), T0, [payment], depth=1, max_depth=8)
    assert whole.abroad == where  # all of it disputed: the payment as sent
    # A third of 1.00 EUR is rounded down to the cent: the recall never claims more than the share.
    odd = OnwardTransfer(cny(300), T0, Channel.ABROAD, abroad=ForeignDestination("FICTFRPPXXX", "a", "r", Amount(100, "EUR")))
    (third,) = follow(MULE, cny(100), cny(0), T0, [odd], depth=1, max_depth=8)
    assert third.abroad.amount == Amount(33, "EUR")
