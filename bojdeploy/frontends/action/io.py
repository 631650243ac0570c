"""What the Gitea Action writes: the step log (workflow commands), outputs and job summary."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from bojdeploy.core.secrets import Scrubber
from bojdeploy.store.base import StateStore


class Console:
    """The step log: workflow commands and lines on stdout, every line scrubbed of secrets."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.scrub = Scrubber()
        self.masked: set[str] = set()
        self.lock = threading.RLock()
        self.open_group: str | None = None

    def mask(self, values: list[str]) -> None:
        """`::add-mask::` each value (line by line), and scrub it from everything printed."""
        for value in values:
            if not value.strip() or value in self.masked:
                continue
            self.masked.add(value)
            self.scrub.add([value, *value.splitlines()])
            for part in value.splitlines():
                if part.strip():
                    self._write(f"::add-mask::{_escape(part)}")

    def line(self, text: str) -> None:
        """One or more plain lines."""
        self._write(self.scrub(text))

    def warning(self, message: str) -> None:
        """A `::warning::` line."""
        self._write(f"::warning::{_escape(self.scrub(message))}")

    def error(self, message: str) -> None:
        """An `::error::` line."""
        self._write(f"::error::{_escape(self.scrub(message))}")

    def notice(self, message: str) -> None:
        """A `::notice::` line."""
        self._write(f"::notice::{_escape(self.scrub(message))}")

    def write(self, level: str, message: str) -> None:
        """A progress line of the engine: `warn` and `error` as such, anything else plain."""
        {"warn": self.warning, "error": self.error}.get(level, self.line)(message)

    def block(self, title: str, entries: Sequence[tuple[str, str]]) -> None:
        """A whole group at once: nothing else is printed between its first and last line."""
        with self.lock:
            self.group(title)
            for level, message in entries:
                self.write(level, message)
            self._end()

    def group(self, title: str) -> None:
        """Start a folded group (closing the open one)."""
        with self.lock:
            self._end()
            self.open_group = title
            self._raw(f"::group::{_escape(self.scrub(title))}")

    def end_group(self) -> None:
        """Close the open group, if any."""
        with self.lock:
            self._end()

    def _end(self) -> None:
        if self.open_group is not None:
            self._raw("::endgroup::")
            self.open_group = None

    def _write(self, text: str) -> None:
        with self.lock:
            self._raw(text)

    def _raw(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


Entry = tuple[str, str]  # (level, message) of one progress line


class GroupedLog:
    """The engine's progress lines, one whole `::group::` per resource, also with parallel steps.

    One resource at a time is live: its group is open and its lines appear as they come, so long
    waits show progress. Lines of resources running beside it are held, and shown as whole groups
    once the live one is done; then the next unfinished resource becomes live. A resource is done
    when its deployment is recorded as completed (`finished`, see `WatchedStore`) or when the
    thread that ran it reports another resource. Lines about the run rather than a resource
    (labels without `kind/`, such as the state store's) are shown at once.
    """

    GRACE = 0.3  # seconds: lines logged just after the completion record still join the group

    def __init__(self, console: Console):
        self.console = console
        self.lock = threading.RLock()
        self.live: str | None = None
        self.held: dict[str, list[Entry]] = {}  # insertion order = order they started
        self.done: dict[str, float] = {}  # resource -> when it was seen done (monotonic)
        self.by_thread: dict[int, str] = {}
        self.closed = False

    def __call__(self, resource: str, level: str, message: str) -> None:
        with self.lock:
            if "/" not in resource:  # about the run, not one resource: shown at once, held never
                self.console.write(level, message)
                return
            previous = self.by_thread.get(threading.get_ident())
            self.by_thread[threading.get_ident()] = resource
            if previous is not None and previous != resource:
                self.done[previous] = 0.0  # its thread moved on: no more lines will come
            if self.live is not None and self.live != resource and self._settled(self.live):
                self._advance()
            if self.live is None:
                self._open(resource)
            if resource == self.live:
                self.console.write(level, message)
            else:
                self.held.setdefault(resource, []).append((level, message))

    def __enter__(self) -> GroupedLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished(self, resource: str) -> None:
        """The resource's deployment is recorded as done; its group closes shortly after."""
        with self.lock:
            self.done.setdefault(resource, time.monotonic())
            if resource == self.live:
                self._later()

    def close(self) -> None:
        """Close the live group and show every held one (the run is over)."""
        with self.lock:
            self.closed = True
            if self.live is not None:
                self.console.end_group()
                self.live = None
            for resource, entries in self.held.items():
                self.console.block(resource, entries)
            self.held.clear()

    def _settled(self, resource: str) -> bool:
        seen = self.done.get(resource)
        return seen is not None and time.monotonic() - seen >= self.GRACE

    def _later(self) -> None:
        """Close the live group once its grace time is over (if nothing else did it before)."""
        timer = threading.Timer(self.GRACE, self._settle)
        timer.daemon = True
        timer.start()

    def _settle(self) -> None:
        with self.lock:
            if not self.closed and self.live is not None and self._settled(self.live):
                self._advance()

    def _open(self, resource: str) -> None:
        self.live = resource
        self.console.group(resource)
        for entry in self.held.pop(resource, []):
            self.console.write(*entry)
        if resource in self.done:
            self._later()

    def _advance(self) -> None:
        """The live resource is done: close it, show the held groups that are done, go on."""
        self.console.end_group()
        self.live = None
        for resource in [r for r in self.held if self._settled(r)]:
            self.console.block(resource, self.held.pop(resource))
        if self.held:
            self._open(next(iter(self.held)))


class WatchedStore:
    """A state store that tells a GroupedLog when a resource's deployment is recorded as done."""

    def __init__(self, store: StateStore, log: GroupedLog):
        self._store = store
        self._log = log
        self._labels: dict[int, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_deployment(self, **fields: Any) -> int:
        """Record a deployment, remembering which resource it is for."""
        dep_id = self._store.create_deployment(**fields)
        self._labels[dep_id] = _resource(fields)
        return dep_id

    def record_unchanged(self, records: Sequence[Mapping[str, Any]], message: str) -> list[int]:
        """Record unchanged resources (completed at once): each closes its resource's group."""
        ids = self._store.record_unchanged(records, message)
        for record in records:
            self._log.finished(_resource(record))
        return ids

    def update_deployment(self, deployment_id: int, **fields: Any) -> None:
        """Update a deployment; a completed one closes its resource's group."""
        self._store.update_deployment(deployment_id, **fields)
        if fields.get("completed") and deployment_id in self._labels:
            self._log.finished(self._labels[deployment_id])


def _resource(fields: Mapping[str, Any]) -> str:
    """The resource of a deployment row as progress lines name it: `kind/name[@host]`."""
    host = fields.get("host")
    return f"{fields.get('deployment_type')}/{fields.get('name')}" + (f"@{host}" if host else "")


def watch(store: StateStore, log: GroupedLog) -> StateStore:
    """`store`, telling `log` when each resource is done (typed as the store it wraps)."""
    return cast(StateStore, WatchedStore(store, log))


def _escape(text: str) -> str:
    """Workflow-command data escaping (%, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def write_outputs(environ: Mapping[str, str], values: Mapping[str, str]) -> None:
    """Append step outputs to $GITHUB_OUTPUT (heredoc form, safe for any value)."""
    path = environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        for key, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            f.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


def write_summary(environ: Mapping[str, str], markdown: str) -> None:
    """Append markdown to $GITHUB_STEP_SUMMARY (Gitea shows it from 1.27 on)."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown.rstrip() + "\n")


def give_back(console: Console, workspace: Path, started: float) -> None:
    """Leave the workspace to its owner: what the run wrote there as root is chowned back."""
    try:
        chown_new(workspace, started - 2)  # slack for coarse file timestamps
    except OSError as e:
        console.warning(f"could not give the files written in {workspace} back to its owner: {e}")


def chown_new(root: Path, since: float) -> int:
    """Give paths under `root` that this process made or rewrote since `since` to root's owner.

    A runner that uses host folders as workspaces runs the action container as root, so git
    (fetching history) and SQLite files would otherwise be left owned by root: the runner's
    user could not clean the workspace up. Returns how many paths changed owner.
    """
    me = os.geteuid()
    try:
        owner = os.stat(root)
    except OSError:
        return 0
    if me != 0 or owner.st_uid == me:
        return 0
    want = (owner.st_uid, owner.st_gid)
    changed = 0
    for folder, dirs, files in os.walk(root):  # never follows symlinks
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # removed meanwhile (a git lock file)
                continue
            if st.st_uid == me and st.st_ctime >= since and (st.st_uid, st.st_gid) != want:
                os.lchown(path, *want)
                changed += 1
    return changed
