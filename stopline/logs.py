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
from temporalio import activity as temporal_activity
from temporalio import workflow as temporal_workflow

# Field names whose values must never reach a log line.
_SECRET_FIELDS = frozenset({"private_key", "signature", "password", "token", "holder_name", "payload"})


def redact(_logger, _method, event_dict):
    for name in _SECRET_FIELDS & event_dict.keys():
        event_dict[name] = "[redacted]"
    return event_dict


def lift_temporal_context(_logger, _method, event_dict):
    """Temporal's own log lines carry their context in `temporal_workflow` / `temporal_activity`
    extras; lift the ids to the top, with the case id derived from the workflow id."""
    for name in ("temporal_workflow", "temporal_activity"):
        context = event_dict.pop(name, None)
        if isinstance(context, dict):
            workflow_id = context.get("workflow_id")
            if workflow_id:
                event_dict.setdefault("workflow_id", workflow_id)
                if workflow_id.startswith("case-"):
                    event_dict.setdefault("case_id", workflow_id.removeprefix("case-"))
            for key in ("activity_type", "attempt", "workflow_type"):
                if key in context:
                    event_dict.setdefault(key, context[key])
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
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), lift_temporal_context, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # libraries speak only when something is off
    # ...except our workflows, whose decisions are worth a line (Temporal's workflow logger
    # skips replays, so a line is written once per decision, not once per replay).
    logging.getLogger("temporalio.workflow").setLevel(logging.getLevelNamesMapping()[level.upper()])
    # The ids travel as structured fields (lift_temporal_context), not pasted into the message.
    temporal_workflow.logger.workflow_info_on_message = False
    temporal_activity.logger.activity_info_on_message = False


def get_logger(name: str | None = None, **bound):
    return structlog.get_logger(name).bind(**bound) if bound else structlog.get_logger(name)
