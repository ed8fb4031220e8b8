"""Signs the audit log's checkpoints in the background, so that no append waits for one.

AuditLog.append only sets `checkpoint_due` when it crosses a multiple of `checkpoint_every`;
this thread waits on that alongside a timer. Each process that appends runs its own: they may
sign checkpoints of the same log, and AuditLog.checkpoint keeps those consistent (it re-hashes
what others appended and refuses a head that contradicts any checkpoint already signed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from audit.log import AuditLog
from audit.store import AuditStore

logger = logging.getLogger(__name__)


def _log_failure(error: Exception) -> None:
    logger.error("audit checkpoint failed; will try again", exc_info=error)


def unsigned_tail(store: AuditStore) -> bool:
    """Are there entries no checkpoint covers yet?"""
    checkpoints = store.checkpoints()
    return store.size() != (checkpoints[-1][0] if checkpoints else 0)


class Checkpointer:
    """Signs a checkpoint when appends cross a multiple of `checkpoint_every`, every
    `every_seconds` while entries come in, at once for a tail a killed process left unsigned,
    and one last on stop(). A failed attempt goes to `on_error` and is tried again next round:
    the thread never dies silently."""

    def __init__(
        self, audit: AuditLog, every_seconds: float, on_error: Callable[[Exception], None] = _log_failure
    ):
        self.audit = audit
        self.every_seconds = every_seconds
        self._on_error = on_error
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-checkpointer", daemon=True)

    def __enter__(self) -> Checkpointer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Let a checkpoint under way finish, then sign the last entries. Blocks until done."""
        self._stopping.set()
        self.audit.checkpoint_due.set()  # wake the thread now rather than at the end of its wait
        if self._thread.ident is not None:
            self._thread.join()
        self._sign_if(True)

    def _run(self) -> None:
        # The first round always runs checkpoint(), which signs only an unsigned tail: in a freshly
        # started process it re-hashes the whole log once (checking it against every checkpoint
        # signed), here and now, so that no later round has more than the newest entries to hash
        # while appends are coming in.
        due = True
        while not self._stopping.is_set():
            self._sign_if(due)
            due = self.audit.checkpoint_due.wait(self.every_seconds)

    def _sign_if(self, due: bool) -> None:
        try:
            if due or unsigned_tail(self.audit.store):
                self.audit.checkpoint()
        except Exception as e:
            self._on_error(e)
