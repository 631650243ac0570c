"""The REST API (/api/v1) of a real relay process on a real PostgreSQL (no deploys here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.action import DeployRepo, statuses
from tests.relay import REPO, SECRET, TOKEN, ZERO, FakeGitea, Relay, deployed, wait_for
from tests.relay.api import API_TOKEN, call, record, settled_job

pytestmark = pytest.mark.postgres


@pytest.fixture
def relay(tmp_path: Path, postgres_database: str, relays: list[Relay]) -> Relay:
    """A relay with an API token and no workers."""
    started = Relay(tmp_path, postgres_database, BOJDEPLOY_API_TOKEN=API_TOKEN).start(workers=0)
    relays.append(started)
    return started


def test_history_is_paged_filtered_and_open_to_read(relay: Relay) -> None:
    url = relay.database_url
    ids = [record(url, "web" if i % 2 else "api", git_commit=f"{i:040x}") for i in range(5)]
    failed = record(url, "web", status="failed", environment="staging")

    status, page = call(relay, "GET", "/api/v1/deployments?limit=2")
    assert status == 200
    assert [d["id"] for d in page["items"]] == [failed, ids[4]]
    seen = [d["id"] for d in page["items"]]
    while page["next_before_id"] is not None:
        status, page = call(relay, "GET", f"/api/v1/deployments?limit=2&before_id={seen[-1]}")
        seen += [d["id"] for d in page["items"]]
    assert seen == [failed, *reversed(ids)]

    _, webs = call(relay, "GET", "/api/v1/deployments?name=web&environment=production")
    assert [d["id"] for d in webs["items"]] == [ids[3], ids[1]]
    _, failures = call(relay, "GET", "/api/v1/deployments?status=failed")
    assert [(d["id"], d["environment"]) for d in failures["items"]] == [(failed, "staging")]

    status, one = call(relay, "GET", f"/api/v1/deployments/{ids[0]}")
    assert status == 200
    assert (one["name"], one["git_commit"], one["git_repository"]) == ("api", "0" * 40, REPO)
    status, lines = call(relay, "GET", f"/api/v1/deployments/{ids[0]}/logs")
    assert status == 200 and [line["message"] for line in lines] == ["api: completed"]


def test_unknown_ids_are_404_and_bad_input_422(relay: Relay) -> None:
    for path in ("/api/v1/deployments/999", "/api/v1/deployments/999/logs", "/api/v1/jobs/999"):
        status, answer = call(relay, "GET", path)
        assert (status, answer["detail"]) == (404, f"no {path.split('/')[3][:-1]} 999"), path
    bad = [
        "/api/v1/deployments?limit=0",
        "/api/v1/deployments?limit=100000",
        "/api/v1/deployments?before_id=-1",
        "/api/v1/deployments?environment=%00",
        "/api/v1/deployments/abc",
        "/api/v1/deployments/99999999999999999999999",
        "/api/v1/jobs/0",
    ]
    assert {path: call(relay, "GET", path)[0] for path in bad} == dict.fromkeys(bad, 422)
    bodies = [{}, {"deployment_id": "x"}, {"deployment_id": 0}, [1], "text"]
    for body in bodies:
        status, _ = call(relay, "POST", "/api/v1/rollback", body, token=API_TOKEN)
        assert status == 422, body
    status, _ = call(
        relay, "POST", "/api/v1/redeploy", {"repository": "no-owner", "environment": "p"},
        token=API_TOKEN,
    )  # fmt: skip
    assert status == 422


def test_writes_need_the_bearer_token(relay: Relay) -> None:
    body = {"deployment_id": 999}
    refused = {
        "no header": call(relay, "POST", "/api/v1/rollback", body),
        "wrong token": call(relay, "POST", "/api/v1/rollback", body, token="guessed"),
        "token prefix": call(relay, "POST", "/api/v1/rollback", body, token=API_TOKEN[:-1]),
        "basic scheme": call(
            relay,
            "POST",
            "/api/v1/rollback",
            body,
            headers={"Authorization": f"Basic {API_TOKEN}"},
        ),  # fmt: skip
        "invalid body, no token": call(relay, "POST", "/api/v1/redeploy", {"x": 1}),
    }
    assert {k: v[0] for k, v in refused.items()} == dict.fromkeys(refused, 401)
    assert all(API_TOKEN not in str(answer) for _, answer in refused.values())
    status, answer = call(relay, "POST", "/api/v1/rollback", body, token=API_TOKEN)
    assert (status, answer["detail"]) == (404, "no deployment 999")


def test_without_an_api_token_writes_are_refused_and_reads_open(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    relay = Relay(tmp_path, postgres_database).start(workers=0)
    relays.append(relay)
    found = record(postgres_database, "web")
    status, answer = call(relay, "POST", "/api/v1/rollback", {"deployment_id": found}, token="x")
    assert status == 403
    assert answer["detail"] == "writes are disabled: BOJDEPLOY_API_TOKEN is not set on the relay"
    assert call(relay, "GET", f"/api/v1/deployments/{found}")[0] == 200


def test_redeploy_and_rollback_of_what_the_relay_never_deployed_are_refused(relay: Relay) -> None:
    url = relay.database_url
    web = record(url, "web", config={"kind": "Container", "spec": {"image": "web:1"}})
    bare = record(url, "db")
    status, answer = call(
        relay, "POST", "/api/v1/rollback", {"deployment_id": web}, token=API_TOKEN
    )
    assert status == 409
    assert answer["detail"].startswith(f"{REPO} was never deployed to production through this")
    status, answer = call(
        relay, "POST", "/api/v1/rollback", {"deployment_id": bare}, token=API_TOKEN
    )
    assert (status, answer["detail"]) == (409, f"deployment #{bare} recorded no config to redeploy")
    wanted = {"repository": REPO, "environment": "production", "name": "nothing"}
    status, answer = call(relay, "POST", "/api/v1/redeploy", wanted, token=API_TOKEN)
    assert (status, answer["detail"]) == (
        404,
        f"no deployment of 'nothing' in production from {REPO}",
    )
    status, _ = call(relay, "POST", "/api/v1/redeploy", {**wanted, "name": "web"}, token=API_TOKEN)
    assert status == 409


def test_schemathesis_finds_no_server_error_nor_schema_violation(
    relay: Relay, tmp_path: Path
) -> None:
    url = relay.database_url
    for i in range(3):
        record(url, "web", git_commit=f"{i:040x}", config={"kind": "Container", "spec": {}})
    record(url, "web", status="failed", environment="staging")
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    done = subprocess.run(
        [
            st, "run", f"{relay.url}/openapi.json",
            "--max-examples", "25", "--seed", "7", "--workers", "2",
            "--header", f"Authorization: Bearer {API_TOKEN}",
            "--report-dir", str(tmp_path / "schemathesis"),
        ],
        capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "5xx" not in done.stdout.split("SUMMARY")[-1]


@pytest.mark.docker
def test_rollback_and_redeploy_run_as_jobs_with_statuses_and_clean_json_logs(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    relays: list[Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = Relay(tmp_path, postgres_database, gitea, BOJDEPLOY_API_TOKEN=API_TOKEN)
    relay.process = relay.command(
        "--log-format", "json", "relay", "--port", str(relay.port), "--workers", "2"
    )
    relays.append(relay)
    wait_for("the relay to answer", relay._answers, timeout=60)
    web = repo.name("web")
    repo.write("web")
    first = repo.commit("web:1")
    deployed(relay, repo.root, ZERO, first)
    repo.write("web", image="web:2")
    second = repo.commit("web:2")
    deployed(relay, repo.root, first, second)
    _, page = call(relay, "GET", f"/api/v1/deployments?name={web}")
    old, new = sorted(d["id"] for d in page["items"])

    status, queued = call(
        relay, "POST", "/api/v1/rollback", {"deployment_id": old}, token=API_TOKEN
    )
    assert status == 202 and queued["url"] == f"{relay.url}/jobs/{queued['job_id']}"
    job = settled_job(relay, queued["job_id"])
    [request] = job["pushes"]
    assert (request["status"], request["after_sha"]) == ("deployed", second), request
    [rolled] = request["deployments"]
    _, row = call(relay, "GET", f"/api/v1/deployments/{rolled}")
    assert (row["status"], row["rollback_from"], row["name"]) == ("completed", old, web)
    assert image_of(docker_client, web).endswith("web:1")

    wanted = {"repository": REPO, "environment": "production", "name": web}
    status, queued = call(relay, "POST", "/api/v1/redeploy", wanted, token=API_TOKEN)
    assert status == 202
    [request] = settled_job(relay, queued["job_id"])["pushes"]
    assert request["status"] == "deployed", request
    [again] = request["deployments"]
    _, row = call(relay, "GET", f"/api/v1/deployments/{again}")
    assert (row["status"], row["git_commit"]) == ("completed", second)
    assert image_of(docker_client, web).endswith("web:2")
    _, lines = call(relay, "GET", f"/api/v1/deployments/{again}/logs")
    assert lines, "the redeploy wrote no log"

    overall = [s for s, _ in statuses(gitea, second)["bojdeploy/production"]]
    assert overall == ["pending", "success"] * 3  # the push, the rollback, the redeploy
    assert gitea.problems == []

    relay.stop()
    text = relay.log.read_text()
    for secret in (SECRET, TOKEN, API_TOKEN):
        assert secret not in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert events and all({"event", "level", "timestamp"} <= set(e) for e in events)
    assert any(e.get("deployment_id") == again and e.get("name") == web for e in events)
    assert any(
        e.get("job_id") == queued["job_id"] and e.get("repository") == REPO
        and e.get("environment") == "production"
        for e in events
    )  # fmt: skip
    assert any(e.get("delivery") for e in events)


def image_of(docker_client: Any, name: str) -> str:
    return str(docker_client.containers.get(name).image.tags[0])
