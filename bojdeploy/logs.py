"""Logs of every front end, rendered by structlog: one configuration, text or JSON lines.

`--log-format json` gives one JSON object a line with stable keys: `event` (the message),
`level`, `timestamp` (ISO 8601, UTC) and, when known, `deployment_id`, `job_id`, `delivery`,
`repository`, `environment`, `kind`, `name`. Those context keys are bound with `bound(...)` and
added to every line said inside the block, in this task or thread only (a plain ContextVar: the
engine binds the deployment it works on without loading structlog).

The CLI and the action (`configure`) show the diagnostics of the libraries bojdeploy drives only
on request: the Docker SDK and requests speak through `urllib3` (every HTTP call to the Docker
API or to Gitea is one `debug` line), XenAPI calls through `bojdeploy.xenapi` (the method name
only), PostgreSQL through `psycopg`; `-v` shows `info` and up, `-vv` `debug` and up. The relay and
its workers (`setup`) show every record at `info` and up, uvicorn's and procrastinate's too.
Requests are logged without headers or bodies, and every line passes a redaction of credentials
(Authorization headers, passwords, tokens, passwords in URLs) before it is written.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

XENAPI_LOGGER = "bojdeploy.xenapi"
KEYS = ("deployment_id", "job_id", "delivery", "repository", "environment", "kind", "name")
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar(
    "bojdeploy_log_context", default=MappingProxyType({})
)
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


@contextlib.contextmanager
def bound(**keys: Any) -> Iterator[None]:
    """Add these keys (None values left out) to every line logged inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **_known(keys)})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**keys: Any) -> None:
    """Add these keys to every later line of this task or thread (until its `bound` block ends)."""
    _CONTEXT.set({**_CONTEXT.get(), **_known(keys)})


def context() -> dict[str, Any]:
    """The keys bound here now."""
    return dict(_CONTEXT.get())


def _known(keys: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in keys.items() if v is not None}


def configure(
    verbosity: int, fmt: str = "text", write: Callable[[str], None] | None = None
) -> None:
    """Route the libraries' logging to `write` (default: stderr) as text or JSON lines.

    Calling it again replaces the previous configuration (one process may run many commands).
    """
    level = level_for(verbosity)
    handler: logging.Handler
    if level is None:
        handler = logging.NullHandler()  # nor Python's last-resort printing of warnings
    else:
        handler = _Lines(write or _stderr)
        handler.setFormatter(_formatter(fmt, _text))
        handler.setLevel(level)
    _install(handler, level or logging.WARNING)


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Route every log record (the relay's, uvicorn's, procrastinate's) onto stderr."""
    import structlog

    handler = _Lines(_stderr)
    handler.setFormatter(_formatter(fmt, structlog.dev.ConsoleRenderer(colors=False)))
    _install(handler, level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def json_logger(write: Callable[[str], None] | None = None) -> Any:
    """A structlog logger for a front end's own lines: `.msg(event, level=..., **fields)`."""
    import structlog

    return structlog.wrap_logger(
        _Printer(write or _stderr),
        processors=[
            _merge_context,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redacted,
            structlog.processors.JSONRenderer(),
        ],
    )


def _install(handler: logging.Handler, level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level)


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


class _Printer:
    """The structlog logger behind `json_logger`: every method writes the rendered line."""

    def __init__(self, write: Callable[[str], None]):
        self.write = write

    def msg(self, line: str) -> None:
        """Write one line."""
        with contextlib.suppress(OSError):  # a closed terminal or pipe never breaks a deploy
            self.write(line)

    log = debug = info = warning = error = critical = msg


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")  # the current stderr, which a test runner may replace
    sys.stderr.flush()


def _formatter(fmt: str, text: Any) -> logging.Formatter:
    import structlog

    shared: list[Any] = [
        _merge_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # a record's `extra=` keys; `name` is the record's logger name, so only bound
        structlog.stdlib.ExtraAdder(allow=[k for k in KEYS if k != "name"]),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    render = structlog.processors.JSONRenderer() if fmt == "json" else text
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redacted,
            render,
        ],
    )


def _merge_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The bound keys, unless the line sets them itself."""
    for key, value in _CONTEXT.get().items():
        event.setdefault(key, value)
    return event


def _redacted(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every string value with credentials replaced by '***'."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _text(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    """`level: logger: message`, as bojdeploy's own diagnostics read."""
    return f"{event.get('level', 'info')}: {event.get('logger', '')}: {event.get('event', '')}"
