"""A cache of clones under the state directory, and a checkout of one pushed commit.

git itself runs in engine/gitrepo.py (a Mirror per clone URL); here: where the mirrors live, and
a file lock so that processes on one machine fetch into a mirror one at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bojdeploy.engine.gitrepo import Mirror


def state_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/bojdeploy (default ~/.local/state/bojdeploy)."""
    state = environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state, "bojdeploy")


class Clones:
    """Bare mirrors of repositories, one per clone URL, fetched under a file lock."""

    def __init__(self, root: Path, token: str | None = None):
        self.root = root
        self.token = token

    def mirror(self, url: str) -> Mirror:
        """The cached mirror of `url`."""
        name = hashlib.sha256(url.encode()).hexdigest()[:24] + ".git"
        return Mirror(self.root / name, url, self.token)

    def fetch(self, url: str, sha: str) -> Mirror:
        """The mirror of `url`, holding `sha`."""
        mirror = self.mirror(url)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(mirror.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mirror.fetch(sha)
        return mirror

    def show(self, url: str, sha: str, path: str) -> str | None:
        """The text of `path` at `sha` (fetched first), or None when the commit has no such file."""
        return self.fetch(url, sha).show(sha, path)

    @contextmanager
    def checkout(self, url: str, sha: str) -> Iterator[Path]:
        """A private work tree of `sha` with the mirror's history, removed afterwards."""
        mirror = self.fetch(url, sha)
        work = Path(tempfile.mkdtemp(prefix="checkout-", dir=self.root))
        try:
            mirror.checkout(sha, work)
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)
