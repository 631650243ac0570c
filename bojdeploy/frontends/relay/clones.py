"""A cache of clones under the state directory, and a checkout of one pushed commit.

For http(s) URLs the token goes in an `Authorization` header through git's `http.extraHeader`,
passed in git's environment (GIT_CONFIG_*), so it is in neither the URL, the command line nor
any message.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bojdeploy.errors import BojdeployError

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def state_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/bojdeploy (default ~/.local/state/bojdeploy)."""
    state = environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state, "bojdeploy")


def shown(url: str) -> str:
    """A clone URL fit for messages: without user or password."""
    return _USERINFO.sub("", url)


class Clones:
    """Bare mirrors of repositories, one per clone URL, fetched under a file lock."""

    def __init__(self, root: Path, token: str | None = None):
        self.root = root
        self.token = token

    def _env(self, url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        if self.token and url.startswith(("http://", "https://")):
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=f"Authorization: token {self.token}",
            )
        return env

    def _git(self, url: str, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "safe.directory=*", *args],
            capture_output=True,
            text=True,
            env=self._env(url),
            check=False,
        )
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            why = (lines[-1] if lines else f"exit code {done.returncode}").removeprefix("fatal: ")
            if self.token:
                why = why.replace(self.token, "***")
            raise BojdeployError(f"git {args[0]} of {shown(url)} failed: {why}")
        return done.stdout

    def mirror(self, url: str) -> Path:
        """The cache folder of `url`."""
        return self.root / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")

    def fetch(self, url: str, sha: str) -> Path:
        """Bring `sha` (and every branch) of `url` into its cached mirror; the mirror's path."""
        path = self.mirror(url)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (path / "HEAD").exists():
                self._git(url, "init", "--quiet", "--bare", str(path))
            if not self._has(path, sha):
                refs = "+refs/heads/*:refs/heads/*"
                self._git(url, "-C", str(path), "fetch", "--quiet", "--no-tags", url, refs)
            if not self._has(path, sha):
                self._git(url, "-C", str(path), "fetch", "--quiet", "--no-tags", url, sha)
        return path

    def _has(self, path: Path, sha: str) -> bool:
        done = subprocess.run(
            ["git", "-C", str(path), "cat-file", "-e", f"{sha}^{{commit}}"],
            capture_output=True,
            env=self._env(""),
            check=False,
        )
        return done.returncode == 0

    def show(self, url: str, sha: str, path: str) -> str | None:
        """The text of `path` at `sha` (fetched first), or None when the commit has no such file."""
        mirror = self.fetch(url, sha)
        done = subprocess.run(
            ["git", "-C", str(mirror), "show", f"{sha}:{path}"],
            capture_output=True,
            text=True,
            env=self._env(""),
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    @contextmanager
    def checkout(self, url: str, sha: str) -> Iterator[Path]:
        """A private work tree of `sha` with the mirror's history, removed afterwards."""
        mirror = self.fetch(url, sha)
        work = Path(tempfile.mkdtemp(prefix="checkout-", dir=self.root))
        try:
            self._git("", "clone", "--quiet", "--shared", "--no-checkout", str(mirror), str(work))
            self._git("", "-C", str(work), "checkout", "--quiet", "--detach", sha)
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)
