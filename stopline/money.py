"""Showing money to people: integer minor units rendered with the currency's ISO 4217 exponent."""

from __future__ import annotations

import iso4217

from stopline.domain import Amount, EstimateRate


def format_amount(amount: Amount) -> str:
    """Amount(147500000, "CNY") -> "1,475,000.00 CNY"; never goes through a float."""
    exponent = iso4217.Currency(amount.currency).exponent or 0
    sign = "-" if amount.minor_units < 0 else ""
    whole, frac = divmod(abs(amount.minor_units), 10**exponent)
    if exponent:
        return f"{sign}{whole:,}.{frac:0{exponent}d} {amount.currency}"
    return f"{sign}{whole:,} {amount.currency}"


def parse_amount(text: str, currency: str) -> Amount:
    """"800,000.00" in CNY -> Amount(80000000, "CNY"); refuses more decimals than the currency
    has, negative or non-numeric text (ValueError says which). Never goes through a float."""
    from decimal import Decimal, InvalidOperation

    try:
        exponent = iso4217.Currency(currency.upper()).exponent or 0
    except ValueError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code") from None
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    minor = value * (10**exponent)
    if minor != minor.to_integral_value() or value <= 0:
        raise ValueError(f"{text!r} is not a positive amount with at most {exponent} decimals in {currency}")
    return Amount(int(minor), currency.upper())


def parse_estimate_rates(text: str, to: str) -> tuple[EstimateRate, ...]:
    from decimal import Decimal, InvalidOperation

    """"EUR=7.6120@2026-11-20, USD=7.1030@2026-11-20" -> rates into `to`; ValueError naming the
    bad entry."""
    rates = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            currency, rest = part.split("=", 1)
            rate, rate_date = rest.split("@", 1)
        except ValueError:
            raise ValueError(f"{part!r}: write CUR=RATE@YYYY-MM-DD, e.g. EUR=7.6120@2026-11-20") from None
        currency, rate, rate_date = currency.strip().upper(), rate.strip(), rate_date.strip()
        try:
            iso4217.Currency(currency)
        except ValueError:
            raise ValueError(f"{part!r}: {currency!r} is not an ISO 4217 currency code") from None
        try:
            value = Decimal(rate)
        except InvalidOperation:
            value = Decimal(0)
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{part!r}: {rate!r} is not a positive decimal rate")
        if len(rate_date) != 10 or rate_date[4] != "-" or rate_date[7] != "-" or not rate_date.replace("-", "").isdigit():
            raise ValueError(f"{part!r}: {rate_date!r} is not a date (YYYY-MM-DD)")
        if any(r.currency == currency for r in rates):
            raise ValueError(f"{part!r}: {currency} is given twice")
        rates.append(EstimateRate(currency, to, rate, rate_date))
    return tuple(rates)
