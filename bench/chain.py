"""Generated money trees for the growth benchmark (bench/growth.py): one reported case whose chase
reaches exactly K mule accounts.

Each tree: the victim pays one layer-1 mule account; before the report, every mule kept a tenth
of what reached it and sent the rest on, split evenly over up to `b` next accounts (breadth first,
b = ceil(K^(1/3)), so 3-4 layers for K from 10 to 1,000); the last accounts (no next account)
withdrew the rest in cash. So each account costs the chase the same: a stop-payment that holds
part (a hold workflow watches it), then an account query that finds where the rest went. The
accounts are spread round-robin over three banks and a payment company. Deterministic: same
input, same file. All names and numbers are fictional.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

REPORTED_AT = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
CURRENCY = "CNY"
POLICE = "police-growth"
# Under the default escalation threshold (500,000.00 CNY): no escalation clock, only the chase.
VICTIM_MINOR = 40_000_000
VICTIM_BEFORE_MINOR = 60_000_000
FIRST_HOP_BEFORE = timedelta(hours=4)  # the victim paid this long before the report
SEND_AFTER = timedelta(minutes=3)  # a mule sends on this long after the money arrived
LAYERS = 4
# (id, name, kind, number prefix)
INSTITUTIONS = (
    ("growth-bank-a", "Growth Bank A (sandbox)", "bank", "6217"),
    ("growth-bank-b", "Growth Bank B (sandbox)", "bank", "6228"),
    ("growth-bank-c", "Growth Bank C (sandbox)", "bank", "6236"),
    ("growth-pay", "Growth Pay (sandbox payment company)", "payment_company", "GRP-"),
)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def branching(k: int) -> int:
    return max(2, math.ceil(k ** (1 / (LAYERS - 1)) - 1e-9))


def chain_scenario(trees: dict[str, int]) -> tuple[dict, dict[str, dict]]:
    """A scenario holding one tree per `trees` entry (tag -> K mule accounts, tags short and
    alphanumeric), and the case (scenario case format) reporting each tree. The scenario's own
    `case` is the first tree's."""
    accounts: dict[str, list[dict]] = {i[0]: [] for i in INSTITUTIONS}
    history: dict[str, list[dict]] = {i[0]: [] for i in INSTITUTIONS}
    cases: dict[str, dict] = {}
    serial = 0

    def new_account(tag: str, n: int) -> tuple[str, str]:
        nonlocal serial
        inst, _, _, prefix = INSTITUTIONS[serial % len(INSTITUTIONS)]
        serial += 1
        if prefix.endswith("-"):
            number = f"{prefix}{tag}-{n:06d}"
        else:
            number = f"{prefix}{sum(map(ord, tag)) % 1000:03d}{serial:09d}"
        return inst, number

    for tag, k in trees.items():
        if k < 1:
            raise ValueError(f"tree {tag}: K must be at least 1, got {k}")
        b = branching(k)
        victim_inst = INSTITUTIONS[0][0]
        victim = f"6299{sum(map(ord, tag)) % 1000:03d}{len(cases):09d}"
        accounts[victim_inst].append({"number": victim, "holder": f"Victim {tag}", "currency": CURRENCY,
                                      "balance_minor": VICTIM_BEFORE_MINOR - VICTIM_MINOR, "status": "open"})  # fmt: skip
        arrived0 = REPORTED_AT - FIRST_HOP_BEFORE
        root = new_account(tag, 0)
        history[victim_inst].append({
            "account": victim, "to": {"institution": root[0], "account_number": root[1]}, "amount_minor": VICTIM_MINOR,
            "currency": CURRENCY, "transferred_at": _when(arrived0), "channel": "transfer",
        })  # fmt: skip
        # Breadth first: (institution, number, amount received, arrival, children)
        nodes: list[list] = [[*root, VICTIM_MINOR, arrived0, []]]
        parent = 0
        while len(nodes) < k:
            if len(nodes[parent][4]) == b:
                parent += 1
            child = new_account(tag, len(nodes))
            nodes[parent][4].append(len(nodes))
            nodes.append([*child, 0, None, []])
        for n, (inst, number, received, arrived, children) in enumerate(nodes):
            kept = received // 10 // 100 * 100  # whole yuan
            moving = received - kept
            if kept <= 0 or moving <= 0:
                raise ValueError(f"tree {tag}: account {n} receives too little ({received}) to keep and move some")
            at = arrived + SEND_AFTER
            if not children:  # the last layer cashes out what it does not keep
                history[inst].append({"account": number, "amount_minor": moving, "currency": CURRENCY,
                                      "transferred_at": _when(at), "channel": "cash"})  # fmt: skip
            share = moving // max(1, len(children))
            for i, c in enumerate(children):
                piece = share if i < len(children) - 1 else moving - share * (len(children) - 1)
                sent = at + timedelta(seconds=i)
                history[inst].append({
                    "account": number, "to": {"institution": nodes[c][0], "account_number": nodes[c][1]},
                    "amount_minor": piece, "currency": CURRENCY, "transferred_at": _when(sent), "channel": "transfer",
                })  # fmt: skip
                nodes[c][2], nodes[c][3] = piece, sent
            accounts[inst].append({"number": number, "holder": f"Mule {tag}-{n}", "currency": CURRENCY,
                                   "balance_minor": kept, "status": "open"})  # fmt: skip
        cases[tag] = {
            "case_id": f"GROWTH-{tag}",
            "reporting_unit": POLICE,
            "reported_at": _when(REPORTED_AT),
            "summary": f"growth benchmark: a chase through {k} accounts",
            "transfers": [{
                "from": {"institution": victim_inst, "account_number": victim},
                "to": {"institution": root[0], "account_number": root[1]},
                "to_holder_name": "Mule " + f"{tag}-0",
                "amount": {"minor_units": VICTIM_MINOR, "currency": CURRENCY},
                "transferred_at": _when(arrived0),
            }],
            "suspect_phone_numbers": [],
        }  # fmt: skip

    institutions = []
    for inst_id, name, kind, _ in INSTITUTIONS:
        entry = {"id": inst_id, "name": name, "kind": kind, "accounts": accounts[inst_id]}
        if history[inst_id]:
            entry["transfers_out"] = sorted(history[inst_id], key=lambda t: t["transferred_at"])
        institutions.append(entry)
    scenario = {
        "name": "growth-chains",
        "description": f"Generated by bench/chain.py: money trees of {', '.join(map(str, trees.values()))} accounts.",
        "institutions": institutions,
        "police_units": [{"id": POLICE, "name": "Growth benchmark police unit"}],
        "case": next(iter(cases.values())),
    }
    return scenario, cases
