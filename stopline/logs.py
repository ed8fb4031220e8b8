"""Structured logging: JSON lines for services, readable columns in a terminal.

Every log line about a case carries `case_id` and `workflow_id` (bind them with
`structlog.contextvars.bound_contextvars` or `log.bind`). Keys, signatures and personal data are
never logged; `redact` drops the field names that could carry them should one slip into an event.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

# Field names whose values must never reach a log line.
_SECRET_FIELDS = frozenset({"private_key", "signature", "password", "token", "holder_name", "payload"})


def redact(_logger, _method, event_dict):
    for name in _SECRET_FIELDS & event_dict.keys():
        event_dict[name] = "[redacted]"
    return event_dict


def configure(*, json: bool | None = None, level: str = "INFO", stream=None, file: Path | None = None) -> None:
    """Configure structlog and the stdlib root logger (gRPC and Temporal log through it).

    json=None picks JSON unless the stream is a terminal.
    """
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        stream = open(file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer]
        if json
        else [*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # libraries speak only when something is off


def get_logger(name: str | None = None, **bound):
    return structlog.get_logger(name).bind(**bound) if bound else structlog.get_logger(name)
