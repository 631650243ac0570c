"""The relay's and the workers' logs: text, or one JSON object a line with stable keys.

Every record (the relay's own, uvicorn's, procrastinate's) goes through structlog. Keys bound
with `bound(...)` (delivery, job_id, deployment_id, repository, environment, kind, name) are
added to every line said while they are bound, in this task or thread only.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

from bojdeploy.logs import redact

KEYS = ("delivery", "job_id", "deployment_id", "repository", "environment", "kind", "name")


def setup(log_format: str = "text", level: int = logging.INFO) -> None:
    """Route every log record through structlog's formatter onto stderr."""
    chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(allow=[k for k in KEYS if k != "name"]),  # name: the record's
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=chain,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redacted,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def redacted(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every string value with credentials replaced by '***' (a second guard: the relay's own
    messages carry none)."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


@contextlib.contextmanager
def bound(**keys: Any) -> Iterator[None]:
    """Add these keys (None values left out) to every line logged inside the block."""
    values = {k: v for k, v in keys.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**values):
        yield
