"""`stopline`: run the hub (up, demo, worker, gateway, sandbox) and talk to it (report, case, cases).

    stopline up             the whole stack on embedded defaults, until Ctrl-C
    stopline demo           the whole stack, one demo case reported and followed, then stop
    stopline init           make keys and the registry in the data folder
    stopline worker|gateway|sandbox     one part alone
    stopline report FILE    report a case (JSON) as the police unit named in it
    stopline case ID        one case, per account
    stopline cases          every case, newest first
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from sandbox import ScenarioError
from stopline import logs
from stopline.casefile import CaseFileError, load_case_file, rebase_report, report_from_dict
from stopline.config import ConfigError, Settings, load
from stopline.hubclient import HubClient
from stopline.render import (
    case_extras,
    case_table,
    cases_table,
    flow_line,
    hops_table,
    money,
    money_summary,
    stop_line,
)
from stopline.setup import HUB_ID, registry_file, tls_identity
from stopline.v1 import common_pb2, crossborder_pb2, hub_pb2
from trust.errors import TrustError
from trust.keys import SigningKey
from trust.replay import SqliteNonceCache

# Wide enough for the case table when output goes to a file or a pipe (rich assumes 80 there).
# Piped or captured output is read by scripts and logs: wide enough that no table cell is cut.
console = Console() if sys.stdout.isatty() else Console(width=220)
DEMO_WAIT_SECONDS = 60.0


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def print_addresses(addresses: dict[str, str]) -> None:
    width = max(len(k) for k in addresses)
    for name, value in addresses.items():
        console.print(f"  {name.ljust(width)}  {value}", highlight=False)


def read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as e:
        raise CommandError(f"cannot read {path}: {e}") from None


def log_file(settings: Settings) -> Path:
    return settings.data_dir / "stopline.log"


def unit_key(settings: Settings, unit: str) -> SigningKey:
    path = settings.key_path(unit)
    if not path.exists():
        raise CommandError(f"no key for {unit!r} at {path}: run `stopline init` (or pass --as UNIT)")
    return SigningKey.load(unit, path)


def hub_client(settings: Settings, identity: str, address: str | None = None) -> HubClient:
    """A HubService client speaking as `identity`: its key signs, its certificate connects."""
    key = unit_key(settings, identity)
    try:
        tls = tls_identity(settings, identity)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None
    return HubClient(address or settings.gateway_address, registry_file(settings), key, tls)


# --- running the hub ----------------------------------------------------------------------------


async def cmd_up(settings: Settings, args) -> int:
    from stopline.stack import Stack

    async with Stack(settings) as stack:
        console.print("[bold]Stopline is up[/bold] (Ctrl-C stops everything):")
        print_addresses(stack.addresses())
        example = settings.data_dir / "example-case.json"
        example.write_text(json.dumps(stack.scenario.case, indent=2, ensure_ascii=False) + "\n", "utf-8")
        console.print(f"  report a case   .venv/bin/stopline report {example}", highlight=False)
        await wait_for_stop_signal()
        console.print("stopping ...")
    return 0


def close_earlier_demos(stack, report: hub_pb2.CaseReport) -> None:
    """Every demo tells the scenario's story afresh: earlier demo runs of it (still open, their
    holds running) take no new victims, so this run's case is not linked into theirs."""
    from stopline.caseindex import account_key
    from stopline.domain import Account

    index = stack.case_index
    if index is None:
        return
    prefix = f"{stack.scenario.case['case_id']}-"
    for t in report.transfers:
        if not t.HasField("to_account"):
            continue  # sent abroad: nothing at home to share
        key = account_key(Account(t.to_account.institution, t.to_account.account_number))
        for link in index.find(key):
            if link.lead_case_id.startswith(prefix) and index.is_open(link.lead_case_id):
                index.close_group(link.lead_case_id)


async def cmd_demo(settings: Settings, args) -> int:
    from stopline.stack import Stack

    console.print("[bold]Stopline demo[/bold]: starting the hub on embedded defaults ...")
    # The sandbox banks start from the scenario's balances every time, so the demo can be run
    # again and again with the same outcome (only sandbox ledgers are reset, under the lock).
    # The scenario's story, moved in time so that its case is reported now: the sandbox's
    # history is seeded relative to the same moment the report is rebased to.
    now = datetime.now(UTC)
    async with Stack(settings, reset_sandbox=True, anchor=now) as stack:
        print_addresses(stack.addresses())
        # A case id unique to this run: every demo is a new case in Temporal's history.
        report = rebase_report(report_from_dict(stack.scenario.case), now, f"{stack.scenario.case['case_id']}-{now:%Y%m%d-%H%M%S}")
        unit = report.reporting_unit
        console.print(
            f"\n[bold]{unit}[/bold] reports case {report.case_id}: {report.summary}\n"
            f"  {len(report.transfers)} transfers, suspects {', '.join(report.suspect_phone_numbers) or '-'}",
            highlight=False,
        )
        close_earlier_demos(stack, report)
        async with hub_client(settings, unit, stack.gateway_address) as hub:
            if stack.sandbox is not None:
                stack.sandbox.mules.start()  # the race starts with the report: mules move on
            started = time.perf_counter()
            receipt = await hub.report_case(report)
            console.print(f"  hub accepted it: workflow {receipt.workflow_id}", highlight=False)
            case = await follow_case(hub, report.case_id, started)
            elapsed = time.perf_counter() - started
            if stack.sandbox is not None and case.recoveries:
                case = await follow_recoveries(hub, stack.sandbox, report.case_id, started)
        console.print()
        print_case(case)
        if stack.sandbox is not None:
            print_race(stack.sandbox.mules.results, case.total_reported.currency)
        outcome_ok = case.status in CHASE_DONE
        holding = {s.account.institution for s in case.stops if s.held.minor_units > 0}
        unverified = [s for s in case.stops if s.state in (hub_pb2.STOP_STATE_ANSWER_REJECTED, hub_pb2.STOP_STATE_FAILED)]
        console.print(
            f"{money(case.total_held)} of {money(case.total_reported)} held at {len(holding)} "
            f"institution{'s' if len(holding) != 1 else ''} across {len(case.stops)} accounts, "
            + (f"{len(unverified)} stop(s) need an operator" if unverified else "every answer signed and verified")
            + f", in {elapsed:.2f} s.",
            highlight=False,
        )
        if stack.dev_server is not None:
            console.print(
                f"Temporal Web UI: {stack.dev_server.ui_url}/namespaces/{settings.temporal_namespace}"
                f"/workflows/{receipt.workflow_id}  (run `make up` to keep it open)",
                highlight=False,
            )
        console.print("stopping ...")
    return 0 if outcome_ok else 1


# The demo's recall channels answer within half a minute (sandbox scripts).
RECOVERY_DEMO_WAIT_SECONDS = 45.0

CHASE_DONE = (hub_pb2.CASE_STATUS_STOPS_ANSWERED, hub_pb2.CASE_STATUS_CONCLUDED, hub_pb2.CASE_STATUS_CLOSED)

# Past this many accounts a case prints per hop, not per account.
DETAIL_ACCOUNTS = 20


def print_case(case: hub_pb2.CaseView) -> None:
    """The per-account table (per hop for a large case), where the money went, and the four
    totals that add up."""
    if len(case.stops) <= DETAIL_ACCOUNTS:
        if case.stops:  # a case sent straight abroad stops nothing at home
            console.print(case_table(case))
        else:
            console.print(f"Case {case.case_id}: nothing to stop at home", highlight=False)
        for flow in case.flows:
            if flow.kind != hub_pb2.FLOW_KIND_ONWARD:  # onward flows show as the next hop's row
                console.print(f"  {flow_line(flow)}", highlight=False)
    else:
        console.print(hops_table(case))
    console.print(money_summary(case), highlight=False)
    for line in case_extras(case):
        console.print(line, highlight=False)


def print_race(results, currency: str) -> None:
    """What the mules tried while the hub chased them: money they got away with, and money a
    hold kept from them."""
    sent = sum(r.sent_minor for r in results)
    kept = sum(r.kept_minor for r in results)
    if results:
        console.print(
            f"During the chase the mules made {len(results)} more moves: {money(common_pb2.Money(minor_units=sent, currency=currency))} "
            f"got away, {money(common_pb2.Money(minor_units=kept, currency=currency))} was stopped by a hold.",
            highlight=False,
        )


async def follow_recoveries(hub: HubClient, sandbox, case_id: str, started: float) -> hub_pb2.CaseView:
    """Money sent abroad: the sandbox's recall channels answer over seconds, as their script says.
    Print what each reports as the hub takes it, until every channel has said all it will say
    (a scenario without recall channels: at once)."""
    from sandbox.crossborder import DELIVERED, PENDING

    channels = [inst for inst in sandbox.institutions.values() if inst.recalls is not None]
    case = await hub.get_case(case_id)
    if not channels:
        return case
    console.print("  recalling the money sent abroad through every channel at once ...", highlight=False)
    seen: dict[str, int] = {}
    quiet_since = 0.0
    deadline = time.monotonic() + RECOVERY_DEMO_WAIT_SECONDS
    while True:
        case = await hub.get_case(case_id)
        for r in case.recoveries:
            for event in r.events[seen.get(r.recovery_id, 0):]:
                console.print(f"  [{time.perf_counter() - started:6.3f} s]   {event.what}", highlight=False)
            seen[r.recovery_id] = len(r.events)
        asked = all(r.channels and all(c.state != crossborder_pb2.CHANNEL_STATE_REQUESTING for c in r.channels)
                    for r in case.recoveries)  # fmt: skip
        outbox = [u.state for inst in channels for u in inst.recall_updates()]
        applied = sum(c.updates for r in case.recoveries for c in r.channels)
        settled = all(r.state != crossborder_pb2.RECOVERY_STATE_ACTIVE for r in case.recoveries)
        if asked and not outbox:
            return case  # the channels have nothing scripted to say: the recall waits on
        if asked and PENDING not in outbox and applied >= outbox.count(DELIVERED):
            # Said all they will say: a recovery whose channels have all ended closes a moment later.
            quiet_since = quiet_since or time.monotonic()
            if settled or time.monotonic() - quiet_since > 3.0:
                return case
        if time.monotonic() > deadline:
            return case
        await asyncio.sleep(0.25)


async def follow_case(hub: HubClient, case_id: str, started: float) -> hub_pb2.CaseView:
    """Print each account's change and each piece of money found moving, as they happen, until
    the chase is done."""
    seen: dict[str, str] = {}
    flows_seen = 0
    deadline = time.monotonic() + DEMO_WAIT_SECONDS
    while True:
        case = await hub.get_case(case_id)
        at = f"  [{time.perf_counter() - started:6.3f} s]"
        if len(case.stops) > DETAIL_ACCOUNTS:  # a large case: one line per change of the totals
            line = (
                f"{len(case.stops)} accounts reached (hop {max(s.depth for s in case.stops)}), "
                f"{sum(1 for s in case.stops if s.state != hub_pb2.STOP_STATE_ASKED)} answered, {money_summary(case)}"
            )
            if seen.get("") != line:
                seen[""] = line
                console.print(f"{at} {line}", highlight=False)
        else:
            for stop in case.stops:
                key = f"{stop.account.institution}/{stop.account.account_number}"
                line = stop_line(stop)
                if seen.get(key) != line:
                    seen[key] = line
                    console.print(f"{at} {line}", highlight=False)
            for flow in case.flows[flows_seen:]:
                console.print(f"{at}   {flow_line(flow)}", highlight=False)
            flows_seen = len(case.flows)
        if case.status in CHASE_DONE or time.monotonic() > deadline:
            return case
        await asyncio.sleep(0.05)


async def cmd_init(settings: Settings, args) -> int:
    from stopline.stack import load_scenario_and_keys

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _, keys = load_scenario_and_keys(settings)
    console.print(f"data folder {settings.data_dir.resolve()}", highlight=False)
    console.print(f"  registry  {settings.registry_path}", highlight=False)
    for inst_id, key in sorted(keys.items()):
        console.print(f"  key       {inst_id}: {key.key_id}", highlight=False)
    return 0


async def cmd_worker(settings: Settings, args) -> int:
    from adapters.channels import ChannelPool
    from stopline.caseindex import SqliteCaseIndex
    from stopline.stack import checkpointing, connect, hub_key_file, open_audit
    from worker import build_worker

    client = await connect(settings)
    channels = ChannelPool(tls_identity(settings, HUB_ID))
    hub_key = unit_key(settings, HUB_ID)
    async with checkpointing(open_audit(settings, hub_key), settings.audit_checkpoint_seconds) as audit:
        worker = build_worker(
            client, settings.task_queue, hub_key=hub_key_file(settings), registry=registry_file(settings),
            channels=channels, audit=audit, replay=SqliteNonceCache(settings.nonces_db),
            case_index=SqliteCaseIndex(settings.case_index_db),
        )  # fmt: skip
        task = asyncio.create_task(worker.run())
        console.print(f"worker on task queue {settings.task_queue!r} at {settings.temporal_address}", highlight=False)
        waiter = asyncio.create_task(wait_for_stop_signal())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task not in done:
            await worker.shutdown()
        await task
        await channels.close()
    return 0


async def cmd_gateway(settings: Settings, args) -> int:
    from gateway.server import start_gateway
    from gateway.service import HubServicer
    from stopline.caseindex import SqliteCaseIndex
    from stopline.stack import checkpointing, connect, ensure_search_attributes, hub_key_file, open_audit

    client = await connect(settings)
    await ensure_search_attributes(client)
    hub_key = unit_key(settings, HUB_ID)
    async with checkpointing(open_audit(settings, hub_key), settings.audit_checkpoint_seconds) as audit:
        hub = HubServicer(
            client, registry_file(settings), hub_key_file(settings), settings.task_queue, audit,
            SqliteNonceCache(settings.nonces_db), chase_max_depth=settings.chase_max_depth,
            case_index=SqliteCaseIndex(settings.case_index_db), deadlines=settings.deadlines,
            escalation=settings.escalation, estimate_rates=settings.rates,
            recall_give_up_days=settings.recall_give_up_days, report_limit=settings.report_limit,
        )  # fmt: skip
        server, port = await start_gateway(settings.gateway_address, hub, tls_identity(settings, HUB_ID))
        console.print(f"HubService on port {port}", highlight=False)
        await wait_for_stop_signal()
        await server.stop(2)
    return 0


async def cmd_sandbox(settings: Settings, args) -> int:
    from stopline.stack import Stack

    async with Stack(settings, temporal=False, worker=False, gateway=False) as stack:
        console.print("sandbox institutions up (Ctrl-C stops them):")
        print_addresses(stack.addresses())
        await wait_for_stop_signal()
    return 0


# --- talking to the hub -------------------------------------------------------------------------


async def cmd_report(settings: Settings, args) -> int:
    try:
        report = load_case_file(Path(args.file))
    except CaseFileError as e:
        raise CommandError(str(e)) from None
    unit = args.as_unit or report.reporting_unit
    async with hub_client(settings, unit) as hub:
        receipt = await hub.report_case(report)
    if receipt.created:
        console.print(f"case {receipt.case_id} opened: workflow {receipt.workflow_id}", highlight=False)
    else:
        console.print(f"case {receipt.case_id} was already open: nothing new started", highlight=False)
    return 0


async def cmd_case(settings: Settings, args) -> int:
    async with hub_client(settings, args.as_reader or settings.operator_id) as hub:
        case = await hub.get_case(args.case_id)
    print_case(case)
    return 0


async def cmd_cases(settings: Settings, args) -> int:
    status = {"all": 0, "stopping": hub_pb2.CASE_STATUS_STOPPING, "answered": hub_pb2.CASE_STATUS_STOPS_ANSWERED,
              "concluded": hub_pb2.CASE_STATUS_CONCLUDED, "closed": hub_pb2.CASE_STATUS_CLOSED}  # fmt: skip
    cases: list[hub_pb2.CaseSummary] = []
    token = b""
    async with hub_client(settings, args.as_reader or settings.operator_id) as hub:
        while len(cases) < args.limit:
            page = await hub.list_cases(status=status[args.status], page_size=min(500, args.limit - len(cases)), page_token=token)
            cases.extend(page.cases)
            token = page.next_page_token
            if not token:
                break
    console.print(cases_table(cases))
    return 0


async def cmd_decide(settings: Settings, args) -> int:
    """An officer's decision on a held account: freeze, renew or release."""
    from stopline.money import parse_amount

    institution, _, number = args.account.partition("/")
    if not institution or not number:
        raise CommandError(f"account: {args.account!r} is not INSTITUTION/ACCOUNT_NUMBER")
    decision = hub_pb2.HoldDecision(
        case_id=args.case_id, account=common_pb2.AccountRef(institution=institution, account_number=number)
    )
    if args.command == "freeze":
        try:
            amount = parse_amount(args.amount, args.currency)
        except ValueError as e:
            raise CommandError(f"--amount: {e}") from None
        decision.freeze.CopyFrom(hub_pb2.FreezeDecision(amount=common_pb2.Money(minor_units=amount.minor_units,
                                 currency=amount.currency), officer=args.officer, document_ref=args.document))  # fmt: skip
    elif args.command == "renew":
        decision.renew.CopyFrom(hub_pb2.RenewDecision(officer=args.officer, document_ref=args.document))
    else:
        decision.release.CopyFrom(hub_pb2.ReleaseDecision(officer=args.officer, reason=args.reason))
    async with hub_client(settings, args.as_unit) as hub:
        receipt = await hub.decide_hold(decision)
    state = hub_pb2.HoldState.Name(receipt.hold_state).removeprefix("HOLD_STATE_").lower()
    console.print(f"{args.command} of {args.account} in case {args.case_id} accepted: {state}", highlight=False)
    return 0


async def cmd_unblock(settings: Settings, args) -> int:
    """An officer lifts the block on a number blocked by mistake."""
    decision = hub_pb2.NumberUnblockDecision(case_id=args.case_id, phone_number=args.number, officer=args.officer,
                                             reason=args.reason)  # fmt: skip
    async with hub_client(settings, args.as_unit) as hub:
        await hub.unblock_number(decision)
    console.print(f"unblock of {args.number} in case {args.case_id} accepted: the carrier lifts it now", highlight=False)
    return 0


async def cmd_conclude(settings: Settings, args) -> int:
    """An officer concludes a case: its frozen money goes back to the victims."""
    conclusion = hub_pb2.CaseConclusion(case_id=args.case_id, officer=args.officer, document_ref=args.document)
    async with hub_client(settings, args.as_unit) as hub:
        await hub.conclude_case(conclusion)
        case = await hub.get_case(args.case_id)
    print_case(case)
    return 0


async def cmd_acknowledge(settings: Settings, args) -> int:
    """The leader a large case was escalated to takes it on."""
    ack = hub_pb2.EscalationAcknowledgement(case_id=args.case_id, officer=args.officer, note=args.note or "")
    async with hub_client(settings, args.as_unit) as hub:
        await hub.acknowledge_escalation(ack)
    console.print(f"case {args.case_id}: escalation acknowledged by {args.officer} of {args.as_unit}", highlight=False)
    return 0


async def cmd_find(settings: Settings, args) -> int:
    """Every case touching an account, a number or a device."""
    search = hub_pb2.CaseSearch()
    if args.account:
        institution, _, number = args.account.partition("/")
        if not institution or not number:
            raise CommandError(f"--account: {args.account!r} is not INSTITUTION/ACCOUNT_NUMBER")
        search.account.CopyFrom(common_pb2.AccountRef(institution=institution, account_number=number))
    elif args.number:
        search.phone_number = args.number
    elif args.device:
        search.device_id = args.device
    else:
        raise CommandError("say what to look for: --account, --number or --device")
    async with hub_client(settings, args.as_reader or settings.operator_id) as hub:
        links = await hub.find_cases(search)
    if not links:
        console.print("no case touches it", highlight=False)
    for link in links:
        lead = f" (in the chase of case {link.lead_case_id})" if link.lead_case_id != link.case_id else ""
        console.print(f"case {link.case_id}{lead}: {link.how} since {link.since.ToDatetime():%Y-%m-%d %H:%M} UTC", highlight=False)
    return 0


async def cmd_audit(settings: Settings, args) -> int:
    from stopline.auditcli import (
        AuditCommandError,
        audit_consistency,
        audit_export,
        audit_prove,
        audit_verify,
        audit_verify_bundle,
        dumps,
    )

    if args.audit_command == "verify-bundle":  # offline: needs no data folder, no registry
        ok, message = audit_verify_bundle(Path(args.file), args.hub_key, Path(args.registry) if args.registry else None)
        console.print(message, highlight=False)
        return 0 if ok else 1
    reg = registry_file(settings)()
    try:
        if args.audit_command == "verify":
            since = Path(args.since) if args.since else None
            ok, message = audit_verify(settings, reg, args.hub_key, read_text(since) if since else None)
            console.print(message, highlight=False)
            return 0 if ok else 1
        if args.audit_command == "prove":
            print(dumps(audit_prove(settings, reg, args.entry)))
            return 0
        if args.audit_command == "consistency":
            print(dumps(audit_consistency(settings, args.old, args.new)))
            return 0
        if args.audit_command == "export":
            bundle = audit_export(settings, reg, args.case_id, Path(args.output) if args.output else None)
            if bundle is not None:
                print(bundle, end="")
            return 0
        raise CommandError(f"unknown audit command {args.audit_command!r}")
    except AuditCommandError as e:
        raise CommandError(str(e)) from None


async def cmd_keys(settings: Settings, args) -> int:
    from stopline.keyscli import (
        KeysCommandError,
        keys_certificate,
        keys_list,
        keys_new,
        keys_revoke,
        keys_rotate,
    )

    try:
        if args.keys_command == "list":
            rows = keys_list(settings)
            table = Table(title=f"registry {settings.registry_path}")
            for column in rows[0] if rows else ():
                table.add_column(column)
            for row in rows:
                table.add_row(*row.values())
            console.print(table)
        elif args.keys_command == "new":
            key_id = keys_new(settings, args.institution, args.kind, args.name or args.institution, args.endpoint, args.public_key)
            console.print(f"registered {args.institution} with key {key_id}", highlight=False)
        elif args.keys_command == "rotate":
            key_id = keys_rotate(settings, args.institution, args.public_key, timedelta(hours=args.overlap_hours))
            console.print(
                f"{args.institution}: new key {key_id}; older keys stay valid for {args.overlap_hours} h", highlight=False
            )
        elif args.keys_command == "certificate":
            pem = read_text(Path(args.certificate)).encode() if args.certificate else None
            pin = keys_certificate(settings, args.institution, pem)
            console.print(f"{args.institution}: TLS certificate {pin} pinned; any other is refused", highlight=False)
        else:
            keys_revoke(settings, args.institution, args.key_id)
            console.print(f"{args.institution}: key {args.key_id} revoked", highlight=False)
    except KeysCommandError as e:
        raise CommandError(str(e)) from None
    return 0


COMMANDS = {
    "up": (cmd_up, "start the whole stack on embedded defaults and keep it running until Ctrl-C"),
    "demo": (cmd_demo, "start the stack, report the demo case, show what was held where, stop"),
    "init": (cmd_init, "make keys and the registry in the data folder (done by up and demo too)"),
    "worker": (cmd_worker, "run a worker against the configured Temporal"),
    "gateway": (cmd_gateway, "run the HubService gateway"),
    "sandbox": (cmd_sandbox, "run the sandbox institutions of the scenario"),
    "report": (cmd_report, "report a case from a JSON file"),
    "case": (cmd_case, "show one case"),
    "cases": (cmd_cases, "list cases"),
    "freeze": (cmd_decide, "an officer's freeze of a held account (6 months)"),
    "renew": (cmd_decide, "an officer's renewal of a freeze (6 more months)"),
    "release": (cmd_decide, "an officer's release of a held or frozen account"),
    "unblock": (cmd_unblock, "an officer lifts the block on a number blocked by mistake"),
    "conclude": (cmd_conclude, "an officer concludes a case: frozen money goes back to the victims"),
    "acknowledge": (cmd_acknowledge, "the leader a large case was escalated to acknowledges it"),
    "find": (cmd_find, "every case touching an account, a phone number or a device"),
    "keys": (cmd_keys, "list, add, rotate and revoke institutions' keys in the registry"),
    "audit": (cmd_audit, "verify the audit log, prove an entry, prove an old checkpoint is a prefix"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stopline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="TOML settings file (default: $STOPLINE_CONFIG or ./stopline.toml)")
    p.add_argument("--data-dir", type=Path, help="data folder (default .stopline)")
    p.add_argument(
        "--plaintext", action="store_true", default=None,
        help="local debugging only: no TLS on any server or channel (envelopes are still signed)",
    )  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == "report":
            sp.add_argument("file", help="the case as JSON (see stopline/casefile.py)")
            sp.add_argument("--as", dest="as_unit", help="sign as this police unit (default: the file's reporting_unit)")
        elif name in ("freeze", "renew", "release"):
            sp.add_argument("case_id")
            sp.add_argument("account", help="INSTITUTION/ACCOUNT_NUMBER, e.g. qilu-bank/6229110000800001")
            sp.add_argument("--as", dest="as_unit", required=True, help="the deciding police unit (role approve)")
            sp.add_argument("--officer", required=True, help="the approving officer (name or badge number)")
            if name == "freeze":
                sp.add_argument("--amount", required=True, help="how much to freeze, e.g. 800000.00 (at most what is held)")
                sp.add_argument("--currency", default="CNY")
            if name in ("freeze", "renew"):
                sp.add_argument("--document", required=True, help="reference of the signed approval document")
            else:
                sp.add_argument("--reason", required=True, help="why, for the record")
        elif name in ("unblock", "conclude", "acknowledge"):
            sp.add_argument("case_id")
            if name == "unblock":
                sp.add_argument("number", help="the number, E.164 (+8613812345678)")
                sp.add_argument("--reason", required=True, help="why the block was wrong, for the record")
            sp.add_argument("--as", dest="as_unit", required=True, help="the deciding police unit")
            sp.add_argument("--officer", required=True, help="the officer (name or badge number)")
            if name == "conclude":
                sp.add_argument("--document", required=True, help="reference of the conclusion document")
            if name == "acknowledge":
                sp.add_argument("--note")
        elif name == "find":
            what = sp.add_mutually_exclusive_group(required=True)
            what.add_argument("--account", help="INSTITUTION/ACCOUNT_NUMBER")
            what.add_argument("--number", help="a phone number, E.164")
            what.add_argument("--device", help="a device id")
            sp.add_argument("--as", dest="as_reader", help="read as this registry identity (default: operator_id)")
        elif name == "case":
            sp.add_argument("case_id")
            sp.add_argument("--as", dest="as_reader", help="read as this registry identity (default: operator_id)")
        elif name == "keys":
            keys = sp.add_subparsers(dest="keys_command", required=True)
            keys.add_parser("list", help="every institution and key")
            new = keys.add_parser("new", help="register an institution with its first key")
            new.add_argument("institution")
            new.add_argument("--kind", required=True, help="police_unit, bank, payment_company, carrier, ...")
            new.add_argument("--name")
            new.add_argument("--endpoint", help="HOST:PORT of its gRPC service")
            new.add_argument("--public-key", help="base64 Ed25519 public key it made (else made here)")
            rotate = keys.add_parser("rotate", help="add a new key; older keys expire after an overlap")
            rotate.add_argument("institution")
            rotate.add_argument("--public-key", help="base64 Ed25519 public key it made (else made here)")
            rotate.add_argument("--overlap-hours", type=float, default=24.0)
            revoke = keys.add_parser("revoke", help="refuse everything signed with a key from now on")
            revoke.add_argument("institution")
            revoke.add_argument("key_id")
            cert = keys.add_parser("certificate", help="issue a new TLS certificate from the local CA, or pin one")
            cert.add_argument("institution")
            cert.add_argument("--certificate", help="PEM certificate its own CA issued (else issued here)")
        elif name == "audit":
            audit = sp.add_subparsers(dest="audit_command", required=True)
            verify = audit.add_parser("verify", help="recompute the tree, check every checkpoint and envelope signature")
            verify.add_argument("--hub-key", action="append", help="the hub's checkpoint key (vkey), obtained independently")
            verify.add_argument("--since", help="a checkpoint note saved earlier: the log must still extend it")
            prove = audit.add_parser("prove", help="inclusion proof of one entry (JSON)")
            prove.add_argument("entry", type=int, help="entry index, 0-based")
            consistency = audit.add_parser("consistency", help="consistency proof between two tree sizes (JSON)")
            consistency.add_argument("old", type=int)
            consistency.add_argument("new", type=int)
            export = audit.add_parser("export", help="one case's evidence bundle (JSON)")
            export.add_argument("case_id")
            export.add_argument("-o", "--output", help="write to this file instead of standard output")
            check = audit.add_parser("verify-bundle", help="check an evidence bundle offline")
            check.add_argument("file")
            check.add_argument("--hub-key", action="append", help="the hub's checkpoint key (vkey), obtained independently")
            check.add_argument("--registry", help="your own copy of the registry, to check signatures against")
        elif name == "cases":
            sp.add_argument("--status", choices=["all", "stopping", "answered", "concluded", "closed"], default="all")
            sp.add_argument("--limit", type=int, default=100, help="at most this many cases (pages are followed)")
            sp.add_argument("--as", dest="as_reader", help="read as this registry identity (default: operator_id)")
    return p


async def _run(settings: Settings, args) -> int:
    handler, _ = COMMANDS[args.command]
    try:
        return await handler(settings, args)
    except (CommandError, ScenarioError, TrustError, ConfigError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        return 2
    except grpc.aio.AioRpcError as e:
        console.print(f"[red]refused:[/red] {e.code().name}: {e.details()}", highlight=False)
        return 1
    except (OSError, RuntimeError, TimeoutError) as e:  # ports in use, a server that would not start
        console.print(f"[red]error:[/red] {e}", highlight=False)
        return 1
    except Exception as e:
        # os._exit below would swallow the traceback: say what broke, in full.
        console.print(f"[red]error:[/red] {type(e).__name__}: {e}", highlight=False)
        console.print_exception()
        return 1


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        settings = load(args.config, data_dir=args.data_dir, plaintext=args.plaintext)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    json_logs = {"auto": None, "json": True, "console": False}[settings.log_format]
    if args.command in ("up", "demo"):
        # The terminal tells the story; the services' JSON logs go to a file beside the data.
        logs.configure(json=json_logs is not False, level=settings.log_level, file=log_file(settings))
    else:
        logs.configure(json=json_logs, level=settings.log_level)
    code = 1
    try:
        code = asyncio.run(_run(settings, args))
    except KeyboardInterrupt:
        code = 130
    finally:
        # Everything was shut down above; exiting without running interpreter finalisation
        # avoids a known crash of the Temporal client's Rust bridge threads at teardown
        # ("PyGILState_Release ... finalizing", exit 134/139 about one run in 16).
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
