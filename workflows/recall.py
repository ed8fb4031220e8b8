"""The money of one recovery abroad, as pure functions (no I/O, no clock) the workflow decides with.

Amounts stay in the payment's own currency: a return in EUR is counted in EUR, never converted.
Every cent of what was sent is in exactly one place:

    returned + held abroad + outstanding + lost = sent

- returned: each return counted once by its reference, however many channels report it;
- held abroad: what the banks holding it last said they hold, less what they returned since,
  never more than what has not come back;
- outstanding: the rest while channels still work on it;
- lost: the rest once every channel has ended (refused, gave up, fell silent for good).

A figure in another currency is only ever an estimate, labelled with its rate and the rate's date.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import iso4217

from stopline.domain import Amount, CurrencyEstimate, EstimateRate


def recovery_totals(
    sent: Amount, returns: dict[str, int], held: dict[str, int], *, ended: bool
) -> tuple[Amount, Amount, Amount, Amount]:
    """(returned, held abroad, outstanding, lost) of `sent`: `returns` by return reference,
    `held` by the holding bank's BIC, both in minor units of sent's currency."""
    currency = sent.currency
    returned = sum(returns.values())
    if returned > sent.minor_units:
        raise ValueError(f"returns of {returned} exceed the {sent.minor_units} sent")
    held_abroad = min(sum(held.values()), sent.minor_units - returned)
    rest = sent.minor_units - returned - held_abroad
    outstanding, lost = (0, rest) if ended else (rest, 0)
    return (Amount(returned, currency), Amount(held_abroad, currency), Amount(outstanding, currency),
            Amount(lost, currency))  # fmt: skip


def release_hold(held: dict[str, int], amount: int, bic: str) -> None:
    """A return of `amount` came from the bank `bic`: what it holds goes down by that much (never
    below zero). Other banks' holds are theirs: a return from a bank with no hold on record
    touches none of them (recovery_totals caps the sum at what has not come back)."""
    if bic in held:
        held[bic] = max(0, held[bic] - amount)


def _exponent(currency: str) -> int:
    return iso4217.Currency(currency).exponent or 0


def estimate(amount: Amount, rate: EstimateRate | None) -> CurrencyEstimate | None:
    """`amount` in the rate's target currency, rounded half-even to its minor unit; None when no
    rate applies (no rate, another currency, or a rate that is not a positive decimal)."""
    if rate is None or rate.currency != amount.currency:
        return None
    try:
        factor = Decimal(rate.rate)
    except InvalidOperation:
        return None
    if not factor.is_finite() or factor <= 0:
        return None
    major = Decimal(amount.minor_units).scaleb(-_exponent(amount.currency)) * factor
    minor = major.scaleb(_exponent(rate.to)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return CurrencyEstimate(Amount(int(minor), rate.to), rate.rate, rate.rate_date)
