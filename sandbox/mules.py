"""Mules: the money in a scenario that moves on after the report unless it is held.

A scenario's institutions list `moves` (see sandbox/scenarios/README.md). Each move sends money
out of one account `after_seconds` after the race starts, by transfer, cash or abroad. The rules:

- The race starts at Sandbox.start() (`Mules.start`, which may be called again to start it over,
  e.g. when the case is reported). `after_seconds` counts from there; moves that fall due together
  run in the scenario's order (`Scenario.moves`).
- A move sends only what is available: min(amount, balance - held). Held money never moves: that
  is what a stop-payment is for. When nothing is available the move is skipped, and recorded as
  skipped, so "what the stop saved" can be read back (`MoveResult.kept_minor`).
- One SQLite transaction on the source ledger per move: the move's id is recorded, the balance
  debited and the transfers_out row written (real UTC time, the move's channel) together. A move
  to an account of another sandbox institution then credits that institution's ledger, keyed by
  the same move id. A destination off the platform is only debited.
- A move runs once per ledger file. A sandbox restarted on the same files finds the moves it ran
  (and delivers any credit a crash left undone) instead of running them again; moves not run yet
  fall due `after_seconds` after the new start.

Tests drive the race by hand: Sandbox(..., run_mules=False), then `await sandbox.mules.step(until=
seconds)` runs every move due by then, with no sleeps. In normal runs a background task
(`Mules.run`) sleeps until the next move is due and steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from sandbox.ledger import Ledger, MoveRecord
from sandbox.scenario import Move, Scenario

log = structlog.get_logger("sandbox")

# Longest a background run sleeps before looking at the clock again (a restarted race is noticed).
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class MoveResult:
    move: Move
    wanted_minor: int
    sent_minor: int  # 0: skipped (everything held, or nothing there)
    at: datetime  # when the move ran (the transfer's time when something was sent)
    replayed: bool  # ran before this sandbox started (found in the ledger after a restart)
    credited: bool  # a sandbox institution's account received sent_minor (now or before)

    @property
    def skipped(self) -> bool:
        return self.sent_minor == 0

    @property
    def kept_minor(self) -> int:
        """What the mule wanted to move but could not: saved by a hold, or never there."""
        return self.wanted_minor - self.sent_minor


class Mules:
    """The race clock and the scenario's moves over the sandbox institutions' ledgers.

    `clock` gives seconds (monotonic) for the race; `wall` gives the UTC time written on each
    transfer. Both are injectable; a transfer's time never goes backwards within one Mules."""

    def __init__(
        self,
        scenario: Scenario,
        ledgers: Mapping[str, Ledger],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        missing = sorted({m.institution for m in scenario.moves} - set(ledgers))
        if missing:
            raise ValueError(f"no ledger for institution(s) with moves: {', '.join(missing)}")
        self.moves: tuple[Move, ...] = scenario.moves
        self._ledgers = dict(ledgers)
        self._clock = clock
        self._wall = wall
        self._zero: float | None = None
        self._done: dict[str, MoveResult] = {}
        self._lock = asyncio.Lock()
        self._last_at: datetime | None = None

    # --- the clock -------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or start over) the race: `after_seconds` now counts from this moment."""
        self._zero = self._clock()

    @property
    def started(self) -> bool:
        return self._zero is not None

    def elapsed(self) -> float:
        """Seconds since the race started."""
        if self._zero is None:
            raise RuntimeError("the race has not started: call start() (Sandbox.start does)")
        return self._clock() - self._zero

    # --- state -----------------------------------------------------------------------------

    @property
    def results(self) -> list[MoveResult]:
        """What every move that has run did, in the order they ran (replayed ones first)."""
        return list(self._done.values())

    def result(self, move_id: str) -> MoveResult | None:
        return self._done.get(move_id)

    def pending(self) -> list[Move]:
        """Moves not run yet, in race order."""
        return [m for m in self.moves if m.id not in self._done]

    def next_due(self) -> float | None:
        """after_seconds of the next move to run; None when every move has run."""
        pending = self.pending()
        return pending[0].after_seconds if pending else None

    # --- running moves ---------------------------------------------------------------------

    async def recover(self) -> list[MoveResult]:
        """Take in the moves the ledgers say have run (a restart on the same files), delivering
        any credit that a crash between debit and credit left undone. Sandbox.start calls it."""
        recovered = []
        async with self._lock:
            for move in self.pending():
                record = await asyncio.to_thread(self._ledgers[move.institution].move_record, move.id)
                if record is not None:
                    recovered.append(await self._finish(move, record))
        return recovered

    async def step(self, until: float | None = None) -> list[MoveResult]:
        """Run every move due by `until` seconds after the start (default: now by the clock),
        in race order; return what they did."""
        if until is None:
            until = self.elapsed()
        ran = []
        async with self._lock:
            for move in self.pending():
                if move.after_seconds > until:
                    break  # pending() is in race order
                source = self._ledgers[move.institution]
                record = await asyncio.to_thread(source.send_on, move.id, move.transfer(self._now()))
                ran.append(await self._finish(move, record))
        return ran

    async def run(self) -> None:
        """Run moves as they fall due until none is left (the background task of a Sandbox).
        A failed move is logged and tried again: moves are safe to repeat."""
        while (due := self.next_due()) is not None:
            wait = due - self.elapsed()
            if wait > 0:
                await asyncio.sleep(min(wait, _POLL_SECONDS))
                continue
            try:
                await self.step()
            except Exception as e:
                log.error("mules.step_failed", error=f"{type(e).__name__}: {e}")
                await asyncio.sleep(_POLL_SECONDS / 2)

    async def _finish(self, move: Move, record: MoveRecord) -> MoveResult:
        credited = False
        if move.channel == "transfer" and move.to_institution in self._ledgers and record.sent_minor > 0:
            destination = self._ledgers[move.to_institution]
            await asyncio.to_thread(
                destination.credit, move.id, move.to_account, record.sent_minor, move.currency, record.done_at,
                move.institution, move.account,
            )  # fmt: skip
            credited = True
        result = MoveResult(
            move, record.wanted_minor, record.sent_minor, record.done_at, record.replayed, credited
        )
        self._done[move.id] = result
        if not record.replayed:
            log.info(
                "mules.skipped" if result.skipped else "mules.moved",
                move=move.id, account=move.account, channel=move.channel, to_institution=move.to_institution,
                to_account=move.to_account, sent_minor=result.sent_minor, kept_minor=result.kept_minor,
                currency=move.currency,
            )  # fmt: skip
        return result

    def _now(self) -> datetime:
        """The wall time for the next transfer, never before the previous one."""
        at = self._wall()
        if self._last_at is not None and at <= self._last_at:
            at = self._last_at + timedelta(microseconds=1)
        self._last_at = at
        return at
