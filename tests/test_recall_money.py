"""The money of a recovery abroad (workflows/recall.py) and the estimate rates setting: amounts
stay in their own currency, each return counts once, and returned + held abroad + outstanding +
lost is always exactly what was sent."""

from __future__ import annotations

import random

import pytest

from stopline.domain import Amount, EstimateRate
from stopline.money import parse_estimate_rates
from workflows.recall import estimate, recovery_totals, release_hold

SENT = Amount(189_600_000, "EUR")  # 1,896,000.00 EUR


def test_while_channels_work_the_rest_is_outstanding_and_after_they_end_it_is_lost():
    returns = {"UETR-R1": 119_600_000}
    held = {"FICTPTPLXXX": 65_000_000}
    assert recovery_totals(SENT, returns, held, ended=False) == (
        Amount(119_600_000, "EUR"), Amount(65_000_000, "EUR"), Amount(5_000_000, "EUR"), Amount(0, "EUR"))
    assert recovery_totals(SENT, returns, held, ended=True) == (
        Amount(119_600_000, "EUR"), Amount(65_000_000, "EUR"), Amount(0, "EUR"), Amount(5_000_000, "EUR"))


def test_a_hold_is_never_counted_beyond_what_has_not_come_back():
    # A bank says it holds all of it, after part came back through another channel.
    returned, held, outstanding, lost = recovery_totals(SENT, {"R1": 100_000_000}, {"FICTDEFFXXX": 189_600_000}, ended=False)
    assert held == Amount(89_600_000, "EUR") and outstanding == Amount(0, "EUR")


def test_returns_beyond_what_was_sent_are_a_bug_not_a_number():
    with pytest.raises(ValueError, match="exceed"):
        recovery_totals(SENT, {"R1": 189_600_000, "R2": 1}, {}, ended=True)


def test_a_return_lowers_only_the_hold_of_the_bank_that_returned_it():
    held = {"FICTDEFFXXX": 119_600_000, "FICTPTPLXXX": 65_000_000}
    release_hold(held, 65_000_000, "FICTPTPLXXX")
    assert held == {"FICTDEFFXXX": 119_600_000, "FICTPTPLXXX": 0}
    release_hold(held, 20_000_000, "FICTXXXXXXX")  # a bank with no hold on record: no one else's hold moves
    assert held == {"FICTDEFFXXX": 119_600_000, "FICTPTPLXXX": 0}
    release_hold(held, 500_000_000, "FICTDEFFXXX")  # more than it held: to zero, no further
    assert held == {"FICTDEFFXXX": 0, "FICTPTPLXXX": 0}
    # Sent 100.00: Lisbon holds 50.00, Frankfurt (no hold on record) returns 50.00. Lisbon still
    # holds its 50.00; nothing is lost.
    held = {"FICTPTPLXXX": 5_000}
    release_hold(held, 5_000, "FICTDEFFXXX")
    sent = Amount(10_000, "EUR")
    assert recovery_totals(sent, {"R": 5_000}, held, ended=True) == (
        Amount(5_000, "EUR"), Amount(5_000, "EUR"), Amount(0, "EUR"), Amount(0, "EUR"))


def test_partial_returns_in_two_currencies_always_add_up_exactly():
    rng = random.Random(20261126)
    for _ in range(2000):
        sent = Amount(rng.randint(1, 10**12), rng.choice(["EUR", "USD", "JPY"]))
        returns, held, left = {}, {}, sent.minor_units
        for i in range(rng.randint(0, 5)):
            if left == 0:
                break
            piece = rng.randint(1, left)
            returns[f"R{i}"] = piece
            left -= piece
            release_hold(held, piece, rng.choice(["A", "B", "C"]))
            if rng.random() < 0.5:
                held[rng.choice(["A", "B"])] = rng.randint(0, sent.minor_units)
        for ended in (False, True):
            parts = recovery_totals(sent, returns, held, ended=ended)
            assert all(p.currency == sent.currency and p.minor_units >= 0 for p in parts)
            assert sum(p.minor_units for p in parts) == sent.minor_units


def test_an_estimate_is_labelled_with_its_rate_and_date_and_rounded_half_even():
    rate = EstimateRate("EUR", "CNY", "7.6120", "2026-11-20")
    shown = estimate(SENT, rate)
    assert shown is not None and shown.amount == Amount(1_443_235_200, "CNY")  # 14,432,352.00 CNY
    assert (shown.rate, shown.rate_date) == ("7.6120", "2026-11-20")
    # 0.01 EUR at 0.5 is 0.005 CNY: half-even to 0.00; 0.03 EUR: 0.015 -> 0.02.
    half = EstimateRate("EUR", "CNY", "0.5", "2026-11-20")
    assert estimate(Amount(1, "EUR"), half).amount.minor_units == 0
    assert estimate(Amount(3, "EUR"), half).amount.minor_units == 2
    # Yen have no minor unit: 1,000 JPY at 0.0478 is 47.80 CNY.
    assert estimate(Amount(1000, "JPY"), EstimateRate("JPY", "CNY", "0.0478", "2026-11-20")).amount == Amount(4780, "CNY")


def test_no_estimate_without_a_rate_for_that_currency():
    assert estimate(SENT, None) is None
    assert estimate(SENT, EstimateRate("USD", "CNY", "7.1", "2026-11-20")) is None


def test_the_rates_setting_is_read_exactly_and_bad_entries_are_named():
    assert parse_estimate_rates("EUR=7.6120@2026-11-20, usd=7.1030@2026-11-21", "CNY") == (
        EstimateRate("EUR", "CNY", "7.6120", "2026-11-20"), EstimateRate("USD", "CNY", "7.1030", "2026-11-21"))
    assert parse_estimate_rates("", "CNY") == ()
    for bad, words in (("EUR=7.6", "CUR=RATE@YYYY-MM-DD"), ("EUX=7.6@2026-11-20", "ISO 4217"),
                       ("EUR=-1@2026-11-20", "positive"), ("EUR=abc@2026-11-20", "positive"),
                       ("EUR=7@20261120", "YYYY-MM-DD"), ("EUR=7@2026-11-20, EUR=8@2026-11-20", "twice")):  # fmt: skip
        with pytest.raises(ValueError, match=words):
            parse_estimate_rates(bad, "CNY")
