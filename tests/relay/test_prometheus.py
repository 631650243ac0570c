"""A real Prometheus scrapes a real relay and a Pushgateway: PromQL returns the deployments just
made by `bojdeploy apply`, and every query of the Grafana dashboard and the alert rules in
examples/observability/ is valid PromQL over metrics that a real exposition has."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from bojdeploy.frontends.relay.signature import sign
from tests.helpers import run_cli
from tests.observability import (
    EXAMPLES,
    exposed_names,
    get,
    grafana_expressions,
    prometheus,
    promql_names,
    promtool_problems,
    pushgateway,
    query,
    rule_expressions,
)
from tests.relay import SECRET, Relay, wait_for
from tests.repos import ContainerRepo

pytestmark = [pytest.mark.postgres, pytest.mark.docker]
REPOSITORY = "infra/observed"
ADDED_BY_PROMETHEUS = {"up"}  # a sample Prometheus writes for every scrape target


def grafana(expression: str) -> str:
    """A dashboard expression with Grafana's variables filled in as a user's Prometheus sees it."""
    filled = expression.replace("$__rate_interval", "1m").replace("$relay_job", "bojdeploy-relay")
    return filled.replace("$push_job", "bojdeploy")


def test_prometheus_sees_the_deployments_and_the_examples_query_real_metrics(
    tmp_path: Path,
    postgres_database: str,
    docker_cleanup: None,  # first: the relays are stopped before the containers go
    relays: list[Relay],
    test_images: dict[str, str],
) -> None:
    relay = Relay(tmp_path, postgres_database).start(workers=0)
    relays.append(relay)
    relay.post(b"{}", event="ping", signature=sign(SECRET.encode(), b"{}"))
    repo = ContainerRepo(tmp_path / "repo", postgres_database, REPOSITORY)
    names = [f"bdtest-prom-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for name in names:
        repo.write(name)
    textfile = tmp_path / "bojdeploy.prom"
    with pushgateway(tmp_path) as gateway:
        applied = run_cli(
            "--database-url", postgres_database, "apply", "--env", "test",
            "--metrics-file", str(textfile), str(repo.root),
            env={"BOJDEPLOY_PUSHGATEWAY_URL": gateway},
        )  # fmt: skip
        assert applied.code == 0, applied.err
        jobs = {
            "bojdeploy-relay": {"targets": [relay.url.removeprefix("http://")]},
            "pushgateway": {"targets": [gateway.removeprefix("http://")], "honor_labels": True},
        }
        with prometheus(tmp_path, jobs) as server:
            made = 'deployments_total{job="bojdeploy-relay", type="container", status="completed"}'
            [found] = wait_for("Prometheus to scrape the relay", lambda: query(server, made), 60)
            assert found["value"][1] == "2"
            pushed = 'deployments_total{job="bojdeploy", status="completed"}'
            [run] = wait_for("Prometheus to scrape the push", lambda: query(server, pushed), 60)
            assert (run["metric"]["environment"], run["metric"]["repository"]) == (
                "test",
                REPOSITORY,
            )
            assert run["value"][1] == "2"

            expositions = [get(f"{relay.url}/metrics"), textfile.read_text()]
            expositions.append(get(f"{gateway}/metrics"))
            for text in expositions:
                assert promtool_problems(text) == ""
            known = set().union(*(exposed_names(t) for t in expositions)) | ADDED_BY_PROMETHEUS

            dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
            rules = yaml.safe_load((EXAMPLES / "alerts.yml").read_text())
            expressions = [grafana(e) for e in grafana_expressions(dashboard)]
            expressions += rule_expressions(rules)
            assert len(expressions) >= 10
            for expression in expressions:
                assert promql_names(expression) <= known, expression
                query(server, expression)  # Prometheus parses and evaluates it
            p95 = grafana(next(e for e in grafana_expressions(dashboard) if "0.95" in e))
            assert "deployment_duration_seconds_bucket" in p95


def test_grafana_dashboard_panels() -> None:
    dashboard: dict[str, Any] = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    titles = {p["title"] for p in dashboard["panels"]}
    wanted = {
        "Deployments by status",
        "Deployment duration p95 by type",
        "Failures and Swarm rollbacks",
        "Queue depth",
        "Oldest job waiting",
        "Webhooks received",
    }
    assert wanted <= titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
