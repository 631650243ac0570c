"""-v and -vv: the libraries' diagnostics (Docker, XenAPI, Gitea calls) through one
configuration, one label per level, never a credential."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy import logs
from bojdeploy.forge.gitea import GiteaClient
from bojdeploy.testing.xapi import XapiSimulator
from tests.conftest import require
from tests.fakes.fake_gitea import FakeGitea, default_swagger

SECRET = "s3cret-value-4711"
XEN_PASSWORD = "xen-pw-0815"
TOKEN = "gitea-token-2342"
CONTAINER = """\
apiVersion: bojdeploy/v1
kind: Container
metadata: {name: logged}
spec:
  image: 127.0.0.1:5000/bojdeploy-test/web:1
  env: {DB_PASSWORD: "{{ secret('DB_PASSWORD') }}"}
"""
VM = """\
apiVersion: bojdeploy/v1
kind: VM
metadata: {name: logged}
spec: {template: Debian Bookworm 12, vcpus: 1, memory: 512M}
"""


def bojdeploy(repo: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """`bojdeploy --database-url ... ARGS plan --env production REPO` in a child process."""
    full = {**os.environ, "DB_PASSWORD": SECRET, **(env or {})}
    db = f"sqlite:///{repo.parent / 'state.db'}"
    command = [sys.executable, "-m", "bojdeploy", "--database-url", db, *args]
    return subprocess.run(
        [*command, "plan", "--env", "production", str(repo)],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def repository(tmp_path: Path, manifest: str) -> Path:
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "m.yml").write_text(manifest)
    return root


def test_vv_shows_the_docker_api_calls_and_no_secret(tmp_path: Path, docker_client: Any) -> None:
    repo = repository(tmp_path, CONTAINER)
    loud = bojdeploy(repo, "-vv")
    assert loud.returncode == 0, loud.stderr
    # through the docker SDK (urllib3) or, for a local engine's listing, straight off its socket
    docker = ("debug: urllib3", "debug: bojdeploy.docker")
    calls = [line for line in loud.stderr.splitlines() if line.startswith(docker)]
    assert any('"GET /' in line and "/containers/json" in line for line in calls), loud.stderr
    assert SECRET not in loud.stderr + loud.stdout

    info = bojdeploy(repo, "-v")
    assert info.returncode == 0 and "debug:" not in info.stderr

    quiet = bojdeploy(repo)
    assert quiet.returncode == 0
    assert "urllib3" not in quiet.stderr and "debug" not in quiet.stderr
    assert quiet.stdout == loud.stdout  # the plan itself is the same


def test_vv_json_lines_carry_level_and_logger(tmp_path: Path, docker_client: Any) -> None:
    import json

    repo = repository(tmp_path, CONTAINER)
    result = bojdeploy(repo, "--log-format", "json", "-vv")
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    calls = [x for x in lines if x.get("logger") in ("urllib3.connectionpool", "bojdeploy.docker")]
    assert calls and all(x["level"] == "debug" and "timestamp" in x for x in calls)


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(username="root", password=XEN_PASSWORD) as simulator:
        yield simulator


def test_vv_shows_the_xenapi_calls_without_the_password(tmp_path: Path, sim: XapiSimulator) -> None:
    repo = repository(tmp_path, VM)
    env = {"BOJDEPLOY_XEN_URL": sim.url, "BOJDEPLOY_XEN_PASSWORD": XEN_PASSWORD}
    loud = bojdeploy(repo, "-vv", env=env)
    assert loud.returncode == 0, loud.stderr
    xen = [x for x in loud.stderr.splitlines() if x.startswith("debug: bojdeploy.xenapi: ")]
    assert "debug: bojdeploy.xenapi: XenAPI login_with_password" in xen
    assert any(x.startswith("debug: bojdeploy.xenapi: XenAPI VM.") for x in xen), xen
    assert XEN_PASSWORD not in loud.stderr + loud.stdout

    quiet = bojdeploy(repo, env=env)
    assert quiet.returncode == 0 and "XenAPI" not in quiet.stderr


def test_gitea_calls_are_logged_without_the_token() -> None:
    swagger = default_swagger()
    require("Gitea's swagger spec", swagger.is_file(), f"{swagger} is missing")
    fake = FakeGitea(token=TOKEN).start()
    lines: list[str] = []
    logs.configure(2, write=lines.append)
    gitea = GiteaClient(fake.url, TOKEN, backoff=0)
    try:
        fake.fail_next("POST", "/repos/{owner}/{repo}/statuses/{sha}", 502)
        gitea.set_status("infra", "deployments", "abc", "success", "bojdeploy/p", "ok")
    finally:
        logs.configure(0)
        gitea.close()
        fake.stop()
    posts = [x for x in lines if '"POST /api/v1/repos/infra/deployments/statuses/abc' in x]
    assert len(posts) == 2 and all(x.startswith("debug: urllib3") for x in posts), lines
    assert not [x for x in lines if TOKEN in x]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: token abc123", "Authorization: ***"),
        (
            "{'Authorization': 'Bearer abc123', 'Accept': 'x'}",
            "{'Authorization': '***', 'Accept': 'x'}",
        ),
        (
            "connecting to postgresql://app:pw123@db/app",
            "connecting to postgresql://app:***@db/app",
        ),
        ("password=hunter2 host=db", "password=*** host=db"),
        ('{"token": "abc", "name": "x"}', '{"token": "***", "name": "x"}'),
        (
            '"GET /v1.41/containers/json?all=1 HTTP/1.1" 200 1341',
            '"GET /v1.41/containers/json?all=1 HTTP/1.1" 200 1341',
        ),
    ],
)
def test_credentials_are_redacted(line: str, expected: str) -> None:
    assert logs.redact(line) == expected


def test_configuring_again_replaces_the_handler() -> None:
    import logging

    first: list[str] = []
    second: list[str] = []
    try:
        logs.configure(1, write=first.append)
        logs.configure(1, write=second.append)
        logging.getLogger("docker").info("hello")
        logging.getLogger("docker").debug("not at -v")
    finally:
        logs.configure(0)
    assert first == [] and second == ["info: docker: hello"]


def test_json_lines_have_the_stable_keys_and_the_bound_context() -> None:
    import json
    import logging

    lines: list[str] = []
    try:
        logs.configure(1, "json", write=lines.append)
        with logs.bound(deployment_id=7, environment="production", kind="container", job_id=None):
            with logs.bound(name="web"):
                logging.getLogger("docker").info("pulled with token=abc123")
            logging.getLogger("docker").warning("after the inner block")
        logging.getLogger("docker").info("outside")
    finally:
        logs.configure(0)
    first, second, third = (json.loads(line) for line in lines)
    assert first["event"] == "pulled with token=***" and "message" not in first
    assert (first["level"], first["logger"]) == ("info", "docker")
    assert first["timestamp"].endswith("Z")
    keys = {k: first[k] for k in ("deployment_id", "environment", "kind", "name")}
    assert keys == {
        "deployment_id": 7,
        "environment": "production",
        "kind": "container",
        "name": "web",
    }
    assert "job_id" not in first  # None: not known, not written
    assert "name" not in second and second["deployment_id"] == 7
    assert not set(logs.KEYS) & set(third)


def test_relay_setup_writes_every_record_as_json_with_the_bound_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json
    import logging

    try:
        logs.setup("json")
        with logs.bound(delivery="d-1", job_id=12):
            logs.bind(repository="infra/deployments")
            logging.getLogger("uvicorn.error").info("a line of uvicorn")
        logging.getLogger("bojdeploy.relay").info("answered", extra={"job_id": 13})
    finally:
        logs.configure(0)
    first, second = (json.loads(x) for x in capsys.readouterr().err.splitlines())
    assert first["event"] == "a line of uvicorn" and first["level"] == "info"
    wanted = {"delivery": "d-1", "job_id": 12, "repository": "infra/deployments"}
    assert {k: first[k] for k in wanted} == wanted
    assert second["job_id"] == 13 and "repository" not in second  # bind ends with its block
