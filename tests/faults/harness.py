"""Run `bojdeploy` in a child process and SIGKILL it when a line of its output matches."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Killed:
    """What a run printed before it was killed (or before it ended on its own)."""

    killed: bool
    lines: list[str] = field(default_factory=list)
    code: int | None = None  # the exit code when it ended on its own
    matched: bool = False  # a line matched (with on_match: the callback ran)

    @property
    def text(self) -> str:
        """Everything it printed."""
        return "\n".join(self.lines)


def bojdeploy_command(*args: str) -> list[str]:
    """The argv that runs this checkout's bojdeploy in a fresh interpreter."""
    return [sys.executable, "-m", "bojdeploy", *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child run: this checkout first on the path, output unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOJDEPLOY_")}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def kill_when(
    args: list[str],
    pattern: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    delay: float = 0.0,
    timeout: float = 120.0,
    on_match: Callable[[], None] | None = None,
) -> Killed:
    """Run bojdeploy ARGS; SIGKILL it `delay` seconds after a line matches `pattern`.

    With `on_match`, call it instead of killing and let the run end on its own.
    """
    proc = subprocess.Popen(
        bojdeploy_command(*args),
        cwd=cwd,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    result = Killed(killed=False)
    deadline = time.monotonic() + timeout
    wanted = re.compile(pattern)
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            result.code = proc.wait()
            return result
        result.lines.append(line)
        if not result.matched and wanted.search(line):
            result.matched = True
            time.sleep(delay)
            if on_match is not None:
                on_match()
                continue
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            result.killed = True
            return result
    proc.kill()
    proc.wait(timeout=30)
    what = "the run did not end" if result.matched else f"no line matched {pattern!r}"
    raise AssertionError(f"{what} within {timeout}s:\n{result.text}")


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)
