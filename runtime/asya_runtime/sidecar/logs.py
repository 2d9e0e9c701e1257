"""JSON logs: one line per event on stderr, carrying the actor and (where there is one) the envelope id."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

_LOGGER = logging.getLogger("asya.sidecar")
_CONTEXT: dict[str, Any] = {}
#: Per-task fields that override the process-wide ones: a host running several sidecars in one event loop sets
#: each sidecar's actor here before creating its task (tasks inherit the context they were created in).
TASK_CONTEXT: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("asya_log_context")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **_CONTEXT,
            **TASK_CONTEXT.get({}),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(*, actor: str, namespace: str, mode: str, level: int = logging.INFO) -> None:
    """Send the sidecar's events to stderr as JSON; every line carries ``actor``, ``namespace`` and ``mode``."""
    _CONTEXT.update(actor=actor, namespace=namespace, mode=mode)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    _LOGGER.handlers[:] = [handler]
    _LOGGER.setLevel(level)
    _LOGGER.propagate = False


def event(name: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any) -> None:
    """Log one event, e.g. ``event("handler failed", id=envelope.id, error="ValueError")``.

    An event below the configured level returns at once: no record is built, nothing is formatted.
    """
    if _LOGGER.isEnabledFor(level):
        _LOGGER.log(level, name, extra={"fields": fields}, exc_info=exc_info)


def level_of(config: Any) -> int:
    """The :mod:`logging` level of a :class:`~asya_runtime.config.SidecarConfig`'s ``log_level``."""
    return int(logging.getLevelName(str(config.log_level).upper()))


def enabled(level: int) -> bool:
    """Whether events at ``level`` are written: a caller guards a per-message event with it, so that below the
    level the event costs not even its arguments."""
    return _LOGGER.isEnabledFor(level)


def warning(name: str, **fields: Any) -> None:
    event(name, level=logging.WARNING, **fields)


def error(name: str, **fields: Any) -> None:
    event(name, level=logging.ERROR, **fields)
