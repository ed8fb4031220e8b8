"""Who may talk to whom: registry roles on every HubService call, and mutual TLS on every
connection with the certificate bound to the envelope's signer. Real gateway, real sandbox
banks, real certificates from a local CA; each refusal leaves nothing started and is audited."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from temporalio.service import RPCError, RPCStatusCode

from adapters.channels import open_channel
from audit.entry import AuditEntry, EntryKind
from stopline.hubclient import HubClient
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2, hub_pb2, hub_pb2_grpc
from tests.world import AUDITOR, OPERATORS, POLICE, hub_world
from trust.envelope import seal
from trust.registry import Registry, Role
from trust.tls import LocalCA


async def _nothing_started(w, case_id: str) -> None:
    with pytest.raises(RPCError) as err:
        await w.client.get_workflow_handle(f"case-{case_id}").describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    assert all(inst.requests_received == 0 for inst in w.institutions.values())


def _refusals(w) -> list[str]:
    entries = (AuditEntry.decode(leaf) for _, leaf, _ in w.audit.store.leaves())
    return [e.payload.decode() for e in entries if e.kind is EntryKind.REFUSAL]


def _set_roles(w, institution_id: str, roles: set[Role]) -> None:
    """An operator's edit of the registry, which the running hub follows."""
    registry = w.registry()
    w._registry[0] = Registry(
        [dataclasses.replace(i, roles=frozenset(roles)) if i.id == institution_id else i for i in registry]
    )


# --- roles --------------------------------------------------------------------------------------


async def test_operators_and_auditors_read_cases_but_may_not_report(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-READERS"))
        await w.answered("BX-READERS")
        for reader in (OPERATORS, AUDITOR):
            case = await w.hub_as(reader).get_case("BX-READERS")
            assert case.total_held.minor_units == 137_640_000
            listed = await w.hub_as(reader).list_cases()
            assert "BX-READERS" in [c.case_id for c in listed.cases]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub_as(AUDITOR).report_case(w.report("BX-BY-AUDITOR", reporting_unit=AUDITOR))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not report cases" in err.value.details() and "'report'" in err.value.details()
        with pytest.raises(RPCError):
            await w.client.get_workflow_handle("case-BX-BY-AUDITOR").describe()
        assert any("PERMISSION_DENIED" in r and AUDITOR in r for r in _refusals(w))


async def test_a_bank_may_not_read_cases(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-NOSY"))
        await w.answered("BX-NOSY")
        bank = w.hub_as("qilu-bank")
        for call in (bank.get_case("BX-NOSY"), bank.list_cases()):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "'qilu-bank' may not read cases" in err.value.details()


async def test_roles_edited_in_the_registry_take_effect_at_once(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        _set_roles(w, POLICE, {Role.READ})  # this unit may no longer report
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.report_case(w.report("BX-ROLE-GONE"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await _nothing_started(w, "BX-ROLE-GONE")
        _set_roles(w, POLICE, {Role.REPORT, Role.READ})
        assert (await w.hub.report_case(w.report("BX-ROLE-GONE"))).created


async def test_unsigned_and_replayed_reads_are_refused(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        await w.hub.report_case(w.report("BX-READ-REPLAY"))
        await w.answered("BX-READ-REPLAY")
        async with open_channel(w.gateway_address, "hub", w.tls[OPERATORS]) as channel:
            stub = hub_pb2_grpc.HubServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetCase(hub_pb2.GetCaseRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "envelope: required" in err.value.details()

            query = seal(hub_pb2.CaseQuery(case_id="BX-READ-REPLAY"), w.keys[OPERATORS])
            await stub.GetCase(hub_pb2.GetCaseRequest(envelope=query), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetCase(hub_pb2.GetCaseRequest(envelope=query), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "replayed" in err.value.details()

            wrong_type = seal(hub_pb2.CaseQuery(case_id="BX-READ-REPLAY"), w.keys[OPERATORS])
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListCases(hub_pb2.ListCasesRequest(envelope=wrong_type), timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "expected 'stopline.v1.CaseListQuery'" in err.value.details()


# --- mutual TLS ---------------------------------------------------------------------------------


async def test_an_envelope_sent_over_another_institutions_certificate_is_unauthenticated(client, tmp_path):
    """A bank that got hold of a police unit's signed report cannot pass it off as its own
    connection's: the certificate must be the signer's. Nothing starts, and the refusal is
    audited."""
    async with hub_world(client, tmp_path) as w:
        envelope = seal(w.report("BX-WRONG-CERT"), w.keys[POLICE])
        async with open_channel(w.gateway_address, "hub", w.tls["qilu-bank"]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hub_pb2_grpc.HubServiceStub(channel).ReportCase(
                    hub_pb2.ReportCaseRequest(envelope=envelope), timeout=5
                )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "certificate names 'qilu-bank'" in err.value.details()
        await _nothing_started(w, "BX-WRONG-CERT")
        assert any("certificate names 'qilu-bank'" in r for r in _refusals(w))
        # The envelope was not burnt: its rightful sender can still deliver it.
        async with open_channel(w.gateway_address, "hub", w.tls[POLICE]) as channel:
            await hub_pb2_grpc.HubServiceStub(channel).ReportCase(hub_pb2.ReportCaseRequest(envelope=envelope), timeout=5)
        await w.answered("BX-WRONG-CERT")


async def test_a_certificate_the_registry_does_not_pin_is_unauthenticated(client, tmp_path):
    """Our own CA issued it under the right name, but the registry pins another certificate
    for that unit (e.g. a laptop's certificate retired after it was lost)."""
    async with hub_world(client, tmp_path) as w:
        # A second certificate for the same unit from the same CA would pass the handshake; make
        # the pin differ by pinning a fresh certificate instead of the one the client presents.
        registry = w.registry()
        other = LocalCA.create().issue(POLICE)
        w._registry[0] = Registry(
            [dataclasses.replace(i, tls_cert_sha256=other.cert_sha256) if i.id == POLICE else i for i in registry]
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.report_case(w.report("BX-UNPINNED"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "not the one the registry pins" in err.value.details()
        await _nothing_started(w, "BX-UNPINNED")


async def test_callers_without_a_certificate_from_our_ca_never_reach_the_hub(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        stranger = LocalCA.create().issue(POLICE)  # right name, someone else's CA
        foreign = dataclasses.replace(stranger, ca_pem=w.tls[POLICE].ca_pem)  # trusts our server
        clients = [
            w.hub_as(POLICE, tls=foreign),
            HubClient(w.gateway_address, w.registry, w.keys[POLICE], None),  # plaintext
        ]
        try:
            for hub in clients:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await hub.report_case(w.report("BX-NO-CERT"))
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # refused in the handshake
        finally:
            await clients[1].close()
        await _nothing_started(w, "BX-NO-CERT")


async def test_the_hub_refuses_a_bank_endpoint_that_presents_another_institutions_certificate(client, tmp_path):
    """The registry sends qilu-bank's orders to huaxia-pay's server (a hijacked DNS entry, an
    operator's typo): the handshake fails because the server is not qilu-bank, nothing is held
    anywhere, and the case says why."""
    async with hub_world(client, tmp_path) as w:
        registry = w.registry()
        huaxia = registry.endpoint("huaxia-pay")
        w._registry[0] = Registry(
            [dataclasses.replace(i, endpoint=huaxia) if i.id == "qilu-bank" else i for i in registry]
        )
        await w.hub.report_case(w.report("BX-HIJACK"))

        def qilu_stops_failed(case):
            qilu = [s for s in case.stops if s.account.institution == "qilu-bank"]
            return all(s.attempts >= 1 and s.last_error for s in qilu)

        case = await w.wait_for_case("BX-HIJACK", qilu_stops_failed)
        qilu = [s for s in case.stops if s.account.institution == "qilu-bank"]
        assert all(s.state == hub_pb2.STOP_STATE_ASKED and "UNAVAILABLE" in s.last_error for s in qilu)
        assert w.institutions["qilu-bank"].requests_received == 0
        # Only huaxia-pay's own account; qilu-bank's orders never reached it.
        assert [h.account for h in w.institutions["huaxia-pay"].ledger.holds()] == ["HXP-8800-3000-0003"]
        # The operator fixes the registry; the retries go through to the real bank.
        w._registry[0] = registry
        case = await w.answered("BX-HIJACK", within=30)
        assert case.total_held.minor_units == 137_640_000


async def test_a_bank_refuses_the_hubs_envelope_over_anyone_elses_certificate(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        bank = w.institutions["qilu-bank"]
        order = bank_pb2.StopPaymentOrder(
            idempotency_key="case-BX-STOLEN/stop/qilu-bank/6229110000800001",
            case_id="BX-STOLEN",
            account=common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000800001"),
            amount=common_pb2.Money(minor_units=100, currency="CNY"),
        )
        envelope = seal(order, w.keys["hub"])
        async with open_channel(bank.endpoint, "qilu-bank", w.tls[POLICE]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await bank_pb2_grpc.BankServiceStub(channel).StopPayment(
                    bank_pb2.StopPaymentRequest(envelope=envelope), timeout=5
                )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "certificate names 'police-boxing' but the envelope is signed by 'hub'" in err.value.details()
        assert bank.ledger.holds() == []
