"""stopline/caseindex.py: linking cases that share an account, a number or a device (a real file)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stopline.caseindex import (
    CHASED,
    REPORTED,
    CaseIndex,
    CaseLink,
    SqliteCaseIndex,
    account_key,
    device_key,
    phone_key,
)
from stopline.domain import Account

T0 = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
MULE = Account("qilu-bank", "6229110000800001")
MULE2 = Account("icbc", "6222000000000002")
VICTIM_PAID = Account("boc", "6217000000000003")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def index(tmp_path):
    ix = SqliteCaseIndex(tmp_path / "cases.db")
    yield ix
    ix.close()


def test_keys():
    assert account_key(MULE) == "account:qilu-bank/6229110000800001"
    assert phone_key("+8613800138000") == "phone:+8613800138000"
    assert device_key("860000000000001") == "device:860000000000001"
    assert device_key("app:7f3c-aa.b_c") == "device:app:7f3c-aa.b_c"
    for bad in (Account("", "1"), Account("a/b", "1"), Account("icbc", ""), Account("icbc", "12 34")):
        with pytest.raises(ValueError, match="account"):
            account_key(bad)
    for bad in ("13800138000", "+86 138 0013 8000", "+0123", "+1234567890123456", ""):
        with pytest.raises(ValueError, match="E.164"):
            phone_key(bad)
    for bad in ("", "with space", "x" * 129, "tab\there"):
        with pytest.raises(ValueError, match="device id"):
            device_key(bad)


def test_a_case_alone_leads_itself(index: CaseIndex):
    assert index.claim("A", [account_key(MULE)], at=at(0)) == "A"
    assert index.lead_of("A") == "A"
    assert index.members("A") == ["A"]
    assert index.is_open("A")
    assert index.lead_of("nobody") is None
    assert index.members("nobody") == []
    assert not index.is_open("nobody")


def test_two_cases_sharing_a_mule_account_link(index: CaseIndex):
    assert index.claim("A", [account_key(MULE), phone_key("+8613800138000")], at=at(0)) == "A"
    assert index.claim("B", [account_key(VICTIM_PAID), account_key(MULE)], at=at(5)) == "A"
    assert index.lead_of("B") == "A"
    assert index.members("A") == ["A", "B"]
    assert index.find(account_key(MULE)) == [
        CaseLink("A", "A", REPORTED, at(0)),
        CaseLink("B", "A", REPORTED, at(5)),
    ]
    # B's other account is B's alone, under A's lead.
    assert index.find(account_key(VICTIM_PAID)) == [CaseLink("B", "A", REPORTED, at(5))]
    # A third case sharing only B's account joins the same group.
    assert index.claim("C", [account_key(VICTIM_PAID)], at=at(9)) == "A"
    assert index.members("A") == ["A", "B", "C"]


def test_a_phone_number_links(index: CaseIndex):
    index.claim("A", [account_key(MULE), phone_key("+8613800138000")], at=at(0))
    assert index.claim("B", [account_key(MULE2), phone_key("+8613800138000")], at=at(1)) == "A"
    assert [(link.case_id, link.lead_case_id) for link in index.find(phone_key("+8613800138000"))] == [
        ("A", "A"),
        ("B", "A"),
    ]


def test_a_device_links(index: CaseIndex):
    index.claim("A", [device_key("860000000000001")], at=at(0))
    assert index.claim("B", [account_key(MULE2), device_key("860000000000001")], at=at(1)) == "A"
    assert index.claim("C", [device_key("860000000000002")], at=at(2)) == "C"  # another device


def test_nothing_shared_nothing_linked(index: CaseIndex):
    assert index.claim("A", [account_key(MULE)], at=at(0)) == "A"
    assert index.claim("B", [account_key(MULE2)], at=at(1)) == "B"
    assert index.claim("C", [], at=at(2)) == "C"
    assert index.members("A") == ["A"] and index.members("B") == ["B"] and index.members("C") == ["C"]


def test_a_chased_account_links_a_later_case(index: CaseIndex):
    index.claim("A", [account_key(MULE)], at=at(0))
    index.touch("A", [account_key(MULE2)], at=at(3))  # the chase followed the money to MULE2
    assert index.find(account_key(MULE2)) == [CaseLink("A", "A", CHASED, at(3))]
    assert index.claim("B", [account_key(MULE2)], at=at(10)) == "A"
    assert index.find(account_key(MULE2)) == [
        CaseLink("A", "A", CHASED, at(3)),
        CaseLink("B", "A", REPORTED, at(10)),
    ]


def test_touch_is_insert_or_ignore_and_recorded_under_the_lead(index: CaseIndex):
    index.claim("A", [account_key(MULE)], at=at(0))
    index.claim("B", [account_key(MULE)], at=at(1))
    index.touch("B", [account_key(MULE2), account_key(MULE2)], at=at(2))
    index.touch("B", [account_key(MULE2)], at=at(7))  # again, later: the first record stays
    assert index.find(account_key(MULE2)) == [CaseLink("B", "A", CHASED, at(2))]
    # The chase reaching an account the case reported adds a "chased" row after the "reported" one.
    index.touch("A", [account_key(MULE)], at=at(4))
    assert index.find(account_key(MULE)) == [
        CaseLink("A", "A", REPORTED, at(0)),
        CaseLink("A", "A", CHASED, at(4)),
        CaseLink("B", "A", REPORTED, at(1)),
    ]
    with pytest.raises(ValueError, match="claim it first"):
        index.touch("UNKNOWN", [account_key(MULE)], at=at(3))
    assert index.find(account_key(MULE2)) == [CaseLink("B", "A", CHASED, at(2))]


def test_reported_comes_before_chased_for_one_case_whatever_the_times(index: CaseIndex):
    index.claim("A", [account_key(MULE)], at=at(10))
    index.touch("A", [account_key(MULE2)], at=at(11))
    index.claim("B", [account_key(MULE)], at=at(12))
    # A repeated report of A names MULE2 too, stamped later than the chase reached it.
    assert index.claim("A", [account_key(MULE), account_key(MULE2)], at=at(20)) == "A"
    assert index.find(account_key(MULE2)) == [
        CaseLink("A", "A", REPORTED, at(20)),
        CaseLink("A", "A", CHASED, at(11)),
    ]


def test_a_closed_group_is_not_joined_but_stays_findable(index: CaseIndex):
    index.claim("A", [account_key(MULE)], at=at(0))
    index.claim("B", [account_key(MULE)], at=at(1))
    index.close_group("A")
    index.close_group("A")  # twice is fine
    assert not index.is_open("A")
    assert index.claim("C", [account_key(MULE)], at=at(2)) == "C"  # leads a new group
    assert index.claim("D", [account_key(MULE)], at=at(3)) == "C"
    assert [(link.case_id, link.lead_case_id) for link in index.find(account_key(MULE))] == [
        ("A", "A"),
        ("B", "A"),
        ("C", "C"),
        ("D", "C"),
    ]
    assert index.members("A") == ["A", "B"]
    assert index.lead_of("B") == "A"
    # A case of the closed group reported again keeps its record.
    assert index.claim("B", [account_key(MULE)], at=at(4)) == "A"


def test_close_group_needs_a_lead(index: CaseIndex):
    index.claim("A", [account_key(MULE)], at=at(0))
    index.claim("B", [account_key(MULE)], at=at(1))
    with pytest.raises(ValueError, match="its lead is 'A'"):
        index.close_group("B")
    with pytest.raises(ValueError, match="not in the case index"):
        index.close_group("NOBODY")
    assert index.is_open("A")


def test_claiming_again_is_idempotent(index: CaseIndex):
    assert index.claim("A", [account_key(MULE)], at=at(0)) == "A"
    assert index.claim("B", [account_key(MULE)], at=at(1)) == "A"
    before = index.find(account_key(MULE))
    assert index.claim("B", [account_key(MULE)], at=at(30)) == "A"
    assert index.claim("A", [account_key(MULE)], at=at(31)) == "A"
    assert index.find(account_key(MULE)) == before
    assert index.members("A") == ["A", "B"]
    # Even when B's keys now touch another, older-opened group, B stays where it was recorded.
    assert index.claim("X", [account_key(MULE2)], at=at(-60)) == "X"
    assert index.claim("B", [account_key(MULE2)], at=at(32)) == "A"
    assert index.members("X") == ["X"]
    assert index.find(account_key(MULE2))[-1] == CaseLink("B", "A", REPORTED, at(32))


def test_keys_touching_two_open_groups_join_the_one_opened_first(index: CaseIndex):
    index.claim("LATE", [account_key(MULE)], at=at(10))
    index.claim("EARLY", [account_key(MULE2)], at=at(5))  # recorded later, but opened earlier
    assert index.claim("C", [account_key(MULE), account_key(MULE2)], at=at(20)) == "EARLY"
    # Same opening time: the group recorded first.
    index.claim("P", [device_key("d1")], at=at(30))
    index.claim("Q", [device_key("d2")], at=at(30))
    assert index.claim("R", [device_key("d2"), device_key("d1")], at=at(31)) == "P"
    # No merging: LATE's group stays as it was.
    assert index.members("LATE") == ["LATE"]


def test_times_come_back_aware_utc_to_the_microsecond(index: CaseIndex):
    when = datetime(2026, 3, 4, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    index.claim("A", [account_key(MULE)], at=when)
    (link,) = index.find(account_key(MULE))
    assert link.since == when and link.since.tzinfo is UTC


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ix: ix.claim("A", [account_key(MULE)], at=datetime(2026, 3, 4)), "aware"),
        (lambda ix: ix.claim("", [account_key(MULE)], at=T0), "case id"),
        (lambda ix: ix.claim("A B", [], at=T0), "case id"),
        (lambda ix: ix.claim("A", ["icbc/1"], at=T0), "not a key"),
        (lambda ix: ix.claim("A", ["account:"], at=T0), "not a key"),
        (lambda ix: ix.claim("A", account_key(MULE), at=T0), "sequence"),
        (lambda ix: ix.find("phone:"), "not a key"),
        (lambda ix: ix.touch("A", [account_key(MULE)], at=datetime(2026, 3, 4)), "aware"),
    ],
)
def test_bad_input(index: CaseIndex, call, message):
    with pytest.raises(ValueError, match=message):
        call(index)
    assert index.lead_of("A") is None  # nothing recorded


def test_a_real_file_reopened_keeps_everything(tmp_path):
    path = tmp_path / "hub" / "cases.db"
    first = SqliteCaseIndex(path)
    first.claim("A", [account_key(MULE), phone_key("+8613800138000")], at=at(0))
    first.claim("B", [account_key(MULE)], at=at(1))
    first.touch("A", [account_key(MULE2)], at=at(2))
    first.claim("OLD", [device_key("d9")], at=at(3))
    first.close_group("OLD")
    findings = {
        k: first.find(k) for k in (account_key(MULE), account_key(MULE2), phone_key("+8613800138000"))
    }
    first.close()

    again = SqliteCaseIndex(path)
    try:
        assert {k: again.find(k) for k in findings} == findings
        assert again.members("A") == ["A", "B"] and again.lead_of("B") == "A"
        assert not again.is_open("OLD") and again.is_open("A")
        assert again.claim("C", [device_key("d9"), account_key(MULE2)], at=at(4)) == "A"  # OLD closed
        assert again.claim("B", [], at=at(5)) == "A"
    finally:
        again.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (SqliteCaseIndex.SCHEMA_VERSION,)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "cases.db"
    SqliteCaseIndex(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(ValueError, match="newer"):
        SqliteCaseIndex(path)


def claim_at_once(claimers: list[tuple[SqliteCaseIndex, str, list[str]]]) -> list[str]:
    """Every claimer on its own thread, released together."""
    barrier = threading.Barrier(len(claimers))
    leads: list[str | None] = [None] * len(claimers)
    errors: list[BaseException] = []

    def run(i: int, ix: SqliteCaseIndex, case_id: str, keys: list[str]) -> None:
        try:
            barrier.wait()
            leads[i] = ix.claim(case_id, keys, at=T0)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, *c)) for i, c in enumerate(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return [lead for lead in leads if lead is not None]


def test_two_gateways_claiming_linked_cases_at_once_end_with_one_lead(tmp_path):
    """Two processes' worth of connections on one file (two gateways), many rounds."""
    path = tmp_path / "cases.db"
    gateway_1, gateway_2 = SqliteCaseIndex(path), SqliteCaseIndex(path)
    # Widen the window between looking for a lead and recording one: every few SQLite VM steps
    # the writing connection sleeps (letting the other thread run). Without the IMMEDIATE
    # transaction around claim, both would find no lead and both would lead.
    for ix in (gateway_1, gateway_2):
        ix._conn.set_progress_handler(lambda: time.sleep(0.0002) or 0, 20)
    try:
        for round_ in range(25):
            shared = account_key(Account("qilu-bank", f"62291100{round_:08d}"))
            a, b = f"R{round_}-A", f"R{round_}-B"
            leads = claim_at_once(
                [(gateway_1, a, [shared]), (gateway_2, b, [phone_key(f"+86138000000{round_:02d}"), shared])]
            )
            assert len(leads) == 2
            assert len(set(leads)) == 1, f"round {round_}: two leads {leads}"
            (lead,) = set(leads)
            assert lead in (a, b)
            assert sorted(gateway_1.members(lead)) == sorted([a, b])
            assert gateway_2.lead_of(a) == gateway_2.lead_of(b) == lead
    finally:
        gateway_1.close()
        gateway_2.close()


def test_many_threads_one_instance_one_lead(index: SqliteCaseIndex):
    shared = device_key("860000000000001")
    cases = [f"T{i}" for i in range(8)]
    leads = claim_at_once(
        [(index, case_id, [shared, account_key(Account("boc", case_id))]) for case_id in cases]
    )
    assert len(leads) == 8 and len(set(leads)) == 1
    (lead,) = set(leads)
    assert sorted(index.members(lead)) == cases
    assert [link.lead_case_id for link in index.find(shared)] == [lead] * 8


def test_a_case_its_closed_lead_never_took_is_reassigned(index: CaseIndex):
    index.claim("A", [account_key(MULE)], at=at(0))
    assert index.claim("B", [account_key(MULE)], at=at(1)) == "A"  # recorded under A ...
    index.close_group("A")  # ... which closed before B could join it
    assert index.reassign("B", [account_key(MULE)], at=at(2)) == "B"  # nobody else open: B leads
    assert index.is_open("B") and index.lead_of("B") == "B"
    assert index.claim("C", [account_key(MULE)], at=at(3)) == "B"
    assert index.reassign("C", [account_key(MULE)], at=at(4), alone=True) == "C"  # refused by B: alone
    assert index.members("B") == ["B"] and index.members("C") == ["C"]
    with pytest.raises(ValueError, match="not in the case index"):
        index.reassign("Z", [account_key(MULE)], at=at(5))
