"""Following the money on real parts: the hub stops the victim's receiving accounts, asks each
institution where the rest went, and stops it at the next one, hop after hop. Mule accounts and
their onward transfers are seeded into the sandbox ledgers; every assertion is about money held
where it should be, once, and every fen accounted for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.ledger import Account, Transfer
from stopline.v1 import hub_pb2
from tests.world import hub_world

L1 = "6229110000555001"  # qilu-bank: receives the victim's 800,000.00, keeps 100,000.00
L2 = "HXP-L2-0001"  # huaxia-pay: receives 500,000.00 from L1, keeps 200,000.00, sends 300,000.00 back
OUTSIDE = ("far-away-bank", "9999000011112222")  # not on the platform


def conserved(case: hub_pb2.CaseView) -> bool:
    parts = (case.total_held, case.total_returned, case.total_released, case.total_lost, case.total_abroad,
             case.total_at_large)  # fmt: skip
    return sum(p.minor_units for p in parts) == case.total_reported.minor_units


def flows_from(case: hub_pb2.CaseView, number: str) -> list[tuple[int, int]]:
    return sorted((f.kind, f.amount.minor_units) for f in case.flows if f.from_account.account_number == number)


def seed_layers(w, arrived: datetime) -> None:
    """L1 moved most of the money on before anyone could stop it: to L2 (which moved part of it
    back to L1: a cycle), to cash, and off the platform."""
    w.institutions["qilu-bank"].ledger.seed(
        [Account(L1, "Ma Qiang", "CNY", 10_000_000)],
        [
            Transfer(L1, "huaxia-pay", L2, 50_000_000, "CNY", arrived + timedelta(minutes=3), "transfer"),
            Transfer(L1, "", "", 15_000_000, "CNY", arrived + timedelta(minutes=5), "cash"),
            Transfer(L1, *OUTSIDE, 5_000_000, "CNY", arrived + timedelta(minutes=6), "transfer"),
        ],
    )
    w.institutions["huaxia-pay"].ledger.seed(
        [Account(L2, "He Jing", "CNY", 20_000_000)],
        [Transfer(L2, "qilu-bank", L1, 30_000_000, "CNY", arrived + timedelta(minutes=8), "transfer")],
    )


async def test_the_money_is_followed_through_every_hop_and_every_fen_is_accounted_for(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-CHASE")
        report.transfers[0].to_account.account_number = L1  # the victim's 800,000.00 went to L1
        report.transfers[0].to_account_holder_name = "Ma Qiang"
        seed_layers(w, report.transfers[0].transferred_at.ToDatetime(tzinfo=UTC))
        # The off-platform bank is not in the registry; the chase records where the money left.
        await w.hub.report_case(report)
        case = await w.answered("BX-CHASE")

        stops = {s.account.account_number: s for s in case.stops}
        assert stops[L1].depth == 1 and stops[L1].held.minor_units == 10_000_000
        assert stops[L2].depth == 2 and stops[L2].requested.minor_units == 50_000_000
        assert stops[L2].held.minor_units == 20_000_000  # only the disputed money that flowed there
        assert all(s.traced for s in case.stops)
        assert flows_from(case, L1) == sorted(
            [
                (hub_pb2.FLOW_KIND_ONWARD, 50_000_000),
                (hub_pb2.FLOW_KIND_CASH, 15_000_000),
                (hub_pb2.FLOW_KIND_OFF_PLATFORM, 5_000_000),
                (hub_pb2.FLOW_KIND_NOT_TRACED, 30_000_000),  # came back from L2, see below
            ]
        )
        # L2 sent 300,000.00 back to L1, which was already stopped: recorded, never stopped twice.
        back = [f for f in case.flows if f.from_account.account_number == L2]
        assert [(f.kind, f.amount.minor_units) for f in back] == [(hub_pb2.FLOW_KIND_ONWARD, 30_000_000)]
        late = [f for f in case.flows if f.kind == hub_pb2.FLOW_KIND_NOT_TRACED and f.from_account.account_number == L1]
        assert [f.amount.minor_units for f in late] == [30_000_000] and "after this account was asked" in late[0].note

        assert case.total_lost.minor_units == 15_000_000 + 9_860_000  # L1's and mule 2's cash
        assert case.total_abroad.minor_units == 0
        assert conserved(case)
        # Held where the hub says, once per account.
        qilu, huaxia = w.institutions["qilu-bank"].ledger, w.institutions["huaxia-pay"].ledger
        assert [h.amount_minor for h in qilu.holds(L1)] == [10_000_000]
        assert [h.amount_minor for h in huaxia.holds(L2)] == [20_000_000]
        assert case.total_held.minor_units == sum(s.held.minor_units for s in case.stops)


async def test_an_unknown_next_account_is_asked_once_and_its_money_stays_at_large(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-GHOST")
        report.transfers[0].to_account.account_number = L1
        report.transfers[0].to_account_holder_name = ""
        arrived = report.transfers[0].transferred_at.ToDatetime(tzinfo=UTC)
        w.institutions["qilu-bank"].ledger.seed(
            [Account(L1, "Ma Qiang", "CNY", 0)],
            [Transfer(L1, "huaxia-pay", "HXP-NO-SUCH", 80_000_000, "CNY", arrived + timedelta(minutes=1), "transfer")],
        )
        await w.hub.report_case(report)
        case = await w.answered("BX-GHOST")
        ghost = next(s for s in case.stops if s.account.account_number == "HXP-NO-SUCH")
        assert ghost.state == hub_pb2.STOP_STATE_REFUSED and ghost.depth == 2
        assert flows_from(case, "HXP-NO-SUCH") == [(hub_pb2.FLOW_KIND_NOT_TRACED, 80_000_000)]
        assert conserved(case)


@pytest.mark.timeout(400)  # about a minute alone; more on a busy machine
async def test_a_chase_that_reaches_over_a_thousand_accounts_completes_and_stays_readable(client, tmp_path):
    """Scale: the victim's 1,000,000.00 fans out over three layers (10, 100, 1,000 accounts at
    two institutions). The case reaches 1,111 accounts, holds every fen at the last layer, stays
    queryable while it runs, and its history stays far below Temporal's limits."""
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-FANOUT")
        root = "6229110000999000"
        report.transfers[0].to_account.account_number = root
        report.transfers[0].to_account_holder_name = ""
        report.transfers[0].amount.minor_units = 100_000_000
        arrived = report.transfers[0].transferred_at.ToDatetime(tzinfo=UTC)
        banks = ("huaxia-pay", "qilu-bank")  # layers alternate between the two
        accounts: dict[str, list] = {"qilu-bank": [Account(root, "Root Mule", "CNY", 0)], "huaxia-pay": []}
        transfers: dict[str, list] = {"qilu-bank": [], "huaxia-pay": []}
        layer = [("qilu-bank", root, 100_000_000)]
        for depth in range(3):
            nxt = []
            for inst, number, amount in layer:
                to_inst = banks[depth % 2]
                for k in range(10):
                    child = f"L{depth + 2}-{number[-6:]}-{k}"
                    share = amount // 10
                    last = depth == 2
                    accounts[to_inst].append(Account(child, "Mule", "CNY", share if last else 0))
                    at = arrived + timedelta(minutes=depth + 1, seconds=k)
                    transfers[inst].append(Transfer(number, to_inst, child, share, "CNY", at, "transfer"))
                    nxt.append((to_inst, child, share))
            layer = nxt
        for inst in banks:
            w.institutions[inst].ledger.seed(accounts[inst], transfers[inst])

        await w.hub.report_case(report)
        # An operator looking in once a second while it runs (a case this size is a large view).
        midway = await w.wait_for_case("BX-FANOUT", lambda c: len(c.stops) > 100, within=120, every=1.0)
        assert midway.status == hub_pb2.CASE_STATUS_STOPPING and conserved(midway)
        case = await w.answered("BX-FANOUT", within=300, every=1.0)
        fanout = [s for s in case.stops if s.account.account_number.startswith("L") or s.account.account_number == root]
        assert len(fanout) == 1_111
        leaves = [s for s in fanout if s.depth == 4]
        assert len(leaves) == 1_000 and all(s.held.minor_units == 100_000 for s in leaves)
        assert conserved(case)
        history = await client.get_workflow_handle("case-BX-FANOUT").fetch_history()
        print(f"case history: {len(history.events)} events")
        assert len(history.events) < 20_000  # Temporal's hard limit is 51,200


async def test_money_sent_abroad_is_recorded_with_the_foreign_bank_account_and_reference(client, tmp_path):
    from sandbox.ledger import Abroad
    from stopline.render import flow_line

    uetr = "8a562c67-ca16-48ba-b074-65581be6f011"
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-ABROAD")
        report.transfers[0].to_account.account_number = L1
        report.transfers[0].to_account_holder_name = "Ma Qiang"
        arrived = report.transfers[0].transferred_at.ToDatetime(tzinfo=UTC)
        w.institutions["qilu-bank"].ledger.seed(
            [Account(L1, "Ma Qiang", "CNY", 10_000_000)],
            [Transfer(L1, "", "", 70_000_000, "CNY", arrived + timedelta(minutes=4), "abroad",
                      Abroad("FICTKHPPXXX", "KH-0012-7781-44", uetr))],  # fmt: skip
        )
        await w.hub.report_case(report)
        case = await w.answered("BX-ABROAD")
        (abroad,) = [f for f in case.flows if f.kind == hub_pb2.FLOW_KIND_ABROAD]
        assert abroad.amount.minor_units == 70_000_000
        assert (abroad.abroad.bic, abroad.abroad.account, abroad.abroad.payment_reference) == (
            "FICTKHPPXXX", "KH-0012-7781-44", uetr
        )
        assert case.total_abroad.minor_units == 70_000_000 and conserved(case)
        assert "FICTKHPPXXX" in flow_line(abroad) and uetr in flow_line(abroad)
