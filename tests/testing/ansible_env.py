"""Ansible with community.general in a virtualenv of its own, cached between runs.

`scripts/setup-env.sh` makes it; a test that finds it missing or stale makes it the same way
(python3 -m venv, then pip install -r ansible/requirements.txt). Without it, the test skips
locally and fails under CI=true.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.conftest import require

REQUIREMENTS = Path(__file__).parent / "ansible" / "requirements.txt"
STAMP = ".setup-env-installed"  # a copy of the requirements the venv was made from


def venv_path() -> Path:
    """Where the environment lives: $BOJDEPLOY_ANSIBLE_VENV or ~/.cache/bojdeploy-ansible."""
    default = Path.home() / ".cache" / "bojdeploy-ansible"
    return Path(os.environ.get("BOJDEPLOY_ANSIBLE_VENV") or default)


def _ready(venv: Path) -> bool:
    stamp = venv / STAMP
    playbook = venv / "bin" / "ansible-playbook"
    return playbook.exists() and stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text()


def ansible_venv() -> Path:
    """The environment's directory, made first if needed (one maker at a time)."""
    venv = venv_path()
    if _ready(venv):
        return venv
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(venv.parent / f".{venv.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _ready(venv):
                _make(venv)
    except OSError as e:
        require("ansible", False, f"cannot make {venv}: {e}")
    return venv


def _make(venv: Path) -> None:
    steps = (
        ["python3", "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            require("ansible", False, f"{' '.join(step)}: {e}")
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        require("ansible", done.returncode == 0, f"{' '.join(step)} failed: {' / '.join(tail)}")
    (venv / STAMP).write_text(REQUIREMENTS.read_text())


def run_playbook(
    venv: Path, playbook: Path, home: Path, extra_vars: Mapping[str, str]
) -> dict[str, Any]:
    """Run `ansible-playbook` on localhost (local connection); its JSON report.

    The report has `plays[].tasks[]` with `task.name` and `hosts.localhost` (the module's
    result), and `stats.localhost` (ok, changed, failures...).
    """
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "ANSIBLE_HOME": str(home / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_PYTHON_INTERPRETER": str(venv / "bin" / "python"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    command = [str(venv / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    command += ["--extra-vars", json.dumps(dict(extra_vars))]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"ansible-playbook exited {done.returncode} without a JSON report:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        ) from None
    return report


def task_results(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each task's result on localhost, by task name."""
    return {
        task["task"]["name"]: task["hosts"]["localhost"]
        for play in report["plays"]
        for task in play["tasks"]
    }
