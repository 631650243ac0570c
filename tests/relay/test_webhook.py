"""POST /webhook/gitea against a real relay process and a real PostgreSQL (no deploys here)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from bojdeploy.frontends.relay.signature import sign
from tests.relay import SECRET, Relay, push_payload, rows

REPO = "infra/deployments"
A, B = "a" * 40, "b" * 40


@pytest.fixture
def relay(tmp_path: Path, postgres_database: str, relays: list[Relay]) -> Relay:
    """A relay with no workers: jobs stay queued, so what the webhook stored can be read."""
    started = Relay(tmp_path, postgres_database).start(workers=0)
    relays.append(started)
    return started


def stored(relay: Relay) -> tuple[int, int]:
    """How many deliveries and jobs the relay stored."""
    url = relay.database_url
    deliveries = rows(url, "SELECT count(*) FROM relay_deliveries")[0][0]
    jobs = rows(url, "SELECT count(*) FROM procrastinate_jobs")[0][0]
    return deliveries, jobs


def body() -> bytes:
    return json.dumps(push_payload(REPO, "file:///nowhere", A, B)).encode()


def test_rejected_deliveries_store_nothing(relay: Relay) -> None:
    data = body()
    sha1 = hmac.new(SECRET.encode(), data, hashlib.sha1).hexdigest()
    cases = {
        "unsigned": relay.post(data),
        "empty signature": relay.post(data, signature=""),
        "forged": relay.post(data, signature=sign(b"guessed", data)),
        "old secret": relay.post(data, signature=sign(b"webhook-secret-old", data)),
        "signature of another body": relay.post(data, signature=sign(SECRET.encode(), b"{}")),
        "sha256= prefix of X-Hub-Signature-256": relay.post(data, signature=f"sha256={sha1}"),
        "form-encoded": relay.post(
            b"payload=" + quote(data).encode(),
            signature=sign(SECRET.encode(), data),
            content_type="application/x-www-form-urlencoded",
        ),
    }
    assert {k: v[0] for k, v in cases.items()} == {
        "unsigned": 401,
        "empty signature": 401,
        "forged": 401,
        "old secret": 401,
        "signature of another body": 401,
        "sha256= prefix of X-Hub-Signature-256": 401,
        "form-encoded": 415,
    }
    assert stored(relay) == (0, 0)


def test_oversized_delivery_is_refused_from_its_declared_length(relay: Relay) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(1024 * 1024 + 1)}
    assert relay.post_raw(headers, []) == 413  # answered before any of the body is sent
    assert stored(relay) == (0, 0)


def test_signed_push_is_queued_once_per_delivery(relay: Relay) -> None:
    first = relay.push(push_payload(REPO, "file:///nowhere", A, B), delivery="d-1")
    assert first["job_id"] and first["url"] == f"{relay.url}/jobs/{first['job_id']}"
    again = relay.push(push_payload(REPO, "file:///nowhere", A, B), delivery="d-1")
    assert again["job_id"] == first["job_id"]
    assert stored(relay) == (1, 1)
    job = relay.get(f"/jobs/{first['job_id']}")
    assert job["status"] == "todo" and job["pushes"][0]["delivery"] == "d-1"


def test_ping_other_events_and_deleted_branches(relay: Relay) -> None:
    ping = json.dumps({"hook_id": 1}).encode()
    assert relay.post(ping, event="ping", signature=sign(SECRET.encode(), ping))[0] == 200
    issue = json.dumps({"action": "opened"}).encode()
    status, answer = relay.post(issue, event="issues", signature=sign(SECRET.encode(), issue))
    assert status == 202 and "not deployed" in answer["ignored"]
    assert stored(relay) == (0, 0)
    deleted = relay.push(push_payload(REPO, "file:///nowhere", B, "0" * 40, branch="old"))
    assert deleted["job_id"] is None and deleted["ignored"] == "branch old was deleted"
    recorded = rows(relay.database_url, "SELECT status, reason FROM relay_deliveries")
    assert recorded == [("ignored", "branch old was deleted")]
    assert stored(relay) == (1, 0)


def test_repositories_outside_the_allow_list_are_refused(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    relay = Relay(tmp_path, postgres_database, BOJDEPLOY_RELAY_REPOS="infra/other, infra/more")
    relays.append(relay.start(workers=0))
    data = body()
    status, answer = relay.post(data, signature=sign(SECRET.encode(), data))
    assert status == 403 and REPO in answer["detail"]
    assert stored(relay) == (0, 0)


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"BOJDEPLOY_WEBHOOK_SECRET": None}, "BOJDEPLOY_WEBHOOK_SECRET is not set"),
        ({"BOJDEPLOY_WEBHOOK_SECRET": "  "}, "BOJDEPLOY_WEBHOOK_SECRET is not set"),
        ({"BOJDEPLOY_DATABASE_URL": "sqlite:////tmp/relay.db"}, "the relay needs PostgreSQL"),
    ],
)
def test_relay_refuses_to_start(tmp_path: Path, env: dict[str, str | None], reason: str) -> None:
    relay = Relay(tmp_path, "postgresql://bojdeploy@127.0.0.1:1/none")
    process = relay.command("relay", "--port", str(relay.port), env=env)
    assert process.wait(timeout=60) == 2
    lines = relay.log.read_text().splitlines()
    assert len(lines) == 1 and reason in lines[0], lines


def test_oversized_chunked_delivery_is_refused_while_reading(relay: Relay) -> None:
    """No Content-Length: the relay stops at 1 MiB instead of buffering whatever comes."""
    payload = push_payload(REPO, "file:///nowhere", A, B)
    payload["padding"] = "x" * (2 * 1024 * 1024)
    data = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "X-Gitea-Event": "push",
        "X-Gitea-Signature": sign(SECRET.encode(), data),
    }
    size = 65536
    crossing = [data[i : i + size] for i in range(0, 1024 * 1024 + 1, size)]  # just past 1 MiB
    assert relay.post_raw(headers, [b"%x\r\n%s\r\n" % (len(c), c) for c in crossing]) == 413
    assert stored(relay) == (0, 0)


def test_values_too_long_for_the_record_are_refused_with_400(relay: Relay) -> None:
    def post(payload: dict[str, object], delivery: str | None = None) -> tuple[int, str]:
        data = json.dumps(payload).encode()
        status, answer = relay.post(data, signature=sign(SECRET.encode(), data), delivery=delivery)
        return status, answer.get("detail", "")

    good = push_payload(REPO, "file:///nowhere", A, B)
    assert post(good, delivery="d" * 101) == (
        400,
        "X-Gitea-Delivery is longer than 100 characters",
    )
    assert post(push_payload(REPO, "file:///nowhere", A, B, branch="b" * 256)) == (
        400,
        "the branch in ref is longer than 255 characters",
    )
    assert post({**good, "after": "c" * 65}) == (400, "after is longer than 64 characters")
    assert stored(relay) == (0, 0)
    assert "Traceback" not in relay.log.read_text()
    assert post(push_payload(REPO, "file:///nowhere", A, B, branch="b" * 255))[0] == 202
