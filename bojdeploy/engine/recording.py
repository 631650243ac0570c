"""A run's writes to the state store: written in order by one thread, kept while it is down.

Target work never waits on the database: a step's log lines and status changes go into a queue
that a writer thread drains. While the database is unreachable the writer keeps them and retries
with backoff (saying how many wait); the end of the run gives it a few more seconds, then names
the deployments whose records could not be written. Their rows stay `running`, which the next
run marks interrupted and treats as unfinished.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bojdeploy.errors import BojdeployError, ConnectError
from bojdeploy.store.base import StateStore
from bojdeploy.store.sql import now_utc

FIRST_RETRY = 0.2
MAX_RETRY = 2.0
FINISH_SECONDS = 5.0  # how long the end of a run keeps retrying an unreachable database
SETTLE_SECONDS = 30.0  # how long a step waits for its records before it lets go of its lock
PROGRESS_SECONDS = 3.0

Say = Callable[[str, str], None]  # (level, message)


def unrecorded_note(kind: str, name: str, action: str, status: str, deployment_id: int) -> str:
    """The line that tells a user a deployment's record is behind what happened."""
    done = "deleted" if action == "delete" else "deployed"
    what = {"completed": done, "unchanged": "unchanged", "skipped": "not run"}.get(status, "failed")
    return (
        f"{kind} {name}: {what}, but the record of deployment #{deployment_id} could not be "
        "written (database unreachable); the next run reconciles it"
    )


@dataclass
class _Write:
    deployment_id: int
    apply: Callable[[StateStore], None]


class Records:
    """Log lines and status changes of a run's deployments, written behind the target work."""

    def __init__(self, store: StateStore, say: Say):
        self.store = store
        self.say = say
        self.unreachable: str | None = None  # why, while the database cannot be reached
        self._queue: deque[_Write] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._given_up = False
        self._last_said = 0.0

    def log(
        self, deployment_id: int, level: str, message: str, metadata: dict[str, Any] | None = None
    ) -> None:
        """Queue a log line of a deployment."""
        at = now_utc()
        self._put(deployment_id, lambda s: s.add_log(deployment_id, level, message, metadata, at))

    def update(self, deployment_id: int, **changes: Any) -> None:
        """Queue a change of a deployment's row (status, error_message, config, completed)."""
        at = now_utc()
        self._put(deployment_id, lambda s: s.update_deployment(deployment_id, **changes, at=at))

    def settle(self, deployment_id: int) -> None:
        """Wait until a deployment's records are written, unless the database is unreachable."""
        deadline = time.monotonic() + SETTLE_SECONDS
        with self._cond:
            while self._waiting(deployment_id) and not self.unreachable:
                if not self._cond.wait(timeout=deadline - time.monotonic()):
                    return

    def finish(self) -> dict[int, int]:
        """Write what is queued (retrying an unreachable database a few seconds more).

        Return deployment id -> records left unwritten.
        """
        started = time.monotonic()
        with self._cond:
            while self._queue:
                down_for = time.monotonic() - started
                if self.unreachable and down_for >= FINISH_SECONDS:
                    break
                self._cond.wait(timeout=0.1)
            self._given_up = True
            self._cond.notify_all()
            left: dict[int, int] = {}
            for write in self._queue:
                left[write.deployment_id] = left.get(write.deployment_id, 0) + 1
            return left

    def _waiting(self, deployment_id: int) -> bool:
        return any(w.deployment_id == deployment_id for w in self._queue)

    def _put(self, deployment_id: int, apply: Callable[[StateStore], None]) -> None:
        with self._cond:
            self._queue.append(_Write(deployment_id, apply))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name="bojdeploy-records", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _drain(self) -> None:
        """The writer: oldest first; an unreachable database is retried, a refusal dropped."""
        delay = FIRST_RETRY
        while True:
            with self._cond:
                while not self._queue and not self._given_up:
                    self._cond.wait()
                if self._given_up:
                    return
                write = self._queue[0]
            try:
                write.apply(self.store)
            except ConnectError as e:
                self._down(str(e))
                self._back_off(delay)
                delay = min(delay * 2, MAX_RETRY)
                continue
            except BojdeployError as e:
                self.say("warn", f"a record of deployment #{write.deployment_id} was refused: {e}")
            except Exception as e:  # noqa: BLE001 - the writer must outlive any one record
                what = f"{type(e).__name__}: {e}"
                self.say("warn", f"a record of deployment #{write.deployment_id} failed: {what}")
            delay = FIRST_RETRY
            self._written()

    def _back_off(self, seconds: float) -> None:
        """Sleep before the next attempt (new records do not cut it short; giving up does)."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._given_up and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(timeout=left)

    def _down(self, why: str) -> None:
        """Note an unreachable database; say so now and then, with the count waiting."""
        with self._cond:
            first = self.unreachable is None
            self.unreachable = why
            waiting = len(self._queue)
            self._cond.notify_all()
        now = time.monotonic()
        if first or now - self._last_said >= PROGRESS_SECONDS:
            self._last_said = now
            detail = f" ({why})" if first else ""
            records = "record" if waiting == 1 else "records"
            self.say("warn", f"database unreachable; {waiting} {records} waiting{detail}")

    def _written(self) -> None:
        with self._cond:
            self._queue.popleft()
            recovered = self.unreachable is not None
            self.unreachable = None
            self._cond.notify_all()
        if recovered:
            self.say("info", "database reachable again; writing the records that waited")
