"""Helpers shared by tests: run the CLI in-process and capture what a user sees."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner

from bojdeploy.cli import main


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
