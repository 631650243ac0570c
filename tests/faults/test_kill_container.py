"""SIGKILL `bojdeploy apply` at every step of a container replace; the next run must converge.

Each case deploys web:1, starts a replace (to web:2, healthy, or to unhealthy:1) in a child
process and kills it when the step named by the case is printed. Then: `status` must tell the
truth about what the kill left; the next `apply` finishes the replace (web:2) or undoes it
(unhealthy:1: exit 1, web:1 running) on its first try; the service answers; the records say
that the killed deployment was interrupted and what the next run did; no `.previous` or extra
container is left; and one more run is stable.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from bojdeploy.store.base import INTERRUPTED
from tests.faults.harness import kill_when
from tests.helpers import run_cli
from tests.repos import free_port, http_get

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
STEPS = {
    "after-pull": r"\] pulled \S+/(web:2|unhealthy:1) ",
    "after-rename": r"\] renamed \S+ to \S+\.previous$",
    "after-stop": r"\] stopped \S+\.previous$",
    "after-create": r"\] created container ",
    "after-start": r"\] started container ",
    "health-wait": r"\] waiting up to \S+ for \S+ to become healthy",
}
HEALTHY_ONLY = {
    "before-previous-removal": r"\] container \S+ is up$",
    "after-previous-removal": r"\] removed container \S+\.previous$",
}
ROLLBACK = {
    "rollback-start": r"rolling back$",
    "after-new-removed": r"\] removed container bdk-[0-9a-f]+$",
    "after-rename-back": r"\] renamed \S+ back to ",
    "after-restore": r"\] restored and started the previous container",
}
CASES = [("web:2", step) for step in {**STEPS, **HEALTHY_ONLY}] + [
    ("unhealthy:1", step) for step in {**STEPS, **ROLLBACK}
]
PATTERNS = {**STEPS, **HEALTHY_ONLY, **ROLLBACK}
KILLS: dict[str, Any] = {"tried": 0, "held": 0, "left": {}}


class _KillReport:
    """Prints the kill counts in pytest's terminal summary."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if KILLS["tried"]:
            left = ", ".join(f"{n} {state}" for state, n in sorted(KILLS["left"].items()))
            terminalreporter.write_line(
                f"container kills: {KILLS['tried']} tried, {KILLS['held']} held "
                f"(status right after the kill: {left})"
            )


@pytest.fixture(scope="module", autouse=True)
def kill_counts(request: pytest.FixtureRequest) -> None:
    """Count kills tried and held (the next apply converged; status and records told the truth)."""
    if not request.config.pluginmanager.has_plugin("container-kills"):
        request.config.pluginmanager.register(_KillReport(), "container-kills")


class Site:
    """One Container manifest in a repository, its SQLite records and its Docker container."""

    def __init__(self, root: Path, docker: Any):
        self.root = root
        self.docker = docker
        self.name = f"bdk-{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.db_url = f"sqlite:///{root / 'state.db'}"
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")

    def write(self, image: str) -> None:
        # busybox httpd ignores SIGTERM: stop at once; a fast healthcheck keeps each case short.
        (self.root / "deploy" / "app.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}}}\n"
            "spec:\n"
            f"  image: {REGISTRY}/{image}\n"
            f"  ports: ['127.0.0.1:{self.port}:80']\n"
            "  labels: {io.bojdeploy.test: 'true'}\n"
            "  timeout: 10s\n"
            "  stop_timeout: 0s\n"
            "  healthcheck: {test: [CMD, wget, -qO-, 'http://127.0.0.1/'], interval: 300ms,"
            " timeout: 1s, retries: 2}\n"
        )

    def args(self, *command: str) -> list[str]:
        return ["--database-url", self.db_url, *command]

    def apply(self) -> Any:
        return run_cli(*self.args("apply", "--env", "test", str(self.root)))

    def status(self) -> dict[str, Any]:
        result = run_cli(*self.args("status", "--env", "test", "--json", str(self.root)))
        [item] = [i for i in json.loads(result.out) if i["name"] == self.name]
        assert result.code == (1 if item["drifted"] else 0), result.out
        return dict(item)

    def containers(self) -> dict[str, Any]:
        found = self.docker.containers.list(all=True, filters={"name": self.name})
        return {c.name: c for c in found}

    def rows(self) -> list[Any]:
        with open_store(self.db_url) as store:
            return store.list_deployments(name=self.name, limit=100)

    def logs(self, deployment_id: int) -> str:
        with open_store(self.db_url) as store:
            return "\n".join(e.message for e in store.get_logs(deployment_id))


@pytest.fixture
def site(tmp_path: Path, docker_client: Any, test_images: Any, docker_cleanup: None) -> Site:
    return Site(tmp_path / "repo", docker_client)


def truthful_status(site: Site, killed_id: int) -> str:
    """What `status` must say after the kill, read from Docker alone."""
    found = site.containers()
    if f"{site.name}.previous" in found:
        return "unfinished"
    current = found.get(site.name)
    if current is None:
        return "missing"
    if current.labels.get("io.bojdeploy.deployment-id") == str(killed_id):
        return "unfinished"  # the new container, never confirmed
    return "in sync" if current.status == "running" else "stopped"


@pytest.mark.parametrize(("image", "step"), CASES, ids=[f"{i}-{s}" for i, s in CASES])
def test_a_killed_replace_is_finished_or_undone_by_the_next_run(
    site: Site, image: str, step: str
) -> None:
    site.write("web:1")
    assert site.apply().code == 0
    first = site.rows()[0].id
    site.write(image)
    KILLS["tried"] += 1
    killed = kill_when(
        site.args("apply", "--env", "test", str(site.root)),
        PATTERNS[step],
        cwd=site.root,
        env={},
        delay=0.15 if step == "health-wait" else 0.0,
    )
    assert killed.killed, f"the run ended (exit {killed.code}) before {step}:\n{killed.text}"
    killed_id = site.rows()[0].id
    assert killed_id > first and site.rows()[0].status == "running"

    expected = truthful_status(site, killed_id)
    KILLS["left"][expected] = KILLS["left"].get(expected, 0) + 1
    assert site.status()["state"] == expected
    label = (site.containers().get(site.name) or site.containers()[f"{site.name}.previous"]).labels
    unconfirmed_current = label.get("io.bojdeploy.deployment-id") == str(killed_id)

    recovery = site.apply()
    rows = {r.id: r for r in site.rows()}
    assert rows[killed_id].status == "failed"
    assert rows[killed_id].error_message == INTERRUPTED
    last = site.rows()[0]
    assert list(site.containers()) == [site.name]
    assert site.status()["state"] == "in sync"
    if image == "web:2":
        assert recovery.code == 0, recovery.err
        assert http_get(site.port) == "version 2"
        assert last.status == "completed"
        if unconfirmed_current and expected == "unfinished":
            assert f"finished the interrupted deployment #{killed_id}" in site.logs(last.id)
        again = site.apply()
        assert again.code == 0 and site.rows()[0].status == "unchanged", again.err
    else:
        assert recovery.code == 1, recovery.err
        assert http_get(site.port) == "version 1"
        assert site.containers()[site.name].labels["io.bojdeploy.deployment-id"] == str(first)
        assert last.status == "failed" and "restored" in (last.error_message or "")
        again = site.apply()
        assert again.code == 1 and http_get(site.port) == "version 1", again.err
        assert list(site.containers()) == [site.name]
        assert site.status()["state"] == "in sync"
    KILLS["held"] += 1
