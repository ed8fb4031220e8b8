"""Faults a bank's integrator switches on to see how the hub copes: slow, lost answers, forged
answers, refusals. Being down is done by stopping the server (SandboxInstitution.stop/restart).

The dataclass is mutable on purpose: a test flips a field on a running institution and the next
request sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import grpc


class FaultsError(ValueError):
    """A faults object in a scenario is not valid; the message names the field."""


@dataclass
class Faults:
    # Sleep this long before handling each request (a slow bank; lets the hub's deadlines fire).
    delay_seconds: float = 0.0
    # Apply the next N orders (stop-payment, freeze, release or return; and commit them), then answer
    # UNAVAILABLE: the bank did the work but the answer never arrived. Counts down by one per
    # affected request.
    fail_after_apply: int = 0
    # Sign answers with a key the registry does not know while claiming the real key id: the hub
    # must refuse such answers.
    forge_answers: bool = False
    # Abort every request with this status code (e.g. UNAVAILABLE, RESOURCE_EXHAUSTED).
    refuse_all_with: grpc.StatusCode | None = None
    # Answer a freeze with "acknowledged" (FREEZE_OUTCOME_ACCEPTED) and call the hub back with
    # the signed result (HubService.ReportFreezeResult) this many seconds later, as a bank whose
    # freezes go through a back office does. None: answer at once.
    freeze_result_after_seconds: float | None = None
    # Answer a return of funds with "accepted" (RETURN_OUTCOME_ACCEPTED) and call the hub back with
    # the signed ReturnReceipt (HubService.ReportReturnResult) this many seconds later, as a bank
    # whose payments go through a back office does. The return is applied (and its receipt
    # stored) at once: a repeated order is answered "accepted" again, and called back again. None:
    # answer with the receipt at once.
    return_receipt_after_seconds: float | None = None

    @classmethod
    def from_dict(cls, data: dict, where: str = "faults") -> Faults:
        """Scenario form: the same names, refuse_all_with as a status name ("UNAVAILABLE")."""
        if not isinstance(data, dict):
            raise FaultsError(f"{where}: must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultsError(f"{where}.{unknown[0]}: unknown fault (known: {', '.join(sorted(known))})")
        faults = cls()
        if "delay_seconds" in data:
            value = data["delay_seconds"]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultsError(f"{where}.delay_seconds: must be a number >= 0, got {value!r}")
            faults.delay_seconds = float(value)
        if "fail_after_apply" in data:
            value = data["fail_after_apply"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FaultsError(f"{where}.fail_after_apply: must be an integer >= 0, got {value!r}")
            faults.fail_after_apply = value
        if "forge_answers" in data:
            value = data["forge_answers"]
            if not isinstance(value, bool):
                raise FaultsError(f"{where}.forge_answers: must be true or false, got {value!r}")
            faults.forge_answers = value
        for name in ("freeze_result_after_seconds", "return_receipt_after_seconds"):
            if data.get(name) is not None:
                value = data[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise FaultsError(f"{where}.{name}: must be a number >= 0, got {value!r}")
                setattr(faults, name, float(value))
        if data.get("refuse_all_with") is not None:
            value = data["refuse_all_with"]
            try:
                code = grpc.StatusCode[value] if isinstance(value, str) else None
            except KeyError:
                code = None
            if code is None or code is grpc.StatusCode.OK:
                raise FaultsError(
                    f"{where}.refuse_all_with: {value!r} is not a gRPC status name other than OK"
                )
            faults.refuse_all_with = code
        return faults
