"""A cache of clones under the state directory, and a checkout of one pushed commit.

git itself runs in engine/gitrepo.py (a Mirror per clone URL); here: where the mirrors live, and
a file lock so that processes on one machine fetch into a mirror one at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bojdeploy.engine.gitrepo import FETCH_TIMEOUT, Mirror, shown
from bojdeploy.errors import BojdeployError, UsageError

GIT_TIMEOUT_VAR = "BOJDEPLOY_RELAY_GIT_TIMEOUT"
LOCK_POLL = 0.2  # seconds between tries of a clone's lock


def state_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/bojdeploy (default ~/.local/state/bojdeploy)."""
    state = environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state, "bojdeploy")


def git_timeout(environ: Mapping[str, str]) -> float:
    """Seconds a fetch may take, and a process may wait for another's fetch of the same clone
    (BOJDEPLOY_RELAY_GIT_TIMEOUT, default 300); UsageError when it is not a number >= 1."""
    raw = environ.get(GIT_TIMEOUT_VAR, "").strip()
    try:
        seconds = float(raw) if raw else FETCH_TIMEOUT
    except ValueError as e:
        raise UsageError(f"{GIT_TIMEOUT_VAR} must be a number of seconds, not {raw!r}") from e
    if seconds < 1:
        raise UsageError(f"{GIT_TIMEOUT_VAR} must be at least 1 second, not {raw!r}")
    return seconds


class Clones:
    """Bare mirrors of repositories, one per clone URL, fetched under a file lock."""

    def __init__(self, root: Path, token: str | None = None, timeout: float = FETCH_TIMEOUT):
        self.root = root
        self.token = token
        self.timeout = timeout

    def mirror(self, url: str) -> Mirror:
        """The cached mirror of `url`."""
        name = hashlib.sha256(url.encode()).hexdigest()[:24] + ".git"
        return Mirror(self.root / name, url, self.token, self.timeout)

    def fetch(self, url: str, sha: str) -> Mirror:
        """The mirror of `url`, holding `sha`; BojdeployError when another process holds the
        mirror's lock for longer than `timeout` seconds."""
        mirror = self.mirror(url)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(mirror.path.with_suffix(".lock"), "w") as lock:
            deadline = time.monotonic() + self.timeout
            while not _locked(lock):
                if time.monotonic() > deadline:
                    raise BojdeployError(
                        f"the clone of {shown(url)} stayed locked by another process for "
                        f"{self.timeout:g}s ({GIT_TIMEOUT_VAR}): is a fetch stuck?"
                    )
                time.sleep(LOCK_POLL)
            mirror.fetch(sha)
        return mirror

    def show(self, url: str, sha: str, path: str) -> str | None:
        """The text of `path` at `sha` (fetched first), or None when the commit has no such file."""
        return self.fetch(url, sha).show(sha, path)

    @contextmanager
    def checkout(self, url: str, sha: str) -> Iterator[Path]:
        """A private work tree of `sha` with the mirror's history, removed afterwards; locked
        (checkout-X.lock) while it lives, so that `clean` knows it is in use."""
        mirror = self.fetch(url, sha)
        handle, name = tempfile.mkstemp(prefix="checkout-", suffix=".lock", dir=self.root)
        with open(handle, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            work = Path(name).with_suffix("")
            try:
                work.mkdir()
                mirror.checkout(sha, work)
                yield work
            finally:
                shutil.rmtree(work, ignore_errors=True)
                Path(name).unlink(missing_ok=True)

    def clean(self) -> int:
        """Remove the work trees of processes that died while deploying (their lock is free);
        how many."""
        removed = 0
        for work in self.root.glob("checkout-*"):
            if work.suffix == ".lock" or not work.is_dir():
                continue
            lock_path = work.with_name(work.name + ".lock")
            try:
                with open(lock_path, "a") as lock:
                    if not _locked(lock):
                        continue  # a live process deploys from it
                    shutil.rmtree(work, ignore_errors=True)
                    lock_path.unlink(missing_ok=True)
                    removed += 1
            except OSError:
                continue
        return removed


def _locked(lock: IO[str]) -> bool:
    """Take the exclusive lock of this open file, if no other process holds it."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
