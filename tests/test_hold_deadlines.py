"""A stop lasts 48 hours and one account may be stopped twice: the hub asks for a freeze decision
well before expiry, reminds, extends once with the second stop-payment, and records the lapse
when nobody decided. On Temporal's time-skipping server: days pass in a moment, never slept."""

from __future__ import annotations

from datetime import timedelta

from activities.convert import time_of
from audit.entry import AuditEntry, EntryKind
from stopline.v1 import hub_pb2
from tests.test_chase import conserved
from tests.world import hub_world

MULE_1 = "6229110000800001"  # qilu-bank: 800,000.00 held in full


def stop_of(case: hub_pb2.CaseView, number: str) -> hub_pb2.AccountStop:
    return next(s for s in case.stops if s.account.account_number == number)


async def test_a_hold_nobody_freezes_is_extended_once_then_lapses(fresh_time_skipping_env, tmp_path):
    env = fresh_time_skipping_env
    async with hub_world(env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-DEADLINE"))
        case = await w.answered("BX-DEADLINE")
        first = stop_of(case, MULE_1)
        assert first.hold_state == hub_pb2.HOLD_STATE_HELD and first.stops_used == 1
        assert not first.HasField("freeze_decision_due_at")
        first_expiry = time_of(first.hold_expires_at)

        await env.sleep(timedelta(hours=37))  # 11 h before expiry: the decision has been asked for
        asked = stop_of(await w.hub.get_case("BX-DEADLINE"), MULE_1)
        assert time_of(asked.freeze_decision_due_at) == first_expiry - timedelta(hours=1)
        assert [e.what.split(":")[0] for e in asked.hold_events] == ["freeze decision asked for"]

        await env.sleep(timedelta(hours=10, minutes=30))  # past expiry - 1 h: the second stop is out
        extended = stop_of(await w.hub.get_case("BX-DEADLINE"), MULE_1)
        assert extended.hold_state == hub_pb2.HOLD_STATE_EXTENDED and extended.stops_used == 2
        assert time_of(extended.hold_expires_at) == first_expiry + timedelta(hours=48)
        assert extended.held.minor_units == 80_000_000
        # At the bank: still one hold of the same money, now running 48 h longer; nothing new held.
        (hold,) = w.institutions["qilu-bank"].ledger.holds(MULE_1)
        assert hold.amount_minor == 80_000_000 and hold.expires_at == first_expiry + timedelta(hours=48)
        assert w.institutions["qilu-bank"].ledger.account(MULE_1).held_minor == 80_000_000

        # Nobody decides: after the second stop the hold lapses, and the case ends once all have.
        await env.sleep(timedelta(hours=49))
        final = await w.hub.get_case("BX-DEADLINE")
        lapsed = stop_of(final, MULE_1)
        assert lapsed.hold_state == hub_pb2.HOLD_STATE_LAPSED
        assert "lapsed" in lapsed.hold_events[-1].what
        held_at_stop = [s for s in final.stops if s.held.minor_units + s.released.minor_units > 0]
        assert held_at_stop and all(s.hold_state == hub_pb2.HOLD_STATE_LAPSED for s in held_at_stop)
        # Lapsed money went back to the accounts: nothing held, all of it released, books balanced.
        assert final.total_held.minor_units == 0 and final.total_released.minor_units == 137_640_000
        assert conserved(final)
        description = await env.client.get_workflow_handle("case-BX-DEADLINE").describe()
        assert description.status.name == "COMPLETED"

        decisions = [AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves()]
        decisions = [e for e in decisions if e.kind is EntryKind.DECISION and e.case_id == "BX-DEADLINE"]
        kinds = sorted(e.payload.decode().split('"decision":"')[1].split('"')[0] for e in decisions)
        held_accounts = len(held_at_stop)
        assert kinds == sorted(["hold_extended"] * held_accounts + ["hold_lapsed"] * held_accounts)
