"""Showing money to people: integer minor units rendered with the currency's ISO 4217 exponent."""

from __future__ import annotations

import iso4217

from stopline.domain import Amount


def format_amount(amount: Amount) -> str:
    """Amount(147500000, "CNY") -> "1,475,000.00 CNY"; never goes through a float."""
    exponent = iso4217.Currency(amount.currency).exponent or 0
    sign = "-" if amount.minor_units < 0 else ""
    whole, frac = divmod(abs(amount.minor_units), 10**exponent)
    if exponent:
        return f"{sign}{whole:,}.{frac:0{exponent}d} {amount.currency}"
    return f"{sign}{whole:,} {amount.currency}"
