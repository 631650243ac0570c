"""Waiting for a new container to run and be healthy."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import ConnectError, DriverError

PROGRESS_SECONDS = 3.0
# Without a healthcheck a container must stay up this long after it started (the engine's own
# StartedAt): one that exits within it has failed.
SETTLE_SECONDS = 0.25
# What can end a wait early: the container exited, was killed for memory, or its health changed.
EVENTS = ("die", "oom", "health_status")
LOG_TAIL = 20
OUTPUT_LIMIT = 2000


def wait_ready(client: Any, ident: str, name: str, timeout: float, log: StepLog) -> dict[str, Any]:
    """Wait until the container runs (and is healthy, with a healthcheck); DriverError if not.

    No polling: the engine's event stream of this container (exits, health changes) wakes the
    wait, bounded on the engine's clock. Without a healthcheck the container must still run, never
    restarted, once SETTLE_SECONDS have passed since the engine started it; with one, it is ready
    as soon as its health check passes.
    """
    started = time.monotonic()
    last_progress = started
    info = _inspect(client, ident, name)
    log("info", f"waiting up to {timeout:g}s for {name} to become {_goal(info)}")
    origin = started_at(info)
    cursor = origin  # the engine's time up to which its events were seen
    settled = False  # SETTLE_SECONDS have passed since `origin` on the engine's clock
    while True:
        elapsed = time.monotonic() - started
        failure = failure_of(info)
        if failure is None and is_ready(info, settled or elapsed >= SETTLE_SECONDS):
            return info
        if failure is None and elapsed >= timeout:
            failure = f"did not become {_goal(info)} within {timeout:g}s ({_status(info)})"
        if failure is not None:
            raise DriverError(f"container {name} {failure}{diagnostics(client, ident, info)}")
        if time.monotonic() - last_progress >= PROGRESS_SECONDS:
            last_progress = time.monotonic()
            message = f"waiting for {name} to become {_goal(info)} ... {elapsed:.0f}s"
            log("info", f"{message} ({_status(info)})", elapsed=round(elapsed, 1))
        if origin is None or cursor is None:  # no start time: our clock, from after the start
            time.sleep(max(SETTLE_SECONDS - elapsed, 0.0) or SETTLE_SECONDS)
        else:
            window = min(PROGRESS_SECONDS, timeout - elapsed)
            if not settled and not info["State"].get("Health"):
                window = min(window, origin + SETTLE_SECONDS - cursor)
            cursor = next_event(client, ident, name, cursor, cursor + max(window, 0.001))
            settled = cursor >= origin + SETTLE_SECONDS
        info = _inspect(client, ident, name)


def next_event(client: Any, ident: str, name: str, since: float, until: float) -> float:
    """Wait for an exit or health event of the container between `since` and `until` (the
    engine's clock, past events included); return the engine time seen up to: just after the
    event, or `until` when none came (the engine ends the stream then)."""
    filters = {"container": [ident], "event": list(EVENTS)}
    with docker_errors(f"cannot watch the new container {name}"):
        stream = client.api.events(
            since=f"{since:.9f}", until=f"{until:.9f}", filters=filters, decode=True
        )
        try:
            for event in stream:
                # A microsecond on: a float of epoch seconds cannot hold a nanosecond step.
                return max(since + 1e-6, int(event.get("timeNano") or 0) / 1e9 + 1e-6)
        finally:
            end_stream(stream)
    return until


def end_stream(stream: Any) -> None:
    """End an event stream, also before the engine does. Under ssh:// the SDK's close() finds no
    socket to shut down (the stream is the ssh client's pipe): closing the response ends that
    client, and its connection with it."""
    response = stream._response  # the SDK's CancellableStream keeps no public handle on it
    if response.raw.closed:
        return  # read to its end: the connection went back to the pool
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    if getattr(fp, "channel", None) is None:
        stream.close()
        return
    with contextlib.suppress(BrokenPipeError):  # the ssh client ended already
        response.close()


def started_at(info: dict[str, Any]) -> float | None:
    """When the engine started the container (seconds since the epoch, its clock), or None."""
    text = str(info["State"].get("StartedAt") or "")
    stamp, _, fraction = text.rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
    if moment <= 0:
        return None  # 0001-01-01: never started
    digits = "".join(c for c in fraction if c.isdigit())
    return moment + (float(f"0.{digits}") if digits else 0.0)


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


def is_ready(info: dict[str, Any], settled: bool) -> bool:
    """Healthy when it has a healthcheck, else running once it has settled (SETTLE_SECONDS)."""
    health = info["State"].get("Health")
    if health:
        return bool(health.get("Status") == "healthy")
    return bool(info["State"].get("Running")) and settled


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
