"""Helpers for the action's tests: a deployment repository in git and act_runner's environment."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bojdeploy.frontends.action.inputs import input_variable
from tests.conftest import require
from tests.fakes.fake_gitea import FakeGitea, default_swagger

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "gitea-token-5f0c9d2e7a41"
SECRET = "session-secret-8b3e1d77"
OWNER, REPO = "infra", "deployments"
REGISTRY = "127.0.0.1:5000/bojdeploy-test"
STATUS_PATH = "/repos/{owner}/{repo}/statuses/{sha}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fake_gitea() -> Iterator[FakeGitea]:
    """The fake Gitea on 127.0.0.1, holding requests to the swagger spec (which must be there)."""
    swagger = default_swagger()
    require("Gitea's swagger spec", swagger.is_file(), f"{swagger} is missing")
    fake = FakeGitea(token=TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()


class DeployRepo:
    """A deployment repository in git whose manifests run uniquely named test containers."""

    def __init__(self, root: Path, suffix: str):
        self.root = root
        self.suffix = suffix
        self.ports: dict[str, int] = {}
        (root / "deploy").mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "ci@example.com")
        self.git("config", "user.name", "CI")
        (root / "bojdeploy.yaml").write_text(
            "environments:\n  production: {branches: [main]}\n  staging: {branches: [staging]}\n"
        )

    def name(self, key: str) -> str:
        """The manifest (and container) name for `key`."""
        return f"bdact-{key}-{self.suffix}"

    def write(
        self, key: str, image: str = "web:1", mode: str = "one", *, secret: bool = False
    ) -> None:
        """Write deploy/<key>.yml: a web container on a free 127.0.0.1 port, health-checked."""
        port = self.ports.setdefault(key, free_port())
        env = f"MODE: {mode}" + (", SESSION: \"{{ secret('APP_SESSION') }}\"" if secret else "")
        (self.root / "deploy" / f"{key}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name(key)}}}\n"
            "spec:\n"
            f"  image: {REGISTRY}/{image}\n"
            f"  env: {{{env}}}\n"
            f"  ports: ['127.0.0.1:{port}:80']\n"
            "  labels: {io.bojdeploy.test: 'true'}\n"
            "  stop_timeout: 1s\n"
            "  timeout: 10s\n"
            "  healthcheck: {test: [CMD, wget, -qO-, 'http://127.0.0.1/'], interval: 1s, "
            "timeout: 1s, retries: 2, start_period: 1s}\n"
        )

    def commit(self, message: str) -> str:
        """Commit everything; the new sha."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        """Run git in the repository; its stdout, stripped."""
        done = subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()


def reference_event(name: str) -> dict[str, Any]:
    """A payload from tests/fixtures/gitea/ (Gitea 1.25.4's shapes), renamed to the test repo."""
    event: dict[str, Any] = json.loads((default_swagger().parent / name).read_text())
    event["repository"].update(name=REPO, full_name=f"{OWNER}/{REPO}")
    event["repository"]["owner"]["login"] = OWNER
    return event


def push_event(before: str, after: str, message: str = "deploy") -> dict[str, Any]:
    """The Actions push payload, naming the test repository's commits."""
    event = reference_event("push.actions_event.json")
    event["before"], event["after"] = before, after
    event["compare_url"] = f"https://gitea.example.com/{OWNER}/{REPO}/compare/{before}...{after}"
    event["commits"] = event["commits"][:1]
    event["commits"][0].update(id=after, message=message)
    event["head_commit"].update(id=after, message=message)
    return event


def pull_request_event(base_sha: str, head_sha: str, number: int = 9) -> dict[str, Any]:
    """The pull_request payload: a PR from branch feature into main."""
    event = reference_event("pull_request.json")
    event["number"] = number
    pr = event["pull_request"]
    pr["number"] = number
    pr["base"].update(ref="main", label="main", sha=base_sha)
    pr["head"].update(ref="feature", label="feature", sha=head_sha)
    pr["merge_base"] = base_sha
    return event


def dispatch_event(**inputs: str) -> dict[str, Any]:
    """The workflow_dispatch payload with these form inputs (strings, as Gitea sends them)."""
    event = reference_event("workflow_dispatch.json")
    event["inputs"] = inputs
    return event


def action_defaults() -> dict[str, str]:
    """The inputs' defaults from action.yml, as act_runner reads them."""
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    return {name: str(item.get("default", "")) for name, item in spec["inputs"].items()}


@dataclass
class ActionResult:
    """What one run of entrypoint.py did."""

    code: int
    out: str
    err: str
    outputs: dict[str, str]
    summary: str

    def leaks(self, *values: str) -> list[str]:
        """Printed lines holding any of `values`, other than the masks that hide them."""
        lines = (self.out + self.err).splitlines()
        return [
            line
            for line in lines
            if not line.startswith("::add-mask::") and any(v in line for v in values)
        ]


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a GITHUB_OUTPUT file (name=value and name<<DELIMITER forms)."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines() if path.exists() else [])
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            outputs[name] = "\n".join(iter(lambda: next(lines), delimiter))
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def act_environment(
    workspace: Path,
    runner: Path,
    gitea: FakeGitea,
    event_name: str,
    event: dict[str, Any],
    *,
    sha: str,
    ref: str,
    inputs: dict[str, str],
) -> dict[str, str]:
    """The environment act_runner gives a Docker action step (plus the step's secrets env)."""
    runner.mkdir(parents=True, exist_ok=True)
    (runner / "event.json").write_text(json.dumps(event))
    pr = event.get("pull_request") or {}
    values = {**action_defaults(), "token": TOKEN, **inputs}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(runner),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "ACT": "true",
        "GITEA_ACTIONS": "true",
        "GITHUB_WORKFLOW": "deploy.yml",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_NUMBER": "7",
        "GITHUB_ACTION": "deploy",
        "GITHUB_ACTOR": "alice",
        "GITHUB_REPOSITORY": f"{OWNER}/{REPO}",
        "GITHUB_REPOSITORY_OWNER": OWNER,
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(runner / "event.json"),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_SHA": sha,
        "GITHUB_REF": ref,
        "GITHUB_REF_NAME": ref.removeprefix("refs/heads/").removeprefix("refs/pull/"),
        "GITHUB_REF_TYPE": "branch" if ref.startswith("refs/heads/") else "",
        "GITHUB_BASE_REF": (pr.get("base") or {}).get("ref", ""),
        "GITHUB_HEAD_REF": (pr.get("head") or {}).get("ref", ""),
        "GITHUB_JOB": "deploy",
        "GITHUB_SERVER_URL": "http://gitea.internal:3000",  # the runner's URL: never contacted
        "GITHUB_API_URL": "http://gitea.internal:3000/api/v1",
        "BOJDEPLOY_GITEA_URL": gitea.url,
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(runner / "temp"),
        "GITHUB_OUTPUT": str(runner / "outputcmd.txt"),
        "GITHUB_ENV": str(runner / "envs.txt"),
        "GITHUB_STATE": str(runner / "statecmd.txt"),
        "GITHUB_PATH": str(runner / "pathcmd.txt"),
        "GITHUB_STEP_SUMMARY": str(runner / "SUMMARY.md"),
        "APP_SESSION": SECRET,
    }
    env.update({input_variable(name): value for name, value in values.items()})
    return env


def run_entrypoint(env: dict[str, str], runner: Path) -> ActionResult:
    """Run entrypoint.py as act_runner would (in the workspace), fresh output files each time."""
    for name in ("outputcmd.txt", "SUMMARY.md"):
        (runner / name).unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        env=env,
        cwd=env["GITHUB_WORKSPACE"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = runner / "SUMMARY.md"
    return ActionResult(
        done.returncode,
        done.stdout,
        done.stderr,
        read_outputs(runner / "outputcmd.txt"),
        summary.read_text() if summary.exists() else "",
    )


def statuses(gitea: FakeGitea, sha: str) -> dict[str, list[tuple[str, str]]]:
    """The (state, description) history of each status context of `sha`."""
    out: dict[str, list[tuple[str, str]]] = {}
    for status in gitea.statuses.get(sha, []):
        out.setdefault(status["context"], []).append((status["status"], status["description"]))
    return out
