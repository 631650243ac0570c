"""Diagnostics of the libraries bojdeploy drives, rendered by structlog: one configuration.

The Docker SDK and requests speak through `urllib3` (every HTTP call to the Docker API or to
Gitea is one `debug` line), XenAPI calls through `bojdeploy.xenapi` (the method name only),
PostgreSQL through `psycopg`. By default none of it is shown; `-v` shows `info` and up, `-vv`
`debug` and up, each line labelled with its level once. Requests are logged without headers or
bodies, and every line passes a redaction of credentials (Authorization headers, passwords,
tokens, passwords in URLs) before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

XENAPI_LOGGER = "bojdeploy.xenapi"
_MARK = "_bojdeploy_handler"
_REDACTIONS = (
    # Authorization: token abc / "Authorization": "Bearer abc"
    (
        re.compile(
            r"(?i)\b(authorization|x-gitea-token|private-token|x-registry-auth)"
            r"(['\"]?\s*[:=]\s*['\"]?)(?:(?:token|bearer|basic)\s+)?[^\s'\",}]+"
        ),
        r"\1\2***",
    ),
    # password=..., "token": "...", secret: ...
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|token|access_token|secret|auth)"
            r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"
        ),
        r"\1\2***",
    ),
    # scheme://user:password@host
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), r"\1***@"),
)


def level_for(verbosity: int) -> int | None:
    """The lowest level shown for `-v` given `verbosity` times (None: nothing)."""
    if verbosity <= 0:
        return None
    return logging.INFO if verbosity == 1 else logging.DEBUG


def redact(text: str) -> str:
    """`text` with credentials replaced by '***'."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def configure(
    verbosity: int, fmt: str = "text", write: Callable[[str], None] | None = None
) -> None:
    """Route the libraries' logging to `write` (default: stderr) as text or JSON lines.

    Calling it again replaces the previous configuration (one process may run many commands).
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    level = level_for(verbosity)
    handler: logging.Handler
    if level is None:
        handler = logging.NullHandler()  # nor Python's last-resort printing of warnings
    else:
        handler = _Lines(write or _stderr)
        handler.setFormatter(_formatter(fmt))
        handler.setLevel(level)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level or logging.WARNING)


class _Lines(logging.Handler):
    """Hands each formatted record to a function."""

    def __init__(self, write: Callable[[str], None]):
        super().__init__()
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        """Format and write one record."""
        try:
            self.write(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break a deployment
            self.handleError(record)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")  # the current stderr, which a test runner may replace


def _formatter(fmt: str) -> logging.Formatter:
    import structlog

    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    render: list[Any]
    if fmt == "json":
        render = [
            _redacted,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    else:
        render = [_redacted, _text]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )


def _redacted(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every string value with credentials replaced by '***'."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _text(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    """`level: logger: message`, as bojdeploy's own diagnostics read."""
    return f"{event.get('level', 'info')}: {event.get('logger', '')}: {event.get('event', '')}"
