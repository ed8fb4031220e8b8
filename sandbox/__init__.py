"""Sandbox institutions: reference BankService servers that a bank's integrators (and the hub's
tests) run to test against. Real gRPC servers with their own SQLite ledgers; they verify the hub's
signature, sign their answers, honour idempotency keys, hold only what the balance allows, turn
holds into freezes, release them and pay frozen money back to victims on the hub's order, move
money onward as mule accounts do unless it is held or frozen, and can be told to be slow, down or
wrong.

Beside the banks, sandbox telecom carriers (TelecomService: block and unblock the numbers they
serve, say who serves a ported number) and regulators (RegulatorService: file breach reports and
interception notices once each) and cross-border recall channels (CrossBorderService: a
correspondent's recall desk, the central bank's and the police's international channels, which
acknowledge a recall at once and call the hub back with what their scripted foreign side tells
them), with the same signatures, idempotency and faults.

Imports only the contract (stopline.v1) and the trust code, exactly as a bank's own
implementation would; nothing that ships in the hub imports this package.
"""

from sandbox.crossborder import RecallStore, ReceivedRecall, ScheduledUpdate
from sandbox.faults import Faults
from sandbox.ledger import Abroad, Account, Freeze, FundsReturn, Hold, Ledger, MoveRecord, Transfer
from sandbox.money import End, MoneyMap, scenario_money_map
from sandbox.mules import MoveResult, Mules
from sandbox.numbers import Block, NumberStore
from sandbox.regulator import RegulatorStore
from sandbox.scenario import (
    ForeignPlace,
    Move,
    RecallScript,
    Scenario,
    ScenarioError,
    ScriptedUpdate,
    load_scenario,
    seed_shift,
)
from sandbox.server import Sandbox, SandboxInstitution

__all__ = [
    "Abroad",
    "Account",
    "Block",
    "End",
    "Faults",
    "ForeignPlace",
    "Freeze",
    "FundsReturn",
    "Hold",
    "Ledger",
    "MoneyMap",
    "Move",
    "MoveRecord",
    "MoveResult",
    "Mules",
    "NumberStore",
    "RecallScript",
    "RecallStore",
    "ReceivedRecall",
    "RegulatorStore",
    "Sandbox",
    "SandboxInstitution",
    "Scenario",
    "ScenarioError",
    "ScheduledUpdate",
    "ScriptedUpdate",
    "Transfer",
    "load_scenario",
    "scenario_money_map",
    "seed_shift",
]
