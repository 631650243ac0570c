"""Per-target locks that die with their process: the wait loop, the file lock, and naming."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from bojdeploy.errors import LockTimeout, StoreError

WARN_AFTER = 2.0
UNKNOWN_HOLDER = "another run (it has just released the lock or not yet said who it is)"


def target_name(environment: str, deployment_type: str, name: str, host: str = "") -> str:
    """Return how messages name a target: env/kind/name, and @host on a named host."""
    return f"{environment}/{deployment_type}/{name}" + (f"@{host}" if host else "")


def default_holder() -> str:
    """Describe this process for lock messages: program, pid and host."""
    return f"bojdeploy pid {os.getpid()} on host {socket.gethostname()}"


def utc_stamp(moment: datetime) -> str:
    """Format a moment as 2026-11-25T19:00:01Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_key(target: str) -> int:
    """Return a stable signed 64-bit key for a target (a PostgreSQL advisory lock key)."""
    return int.from_bytes(hashlib.sha256(target.encode()).digest()[:8], "big", signed=True)


def wait_for_lock(
    try_acquire: Callable[[], bool],
    who_holds: Callable[[], str],
    target: str,
    timeout: float,
    on_wait: Callable[[str], None] | None,
) -> None:
    """Poll try_acquire until it succeeds; tell on_wait once after 2s; raise after timeout."""
    start = time.monotonic()
    delay = 0.02
    warned = False
    while not try_acquire():
        waited = time.monotonic() - start
        if waited >= timeout:
            raise LockTimeout(f"{target} is locked by {who_holds()}; waited {timeout:g}s")
        if on_wait is not None and not warned and waited >= WARN_AFTER:
            on_wait(f"waiting for the lock on {target} held by {who_holds()}")
            warned = True
        time.sleep(min(delay, timeout - waited))
        delay = min(delay * 2, 0.25)


@contextmanager
def file_lock(
    directory: Path,
    target: str,
    *,
    timeout: float,
    holder: str,
    on_wait: Callable[[str], None] | None,
) -> Iterator[None]:
    """Hold an flock on <directory>/<env>__<kind>__<name>.lock; the holder is written inside."""
    path = directory / ("__".join(quote(part, safe="") for part in target.split("/")) + ".lock")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreError(f"cannot open lock file {path}: {e}") from e
    try:

        def try_acquire() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        def who_holds() -> str:
            return path.read_text(errors="replace").strip() or UNKNOWN_HOLDER

        wait_for_lock(try_acquire, who_holds, target, timeout, on_wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder} since {utc_stamp(datetime.now(UTC))}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
