"""Sandbox institutions: reference BankService servers that a bank's integrators (and the hub's
tests) run to test against. Real gRPC servers with their own SQLite ledgers; they verify the hub's
signature, sign their answers, honour idempotency keys, hold only what the balance allows, and can
be told to be slow, down or wrong.

Imports only the contract (stopline.v1) and the trust code, exactly as a bank's own
implementation would; nothing that ships in the hub imports this package.
"""

from sandbox.faults import Faults
from sandbox.ledger import Account, Hold, Ledger, Transfer
from sandbox.scenario import Scenario, ScenarioError, load_scenario
from sandbox.server import Sandbox, SandboxInstitution

__all__ = [
    "Account",
    "Faults",
    "Hold",
    "Ledger",
    "Sandbox",
    "SandboxInstitution",
    "Scenario",
    "ScenarioError",
    "Transfer",
    "load_scenario",
]
