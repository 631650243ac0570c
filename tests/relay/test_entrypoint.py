"""The action image's entry point doubles as the relay's: `relay` and `worker` go to the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def entrypoint(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run entrypoint.py as the image does, with no bojdeploy settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOJDEPLOY_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["relay", "--port", "18080"], "BOJDEPLOY_WEBHOOK_SECRET is not set"),
        (["worker", "--concurrency", "2"], "BOJDEPLOY_DATABASE_URL is not set"),
    ],
)
def test_relay_and_worker_arguments_run_the_cli(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    done = entrypoint(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_without_arguments_it_is_the_action(tmp_path: Path) -> None:
    done = entrypoint(tmp_path)  # no checkout, no inputs: the action says what it misses
    assert done.returncode == 2
    assert "::error::cannot tell the environment" in done.stdout
