"""Fleets end to end: one Container manifest on three real Docker engines (one over ssh://)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from tests import fleet
from tests.helpers import CliResult, git_identity, run_cli
from tests.repos import HEALTHCHECK, REGISTRY

HOSTS = ("default", "engine-1", "engine-2")


class Fleet:
    """A repository whose environment `test` has the default engine and two named hosts."""

    def __init__(self, root: Path, db: str, engines: dict[str, Any], docker: Any):
        self.root, self.db = root, db
        self.engines = {"default": docker, **engines}
        self.name = f"bdfleet-{uuid.uuid4().hex[:8]}"
        (root / "deploy").mkdir(parents=True)
        urls = fleet.engine_urls()
        (root / "bojdeploy.yaml").write_text(
            "environments:\n  test: {branches: ['*']}\n"
            "targets:\n  test:\n"
            f"    docker_host: {urls['default']}\n"
            "    hosts:\n"
            f"      engine-1: {{docker_host: '{urls['engine-1']}'}}\n"
            f"      engine-2: {{docker_host: '{urls['engine-2']}'}}\n"
        )
        git_identity(root, "team/fleet")

    def write(
        self,
        image: str = "web:1",
        hosts: tuple[str, ...] = HOSTS,
        rollout: str = "",
        pull: str = "auto",
    ) -> None:
        (self.root / "deploy" / "web.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}, hosts: [{', '.join(hosts)}]}}\n"
            f"spec:\n  image: {REGISTRY}/{image}\n  pull: {pull}\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n  timeout: 15s\n"
            + HEALTHCHECK
            + (f"  rollout: {rollout}\n" if rollout else "")
        )

    def cli(self, command: str, *extra: str) -> CliResult:
        return run_cli("--database-url", self.db, command, "--env", "test", *extra)

    def apply(self, *extra: str) -> CliResult:
        return run_cli("--database-url", self.db, "apply", "--env", "test", *extra, str(self.root))

    def container(self, host: str) -> Any:
        """The container on `host`, or None."""
        found = self.engines[host].containers.list(all=True, filters={"name": self.name})
        return next((c for c in found if c.name == self.name), None)

    def image(self, host: str) -> str:
        return str(self.container(host).attrs["Config"]["Image"]).rsplit("/", 1)[-1]

    def rows(self) -> list[Any]:
        """This manifest's records, oldest first."""
        with open_store(self.db) as store:
            return list(reversed(store.list_deployments(name=self.name, limit=100)))

    def tag(self, tag: str, images: dict[str, str]) -> str:
        """Tag `images[host]` (a test image) as REGISTRY/web:<tag> on each host's engine only."""
        for host, image in images.items():
            self.engines[host].images.get(f"{REGISTRY}/{image}").tag(f"{REGISTRY}/web", tag)
        return f"web:{tag}"


@pytest.fixture
def app(
    tmp_path: Path,
    fleet_engines: dict[str, Any],
    docker_client: Any,
    test_images: Any,
    fleet_cleanup: None,
) -> Fleet:
    return Fleet(
        tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", fleet_engines, docker_client
    )


def test_rolls_out_host_after_host_then_is_a_no_op(app: Fleet) -> None:
    app.write()
    first = app.apply()
    assert first.code == 0, first.out + first.err
    assert "ok     container " + app.name + " @engine-2" in first.out
    rows = app.rows()
    assert [(r.host, r.status) for r in rows] == [
        ("", "completed"),
        ("engine-1", "completed"),
        ("engine-2", "completed"),
    ]
    # one host at a time: each host starts after the previous one was healthy
    assert rows[0].completed_at <= rows[1].created_at
    assert rows[1].completed_at <= rows[2].created_at
    for host in HOSTS:
        labels = app.container(host).labels
        assert labels.get("io.bojdeploy.host") == (None if host == "default" else host)
        assert app.container(host).status == "running"

    again = app.apply()
    assert again.code == 0
    assert [r.status for r in app.rows()[3:]] == ["unchanged"] * 3

    plan = app.cli("plan", str(app.root))
    assert f"= unchanged  container {app.name} @engine-1" in plan.out
    assert "No changes. 3 unchanged." in plan.out


@pytest.mark.parametrize("on_failure", ["stop", "rollback"])
def test_a_failure_on_the_second_host_stops_the_rollout(app: Fleet, on_failure: str) -> None:
    app.write()
    assert app.apply().code == 0
    before = {host: app.container(host).id for host in HOSTS}
    # the same tag is a healthy image on two engines and a crashing one on engine-1
    image = app.tag(
        f"fleet-{uuid.uuid4().hex[:6]}",
        {"default": "web:2", "engine-1": "crash:1", "engine-2": "web:2"},
    )
    app.write(image=image, pull="never", rollout=f"{{on_failure: {on_failure}}}")
    result = app.apply()
    assert result.code == 1, result.out + result.err
    assert f"SKIPPED container {app.name} @engine-2" in result.out
    assert app.image("engine-1") == "web:1"  # its previous container again
    assert app.container("engine-1").status == "running"
    assert app.container("engine-2").id == before["engine-2"]  # untouched
    later = [(r.host, r.status, r.rollback_from is not None) for r in app.rows()[3:]]
    if on_failure == "stop":
        assert app.image("default") == image
        assert later == [("", "completed", False), ("engine-1", "failed", False)]
    else:
        assert app.image("default") == "web:1"
        assert later == [
            ("", "completed", False),
            ("engine-1", "failed", False),
            ("", "completed", True),
        ]


def test_a_host_list_change_touches_only_that_host(app: Fleet) -> None:
    app.write(hosts=("default", "engine-1"))
    assert app.apply().code == 0
    app.write(hosts=("default", "engine-1", "engine-2"))
    added = app.apply()
    assert added.code == 0
    assert [(r.host, r.status) for r in app.rows()[2:]] == [
        ("", "unchanged"),
        ("engine-1", "unchanged"),
        ("engine-2", "completed"),
    ]
    app.write(hosts=("default", "engine-2"))
    kept = app.apply()
    assert kept.code == 0
    assert app.container("engine-1") is not None
    assert "no manifest" in kept.err
    pruned = app.apply("--prune")
    assert pruned.code == 0, pruned.out + pruned.err
    assert app.container("engine-1") is None
    assert app.container("default") is not None and app.container("engine-2") is not None
    assert [r.host for r in app.rows() if r.status == "completed"][-1] == "engine-1"


def test_an_unreachable_host_changes_nothing(app: Fleet, tmp_path: Path) -> None:
    app.write(hosts=("default", "engine-1", "gone"))
    config = app.root / "bojdeploy.yaml"
    dead = f"unix://{tmp_path}/no-engine.sock"
    config.write_text(config.read_text() + f"      gone: {{docker_host: '{dead}'}}\n")
    result = app.apply()
    assert result.code == 3, result.out + result.err
    assert "host gone" in result.err and "nothing was changed" in result.err
    assert app.container("default") is None and app.container("engine-1") is None
    assert app.rows() == []


def test_rollback_goes_to_the_host_the_deployment_ran_on(app: Fleet) -> None:
    app.write(hosts=("default", "engine-1"))
    assert app.apply().code == 0
    on_engine_1 = next(r.id for r in app.rows() if r.host == "engine-1")
    app.write(image="web:2", hosts=("default", "engine-1"))
    assert app.apply().code == 0
    result = run_cli("--database-url", app.db, "rollback", str(on_engine_1), str(app.root))
    assert result.code == 0, result.out + result.err
    assert app.image("engine-1") == "web:1"
    assert app.image("default") == "web:2"
    last = app.rows()[-1]
    assert (last.host, last.rollback_from) == ("engine-1", on_engine_1)
    history = app.cli("history", "--name", app.name)
    assert f"{app.name} @engine-1" in history.out
