"""Where a scenario's defrauded money ends up if nobody holds any of it: the bookkeeping a test
checks conservation against, to the fen.

`scenario_money_map(scenario)` replays the scenario without holds: first the history (every
`transfers_out`, in time order, with the victim's transfers of the case), then every move in race
order, each sending min(amount, balance) as the sandbox would. Money is followed in lots tagged
with the first-hop account it reached from the victim (the disputed money of that account), and
leaves an account first in, first out; an account's own money (what it held before the history)
counts as oldest. At the end each first-hop account's disputed money is in exactly one place per
fen: a balance in a sandbox account (what a stop could still hold), cash, abroad, or off the
platform.

The replay also checks that the scenario adds up: an account's balance before its history is never
negative, and no history transfer sends more than the account held at that time. A scenario that
does not add up raises ScenarioError naming the account.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime

from sandbox.ledger import Transfer
from sandbox.scenario import Scenario, ScenarioError

END_KINDS = ("balance", "cash", "abroad", "off_platform")

AccountKey = tuple[str, str]  # (institution, account number)


@dataclass(frozen=True, order=True)
class End:
    """One place money ends up.

    balance: still in (institution, account), where a stop can hold it.
    cash: withdrawn from (institution, account).
    abroad: sent to (BIC, foreign account); history without abroad details names its `to` account.
    off_platform: sent to (institution, account) of an institution that is not on the platform."""

    kind: str
    institution: str
    account: str


@dataclass(frozen=True)
class MoneyMap:
    # First-hop account -> what the victim sent it (its disputed amount).
    disputed: dict[AccountKey, int]
    # First-hop account -> where its disputed money is at the end, if nothing is held.
    ends: dict[AccountKey, dict[End, int]]
    # Every sandbox account's balance at the end, own money included, if nothing is held.
    balances: dict[AccountKey, int] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        """Disputed money at the end, by kind of end (every kind present, zeros included)."""
        out = dict.fromkeys(END_KINDS, 0)
        for ends in self.ends.values():
            for end, minor in ends.items():
                out[end.kind] += minor
        return out

    def unaccounted(self) -> dict[AccountKey, int]:
        """First-hop accounts whose ends do not add up to what they received (empty when money
        is conserved, which the replay guarantees for a scenario that adds up)."""
        return {
            key: self.disputed[key] - sum(self.ends.get(key, {}).values())
            for key in self.disputed
            if sum(self.ends.get(key, {}).values()) != self.disputed[key]
        }


@dataclass
class _Event:
    """One transfer of the history."""

    at: datetime
    source: AccountKey | None  # None: the victim's transfer from outside the sandbox
    transfer: Transfer
    victim_to: AccountKey | None = None  # set on a victim transfer of the case: tags the money


def scenario_money_map(scenario: Scenario) -> MoneyMap:
    """Replay the scenario with nothing held; see the module docstring."""
    if scenario.case is None:
        raise ScenarioError(f"{scenario.name}: no case, so no disputed money to follow")
    sandbox = {inst.id for inst in scenario.institutions}
    off_platform = {o.id for o in scenario.off_platform}
    balance_now = {
        (inst.id, a.number): a.balance_minor for inst in scenario.institutions for a in inst.accounts
    }
    closed = {
        (inst.id, a.number) for inst in scenario.institutions for a in inst.accounts if a.status != "open"
    }

    # History events, and which of them are the victim's transfers of the case.
    history: list[_Event] = [
        _Event(t.transferred_at, (inst.id, t.account), t)
        for inst in scenario.institutions
        for t in inst.transfers_out
    ]
    disputed: Counter[AccountKey] = Counter()
    abroad_now: dict[AccountKey, Counter[End]] = {}
    for i, ct in enumerate(scenario.case["transfers"]):
        source = (ct["from"]["institution"], ct["from"]["account_number"])
        if ct.get("abroad") is not None:
            # Sent abroad by the victim's own bank: the disputed money is abroad from the start,
            # under its foreign account (the bank's history, if it has one, sends its own money).
            where = (ct["abroad"]["bic"], ct["abroad"]["account"])
            disputed[where] += ct["amount"]["minor_units"]
            abroad_now.setdefault(where, Counter())[End("abroad", *where)] += ct["amount"]["minor_units"]
            continue
        to = (ct["to"]["institution"], ct["to"]["account_number"])
        if to not in balance_now:
            raise ScenarioError(f"case.transfers[{i}].to: {to[0]} has no account {to[1]!r}")
        amount = ct["amount"]["minor_units"]
        at = datetime.fromisoformat(ct["transferred_at"])
        disputed[to] += amount
        match = next(
            (
                e
                for e in history
                if e.source == source
                and e.victim_to is None
                and (e.transfer.to_institution, e.transfer.to_account) == to
                and e.transfer.amount_minor == amount
                and e.transfer.transferred_at == at
            ),
            None,
        )
        if match is not None:
            match.victim_to = to
        else:  # the victim's bank is not in the sandbox: the money only arrives
            transfer = Transfer(source[1], *to, amount, ct["amount"]["currency"], at, "transfer")
            history.append(_Event(at, None, transfer, victim_to=to))
    history.sort(key=lambda e: e.at)  # stable: same-time events keep the file's order

    # Balances before the history: now, plus what left, minus what arrived.
    before = dict(balance_now)
    for e in history:
        if e.source is not None:
            before[e.source] += e.transfer.amount_minor
        to = (e.transfer.to_institution, e.transfer.to_account)
        if e.transfer.channel == "transfer" and to[0] in sandbox:
            before[to] -= e.transfer.amount_minor
    for key, minor in before.items():
        if minor < 0:
            raise ScenarioError(
                f"{key[0]} account {key[1]}: the history brings in {-minor} more than the account holds"
                " at the report and sends on (balance_minor too low, or a transfer missing)"
            )

    # Lots: (tag, minor); tag None is money that is not disputed (an account's own, the victim's).
    lots: dict[AccountKey, deque[list]] = defaultdict(deque)
    for key, minor in before.items():
        if minor:
            lots[key].append([None, minor])
    ends: dict[AccountKey, Counter[End]] = defaultdict(Counter)
    ends.update(abroad_now)

    def take(key: AccountKey, minor: int) -> list[tuple[AccountKey | None, int]]:
        taken, queue = [], lots[key]
        while minor:
            lot = queue[0]
            part = min(lot[1], minor)
            taken.append((lot[0], part))
            lot[1] -= part
            minor -= part
            if not lot[1]:
                queue.popleft()
        return taken

    def deliver(source: AccountKey | None, t: Transfer, parts: list[tuple[AccountKey | None, int]]) -> None:
        to = (t.to_institution, t.to_account)
        if t.channel == "transfer" and to[0] in sandbox:
            queue = lots[to]
            for tag, minor in parts:
                if queue and queue[-1][0] == tag:
                    queue[-1][1] += minor
                else:
                    queue.append([tag, minor])
            return
        if t.channel == "cash":
            end = End("cash", *(source or ("", "")))
        elif t.channel == "abroad":
            end = End("abroad", t.abroad.bic, t.abroad.account) if t.abroad else End("abroad", *to)
        elif to[0] in off_platform:
            end = End("off_platform", *to)
        else:  # a scenario load refuses this; kept as a guard
            raise ScenarioError(f"transfer to unknown institution {to[0]!r}")
        for tag, minor in parts:
            if tag is not None:
                ends[tag][end] += minor

    for e in history:
        minor = e.transfer.amount_minor
        if e.source is None:
            parts = [(e.victim_to, minor)]
        else:
            held = sum(lot[1] for lot in lots[e.source])
            if held < minor:
                raise ScenarioError(
                    f"{e.source[0]} account {e.source[1]}: sends {minor} at {e.at.isoformat()} but holds only"
                    f" {held} then (history out of order, or balance_minor too low)"
                )
            parts = take(e.source, minor)
            if e.victim_to is not None:
                parts = [(e.victim_to, part) for _, part in parts]
        deliver(e.source, e.transfer, parts)

    for move in scenario.moves:
        source = (move.institution, move.account)
        available = 0 if source in closed else sum(lot[1] for lot in lots[source])
        sent = min(move.amount_minor, available)
        if sent:
            deliver(source, move.transfer(datetime.min), take(source, sent))

    for key, queue in lots.items():
        for tag, minor in queue:
            if tag is not None and minor:
                ends[tag][End("balance", *key)] += minor
    balances = {key: sum(lot[1] for lot in lots.get(key, ())) for key in balance_now}
    return MoneyMap(
        disputed=dict(disputed),
        ends={key: dict(ends.get(key, {})) for key in disputed},
        balances=balances,
    )
