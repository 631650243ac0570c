"""GET /metrics of real relay processes: the DESIGN §9 names, valid for promtool, and counts
summed over several uvicorn worker processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bojdeploy.frontends.relay.signature import sign
from tests.observability import promtool_problems
from tests.relay import SECRET, Relay, push_payload, wait_for
from tests.relay.api import call, record

pytestmark = pytest.mark.postgres


def scrape(url: str) -> str:
    """The text of /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(r.read().decode())


def value(text: str, sample: str) -> float | None:
    """The value of one sample line (`name{labels}` exactly as exposed), or None."""
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_metrics_have_the_design_names_and_pass_promtool(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    relay = Relay(tmp_path, postgres_database).start(workers=0)
    relays.append(relay)
    web = record(postgres_database, "web")
    record(postgres_database, "api", status="failed", deployment_type="service")
    body = json.dumps(push_payload("infra/deployments", "file:///nowhere", "a" * 40, "b" * 40))
    relay.push(json.loads(body))  # queued: no worker takes it
    relay.post(b"{}", event="ping", signature=sign(SECRET.encode(), b"{}"))
    relay.post(b"{}", event="push", signature="0" * 64)
    assert call(relay, "GET", f"/api/v1/deployments/{web}")[0] == 200

    text = scrape(relay.url)
    expected = {
        'webhook_received_total{event="push",result="accepted"}': 1.0,
        'webhook_received_total{event="ping",result="ok"}': 1.0,
        'webhook_received_total{event="push",result="unauthorized"}': 1.0,
        'deployments_total{status="completed",type="container"}': 1.0,
        'deployments_total{status="failed",type="service"}': 1.0,
        'deployment_duration_seconds_count{type="container"}': 1.0,
        'api_request_duration_seconds_count{method="GET",'
        'route="/api/v1/deployments/{deployment_id}",status="200"}': 1.0,
        'bojdeploy_queue_jobs{status="todo"}': 1.0,
    }
    assert {sample: value(text, sample) for sample in expected} == expected
    assert (value(text, "database_connection_pool_size") or 0) >= 1
    assert (value(text, "bojdeploy_queue_oldest_job_age_seconds") or -1) >= 0
    assert f"/api/v1/deployments/{web}" not in text  # the route template, never the path
    assert promtool_problems(text) == ""


def test_counts_are_summed_over_worker_processes(tmp_path: Path, postgres_database: str) -> None:
    relay = Relay(tmp_path, postgres_database)
    assert relay.command("db", "migrate").wait(timeout=60) == 0, relay.log.read_text()
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**relay.env, "PROMETHEUS_MULTIPROC_DIR": str(shared), "BOJDEPLOY_RELAY_WORKERS": "0"}
    with relay.log.open("ab") as out:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--factory",
                "bojdeploy.frontends.relay.app:from_env",
                "--host", "127.0.0.1", "--port", str(relay.port), "--workers", "2",
            ],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        wait_for("both processes", lambda: len(list(shared.glob("*.db"))) >= 2, timeout=60)
        wait_for("the relay to answer", lambda: _answers(relay), timeout=60)
        for _ in range(20):
            assert call(relay, "GET", "/api/v1/deployments?limit=1")[0] == 200
        sample = (
            'api_request_duration_seconds_count{method="GET",'
            'route="/api/v1/deployments",status="200"}'
        )
        assert [value(scrape(relay.url), sample) for _ in range(6)] == [20.0] * 6
        assert promtool_problems(scrape(relay.url)) == ""
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(relay: Relay) -> bool:
    try:
        return call(relay, "GET", "/health")[0] == 200
    except OSError:
        return False
