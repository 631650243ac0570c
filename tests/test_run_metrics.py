"""The metrics of one CLI run: `--metrics-file` (node_exporter's textfile format) and a push to a
real Pushgateway (BOJDEPLOY_PUSHGATEWAY_URL), valid for promtool; a monitoring outage is only a
warning. And the JSON log lines of the run carry the deployment's keys."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from tests.observability import get, promtool_problems, pushgateway, samples
from tests.repos import ContainerRepo, free_port

pytestmark = pytest.mark.docker
REPOSITORY = "infra/metrics"


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def cli(repo: ContainerRepo, *args: str, gateway: str, log_format: str = "text") -> Any:
    env = {"BOJDEPLOY_PUSHGATEWAY_URL": gateway}
    return run_cli(
        "--database-url", repo.db, "--log-format", log_format, *args, env=env
    )  # fmt: skip


def test_apply_and_rollback_write_and_push_their_metrics(
    tmp_path: Path, test_images: dict[str, str], docker_cleanup: None
) -> None:
    repo = ContainerRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 's.db'}", REPOSITORY)
    name = f"bdtest-metrics-{uuid.uuid4().hex[:6]}"
    repo.write(name)
    textfile = tmp_path / "textfile" / "bojdeploy.prom"
    textfile.parent.mkdir()
    with pushgateway(tmp_path) as gateway:
        root = str(repo.root)
        first = cli(repo, "apply", "--env", "test", "--metrics-file", str(textfile), root,
                    gateway=gateway, log_format="json")  # fmt: skip
        assert first.code == 0, first.err
        written = textfile.read_text()
        assert promtool_problems(written) == ""
        found = samples(written)
        assert found[("deployments_total", labels(type="container", status="completed"))] == 1
        assert found[("deployment_duration_seconds_count", labels(type="container"))] == 1
        assert [p.name for p in textfile.parent.iterdir()] == ["bojdeploy.prom"]  # no leftovers

        pushed = get(f"{gateway}/metrics")
        assert promtool_problems(pushed) == ""
        group = {"job": "bojdeploy", "instance": "", "environment": "test"}
        key = labels(**group, repository=REPOSITORY, type="container", status="completed")
        assert samples(pushed)[("deployments_total", key)] == 1

        lines = [json.loads(line) for line in first.err.splitlines()]
        assert all({"event", "level", "timestamp"} <= set(x) for x in lines), first.err
        assert not [x for x in lines if "message" in x]
        [row] = repo.rows(name)
        steps = [x for x in lines if x.get("deployment_id") == row.id]
        assert steps and all(
            (x["environment"], x["kind"], x["name"], x["repository"])
            == ("test", "container", name, REPOSITORY)
            for x in steps
        ), lines

        repo.write(name, image="web:2")
        dead = f"http://127.0.0.1:{free_port()}"
        nowhere = tmp_path / "missing" / "bojdeploy.prom"
        second = cli(repo, "apply", "--env", "test", "--metrics-file", str(nowhere), root,
                     gateway=dead)  # fmt: skip
        assert second.code == 0, second.err  # deployed: monitoring problems are warnings
        assert f"warning: metrics not written to {nowhere}" in second.err
        assert f"warning: metrics not pushed to {dead}" in second.err

        back = cli(repo, "rollback", str(row.id), root, "--metrics-file", str(textfile),
                   gateway=gateway)  # fmt: skip
        assert back.code == 0, back.err
        assert (
            samples(textfile.read_text())[
                ("deployments_total", labels(type="container", status="completed"))
            ]
            == 1
        )
        again = get(f"{gateway}/metrics")
        assert promtool_problems(again) == ""
        assert samples(again)[("deployments_total", key)] == 1  # the group holds the last run
