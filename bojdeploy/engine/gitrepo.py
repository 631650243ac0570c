"""The only place that runs git: workspace facts, shallow-clone deepening and push diffs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bojdeploy.core.changes import (
    FileChange,
    Selection,
    parse_name_status,
    select_all,
    select_changed,
)
from bojdeploy.errors import BojdeployError, UsageError

ZERO_SHA = "0" * 40
FETCH_TIMEOUT = 300.0  # seconds a mirror's fetch may take
# a fetch over http(s) that moves under 1 kB/s for a minute is given up by git itself
_SLOW_HTTP = ("-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60")

# Variables a calling git (a hook, `git rebase --exec`) may export; they would override `-C root`.
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


@dataclass(frozen=True)
class GitInfo:
    """The commit being deployed, as templates see it (`git.sha`, `git.branch`...)."""

    sha: str
    short_sha: str
    branch: str
    ref: str
    repository: str


class GitRepo:
    """A git work tree, driven through the git command line."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.fetch_error = ""

    @classmethod
    def find(cls, path: Path) -> GitRepo | None:
        """The work tree holding `path` (walking up), or None when it is not in git."""
        start = Path(path)
        try:
            top = cls(start if start.is_dir() else start.parent)._git(
                "rev-parse", "--show-toplevel"
            )
        except UsageError:
            return None
        return cls(Path(top.stdout.strip()))

    def info(self, *, repository: str | None = None, branch: str | None = None) -> GitInfo:
        """Describe HEAD; a detached HEAD (as in CI) has branch "" unless the caller knows it."""
        sha = self._git("rev-parse", "--verify", "HEAD^{commit}").stdout.strip()
        if branch is None:
            branch = self._git("symbolic-ref", "-q", "--short", "HEAD", ok=(0, 1)).stdout.strip()
        return GitInfo(
            sha=sha,
            short_sha=sha[:7],
            branch=branch,
            ref=f"refs/heads/{branch}" if branch else "",
            repository=repository or self._repository_from_origin() or self.root.name,
        )

    def rev_parse(self, rev: str) -> str | None:
        """The full sha of the commit `rev` names, or None if this clone does not have it."""
        out = self._git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", ok=(0, 1)
        )
        return out.stdout.strip() or None

    def is_shallow(self) -> bool:
        """True when this is a shallow clone (history cut off)."""
        return self._git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"

    def has_commit(self, sha: str) -> bool:
        """True when the commit is present in this clone."""
        return self.rev_parse(sha) is not None

    def deepen(self, sha: str, *, max_rounds: int = 6) -> bool:
        """Fetch history until `sha` is present; False (and `fetch_error` set) if it never is."""
        self.fetch_error = ""
        if not self._git("remote").stdout.strip():
            self.fetch_error = "the clone has no remote to fetch from"
            return False
        for n in range(max_rounds):
            if self.has_commit(sha) or not self.is_shallow():
                break
            if not self._fetch(f"--deepen={50 << n}"):
                return False
        else:
            if self.is_shallow() and not self.has_commit(sha):
                self._fetch("--unshallow")
        return self.has_commit(sha)

    def changed_files(self, before: str, after: str) -> list[FileChange]:
        """The files that differ between two commits' trees; a rename is a delete and an add."""
        out = self._git(
            "diff",
            "--no-renames",
            "--no-ext-diff",
            "--name-status",
            "-z",
            "--end-of-options",
            before,
            after,
            "--",
        )
        return parse_name_status(out.stdout)

    def is_ancestor(self, a: str, b: str) -> bool:
        """True when commit `a` is an ancestor of (or equal to) commit `b`."""
        return self._git("merge-base", "--is-ancestor", a, b, ok=(0, 1)).returncode == 0

    def detect_changes(
        self,
        before: str | None,
        after: str,
        manifests: Sequence[str],
        dependencies: Mapping[str, Iterable[str]],
        *,
        patterns: Sequence[str],
        config_file: str = "bojdeploy.yaml",
        fallback: Callable[[str, str], list[FileChange] | None] | None = None,
    ) -> Selection:
        """Select the manifests a push from `before` to `after` touches, falling back to all."""
        after_sha = self.rev_parse(after)
        if after_sha is None:
            raise BojdeployError(f"commit {after} is not in the clone at {self.root}")
        if not before or before == ZERO_SHA:
            why = "before is all zeros (new branch)" if before else "no 'before' commit given"
            return select_all(manifests, why)
        before_sha, note = self._find_commit(before)
        if before_sha is None:
            changes = fallback(before, after_sha) if fallback else None
            if changes is None:
                return select_all(manifests, note)
            before_sha, note = before, f"{note}: compared through the forge"
        elif not self.is_ancestor(before_sha, after_sha):
            why = f"force push: {before_sha[:7]} is not an ancestor of {after_sha[:7]}"
            return select_all(manifests, why)
        else:
            changes = self.changed_files(before_sha, after_sha)
        selection = select_changed(
            manifests,
            changes,
            dependencies,
            patterns=patterns,
            config_file=config_file,
            range_label=f"{before_sha[:7]}..{after_sha[:7]}",
        )
        return replace(selection, note=note)

    def _find_commit(self, rev: str) -> tuple[str | None, str]:
        """The sha of `rev`, deepening a shallow clone to find it, and a note on how it went."""
        sha = self.rev_parse(rev)
        if sha is not None:
            return sha, ""
        missing = f"commit {rev[:7]} is not in this clone (shallow clone or force push)"
        if not self.is_shallow():
            return None, missing
        if self.deepen(rev):
            return self.rev_parse(rev), f"deepened the shallow clone to reach {rev[:7]}"
        failed = f"; fetching history failed: {self.fetch_error}" if self.fetch_error else ""
        return None, missing + failed

    def _repository_from_origin(self) -> str:
        """'owner/name' from the origin remote's URL, or "" without one."""
        url = self._git("config", "--get", "remote.origin.url", ok=(0, 1)).stdout.strip()
        parts = [p for p in re.split(r"[/:]", url.removesuffix("/").removesuffix(".git")) if p]
        return "/".join(parts[-2:]) if url else ""

    def _fetch(self, how: str) -> bool:
        """Run `git fetch <how>`; on failure remember git's first complaint and return False."""
        done = self._git("fetch", "--quiet", "--no-tags", how, ok=None)
        if done.returncode == 0:
            return True
        complaints = [line for line in done.stderr.splitlines() if line.strip()]
        first = complaints[0] if complaints else f"exit code {done.returncode}"
        self.fetch_error = f"git fetch {how}: {first.removeprefix('fatal: ')}"
        return False

    def _git(
        self, *args: str, ok: tuple[int, ...] | None = (0,)
    ) -> subprocess.CompletedProcess[str]:
        """Run git in this work tree; exit codes outside `ok` (None: any) become our errors."""
        env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        argv = ["git", "-C", str(self.root), "-c", "safe.directory=*", *args]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="surrogateescape",
                env=env,
                check=False,
            )
        except OSError as e:
            raise BojdeployError(f"cannot run git: {e}") from e
        if ok is None or done.returncode in ok:
            return done
        message = done.stderr.strip() or f"exit code {done.returncode}"
        if message.startswith("fatal: not a git repository"):
            raise UsageError(f"{self.root} is not in a git repository")
        raise BojdeployError(f"git {args[0]} failed in {self.root}: {message}")


class Mirror:
    """A bare mirror of one clone URL, fetched into and checked out from.

    For http(s) URLs a token goes in an `Authorization` header through git's `http.extraHeader`,
    passed in git's environment (GIT_CONFIG_*): in neither the URL, the command line nor any
    message.
    """

    def __init__(
        self, path: Path, url: str, token: str | None = None, timeout: float = FETCH_TIMEOUT
    ):
        self.path = Path(path)
        self.url = url
        self.token = token
        self.timeout = timeout  # seconds a fetch may take

    def fetch(self, sha: str) -> None:
        """Bring `sha` (and every branch) of the URL into the mirror, creating it if needed;
        a fetch that takes longer than `timeout` seconds (or moves under 1 kB/s for a minute
        over http) is stopped with an error."""
        if not (self.path / "HEAD").exists():
            self._git(None, "init", "--quiet", "--bare", str(self.path))
        for refspec in ("+refs/heads/*:refs/heads/*", sha):
            if self.has(sha):
                return
            self._git(
                self.path, "fetch", "--quiet", "--no-tags", self.url, refspec, timeout=self.timeout
            )

    def is_ancestor(self, a: str, b: str) -> bool:
        """Whether commit `a` is an ancestor of (or equal to) commit `b`; False when the mirror
        lacks either."""
        return self._git(self.path, "merge-base", "--is-ancestor", a, b, ok=None).returncode == 0

    def has(self, sha: str) -> bool:
        """Whether the mirror holds commit `sha`."""
        done = self._git(self.path, "cat-file", "-e", f"{sha}^{{commit}}", ok=None)
        return done.returncode == 0

    def show(self, sha: str, path: str) -> str | None:
        """The text of `path` at `sha`, or None when the commit has no such file."""
        done = self._git(self.path, "show", f"{sha}:{path}", ok=None)
        return done.stdout if done.returncode == 0 else None

    def checkout(self, sha: str, work: Path) -> GitRepo:
        """A work tree of `sha` in the empty folder `work`, sharing the mirror's objects."""
        self._git(None, "clone", "--quiet", "--shared", "--no-checkout", str(self.path), str(work))
        self._git(work, "checkout", "--quiet", "--detach", sha)
        return GitRepo(work)

    def _git(
        self,
        where: Path | None,
        *args: str,
        ok: tuple[int, ...] | None = (0,),
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run git (in `where`), stopped with its children after `timeout` seconds; the token
        only in its environment, and never in an error."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        if self.token and self.url.startswith(("http://", "https://")):
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=f"Authorization: token {self.token}",
            )
        at = ["-C", str(where)] if where is not None else []
        argv = ["git", *at, "-c", "safe.directory=*", *_SLOW_HTTP, *args]
        try:
            done = _run(argv, env, timeout)
        except OSError as e:
            raise BojdeployError(f"cannot run git: {e}") from e
        except subprocess.TimeoutExpired as e:
            raise BojdeployError(
                f"git {args[0]} of {shown(self.url)} was stopped after {timeout:g}s "
                "(the server stalled?)"
            ) from e
        if ok is None or done.returncode in ok:
            return done
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        why = (lines[-1] if lines else f"exit code {done.returncode}").removeprefix("fatal: ")
        if self.token:
            why = why.replace(self.token, "***")
        raise BojdeployError(f"git {args[0]} of {shown(self.url)} failed: {why}")


def _run(
    argv: list[str], env: dict[str, str], timeout: float | None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in its own process group, killed whole (git's http helpers too) on timeout."""
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def shown(url: str) -> str:
    """A clone URL fit for messages: without user or password."""
    return _USERINFO.sub("", url)
