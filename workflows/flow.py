"""Following the money out of one account: pure functions the chase decides with (no I/O, no
clock), so the workflow stays deterministic and the rule is tested on its own.

The rule (documented in docs/architecture.md, "Following the money"): the disputed amount that
reached an account, less what the stop-payment held there, has left it. It is matched to the
account's outgoing transfers after the money arrived, oldest first ("first out"), each taking at
most its own amount; what no transfer explains stays "not traced" at that account. So every fen
of the disputed amount ends in exactly one place: held, in an onward transfer the chase follows,
withdrawn as cash, sent abroad, beyond reach, or not traced. Only the disputed amount is ever
followed: a mule's own money that leaves after the stop is not chased.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from stopline.domain import Account, Amount, Channel, FlowKind, ForeignDestination, MoneyFlow, OnwardTransfer


def follow(
    account: Account,
    disputed: Amount,
    held: Amount,
    arrived_at: datetime,
    transfers: list[OnwardTransfer],
    *,
    depth: int,
    max_depth: int,
    why_not_traced: str = "",
) -> list[MoneyFlow]:
    """Where the unheld part of `disputed` went from `account` (reached at hop `depth`)."""
    remaining = disputed.minor_units - held.minor_units
    if remaining < 0:
        raise ValueError(f"{account}: held {held.minor_units} is more than the disputed {disputed.minor_units}")
    flows: list[MoneyFlow] = []
    # sorted() is stable: transfers at the same instant keep the institution's order.
    for transfer in sorted(transfers, key=lambda t: t.transferred_at):
        if remaining == 0:
            break
        if transfer.transferred_at < arrived_at or transfer.amount.currency != disputed.currency:
            continue  # before the disputed money arrived, or another currency's money
        piece = min(remaining, transfer.amount.minor_units)
        if piece <= 0:
            continue
        flows.append(
            MoneyFlow(
                from_account=account,
                amount=Amount(piece, disputed.currency),
                kind=_kind(transfer, depth, max_depth),
                to_account=transfer.to_account,
                moved_at=transfer.transferred_at,
                abroad=_share_abroad(transfer, piece),
            )
        )
        remaining -= piece
    if remaining > 0:
        flows.append(
            MoneyFlow(
                from_account=account,
                amount=Amount(remaining, disputed.currency),
                kind=FlowKind.NOT_TRACED,
                note=why_not_traced or "not held and not seen leaving the account",
            )
        )
    return flows


def _share_abroad(transfer: OnwardTransfer, piece: int) -> ForeignDestination | None:
    """The destination of the disputed piece of a payment abroad. When only part of the payment
    is disputed (the rest was the mule's own money), its amount as sent abroad is that part's
    share, rounded down to the foreign currency's minor unit: only the disputed amount is ever
    followed, abroad too."""
    abroad = transfer.abroad
    if abroad is None or abroad.amount is None or piece >= transfer.amount.minor_units:
        return abroad
    share = abroad.amount.minor_units * piece // transfer.amount.minor_units
    return replace(abroad, amount=Amount(share, abroad.amount.currency))


def _kind(transfer: OnwardTransfer, depth: int, max_depth: int) -> FlowKind:
    if transfer.channel is Channel.CASH:
        return FlowKind.CASH
    if transfer.channel is Channel.ABROAD:
        return FlowKind.ABROAD
    if transfer.to_account is None or not transfer.on_platform:
        return FlowKind.OFF_PLATFORM
    if depth >= max_depth:
        return FlowKind.BEYOND_DEPTH
    return FlowKind.ONWARD


def totals(
    reported: Amount, held: Amount, flows: list[MoneyFlow], released: Amount | None = None
) -> tuple[Amount, Amount, Amount]:
    """(lost as cash, sent abroad, at large) for a case: at large is what is neither held,
    released (held, then lapsed or released), lost nor abroad, so they always add up to what was
    reported, to the fen."""
    currency = reported.currency
    lost = sum(f.amount.minor_units for f in flows if f.kind is FlowKind.CASH)
    abroad = sum(f.amount.minor_units for f in flows if f.kind is FlowKind.ABROAD)
    back = released.minor_units if released is not None else 0
    at_large = reported.minor_units - held.minor_units - back - lost - abroad
    return Amount(lost, currency), Amount(abroad, currency), Amount(at_large, currency)
