"""Waiting for a new container to run and be healthy."""

from __future__ import annotations

import time
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import ConnectError, DriverError

POLL_SECONDS = 0.25
PROGRESS_SECONDS = 3.0
# Without a healthcheck a container must stay up this long: one that exits at once has failed.
SETTLE_SECONDS = 0.25
LOG_TAIL = 20
OUTPUT_LIMIT = 2000


def wait_ready(client: Any, ident: str, name: str, timeout: float, log: StepLog) -> dict[str, Any]:
    """Wait until the container runs (and is healthy, with a healthcheck); DriverError if not."""
    started = time.monotonic()
    last_progress = started
    info = _inspect(client, ident, name)
    log("info", f"waiting up to {timeout:g}s for {name} to become {_goal(info)}")
    while True:
        elapsed = time.monotonic() - started
        failure = failure_of(info)
        if failure is None and is_ready(info, elapsed):
            return info
        if failure is None and elapsed >= timeout:
            failure = f"did not become {_goal(info)} within {timeout:g}s ({_status(info)})"
        if failure is not None:
            raise DriverError(f"container {name} {failure}{diagnostics(client, ident, info)}")
        if time.monotonic() - last_progress >= PROGRESS_SECONDS:
            last_progress = time.monotonic()
            message = f"waiting for {name} to become {_goal(info)} ... {elapsed:.0f}s"
            log("info", f"{message} ({_status(info)})", elapsed=round(elapsed, 1))
        time.sleep(POLL_SECONDS)
        info = _inspect(client, ident, name)


def _inspect(client: Any, ident: str, name: str) -> dict[str, Any]:
    with docker_errors(f"cannot inspect the new container {name}"):
        return client.api.inspect_container(ident)  # type: ignore[no-any-return]


def _goal(info: dict[str, Any]) -> str:
    return "healthy" if info["State"].get("Health") else "running"


def _status(info: dict[str, Any]) -> str:
    state = info["State"]
    return str((state.get("Health") or {}).get("Status") or state.get("Status"))


def failure_of(info: dict[str, Any]) -> str | None:
    """Why an inspected container has failed (exited, restarting, unhealthy), or None."""
    state = info["State"]
    if state.get("Restarting") or info.get("RestartCount"):
        return f"keeps restarting (last exit code {state.get('ExitCode')})"
    if not state.get("Running"):
        return f"exited with code {state.get('ExitCode')}"
    if (state.get("Health") or {}).get("Status") == "unhealthy":
        return "became unhealthy"
    return None


def is_ready(info: dict[str, Any], elapsed: float) -> bool:
    """Healthy when it has a healthcheck, else running for SETTLE_SECONDS."""
    health = info["State"].get("Health")
    if health:
        return bool(health.get("Status") == "healthy")
    return bool(info["State"].get("Running")) and elapsed >= SETTLE_SECONDS


def diagnostics(client: Any, ident: str, info: dict[str, Any]) -> str:
    """The last healthcheck output and the last log lines (never the environment)."""
    parts = []
    checks = (info["State"].get("Health") or {}).get("Log") or []
    if checks:
        last = checks[-1]
        output = str(last.get("Output", "")).strip()[-OUTPUT_LIMIT:] or "(no output)"
        parts.append(f"last healthcheck (exit code {last.get('ExitCode')}): {output}")
    parts.append(_log_tail(client, ident))
    return "\n" + "\n".join(parts)


def _log_tail(client: Any, ident: str) -> str:
    """The container's last LOG_TAIL log lines, indented, or why they are missing."""
    try:
        with docker_errors("cannot read the logs"):
            raw = client.api.logs(ident, stdout=True, stderr=True, tail=LOG_TAIL)
    except (DriverError, ConnectError) as e:
        return f"no log lines ({e})"
    text = raw.decode("utf-8", "replace").rstrip()[-OUTPUT_LIMIT:]
    if not text:
        return "no log output"
    lines = "\n".join(f"  {line}" for line in text.splitlines())
    return f"last {LOG_TAIL} log lines:\n{lines}"
