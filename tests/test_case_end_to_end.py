"""A police unit reports a case through HubService and the money is held at the right
institutions: real Temporal, real gRPC servers with their own ledgers, real signatures."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from temporalio.service import RPCError, RPCStatusCode

from activities.convert import time_of
from adapters.channels import open_channel
from stopline.embedded import temporal_cli
from stopline.v1 import hub_pb2
from tests.world import POLICE, hub_world
from trust.envelope import seal
from trust.keys import SigningKey

MULE_1 = "6229110000800001"  # qilu-bank, covers 800,000.00
MULE_2 = "6229110000375002"  # qilu-bank, only 126,400.00 left of 375,000.00
MULE_3 = "HXP-8800-3000-0003"  # huaxia-pay, covers 300,000.00
MULE_2B = "HXP-8800-1500-0004"  # huaxia-pay, second layer: 150,000.00 from mule 2


def by_account(case: hub_pb2.CaseView) -> dict[str, hub_pb2.AccountStop]:
    return {s.account.account_number: s for s in case.stops}


async def test_boxing_case_holds_the_money_at_both_institutions(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        receipt = await w.hub.report_case(w.report("BX-E2E-1"))
        assert receipt.created and receipt.workflow_id == "case-BX-E2E-1"

        case = await w.answered("BX-E2E-1")
        stops = by_account(case)
        assert stops[MULE_1].state == hub_pb2.STOP_STATE_HELD
        assert stops[MULE_1].held.minor_units == 80_000_000
        assert stops[MULE_2].state == hub_pb2.STOP_STATE_PARTIALLY_HELD
        assert stops[MULE_2].held.minor_units == 12_640_000
        assert "126,400.00" in stops[MULE_2].reason
        assert stops[MULE_3].state == hub_pb2.STOP_STATE_HELD
        assert stops[MULE_3].held.minor_units == 30_000_000
        # Mule 2 had sent 150,000.00 on to huaxia-pay before the report: stopped there (hop 2);
        # its 98,600.00 cash withdrawal is lost.
        assert stops[MULE_2B].depth == 2 and stops[MULE_2B].held.minor_units == 15_000_000
        assert case.total_reported.minor_units == 147_500_000
        assert case.total_held.minor_units == 137_640_000
        assert case.total_lost.minor_units == 9_860_000
        assert case.total_abroad.minor_units == case.total_at_large.minor_units == 0
        assert case.total_held.currency == "CNY"

        # The money is held where the hub says it is, once.
        qilu, huaxia = w.institutions["qilu-bank"].ledger, w.institutions["huaxia-pay"].ledger
        assert qilu.account(MULE_1).held_minor == 80_000_000
        assert qilu.account(MULE_2).held_minor == 12_640_000
        assert huaxia.account(MULE_3).held_minor == 30_000_000
        assert huaxia.account(MULE_2B).held_minor == 15_000_000
        assert len(qilu.holds()) == 2 and len(huaxia.holds()) == 2
        # An emergency stop lasts 48 hours.
        for stop in case.stops:
            assert time_of(stop.hold_expires_at) - time_of(stop.answered_at) == timedelta(hours=48)
            assert stop.hold_id


async def test_unknown_account_is_refused_with_the_reason(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-UNKNOWN")
        report.transfers[0].to_account.account_number = "6229110000000000"
        await w.hub.report_case(report)
        case = await w.answered("BX-UNKNOWN")
        stop = by_account(case)["6229110000000000"]
        assert stop.state == hub_pb2.STOP_STATE_REFUSED
        assert "unknown account" in stop.reason
        assert stop.held.minor_units == 0
        assert case.total_held.minor_units == 12_640_000 + 30_000_000 + 15_000_000


async def test_repeated_report_returns_the_case_and_starts_nothing(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-TWICE")
        first = await w.hub.report_case(report)
        await w.answered("BX-TWICE")
        # The suspect number's block and its notice to the regulator run on in their own
        # workflow after the stops are answered: settled before the snapshot of who was asked.
        await w.wait_for_case("BX-TWICE", lambda c: c.numbers and all(n.regulator_notified for n in c.numbers))
        run_id = (await client.get_workflow_handle("case-BX-TWICE").describe()).run_id
        asked = {i: inst.requests_received for i, inst in w.institutions.items()}

        again = await w.hub.report_case(report)  # a new envelope, same report
        assert first.created and not again.created
        assert again.workflow_id == first.workflow_id
        assert (await client.get_workflow_handle("case-BX-TWICE").describe()).run_id == run_id
        assert {i: inst.requests_received for i, inst in w.institutions.items()} == asked

        changed = w.report("BX-TWICE")
        changed.transfers[0].amount.minor_units += 1
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.report_case(changed)
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "BX-TWICE" in err.value.details()


async def test_concurrent_identical_reports_start_one_case(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-RACE")
        receipts = await asyncio.gather(*(w.hub.report_case(report) for _ in range(5)))
        assert sum(r.created for r in receipts) == 1
        await w.answered("BX-RACE")
        assert len(w.institutions["qilu-bank"].ledger.holds()) == 2


async def test_bank_down_for_a_while_then_back_completes_and_holds_once(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        qilu = w.institutions["qilu-bank"]
        await qilu.stop()
        await w.hub.report_case(w.report("BX-OUTAGE"))

        def qilu_retrying(case):
            stops = by_account(case)
            return stops[MULE_1].attempts >= 2 and stops[MULE_3].state == hub_pb2.STOP_STATE_HELD

        case = await w.wait_for_case("BX-OUTAGE", qilu_retrying)
        assert case.status == hub_pb2.CASE_STATUS_STOPPING
        assert by_account(case)[MULE_1].state == hub_pb2.STOP_STATE_ASKED
        assert "UNAVAILABLE" in by_account(case)[MULE_1].last_error

        await qilu.restart()
        case = await w.answered("BX-OUTAGE")
        assert by_account(case)[MULE_1].state == hub_pb2.STOP_STATE_HELD
        assert by_account(case)[MULE_1].attempts >= 2
        assert sorted(h.account for h in qilu.ledger.holds()) == [MULE_2, MULE_1]
        assert qilu.ledger.account(MULE_1).held_minor == 80_000_000


async def test_answer_lost_after_the_bank_applied_it_is_not_applied_twice(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        qilu = w.institutions["qilu-bank"]
        qilu.faults.fail_after_apply = 3  # the bank holds, but its answer never reaches the hub
        await w.hub.report_case(w.report("BX-LOST"))
        case = await w.answered("BX-LOST")
        stops = by_account(case)
        assert stops[MULE_1].held.minor_units == 80_000_000
        assert stops[MULE_2].held.minor_units == 12_640_000
        assert stops[MULE_1].attempts + stops[MULE_2].attempts == 2 + 3
        # Retried five times in all, held exactly once per account.
        assert len(qilu.ledger.holds()) == 2
        assert qilu.ledger.account(MULE_1).held_minor == 80_000_000
        assert qilu.ledger.account(MULE_2).held_minor == 12_640_000


async def test_slow_bank_past_the_deadline_is_retried_without_holding_twice(client, tmp_path):
    async with hub_world(client, tmp_path, bank_timeout_seconds=0.5) as w:
        huaxia = w.institutions["huaxia-pay"]
        huaxia.faults.delay_seconds = 0.8
        await w.hub.report_case(w.report("BX-SLOW"))
        await w.wait_for_case("BX-SLOW", lambda c: by_account(c)[MULE_3].attempts >= 2)
        huaxia.faults.delay_seconds = 0
        case = await w.answered("BX-SLOW")
        assert by_account(case)[MULE_3].held.minor_units == 30_000_000
        assert sorted(h.account for h in huaxia.ledger.holds()) == [MULE_2B, MULE_3]  # once each


async def test_forged_bank_answer_is_refused_and_not_acted_on(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        w.institutions["huaxia-pay"].faults.forge_answers = True
        await w.hub.report_case(w.report("BX-FORGED"))
        case = await w.answered("BX-FORGED")
        stop = by_account(case)[MULE_3]
        assert stop.state == hub_pb2.STOP_STATE_ANSWER_REJECTED
        assert "does not verify" in stop.reason
        assert stop.held.minor_units == 0
        # The hub counts only what verified answers say is held, even though the bank did hold
        # the money: the mismatch is on purpose, and the case shows it for an operator to clear.
        assert case.total_held.minor_units == 80_000_000 + 12_640_000
        assert w.institutions["huaxia-pay"].ledger.account(MULE_3).held_minor == 30_000_000


async def test_institution_rejecting_the_request_fails_the_stop_without_retrying(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        huaxia = w.institutions["huaxia-pay"]
        huaxia.faults.refuse_all_with = grpc.StatusCode.PERMISSION_DENIED
        await w.hub.report_case(w.report("BX-DENIED"))
        case = await w.answered("BX-DENIED")
        stop = by_account(case)[MULE_3]
        assert stop.state == hub_pb2.STOP_STATE_FAILED
        assert "PERMISSION_DENIED" in stop.reason
        # Not retried: one stop-payment and one account query per huaxia-pay account reached
        # (MULE_3, and HXP-8800-1500-0004 where mule 2's money went on).
        huaxia_accounts = [s for s in case.stops if s.account.institution == "huaxia-pay"]
        assert huaxia.requests_received == 2 * len(huaxia_accounts)
        untraced = [f for f in case.flows if f.kind == hub_pb2.FLOW_KIND_NOT_TRACED and f.from_account.account_number == MULE_3]
        assert untraced and "account query failed" in untraced[0].note


# --- bad input: a clear error, and nothing changes ---------------------------------------------


def _set(path: str, value):
    def mutate(report: hub_pb2.CaseReport):
        target = report
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        setattr(target, last, value)

    return mutate


def _clear_transfers(report):
    del report.transfers[:]


def _add_phone(number):
    def mutate(report):
        report.suspect_phone_numbers.append(number)

    return mutate


def _too_many_transfers(report):
    for _ in range(1001 - len(report.transfers)):
        report.transfers.add().CopyFrom(report.transfers[0])


BAD_REPORTS = {
    "unknown institution": (_set("transfers.0.to_account.institution", "no-such-bank"), "transfers[0].to_account.institution"),
    "police unit as bank": (_set("transfers.1.to_account.institution", POLICE), "transfers[1].to_account.institution"),
    "zero amount": (_set("transfers.0.amount.minor_units", 0), "transfers[0].amount.minor_units"),
    "negative amount": (_set("transfers.2.amount.minor_units", -5), "transfers[2].amount.minor_units"),
    "bad currency": (_set("transfers.0.amount.currency", "RMB"), "transfers[0].amount.currency"),
    "gold is not money": (_set("transfers.0.amount.currency", "XAU"), "transfers[0].amount.currency"),
    "time out of range": (_set("transfers.1.transferred_at.nanos", -5), "transfers[1].transferred_at"),
    "time in the future": (_set("reported_at.seconds", 4_000_000_000), "reported_at"),
    "mixed currency": (_set("transfers.1.amount.currency", "EUR"), "transfers[1].amount.currency"),
    "bad phone number": (_add_phone("13800138000"), "suspect_phone_numbers[1]"),
    "invalid phone number": (_add_phone("+861"), "suspect_phone_numbers[1]"),
    "empty transfers": (_clear_transfers, "transfers"),
    "too many transfers": (_too_many_transfers, "transfers"),
    "bad case id": (_set("case_id", "BX 1/2"), "case_id"),
    "empty account number": (_set("transfers.0.to_account.account_number", ""), "transfers[0].to_account.account_number"),
    "oversize request": (_set("summary", "x" * 300_000), "envelope.payload"),
    "reporting unit not the signer": (_set("reporting_unit", "police-elsewhere"), "reporting_unit"),
}


@pytest.mark.parametrize("mutate,field", BAD_REPORTS.values(), ids=BAD_REPORTS.keys())
async def test_bad_report_is_refused_naming_the_field_and_starts_nothing(client, tmp_path, mutate, field):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-BAD")
        mutate(report)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.report_case(report)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(field), err.value.details()
        await _assert_nothing_started(w, "BX-BAD")


async def _assert_nothing_started(w, case_id):
    with pytest.raises(RPCError) as err:
        await w.client.get_workflow_handle(f"case-{case_id}").describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    assert all(inst.requests_received == 0 for inst in w.institutions.values())


async def test_request_past_the_message_limit_is_cut_off_by_grpc(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.report_case(w.report("BX-HUGE", summary="x" * 2_000_000))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await _assert_nothing_started(w, "BX-HUGE")


async def test_report_signed_by_an_unregistered_key_is_unauthenticated(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        impostor = SigningKey(POLICE, w.keys[POLICE].key_id, SigningKey.generate(POLICE).private_key)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub_as(POLICE, key=impostor).report_case(w.report("BX-FORGED-REPORT"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await _assert_nothing_started(w, "BX-FORGED-REPORT")


async def test_tampered_report_is_unauthenticated(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        envelope = seal(w.report("BX-TAMPERED"), w.keys[POLICE])
        envelope.payload = envelope.payload.replace(b"6229110000800001", b"6229110000800009")
        stub = hub_pb2_grpc_stub(w, POLICE)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ReportCase(hub_pb2.ReportCaseRequest(envelope=envelope), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await _assert_nothing_started(w, "BX-TAMPERED")


async def test_report_from_a_bank_is_permission_denied(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-BANK", reporting_unit="qilu-bank")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub_as("qilu-bank").report_case(report)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await _assert_nothing_started(w, "BX-BANK")


async def test_unknown_case_is_not_found_and_bad_id_invalid(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.get_case("NO-SUCH-CASE")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.get_case("../etc")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def hub_pb2_grpc_stub(w, institution_id: str):
    """A bare HubService stub over `institution_id`'s TLS connection, for hand-made envelopes."""
    from adapters.channels import open_channel
    from stopline.v1 import hub_pb2_grpc

    return hub_pb2_grpc.HubServiceStub(open_channel(w.gateway_address, "hub", w.tls[institution_id]))


async def test_gateway_serves_health_and_reflection(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        async with open_channel(w.gateway_address, "hub", w.tls[POLICE]) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="stopline.v1.HubService"), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            services = [s.name async for r in stream for s in r.list_services_response.service]
            assert "stopline.v1.HubService" in services


# --- operators find cases ------------------------------------------------------------------------


async def test_operators_find_cases_by_status_and_with_the_temporal_cli(local_env, tmp_path):
    async with hub_world(local_env.client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-LIST"))
        await w.answered("BX-LIST")

        async def listed(status):
            for _ in range(100):  # visibility is eventually consistent
                response = await w.hub.list_cases(status=status)
                found = [c for c in response.cases if c.case_id == "BX-LIST"]
                if found:
                    return found[0]
                await asyncio.sleep(0.1)
            return None

        summary = await listed(hub_pb2.CASE_STATUS_STOPS_ANSWERED)
        assert summary is not None
        assert summary.total_reported.minor_units == 147_500_000
        assert summary.workflow_id == "case-BX-LIST"
        response = await w.hub.list_cases(status=hub_pb2.CASE_STATUS_STOPPING)
        assert "BX-LIST" not in [c.case_id for c in response.cases]

        address = local_env.client.service_client.config.target_host
        out = await asyncio.to_thread(
            subprocess.run,
            [temporal_cli(), "workflow", "list", "--address", address, "--output", "json",
             "--query", "StoplineCaseId = 'BX-LIST' AND StoplineStatus = 'stops_answered'"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert [wf["execution"]["workflowId"] for wf in json.loads(out.stdout or "[]")] == ["case-BX-LIST"]


async def test_list_cases_rejects_a_bad_page_size(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.list_cases(page_size=10_000)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("page_size")


async def test_victim_bank_need_not_be_on_the_platform(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        report = w.report("BX-OFFPLATFORM")
        for t in report.transfers:
            t.from_account.institution = "some-rural-bank"
        assert (await w.hub.report_case(report)).created
        assert (await w.answered("BX-OFFPLATFORM")).total_held.minor_units == 137_640_000


async def test_temporal_outage_is_unavailable_not_unknown(client, tmp_path):
    from temporalio.client import Client

    from gateway.server import start_gateway
    from gateway.service import HubServicer
    from stopline.hubclient import HubClient

    dead = await Client.connect("127.0.0.1:1", lazy=True)
    async with hub_world(client, tmp_path) as w:
        hub_servicer = HubServicer(dead, w.registry, w.keys["hub"], w.task_queue)
        server, port = await start_gateway("127.0.0.1:0", hub_servicer, w.tls["hub"])
        try:
            async with HubClient(f"127.0.0.1:{port}", w.registry, w.keys[POLICE], w.tls[POLICE]) as hub:
                calls = (
                    hub.report_case(w.report("BX-OUTAGE-T")),
                    hub.get_case("BX-OUTAGE-T"),
                    hub.list_cases(),
                )
                for call in calls:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call
                    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                    assert "unavailable" in err.value.details()
        finally:
            await server.stop(None)


async def test_case_without_a_worker_is_reported_unavailable_quickly(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        from stopline.domain import CASE_WORKFLOW

        await client.start_workflow(CASE_WORKFLOW, id="case-BX-NOWORKER", task_queue="no-worker-here", args=[None])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.get_case("BX-NOWORKER")
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "is a worker running" in err.value.details()
        # A caller with a deadline shorter than the gateway's 6 s for the query hears why too,
        # before its own deadline: the gateway waits on the workflow only as long as the caller.
        from stopline.hubclient import HubClient

        hasty = HubClient(w.gateway_address, w.registry, w.keys[POLICE], w.tls[POLICE], timeout_seconds=3.0)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hasty.get_case("BX-NOWORKER")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value
        finally:
            await hasty.close()
        await client.get_workflow_handle("case-BX-NOWORKER").terminate()


# --- the audit log ------------------------------------------------------------------------------


def messages_expected(case: hub_pb2.CaseView) -> tuple[int, int]:
    """(stop-payments, account queries) the chase sent for a case: one stop per account
    reached, and a query wherever the stop did not hold all of the money."""
    stops = len(case.stops)
    queries = sum(1 for s in case.stops if s.held.minor_units != s.requested.minor_units)
    return stops, queries


async def test_every_message_of_a_case_is_in_the_audit_log_and_verifies(client, tmp_path):
    from audit.entry import AuditEntry, Direction, EntryKind
    from audit.log import verify_log
    from audit.note import NoteSigner
    from stopline.v1 import envelope_pb2
    from tests.world import AUDIT_ORIGIN
    from trust.envelope import verify_as_signed

    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-AUDIT"))
        await w.answered("BX-AUDIT")
        # The suspect number is blocked (and the telecom regulator told) alongside the chase.
        case = await w.wait_for_case("BX-AUDIT", lambda c: all(n.regulator_notified for n in c.numbers))
        stops, queries = messages_expected(case)
        impostor = SigningKey.generate(POLICE)
        with pytest.raises(grpc.aio.AioRpcError):
            forged = SigningKey(POLICE, w.keys[POLICE].key_id, impostor.private_key)
            await w.hub_as(POLICE, key=forged).report_case(w.report("BX-AUDIT-2"))
        w.audit.checkpoint()

        entries = [AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves()]
        case_entries = [e for e in entries if e.case_id == "BX-AUDIT"]
        seen = sorted((e.direction.value, envelope_pb2.Envelope.FromString(e.payload).payload_type) for e in case_entries)
        # Every read of the case is on record too, signed by who read it.
        reads = len([t for t in seen if t == ("in", "stopline.v1.CaseQuery")])
        assert reads >= 1
        seen = [t for t in seen if t != ("in", "stopline.v1.CaseQuery")]
        assert seen == sorted(
            [("in", "stopline.v1.CaseReport"), ("out", "stopline.v1.CaseReceipt")]
            + [("out", "stopline.v1.StopPaymentOrder"), ("in", "stopline.v1.StopPaymentAnswer")] * stops
            + [("out", "stopline.v1.AccountQuery"), ("in", "stopline.v1.AccountReport")] * queries
            + [("out", "stopline.v1.NumberQuery"), ("in", "stopline.v1.NumberReport")]  # where the number is
            + [("out", "stopline.v1.NumberBlockOrder"), ("in", "stopline.v1.NumberBlockAnswer")]
            + [("out", "stopline.v1.InterceptionNotice"), ("in", "stopline.v1.RegulatorReceipt")]
        )
        refusals = [e for e in entries if e.kind is EntryKind.REFUSAL]
        assert len(refusals) == 1 and "UNAUTHENTICATED" in refusals[0].payload.decode()
        assert refusals[0].direction is Direction.IN

        def envelopes_verify(index, entry):
            if entry.kind is EntryKind.ENVELOPE:
                try:
                    verify_as_signed(envelope_pb2.Envelope.FromString(entry.payload), w.registry())
                except Exception as e:  # noqa: BLE001 - the report names it
                    return str(e)
            return None

        verifier = NoteSigner(AUDIT_ORIGIN, w.keys["hub"].private_key).verifier
        report = verify_log(w.audit.store, [verifier], AUDIT_ORIGIN, envelopes_verify)
        assert report.ok, report.problem
        assert report.entries == 2 + 2 * (stops + queries) + 6 + reads + 1  # the number's 6, and the refusal


async def test_a_case_evidence_bundle_verifies_offline_and_catches_tampering(client, tmp_path):
    import base64

    from audit.bundle import BundleError, export_case, verify_bundle
    from audit.note import NoteSigner
    from tests.world import AUDIT_ORIGIN

    async with hub_world(client, tmp_path) as w:
        for case_id in ("BX-BUNDLE", "BX-OTHER"):
            await w.hub.report_case(w.report(case_id))
            await w.answered(case_id)
            case = await w.wait_for_case(case_id, lambda c: all(n.regulator_notified for n in c.numbers))
            if case_id == "BX-BUNDLE":
                stops, queries = messages_expected(case)
        w.audit.checkpoint()
        hub_vkey = NoteSigner(AUDIT_ORIGIN, w.keys["hub"].private_key).verifier.vkey
        bundle = export_case(w.audit.store, "BX-BUNDLE", AUDIT_ORIGIN, [hub_vkey], w.registry())
        other = export_case(w.audit.store, "BX-OTHER", AUDIT_ORIGIN, [hub_vkey], w.registry())
        size = w.audit.store.size()
        reads = sum(1 for _, leaf, _ in w.audit.store.leaves() if b"stopline.v1.CaseQuery" in leaf and b"BX-BUNDLE" in leaf)

    report = verify_bundle(bundle, [hub_vkey])
    # The report and receipt, each order and answer, each query and report, the suspect number's
    # locate, block and notice with their answers, every read of the case.
    assert report.entries == 2 + 2 * (stops + queries) + 6 + reads and report.tree_size == size
    # Only the institutions that signed this case's messages travel with it.
    assert {i["id"] for i in bundle["registry"]["institutions"]} == {
        POLICE, "hub", "qilu-bank", "huaxia-pay", "zibo-mobile", "boxing-unicom", "zibo-telecom-regulator"
    }

    impostor = NoteSigner(AUDIT_ORIGIN, SigningKey.generate("hub").private_key).verifier.vkey
    with pytest.raises(BundleError, match="checkpoint"):
        verify_bundle(bundle, [impostor])

    smuggled = dict(bundle, entries=[*bundle["entries"][:-1], other["entries"][0]])
    with pytest.raises(BundleError, match="belongs to case 'BX-OTHER'"):
        verify_bundle(smuggled, [hub_vkey])

    forged_key = dict(bundle)
    forged_key["registry"] = json.loads(json.dumps(bundle["registry"]))
    qilu = next(i for i in forged_key["registry"]["institutions"] if i["id"] == "qilu-bank")
    stranger = SigningKey.generate("qilu-bank")
    qilu["keys"][0]["public_key"] = base64.b64encode(stranger.public_key.public_bytes_raw()).decode()
    qilu["keys"][0]["key_id"] = stranger.key_id
    with pytest.raises(BundleError, match="envelope signature"):
        verify_bundle(forged_key, [hub_vkey])


async def test_a_replayed_report_is_refused_and_audited(client, tmp_path):
    from audit.entry import AuditEntry, EntryKind
    from stopline.v1 import hub_pb2_grpc

    async with hub_world(client, tmp_path) as w:
        envelope = seal(w.report("BX-REPLAYED"), w.keys[POLICE])
        async with open_channel(w.gateway_address, "hub", w.tls[POLICE]) as channel:
            stub = hub_pb2_grpc.HubServiceStub(channel)
            await stub.ReportCase(hub_pb2.ReportCaseRequest(envelope=envelope), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ReportCase(hub_pb2.ReportCaseRequest(envelope=envelope), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "replayed" in err.value.details()
        await w.answered("BX-REPLAYED")
        assert len(w.institutions["qilu-bank"].ledger.holds()) == 2
        refusals = [AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves()]
        assert [e for e in refusals if e.kind is EntryKind.REFUSAL and b"replayed" in e.payload]


async def test_a_bundle_whose_labels_disagree_with_what_was_signed_is_refused(client, tmp_path):
    """A hub that records a genuine message under the wrong case or sender is caught."""
    import dataclasses

    from audit.bundle import BundleError, export_case, verify_bundle
    from audit.entry import AuditEntry, EntryKind
    from audit.log import AuditLog
    from audit.note import NoteSigner
    from audit.store import SqliteAuditStore
    from tests.world import AUDIT_ORIGIN

    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-LABEL"))
        await w.answered("BX-LABEL")
        genuine = [AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves()]
        registry = w.registry()
        signer = NoteSigner(AUDIT_ORIGIN, w.keys["hub"].private_key)

    answer = next(e for e in genuine if e.kind is EntryKind.ENVELOPE and e.institution == "qilu-bank" and e.direction.value == "in")
    for label, problem in (
        (dataclasses.replace(answer, case_id="BX-ELSE"), "signed about 'BX-LABEL'"),
        (dataclasses.replace(answer, institution="huaxia-pay"), "signed by 'qilu-bank'"),
    ):
        log = AuditLog(SqliteAuditStore(tmp_path / f"doctored-{problem[:6]}.db"), signer, AUDIT_ORIGIN)
        log.append(label)
        log.checkpoint()
        bundle = export_case(log.store, label.case_id, AUDIT_ORIGIN, [signer.verifier.vkey], registry)
        with pytest.raises(BundleError, match=problem):
            verify_bundle(bundle, [signer.verifier.vkey], registry)

    log = AuditLog(SqliteAuditStore(tmp_path / "fine.db"), signer, AUDIT_ORIGIN)
    log.append(answer)
    log.checkpoint()
    bundle = export_case(log.store, "BX-LABEL", AUDIT_ORIGIN, [signer.verifier.vkey], registry)
    verify_bundle(bundle, [signer.verifier.vkey], registry)
    with pytest.raises(BundleError, match="increasing"):
        verify_bundle(dict(bundle, entries=bundle["entries"] * 2), [signer.verifier.vkey], registry)
    with pytest.raises(BundleError, match="checkpoint"):
        verify_bundle(bundle, [], registry)  # pinning nothing trusts nothing
    with pytest.raises(BundleError):
        verify_bundle([bundle])  # type: ignore[arg-type]
