"""Helpers shared by tests: run the CLI in-process and capture what a user sees."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bojdeploy.frontends.cli import main


@dataclass
class CliResult:
    """Exit code, stdout and stderr of one CLI run."""

    code: int
    out: str
    err: str


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> CliResult:
    """Run `bojdeploy ARGS` in-process, with extra environment variables."""
    runner = CliRunner()
    full_env = {k: v for k, v in os.environ.items() if k.startswith(("BOJDEPLOY_", "XDG"))}
    full_env = {k: None for k in full_env}  # type: ignore[misc]
    full_env.update(env or {})
    result = runner.invoke(main, list(args), env=full_env, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


class Recorder:
    """A StepLog that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, level: str, message: str, **metadata: Any) -> None:
        self.lines.append((level, message, metadata))

    @property
    def text(self) -> str:
        """Every logged message and its metadata, one per line."""
        return "\n".join(f"{lv} {msg} {meta}" for lv, msg, meta in self.lines)


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


def git_identity(root: Path, repository: str) -> None:
    """Make `root` a git clone of Gitea's `repository` (origin remote, one commit of its files).

    Runs that know their repository (`owner/name`) may prune; a folder's name is not enough.
    """
    if not (root / ".git").exists():
        subprocess.run([*GIT, "init", "-q", "-b", "main", str(root)], check=True)
    url = f"https://gitea.example.invalid/{repository}.git"
    subprocess.run([*GIT, "-C", str(root), "remote", "add", "origin", url], check=True)
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "start", "--allow-empty"], check=True)


@contextlib.contextmanager
def stalling_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """An http base URL on 127.0.0.1 whose server takes connections and never answers; the
    connections it took. Both are closed at the end of the with block."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    taken: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                taken.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", taken
    finally:
        server.close()
        for conn in taken:
            conn.close()
