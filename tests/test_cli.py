"""The command line as operators and police units use it: `stopline demo`, `stopline up` with
`report`, `case` and `cases` against it, and clear errors for bad files and settings."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.scenario import load_scenario
from stopline.casefile import CaseFileError, report_from_dict
from stopline.config import ConfigError, load
from stopline.embedded import free_port  # noqa: F401 - tests/test_faults.py imports it from here

STOPLINE = str(Path(sys.prefix) / "bin" / "stopline")


@pytest.fixture
def stack_env(tmp_path) -> dict[str, str]:
    """Settings for a private stack: its own data folder, free ports for Temporal and the
    gateway, and OS-picked ports for the sandbox institutions."""
    return os.environ | {
        "STOPLINE_SCENARIO": "boxing",  # the small case most tests here check figure by figure
        "STOPLINE_SANDBOX_PORTS": "auto",
        "STOPLINE_DATA_DIR": str(tmp_path / "data"),
        "STOPLINE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "STOPLINE_TEMPORAL_UI_PORT": str(free_port()),
        "STOPLINE_GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
    }


def run(args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([STOPLINE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def wait_until_serving(env, processes: dict[str, subprocess.Popen], within: float = 60) -> None:
    """Until the hub answers `stopline cases`; fail at once if one of `processes` died."""
    deadline = time.monotonic() + within
    while run(["cases"], env, timeout=30).returncode != 0:
        assert all(p.poll() is None for p in processes.values()), {n: p.poll() for n, p in processes.items()}
        assert time.monotonic() < deadline, "the hub never answered"
        time.sleep(0.3)


def run_until(args, env, text: str, attempts: int = 100) -> subprocess.CompletedProcess:
    """Run a read command until its output shows `text` (the case is still moving), or give up."""
    for _ in range(attempts):
        done = run(args, env, timeout=30)
        if text in done.stdout:
            break
        time.sleep(0.1)
    return done


def test_demo_holds_the_boxing_money_and_can_run_again(stack_env):
    for _ in range(2):  # the demo starts from the scenario's balances every time
        done = run(["demo"], stack_env)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "1,376,400.00 CNY of 1,475,000.00 CNY held at 2 institutions across 4 accounts" in out
        assert "1,376,400.00 CNY held, 98,600.00 CNY lost as cash, 0.00 CNY abroad, 0.00 CNY at large" in out
        # The sandbox took OS-picked ports, and the registry says where, for the worker to call.
        registry = json.loads((Path(stack_env["STOPLINE_DATA_DIR"]) / "registry.json").read_text())
        qilu = next(i for i in registry["institutions"] if i["id"] == "qilu-bank")
        # (names are padded to the longest one: the scenario's regulators and carriers are listed too)
        assert re.search(rf"sandbox qilu-bank +{re.escape(qilu['endpoint'])}\n", out), out
        assert re.search(r"sandbox zibo-telecom-regulator +127\.0\.0\.1:\d+\n", out), out
        # The registry knows the carriers' number ranges and the regulators, by kind.
        entries = {i["id"]: i for i in registry["institutions"]}
        assert entries["zibo-mobile"]["number_prefixes"] == ["+86170", "+86134", "+86135"]
        assert entries["zibo-telecom-regulator"]["kind"] == "telecom_regulator"
        assert entries["zibo-bank-regulator"]["kind"] == "bank_regulator"
        assert "hop 1 qilu-bank/6229110000375002: partly held 126,400.00 CNY of 375,000.00 CNY" in out
        assert "hop 1 huaxia-pay/HXP-8800-3000-0003: held 300,000.00 CNY" in out
        assert "hop 2 huaxia-pay/HXP-8800-1500-0004: held 150,000.00 CNY" in out
        assert "Temporal Web UI" in out
    case_id = next(line.split("reports case ")[1].split(":")[0] for line in out.splitlines() if "reports case" in line)
    audit_log_commands_work_on(stack_env, case_id=case_id)
    log = Path(stack_env["STOPLINE_DATA_DIR"]) / "stopline.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    case_lines = [entry for entry in lines if entry.get("event") == "stop-payment answered"]
    assert case_lines and all(entry["case_id"] and entry["workflow_id"] for entry in case_lines)


def test_up_serves_operators_until_ctrl_c(stack_env, tmp_path):
    up = subprocess.Popen([STOPLINE, "up"], env=stack_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(stack_env, {"up": up})

        case = load_scenario("boxing").case | {"case_id": "BX-CLI-1"}
        case_file = tmp_path / "case.json"
        case_file.write_text(json.dumps(case))
        reported = run(["report", str(case_file)], stack_env)
        assert reported.returncode == 0, reported.stdout + reported.stderr
        assert "case BX-CLI-1 opened: workflow case-BX-CLI-1" in reported.stdout
        again = run(["report", str(case_file)], stack_env)
        assert "already open: nothing new started" in again.stdout

        shown = run_until(["case", "BX-CLI-1"], stack_env, "chase done")
        # Mule 2 had sent 150,000.00 on to huaxia-pay (stopped there, hop 2) and withdrawn 98,600.00.
        assert "1,376,400.00 CNY held of 1,475,000.00 CNY reported" in shown.stdout, shown.stdout
        assert "1,376,400.00 CNY held, 98,600.00 CNY lost as cash, 0.00 CNY abroad, 0.00 CNY at large" in shown.stdout
        listed = run_until(["cases", "--status", "answered"], stack_env, "BX-CLI-1")
        assert "BX-CLI-1" in listed.stdout

        missing = run(["case", "NOPE"], stack_env)
        assert missing.returncode == 1 and "NOT_FOUND" in missing.stdout

        # Officers decide: freeze one account, release a wrongly held merchant.
        froze = run(["freeze", "BX-CLI-1", "qilu-bank/6229110000800001", "--as", "police-boxing", "--officer", "Wang Lei",
                     "--amount", "800,000.00", "--document", "Boxing PSB freeze [2026] No. 117"], stack_env)  # fmt: skip
        assert froze.returncode == 0 and "accepted: freezing" in froze.stdout, froze.stdout
        released = run(["release", "BX-CLI-1", "huaxia-pay/HXP-8800-3000-0003", "--as", "police-boxing",
                        "--officer", "Wang Lei", "--reason", "innocent merchant"], stack_env)  # fmt: skip
        assert released.returncode == 0 and "accepted: releasing" in released.stdout, released.stdout
        too_much = run(["freeze", "BX-CLI-1", "huaxia-pay/HXP-8800-1500-0004", "--as", "police-boxing", "--officer", "W",
                        "--amount", "150000.001", "--document", "d"], stack_env)  # fmt: skip
        assert too_much.returncode == 2 and "at most 2 decimals" in too_much.stdout, too_much.stdout
        shown = run_until(["case", "BX-CLI-1"], stack_env, "released")
        assert "frozen" in shown.stdout and "released" in shown.stdout, shown.stdout
        # A bank's identity may not read cases, even from the hub's own machine.
        nosy = run(["case", "BX-CLI-1", "--as", "qilu-bank"], stack_env | {"STOPLINE_OPERATOR_ID": "qilu-bank"})
        assert nosy.returncode != 0

        # The hub's key is rotated while it runs: the next case's orders and receipt are signed
        # with the new key, without a restart, and the banks accept them.
        rotated = run(["keys", "rotate", "hub", "--overlap-hours", "1"], stack_env)
        assert rotated.returncode == 0, rotated.stdout
        new_hub_key = rotated.stdout.split("new key ")[1].split(";")[0]
        case_file.write_text(json.dumps(case | {"case_id": "BX-CLI-2"}))
        assert run(["report", str(case_file)], stack_env).returncode == 0
        shown = run_until(["case", "BX-CLI-2"], stack_env, "chase done")
        assert "chase done" in shown.stdout and "rejected" not in shown.stdout, shown.stdout
        assert signers_of("BX-CLI-2", stack_env) == {new_hub_key}

        # A demo on the same data folder must not reset the running banks' ledgers.
        clash = run(["demo"], stack_env | {"STOPLINE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
        assert clash.returncode == 1 and "is in use by another stopline process" in clash.stdout, clash.stdout
        # (The merchant's 300,000.00 was released above: held no more, accounted as released.)
        after = run(["case", "BX-CLI-1"], stack_env).stdout
        assert "1,076,400.00 CNY held, 300,000.00 CNY released" in after, after
        # Nor may a second stack attach to the running Temporal.
        other = stack_env | {"STOPLINE_DATA_DIR": str(tmp_path / "other")}
        clash = run(["demo"], other)
        assert clash.returncode == 1 and "already in use" in clash.stdout, clash.stdout
    finally:
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, out + err
    assert "Temporal Web UI" in out and "HubService (gateway)" in out


def signers_of(case_id: str, env) -> set[str]:
    """Key ids of the hub's envelopes about `case_id` in the audit log."""
    from audit.entry import AuditEntry, EntryKind
    from audit.store import SqliteAuditStore
    from stopline.v1 import envelope_pb2

    store = SqliteAuditStore(Path(env["STOPLINE_DATA_DIR"]) / "audit.db")
    entries = (AuditEntry.decode(leaf) for _, leaf, _ in store.leaves())
    envelopes = (envelope_pb2.Envelope.FromString(e.payload) for e in entries if e.kind is EntryKind.ENVELOPE and e.case_id == case_id)
    return {envelope.key_id for envelope in envelopes if envelope.signer == "hub"}


def test_plaintext_is_an_explicit_flag_and_the_demo_runs_with_it(stack_env):
    done = run(["--plaintext", "demo"], stack_env)
    assert done.returncode == 0, done.stdout
    assert "1,376,400.00 CNY of 1,475,000.00 CNY held at 2 institutions" in done.stdout


@pytest.mark.parametrize("scenario", ["layered", "qingdao", "shengli"])
def test_every_shipped_scenario_is_chased_and_every_fen_is_accounted_for(stack_env, scenario):
    """The demo on each shipped scenario: held + lost + abroad + at large = what was reported,
    to the fen (layered is the default demo)."""
    import re

    case = load_scenario(scenario).case
    reported = sum(t["amount"]["minor_units"] for t in case["transfers"])
    done = run(["demo"], stack_env | {"STOPLINE_SCENARIO": scenario})
    assert done.returncode == 0, done.stdout
    totals = re.findall(
        r"([\d,.]+) CNY held, ([\d,.]+) CNY lost as cash, ([\d,.]+) CNY abroad, ([\d,.]+) CNY at large "
        r"\(of ([\d,.]+) CNY reported\)",
        done.stdout,
    )
    assert totals, done.stdout
    held, lost, abroad, at_large, shown = (int(t.replace(",", "").replace(".", "")) for t in totals[-1])
    assert shown == reported and held + lost + abroad + at_large == reported
    assert held > 0
    accounts = int(re.search(r"across (\d+) accounts", done.stdout).group(1))
    if scenario == "layered":
        assert lost > 0 and abroad > 0 and accounts >= 50  # the chase went through the layers


def test_report_file_with_a_fractional_amount_names_the_field(stack_env, tmp_path):
    case = load_scenario("boxing").case
    case["transfers"][1]["amount"]["minor_units"] = 12.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(case))
    done = run(["report", str(path)], stack_env, timeout=30)
    assert done.returncode == 2
    assert "transfers[1].amount.minor_units: must be a whole number, got 12.5" in done.stdout


@pytest.mark.parametrize(
    "change,problem",
    [
        (lambda c: c.pop("case_id"), "case_id: required"),
        (lambda c: c["transfers"][0].__setitem__("transferred_at", "2026-11-25 00:41"), "has no UTC offset"),
        (lambda c: c["transfers"][0]["amount"].__setitem__("minor_units", True), "must be a whole number"),
        (lambda c: c.__setitem__("suspect_phone_numbers", [8617012345678]), "suspect_phone_numbers[0]: must be a string"),
    ],
)
def test_case_file_shape_errors_name_the_field(change, problem):
    case = load_scenario("boxing").case
    change(case)
    with pytest.raises(CaseFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        report_from_dict(case)


def test_settings_come_from_file_then_environment(tmp_path):
    path = tmp_path / "stopline.toml"
    path.write_text('temporal_address = "temporal.example:7233"\ntask_queue = "from-file"\n')
    settings = load(path, env={"STOPLINE_TASK_QUEUE": "from-env"})
    assert settings.temporal_address == "temporal.example:7233"
    assert settings.task_queue == "from-env"
    with pytest.raises(ConfigError, match="temporal_ui_port"):
        load(None, env={"STOPLINE_TEMPORAL_UI_PORT": "eighty"})
    path.write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'no_such_setting'"):
        load(path, env={})


def test_parts_run_as_separate_processes_against_one_temporal(local_env, stack_env, tmp_path):
    """A deployment's shape: Temporal elsewhere, two workers, a gateway and the institutions,
    each its own process, sharing only the task queue and the registry."""
    env = stack_env | {
        "STOPLINE_EMBEDDED_TEMPORAL": "false",
        "STOPLINE_TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "STOPLINE_TASK_QUEUE": f"split-{time.monotonic_ns()}",
    }
    assert run(["init"], env).returncode == 0
    parts = {
        name: subprocess.Popen([STOPLINE, *cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in {"sandbox": ["sandbox"], "worker-1": ["worker"], "worker-2": ["worker"], "gateway": ["gateway"]}.items()
    }
    try:
        wait_until_serving(env, parts)
        case_file = tmp_path / "case.json"
        case_file.write_text(json.dumps(load_scenario("boxing").case | {"case_id": "BX-SPLIT"}))
        assert run(["report", str(case_file)], env).returncode == 0
        shown = run_until(["case", "BX-SPLIT"], env, "chase done")
        assert "1,376,400.00 CNY held of 1,475,000.00 CNY reported" in shown.stdout, shown.stdout
    finally:
        for p in parts.values():
            p.send_signal(signal.SIGTERM)
        codes = {name: p.wait(timeout=60) for name, p in parts.items()}
    assert codes == dict.fromkeys(parts, 0), {n: p.stderr.read()[-2000:] for n, p in parts.items()}


def test_unknown_scenario_is_a_clear_error_not_a_silent_exit(stack_env):
    done = run(["demo"], stack_env | {"STOPLINE_SCENARIO": "no-such-scenario"}, timeout=60)
    assert done.returncode == 2
    assert "error:" in done.stdout and "no-such-scenario" in done.stdout


def audit_log_commands_work_on(env, case_id: str) -> None:
    """What an auditor does with the log a stack left behind, and a changed byte caught."""
    import base64
    import sqlite3

    from audit.entry import AuditEntry
    from audit.merkle import hash_leaf, verify_consistency, verify_inclusion
    from audit.store import SqliteAuditStore

    store = SqliteAuditStore(Path(env["STOPLINE_DATA_DIR"]) / "audit.db")
    leaves = [AuditEntry.decode(leaf) for _, leaf, _ in store.leaves()]
    entries = len(leaves)
    of_case = [e for e in leaves if e.case_id == case_id]
    # A case's messages: the report and receipt, an order and answer per account stopped, a
    # query and report per account followed, and every read of it.
    from collections import Counter

    from audit.entry import EntryKind
    from stopline.v1 import envelope_pb2

    # (decision entries, e.g. the escalation of this large case, are JSON, not envelopes)
    kinds = Counter(envelope_pb2.Envelope.FromString(e.payload).payload_type.removeprefix("stopline.v1.")
                    for e in of_case if e.kind is EntryKind.ENVELOPE)  # fmt: skip
    assert kinds["CaseReport"] == kinds["CaseReceipt"] == 1
    assert kinds["StopPaymentOrder"] == kinds["StopPaymentAnswer"] >= 3
    assert kinds["AccountQuery"] == kinds["AccountReport"]
    verified = run(["audit", "verify"], env, timeout=60)
    assert verified.returncode == 0, verified.stdout
    assert f"OK: {entries} entries" in verified.stdout and "latest signed checkpoint covers" in verified.stdout

    proof = json.loads(run(["audit", "prove", "3"], env, timeout=60).stdout)
    verify_inclusion(3, proof["tree_size"], hash_leaf(base64.b64decode(proof["leaf"])),
                     [base64.b64decode(h) for h in proof["inclusion_proof"]], base64.b64decode(proof["root_hash"]))  # fmt: skip
    assert proof["checkpoint"].splitlines()[1] == str(proof["tree_size"])

    consistency = json.loads(run(["audit", "consistency", "8", str(entries)], env, timeout=60).stdout)
    verify_consistency(8, entries, base64.b64decode(consistency["old_root_hash"]), base64.b64decode(consistency["new_root_hash"]),
                       [base64.b64decode(h) for h in consistency["consistency_proof"]])  # fmt: skip

    bundle_file = Path(env["STOPLINE_DATA_DIR"]) / "bundle.json"
    assert run(["audit", "export", case_id, "-o", str(bundle_file)], env, timeout=60).returncode == 0
    bundle = json.loads(bundle_file.read_text())
    assert len(bundle["entries"]) == len(of_case) and bundle["case_id"] == case_id
    hub_vkey = bundle["checkpoint_vkeys"][0]
    offline = {"PATH": env["PATH"], "STOPLINE_DATA_DIR": "/nonexistent"}  # no data folder, no registry
    checked = run(["audit", "verify-bundle", str(bundle_file), "--hub-key", hub_vkey], offline, timeout=60)
    assert checked.returncode == 0 and f"OK: case {case_id}, {len(of_case)} entries" in checked.stdout, checked.stdout + checked.stderr
    leaf = bytearray(base64.b64decode(bundle["entries"][2]["leaf"]))
    leaf[-1] ^= 0x01
    bundle["entries"][2]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    bundle_file.write_text(json.dumps(bundle))
    tampered = run(["audit", "verify-bundle", str(bundle_file)], offline, timeout=60)
    assert tampered.returncode == 1 and f"FAILED: entry {bundle['entries'][2]['index']}" in tampered.stdout

    db = Path(env["STOPLINE_DATA_DIR"]) / "audit.db"
    conn = sqlite3.connect(db)
    (leaf,) = conn.execute("SELECT leaf FROM entries WHERE idx = 5").fetchone()
    flipped = bytearray(leaf)
    flipped[len(flipped) // 2] ^= 0x01
    conn.execute("UPDATE entries SET leaf = ? WHERE idx = 5", (bytes(flipped),))
    conn.commit()
    conn.close()
    broken = run(["audit", "verify"], env, timeout=60)
    assert broken.returncode == 1 and "FAILED at entry 5:" in broken.stdout, broken.stdout


def test_operators_manage_keys_and_a_running_hub_follows_the_registry(stack_env, tmp_path):
    from datetime import UTC, datetime, timedelta

    from stopline.v1 import bank_pb2
    from trust.envelope import open_envelope, seal
    from trust.errors import KeyNotValid
    from trust.keys import SigningKey
    from trust.registry import RegistryFile

    assert run(["init"], stack_env).returncode == 0
    data = Path(stack_env["STOPLINE_DATA_DIR"])
    following = RegistryFile(data / "registry.json")  # what a running gateway or worker holds

    added = run(["keys", "new", "police-jinan", "--kind", "police_unit", "--name", "Jinan PSB"], stack_env)
    assert added.returncode == 0, added.stdout
    old_key = SigningKey.load("police-jinan", data / "keys" / "police-jinan.pem")
    message = bank_pb2.StopPaymentOrder(case_id="JN-1")
    assert open_envelope(seal(message, old_key), bank_pb2.StopPaymentOrder, following()) == message

    rotated = run(["keys", "rotate", "police-jinan", "--overlap-hours", "1"], stack_env)
    assert rotated.returncode == 0, rotated.stdout
    new_key = SigningKey.load("police-jinan", data / "keys" / "police-jinan.pem")
    assert new_key.key_id != old_key.key_id and new_key.key_id in rotated.stdout
    # Both keys verify during the overlap; the old one stops at its end.
    open_envelope(seal(message, old_key), bank_pb2.StopPaymentOrder, following())
    open_envelope(seal(message, new_key), bank_pb2.StopPaymentOrder, following())
    later = datetime.now(UTC) + timedelta(hours=2)
    with pytest.raises(KeyNotValid):
        open_envelope(seal(message, old_key, now=later), bank_pb2.StopPaymentOrder, following(), now=later)

    revoked = run(["keys", "revoke", "police-jinan", new_key.key_id], stack_env)
    assert revoked.returncode == 0, revoked.stdout
    with pytest.raises(KeyNotValid, match="revoked"):
        open_envelope(seal(message, new_key), bank_pb2.StopPaymentOrder, following())

    listed = run(["keys", "list"], stack_env)
    assert "police-jinan" in listed.stdout and new_key.key_id[:20] in listed.stdout

    backdated = run(["keys", "rotate", "police-jinan", "--overlap-hours", "-5"], stack_env)
    assert backdated.returncode == 2 and "must not be negative" in backdated.stdout

    dup = run(["keys", "new", "police-jinan", "--kind", "police_unit"], stack_env)
    assert dup.returncode == 2 and "already registered" in dup.stdout
    bad = run(["keys", "new", "Bad Id", "--kind", "bank"], stack_env)
    assert bad.returncode == 2 and "institutions[" in bad.stdout


def test_audit_verify_catches_truncation_rewrites_and_foreign_keys(stack_env, tmp_path):
    """What someone with write access to the data folder might try, and what catches it."""
    import shutil
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.entry import AuditEntry, Direction, EntryKind
    from audit.log import AuditLog
    from audit.merkle import hash_leaf
    from audit.note import NoteSigner, NoteVerifier
    from audit.store import SqliteAuditStore
    from stopline.auditcli import audit_verify
    from stopline.config import Settings
    from trust.keys import key_id_for, public_key_b64
    from trust.registry import Registry

    for _ in range(2):  # two demos: a checkpoint as each stops
        assert run(["demo"], stack_env).returncode == 0
    data = Path(stack_env["STOPLINE_DATA_DIR"])
    settings = Settings(data_dir=data)
    registry = Registry.load(settings.registry_path)
    store = SqliteAuditStore(settings.audit_db)
    first, second = [size for size, _ in store.checkpoints()]
    assert second == store.size() > first >= 8
    saved_note = store.checkpoints()[-1][1]  # what a careful auditor keeps
    real_vkey = NoteVerifier(settings.audit_origin, registry.institution("hub").keys[0].public_key).vkey
    pinned = [NoteSigner(settings.audit_origin, Ed25519PrivateKey.generate()).verifier.vkey]
    ok, message = audit_verify(settings, registry, [real_vkey], saved_note)
    assert ok, message
    pristine = tmp_path / "pristine"
    shutil.copytree(data, pristine)

    def sql(*statements):
        conn = sqlite3.connect(settings.audit_db)
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        conn.close()

    def restore():
        shutil.rmtree(data)
        shutil.copytree(pristine, data)

    # Cut back to an older checkpoint, newer checkpoint deleted too: the log alone looks whole,
    # the checkpoint the auditor saved does not.
    sql(f"DELETE FROM entries WHERE idx >= {first}", f"DELETE FROM checkpoints WHERE size > {first}")
    ok, message = audit_verify(settings, registry, [real_vkey])
    assert ok, message
    ok, message = audit_verify(settings, registry, [real_vkey], saved_note)
    assert not ok and f"fewer than the saved checkpoint's {second} (truncated)" in message
    # With no checkpoint left at all, the log is not vouched for.
    sql("DELETE FROM checkpoints")
    ok, message = audit_verify(settings, registry, [real_vkey])
    assert not ok and "no signed checkpoint covers the log" in message
    restore()

    # Rewritten and re-signed with a key slipped into the registry: the registry is the forger's
    # to edit, so only a hub key the auditor pinned refuses it.
    forger = NoteSigner(settings.audit_origin, Ed25519PrivateKey.generate())
    forged = AuditEntry(EntryKind.DECISION, "BX", "hub", Direction.INTERNAL, datetime_now(), b"{}").encode()
    conn = sqlite3.connect(settings.audit_db)
    conn.execute("DELETE FROM checkpoints")
    conn.execute("UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 3", (forged, hash_leaf(forged)))
    conn.commit()
    conn.close()
    AuditLog(SqliteAuditStore(settings.audit_db), forger, settings.audit_origin).checkpoint()
    raw = registry.to_dict()
    raw["institutions"][0]["keys"].append(
        {"key_id": key_id_for("hub", forger.private_key.public_key()), "public_key": public_key_b64(forger.private_key.public_key()),
         "valid_from": "2020-01-01T00:00:00+00:00", "valid_until": None, "revoked_at": None}
    )  # fmt: skip
    doctored = Registry.from_dict(raw)
    ok, message = audit_verify(settings, doctored)
    assert ok, "without a pinned key the doctored registry vouches for the forgery: why --hub-key exists"
    ok, message = audit_verify(settings, doctored, [real_vkey])
    assert not ok and "no signature by a known key" in message
    ok, message = audit_verify(settings, doctored, pinned)
    assert not ok
    restore()

    # A revoked hub key vouches for nothing.
    raw = json.loads(settings.registry_path.read_text())
    raw["institutions"][0]["keys"][0]["revoked_at"] = "2020-01-01T00:00:00+00:00"
    ok, message = audit_verify(settings, Registry.from_dict(raw))
    assert not ok


def datetime_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_dev_server_starts_again_when_it_loses_a_port_race(tmp_path):
    """The dev server binds its HTTP API to a port it picked and released a moment earlier;
    when another process takes that port in between, Stopline starts it again instead of
    failing the demo, and any other exit is reported with the server's own words."""
    from stopline.embedded import DevServer

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()

    class LosesTheFirstRace(DevServer):
        spawned = 0

        def command(self, namespace):
            self.spawned += 1
            extra = ["--http-port", str(taken.getsockname()[1])] if self.spawned == 1 else []
            return super().command(namespace) + extra

    server = LosesTheFirstRace(f"127.0.0.1:{free_port()}", free_port(), tmp_path / "t.db", tmp_path / "t.log")
    try:
        await server.start(within_seconds=60)
        assert server.spawned == 2 and server.process.poll() is None
    finally:
        await server.stop()

    class AlwaysLoses(LosesTheFirstRace):
        def command(self, namespace):
            return DevServer.command(self, namespace) + ["--http-port", str(taken.getsockname()[1])]

    server = AlwaysLoses(f"127.0.0.1:{free_port()}", free_port(), tmp_path / "u.db", tmp_path / "u.log")
    with pytest.raises(RuntimeError, match="address already in use"):
        await server.start(within_seconds=60, attempts=2)
    taken.close()


def test_set_up_adds_missing_institutions_to_an_existing_registry_and_keeps_operators_edits(tmp_path):
    """A data folder made by an older Stopline (no operators' identity) or for another scenario
    gains the entries it lacks; what operators changed stays as they left it."""
    import dataclasses

    from stopline.config import Settings
    from stopline.setup import initialise
    from trust.registry import Registry

    settings = Settings(data_dir=tmp_path / "data")
    scenario = load_scenario("boxing")
    initialise(settings, scenario)
    registry = Registry.load(settings.registry_path)
    edited = [
        dataclasses.replace(i, endpoint="10.0.0.7:443") if i.id == "qilu-bank" else i
        for i in registry
        if i.id != settings.operator_id
    ]
    Registry(edited).save(settings.registry_path)

    initialise(settings, scenario)
    again = Registry.load(settings.registry_path)
    assert again.endpoint("qilu-bank") == "10.0.0.7:443"
    assert again.institution(settings.operator_id).tls_cert_sha256
    assert [i.id for i in again][: len(edited)] == [i.id for i in edited]


def test_a_new_unit_gets_a_certificate_and_reports_over_mutual_tls(stack_env, tmp_path):
    """`keys new` for an identity kept here issues and pins its certificate, so the new unit can
    report at once; `keys certificate` retires it for a new one; a certificate naming someone
    else is never pinned."""
    from trust.registry import Registry
    from trust.tls import LocalCA, certificate_sha256

    data = Path(stack_env["STOPLINE_DATA_DIR"])
    up = subprocess.Popen([STOPLINE, "up"], env=stack_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(stack_env, {"up": up})
        assert run(["keys", "new", "police-jinan", "--kind", "police_unit", "--name", "Jinan PSB"], stack_env).returncode == 0
        pinned = Registry.load(data / "registry.json").institution("police-jinan").tls_cert_sha256
        assert pinned == certificate_sha256((data / "tls" / "police-jinan.crt").read_bytes())

        case_file = tmp_path / "case.json"
        case_file.write_text(json.dumps(load_scenario("boxing").case | {"case_id": "JN-1", "reporting_unit": "police-jinan"}))
        reported = run(["report", str(case_file)], stack_env)
        assert reported.returncode == 0 and "case JN-1 opened" in reported.stdout, reported.stdout

        old_cert = (data / "tls" / "police-jinan.crt").read_bytes()
        reissued = run(["keys", "certificate", "police-jinan"], stack_env)
        assert reissued.returncode == 0, reissued.stdout
        assert (data / "tls" / "police-jinan.crt").read_bytes() != old_cert
        read = run(["case", "JN-1", "--as", "police-jinan"], stack_env)
        assert read.returncode == 0 and "JN-1" in read.stdout, read.stdout

        stranger = tmp_path / "stranger.crt"
        stranger.write_bytes(LocalCA.create().issue("qilu-bank").cert_pem)
        refused = run(["keys", "certificate", "police-jinan", "--certificate", str(stranger)], stack_env)
        assert refused.returncode == 2 and "not 'police-jinan'" in refused.stdout, refused.stdout
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=60)


def test_a_worker_killed_mid_chase_is_replaced_and_nothing_is_applied_twice(local_env, stack_env, tmp_path):
    """SIGKILL the only worker while the layered case is being chased; a new worker finishes
    the chase. Every account is held at most once per case at its bank, the banks hold exactly
    what the case says, and the audit log still verifies."""
    import re

    from sandbox.ledger import Ledger

    scenario = json.loads((Path(__file__).parent.parent / "sandbox" / "scenarios" / "layered.json").read_text())
    for inst in scenario["institutions"]:
        inst["faults"] = {"delay_seconds": 0.3}  # slow enough banks that the kill lands mid-chase
    scenario_file = tmp_path / "layered-slow.json"
    scenario_file.write_text(json.dumps(scenario))
    env = stack_env | {
        "STOPLINE_SCENARIO": str(scenario_file),
        "STOPLINE_EMBEDDED_TEMPORAL": "false",
        "STOPLINE_TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "STOPLINE_TASK_QUEUE": f"kill-{time.monotonic_ns()}",
    }
    assert run(["init"], env).returncode == 0

    def start(*cmd):
        # Its log lines to a file: a pipe nobody reads fills up (64 KiB) and blocks the part mid-write.
        with open(tmp_path / f"{cmd[0]}-{time.monotonic_ns()}.log", "w") as log:
            return subprocess.Popen([STOPLINE, *cmd], env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)

    parts = {"sandbox": start("sandbox"), "gateway": start("gateway"), "worker": start("worker")}
    try:
        wait_until_serving(env, parts)
        case_file = tmp_path / "case.json"
        case_file.write_text(json.dumps(scenario["case"] | {"case_id": "DH-KILL"}))
        assert run(["report", str(case_file)], env).returncode == 0
        mid = run(["case", "DH-KILL"], env, timeout=30).stdout
        parts["worker"].kill()  # SIGKILL: no clean-up, activities in flight
        parts["worker"].wait(timeout=30)
        assert "chasing" in mid, "the chase ended before the kill: make the banks slower"
        parts["worker"] = start("worker")
        shown = run_until(["case", "DH-KILL"], env, "chase done", attempts=300)
        assert "chase done" in shown.stdout, shown.stdout
        held = int(re.search(r"([\d,.]+) CNY held, ", shown.stdout).group(1).replace(",", "").replace(".", ""))

        holds = []
        for inst in (i for i in scenario["institutions"] if i["kind"] in ("bank", "payment_company")):
            ledger = Ledger(Path(env["STOPLINE_DATA_DIR"]) / "sandbox" / f"{inst['id']}.db", inst["id"])
            holds += [h for h in ledger.holds() if h.case_id == "DH-KILL"]
            ledger.close()
        per_account = {}
        for h in holds:
            per_account[h.account] = per_account.get(h.account, 0) + 1
        assert holds and max(per_account.values()) == 1  # one stop per account, retries or not
        assert sum(h.amount_minor for h in holds) == held
        verified = run(["audit", "verify"], env, timeout=120)
        assert verified.returncode == 0, verified.stdout
    finally:
        for p in parts.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in parts.values():
            p.wait(timeout=60)
