"""Generate layered.json: one large layered case, 106 mule accounts at six institutions.

A victim (a retired engineer, told by a fake investment "tutor" to buy into a trading platform)
pays 7,360,000.00 CNY in six transfers over the last 45 minutes before the report. The money is
layered through five layers of mule accounts at three banks and three payment companies: split
(one account pays several), merged (several pay one), sometimes part kept, sometimes part withdrawn
in cash on the way; one layer-4 mule sends part of its money back to the layer-2 account it came
through (a cycle), which withdraws some of it. The last layer keeps it, withdraws it in cash,
sends it abroad, or sends it to a bank that is not on the platform.

What happened before the report is `transfers_out` history (times before `reported_at`); what
happens after it is `moves` (`after_seconds` into the race). Every fen is followed: the generator
keeps its own books (`expected`), which tests compare with sandbox.money.scenario_money_map and
with the ledgers after a run in which nothing is held.

Regenerate (deterministic: the same seed writes the same bytes):

    .venv/bin/python sandbox/scenarios/make_layered.py

All names, numbers, BICs and references are fictional.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20260417
OUT = Path(__file__).with_name("layered.json")
REPORTED_AT = datetime(2026, 4, 17, 6, 30, tzinfo=UTC)  # 14:30 in Beijing
CURRENCY = "CNY"
LAYER_SIZES = (6, 18, 28, 30, 24)  # 106 mule accounts
VICTIM_YUAN = (1_500_000, 1_200_000, 980_000, 1_350_000, 800_000, 1_530_000)  # 7,360,000.00
VICTIM_MINUTES_BEFORE = (44, 37, 29, 21, 12, 4)
VICTIM_BEFORE_MINOR = 9_126_453_00  # the victim's savings before the fraud

# (id, name, kind, port, account-number style)
INSTITUTIONS = (
    ("donghai-bank", "Donghai Bank (sandbox)", "bank", 50101, "621483"),
    ("beichen-bank", "Beichen Bank (sandbox)", "bank", 50102, "622671"),
    ("xinghe-rcb", "Xinghe Rural Commercial Bank (sandbox)", "bank", 50103, "623155"),
    ("yunfu-pay", "Yunfu Pay (sandbox payment company)", "payment_company", 50104, "YFP"),
    ("lanhai-pay", "Lanhai Pay (sandbox payment company)", "payment_company", 50105, "LHP"),
    ("tianlu-pay", "Tianlu Pay (sandbox payment company)", "payment_company", 50106, "TLP"),
)
OFF_PLATFORM = (
    ("wuyi-village-bank", "Wuyi Village Bank (not on the platform)"),
    ("nanshan-credit-coop", "Nanshan Rural Credit Cooperative (not on the platform)"),
)
# Two carriers serving the case's suspect numbers (the second number was ported from one to the
# other) and the two regulators: no accounts, so the books below never meet them, and they draw
# nothing from the generator's random numbers.
NUMBER_INSTITUTIONS = (
    {"id": "donghai-mobile", "name": "Donghai Mobile (sandbox carrier)", "kind": "carrier", "port": 50107,
     "number_prefixes": ["+86171", "+86165"], "subscribers": ["+8617155500417", "+8617155509901"],
     "ported_out": {"+8616555500904": "xinghai-unicom"}},
    {"id": "xinghai-unicom", "name": "Xinghai Unicom (sandbox carrier)", "kind": "carrier", "port": 50108,
     "number_prefixes": ["+86186", "+86130"], "subscribers": ["+8616555500904", "+8618655509902"]},
    {"id": "donghai-telecom-regulator", "name": "Donghai Communications Administration (sandbox telecom regulator)",
     "kind": "telecom_regulator", "port": 50109},
    {"id": "donghai-bank-regulator", "name": "Donghai Financial Regulatory Bureau (sandbox bank regulator)",
     "kind": "bank_regulator", "port": 50110},
)  # fmt: skip
# The three recall channels for the money that goes abroad (no scripted answers: they
# acknowledge and stay silent, so the demo shows the recall asked and waiting). Ports of the
# shared block 50121-50129 (this block of ten is full).
RECALL_CHANNELS = (
    {"id": "gpi-recall-desk", "name": "Correspondent recall desk, SWIFT gpi Stop and Recall (sandbox correspondent channel)",
     "kind": "correspondent_channel", "port": 50121},
    {"id": "pboc-international", "name": "Central bank international cooperation channel (sandbox central bank channel)",
     "kind": "central_bank_channel", "port": 50122},
    {"id": "interpol-ncb-beijing", "name": "INTERPOL National Central Bureau Beijing, I-GRIP (sandbox police channel)",
     "kind": "police_channel", "port": 50123},
)  # fmt: skip
BICS = ("FICTKHPPXXX", "FICTMMYGXXX", "FICTPHMMXXX", "FICTLALAXXX")
SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
            "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang", "Han", "Feng", "Deng")  # fmt: skip
GIVEN = ("Wei", "Fang", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Ping", "Hui", "Qiang", "Xin", "Yu", "Bo", "Na",
         "Chao", "Hong", "Ning", "Kai", "Li", "Jie", "Rui", "Dan", "Peng", "Ying", "Hao", "Lan", "Xiu")  # fmt: skip


@dataclass
class Mule:
    layer: int  # 1..5
    institution: str
    number: str
    holder: str
    inflows: list[tuple[float, int]] = field(default_factory=list)  # (time, minor)
    out_at: float | None = None  # when it starts sending (seconds from the report)

    @property
    def key(self) -> tuple[str, str]:
        return (self.institution, self.number)

    @property
    def received(self) -> int:
        return sum(m for _, m in self.inflows)

    @property
    def ready(self) -> float:
        return max(t for t, _ in self.inflows)


class Books:
    """The generator's own bookkeeping: every fen that left the victim, by where it ends."""

    def __init__(self) -> None:
        self.ends = {"balance": 0, "cash": 0, "abroad": 0, "off_platform": 0}
        self.history: dict[str, list[dict]] = {i[0]: [] for i in INSTITUTIONS}
        self.moves: dict[str, list[dict]] = {i[0]: [] for i in INSTITUTIONS}
        self.history_in: dict[tuple[str, str], int] = {}
        self.history_out: dict[tuple[str, str], int] = {}

    def send(self, source: Mule, at: float, minor: int, channel: str, to=None, abroad=None):
        """One transfer out of `source` at `at` seconds from the report: history before it, a
        move after it. Returns the time it arrives (for a transfer to a mule)."""
        entry: dict = {"account": source.number}
        if channel == "transfer":
            entry["to"] = {"institution": to[0], "account_number": to[1]}
        entry |= {"amount_minor": minor, "currency": CURRENCY}
        if at < 0:
            when = REPORTED_AT + timedelta(seconds=at)
            entry["transferred_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            entry["channel"] = channel
            self.history[source.institution].append(entry)
            self.history_out[source.key] = self.history_out.get(source.key, 0) + minor
            if channel == "transfer" and to[0] in self.history_in_institutions:
                self.history_in[to] = self.history_in.get(to, 0) + minor
        else:
            entry["after_seconds"] = at
            entry["channel"] = channel
            self.moves[source.institution].append(entry)
        if abroad is not None:
            entry["abroad"] = abroad
        return at

    history_in_institutions = frozenset(i[0] for i in INSTITUTIONS)


def _out_time(rng: random.Random, ready: float) -> float:
    """When a mule sends on money that finished arriving at `ready`: minutes later before the
    report, seconds later in the race (a history send that would land after the report becomes an
    early move)."""
    if ready < 0:
        at = ready + rng.randint(120, 420)
        return float(at) if at < -30 else rng.randint(6, 24) / 2
    return ready + rng.randint(8, 30) / 2


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """`total` in `parts` positive pieces (whole yuan but the last), adding up exactly."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    pieces = [int(total * w / sum(weights)) // 100 * 100 for w in weights[:-1]]
    return [*pieces, total - sum(pieces)]


def generate() -> dict:
    rng = random.Random(SEED)
    names = rng.sample([f"{s} {g}" for s in SURNAMES for g in GIVEN], sum(LAYER_SIZES) + 1)
    numbers: set[str] = set()

    def number(style: str) -> str:
        while True:
            if style.isdigit():
                n = style + "".join(rng.choice("0123456789") for _ in range(10))
            else:
                n = f"{style}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
            if n not in numbers:
                numbers.add(n)
                return n

    styles = {i[0]: i[4] for i in INSTITUTIONS}
    ids = [i[0] for i in INSTITUTIONS]
    layers: list[list[Mule]] = []
    for layer, size in enumerate(LAYER_SIZES, start=1):
        layers.append([])
        for _ in range(size):
            inst = rng.choice(ids)
            layers[-1].append(Mule(layer, inst, number(styles[inst]), names.pop()))
    victim_key = ("donghai-bank", number(styles["donghai-bank"]))
    victim_name = names.pop()

    books = Books()
    disputed = 0
    case_transfers = []
    for mule, yuan, minutes in zip(layers[0], VICTIM_YUAN, VICTIM_MINUTES_BEFORE, strict=True):
        minor = yuan * 100
        at = -60.0 * minutes
        disputed += minor
        mule.inflows.append((at, minor))
        when = (REPORTED_AT + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ")
        books.history["donghai-bank"].append({
            "account": victim_key[1], "to": {"institution": mule.institution, "account_number": mule.number},
            "amount_minor": minor, "currency": CURRENCY, "transferred_at": when, "channel": "transfer",
        })  # fmt: skip
        books.history_in[mule.key] = books.history_in.get(mule.key, 0) + minor
        case_transfers.append({
            "from": {"institution": victim_key[0], "account_number": victim_key[1]},
            "to": {"institution": mule.institution, "account_number": mule.number},
            "to_holder_name": mule.holder,
            "amount": {"minor_units": minor, "currency": CURRENCY},
            "transferred_at": when,
        })  # fmt: skip

    # Who pays whom: every parent pays at least one child, every child has a parent, and about a
    # quarter of the children get a second parent (a merge).
    children: dict[tuple[str, str], list[Mule]] = {}
    for upper, lower in zip(layers, layers[1:], strict=False):
        parents = list(upper)
        rng.shuffle(parents)
        for i, child in enumerate(lower):
            parent = parents[i % len(parents)]
            children.setdefault(parent.key, []).append(child)
        for parent in parents[len(lower) :]:  # more parents than children: they merge into one
            children.setdefault(parent.key, []).append(rng.choice(lower))
        for child in lower:
            if rng.random() < 0.25:
                parent = rng.choice([p for p in upper if child not in children.get(p.key, [])])
                children.setdefault(parent.key, []).append(child)

    # The cycle: a layer-4 mule sends part of its money back to a layer-2 account it came through.
    parents_of: dict[tuple[str, str], list[Mule]] = {}
    for layer in layers[:-1]:
        for p in layer:
            for c in children.get(p.key, []):
                parents_of.setdefault(c.key, []).append(p)
    looper = next(m for m in layers[3] if m.key in parents_of)
    back_to = parents_of[parents_of[looper.key][0].key][0]  # its layer-2 grandparent

    def settle_final(mule: Mule, at: float) -> None:
        """The last layer: keep it, cash it out, send it abroad or off the platform."""
        total = mule.received
        roll = rng.random()
        if roll < 0.30:
            books.ends["balance"] += total
            return
        if roll < 0.50:  # ATM and counter withdrawals, several of them
            pieces = _split(rng, total, rng.randint(1, 3))
            for n, piece in enumerate(pieces):
                books.send(mule, at + n * (60 if at < 0 else 1.5), piece, "cash")
            books.ends["cash"] += total
            return
        if roll < 0.70:  # abroad, keeping a little
            kept = rng.randint(0, total // 10) // 100 * 100
            abroad = {"bic": rng.choice(BICS), "account": f"{rng.randint(10**11, 10**12 - 1)}",
                      "reference": f"UETR {rng.getrandbits(128):032x}"}  # fmt: skip
            books.send(mule, at, total - kept, "abroad", abroad=abroad)
            books.ends["abroad"] += total - kept
            books.ends["balance"] += kept
            return
        if roll < 0.85:  # to a bank that is not on the platform
            other = rng.choice(OFF_PLATFORM)[0]
            books.send(mule, at, total, "transfer", to=(other, f"{rng.randint(10**15, 10**16 - 1)}"))
            books.ends["off_platform"] += total
            return
        cash = rng.randint(total // 4, total // 2) // 100 * 100  # part in cash, the rest stays
        books.send(mule, at, cash, "cash")
        books.ends["cash"] += cash
        books.ends["balance"] += total - cash

    returned, back_at = 0, 0.0
    for layer in layers:
        for mule in layer:
            total = mule.received
            at = _out_time(rng, mule.ready)
            mule.out_at = at
            if mule.layer == len(LAYER_SIZES):
                settle_final(mule, at)
                continue
            sending = total
            roll = rng.random()
            if roll < 0.25:  # keeps some
                kept = rng.randint(total // 50, total // 7) // 100 * 100
                books.ends["balance"] += kept
                sending -= kept
            elif roll < 0.35:  # withdraws some in cash on the way
                cash = rng.randint(total // 10, total // 4) // 100 * 100
                books.send(mule, at, cash, "cash")
                books.ends["cash"] += cash
                sending -= cash
                at += 60 if at < 0 else 1.0
            targets = children[mule.key]
            if mule is looper:
                returned = rng.randint(sending // 6, sending // 4) // 100 * 100
                books.send(mule, at, returned, "transfer", to=back_to.key)
                sending -= returned
                back_at = at + (60 if at < 0 else 1.0)
                at = back_at
            for n, (child, piece) in enumerate(zip(targets, _split(rng, sending, len(targets)), strict=True)):
                sent_at = at + n * (45 if at < 0 else 0.5)
                books.send(mule, sent_at, piece, "transfer", to=child.key)
                child.inflows.append((sent_at, piece))

    # The layer-2 account the money came back to withdraws part of it and keeps the rest.
    cash_at = _out_time(rng, back_at)
    cash = returned * 3 // 5 // 100 * 100
    books.send(back_to, cash_at, cash, "cash")
    books.ends["cash"] += cash
    books.ends["balance"] += returned - cash

    assert sum(books.ends.values()) == disputed, (books.ends, disputed)

    accounts: dict[str, list[dict]] = {i[0]: [] for i in INSTITUTIONS}
    victim_balance = VICTIM_BEFORE_MINOR - disputed
    accounts["donghai-bank"].append(
        {
            "number": victim_key[1],
            "holder": victim_name,
            "currency": CURRENCY,
            "balance_minor": victim_balance,
            "status": "open",
        }  # fmt: skip
    )
    for layer in layers:
        for mule in layer:
            at_report = books.history_in.get(mule.key, 0) - books.history_out.get(mule.key, 0)
            accounts[mule.institution].append(
                {
                    "number": mule.number,
                    "holder": mule.holder,
                    "currency": CURRENCY,
                    "balance_minor": at_report,
                    "status": "open",
                }  # fmt: skip
            )

    institutions = []
    for inst_id, name, kind, port, _ in INSTITUTIONS:
        entry = {"id": inst_id, "name": name, "kind": kind, "port": port, "accounts": accounts[inst_id]}
        history = sorted(books.history[inst_id], key=lambda t: t["transferred_at"])
        if history:
            entry["transfers_out"] = history
        if books.moves[inst_id]:
            entry["moves"] = sorted(books.moves[inst_id], key=lambda m: m["after_seconds"])
        institutions.append(entry)
    institutions += [dict(entry) for entry in NUMBER_INSTITUTIONS + RECALL_CHANNELS]

    return {
        "name": "layered-investment-fraud",
        "description": (
            "A fake investment 'tutor' talks a retired engineer into paying 7,360,000.00 CNY into a trading"
            " platform in six transfers. The money is layered through 106 mule accounts at three banks and three"
            " payment companies in five layers (splits, merges, a cycle back to a layer-2 account), partly before"
            " the report and partly in the race after it; at the end it is kept, withdrawn in cash, sent abroad"
            " or sent to banks that are not on the platform. Generated by make_layered.py. All names and numbers"
            " are fictional."
        ),
        "institutions": institutions,
        "off_platform_institutions": [{"id": i, "name": n} for i, n in OFF_PLATFORM],
        "police_units": [
            {"id": "police-donghai", "name": "Donghai City Public Security Bureau, anti-fraud centre"}
        ],
        "case": {
            "case_id": "DH-2026-0417",
            "reporting_unit": "police-donghai",
            "reported_at": REPORTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "summary": "fake investment tutor; the victim paid into a 'trading platform' in six transfers",
            "transfers": case_transfers,
            "suspect_phone_numbers": ["+8617155500417", "+8616555500904"],
        },
        "expected": {
            "note": "if nothing is held: where the victim's money ends (make_layered.py's own books)",
            "disputed_minor": disputed,
            "ends_minor": books.ends,
        },
    }


def dump(value, indent: int = 0) -> str:
    """JSON with one account, transfer or move per line, like the hand-written scenarios."""
    pad = "  " * indent
    if isinstance(value, dict) and not _flat(value):
        items = [f"{pad}  {json.dumps(k)}: {dump(v, indent + 1).lstrip()}" for k, v in value.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and not all(_flat(v) for v in value if isinstance(v, dict)):
        return pad + "[\n" + ",\n".join(dump(v, indent + 1) for v in value) + "\n" + pad + "]"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return pad + "[\n" + ",\n".join(pad + "  " + json.dumps(v) for v in value) + "\n" + pad + "]"
    return pad + json.dumps(value)


def _flat(obj: dict) -> bool:
    """An object small enough for one line: scalars and objects of scalars only."""
    return (
        all(
            not isinstance(v, list)
            and (not isinstance(v, dict) or all(not isinstance(x, dict | list) for x in v.values()))
            for v in obj.values()
        )
        and len(obj) <= 8
    )


if __name__ == "__main__":
    OUT.write_text(dump(generate()) + "\n", "utf-8")
    print(f"wrote {OUT}")
