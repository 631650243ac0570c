"""/health and /health/ready of a real relay process: its database reached through a proxy the
test cuts (the shared PostgreSQL keeps running), Docker and the fake Gitea."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bojdeploy import __version__
from tests.faults.proxy import proxied
from tests.relay import FakeGitea, Relay, wait_for
from tests.relay.api import call
from tests.repos import free_port

pytestmark = pytest.mark.postgres


def test_health_answers_with_the_version(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    relay = Relay(tmp_path, postgres_database).start(workers=0)
    relays.append(relay)
    assert call(relay, "GET", "/health") == (200, {"status": "ok", "version": __version__})


def test_ready_reports_each_dependency_and_503_while_the_database_is_cut(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    relays: list[Relay],
    docker_client: Any,
) -> None:
    parts = urlsplit(postgres_database)
    with proxied((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        through = parts._replace(netloc=f"{parts.username}:{parts.password}@{proxy.address}")
        relay = Relay(tmp_path, through.geturl(), gitea).start(workers=0)
        relays.append(relay)

        status, ready = call(relay, "GET", "/health/ready")
        assert status == 200 and ready["ok"] is True
        for name in ("database", "gitea", "docker"):
            assert ready[name]["status"] == "ok", ready
            assert ready[name]["latency_ms"] >= 0

        proxy.cut()
        status, ready = call(relay, "GET", "/health/ready")
        assert status == 503 and ready["ok"] is False
        assert ready["database"]["status"] == "error" and ready["database"]["error"]
        assert (ready["gitea"]["status"], ready["docker"]["status"]) == ("ok", "ok")
        assert parts.password not in str(ready)
        assert call(relay, "GET", "/health")[0] == 200  # the process still answers

        proxy.restore()
        wait_for("readiness after the database returns", lambda: ready_status(relay) == 200)


def ready_status(relay: Relay) -> int:
    return call(relay, "GET", "/health/ready")[0]


def test_an_unreachable_gitea_is_reported_but_not_unready(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    relay = Relay(tmp_path, postgres_database, BOJDEPLOY_GITEA_URL=nowhere).start(workers=0)
    relays.append(relay)
    status, ready = call(relay, "GET", "/health/ready")
    assert status == 200 and ready["database"]["status"] == "ok"
    assert ready["gitea"]["status"] == "error" and ready["gitea"]["latency_ms"] >= 0
