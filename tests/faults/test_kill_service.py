"""SIGKILL `bojdeploy apply` during a Swarm update; the next run converges and tells the truth.

Each test deploys web:1, then kills the update (to web:2, or to crash:1 that Swarm rolls back)
at the step its progress lines name, and checks that the next `apply` finishes or undoes it on
the first try, that the run after that is stable, that `status` is honest and that no config
of the killed update is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Killed, kill_when
from tests.test_apply_service import (
    REGISTRY,
    SECRET,
    SwarmApp,
    _make_app,
    digest_of,
    remove_prefixed,
    swarm,  # noqa: F401 - a fixture
)

# Short Swarm timings keep the tests fast: no delay, a 2 s monitor window per task.
POLICY = (
    "  update: {order: start-first, delay: 0s, monitor: 2s, failure_action: rollback}\n"
    "  rollback: {order: start-first, delay: 0s, monitor: 1s}\n"
)
POINTS = {
    "after config creation": r"\] created config ",
    "right after the update call": r"\] updated the spec of service ",
    "during the convergence wait": r"\] .*(\d+/\d+ running, \d+s|Swarm is rolling the update)",
}
KILLS = {"tried": 0, "held": 0}


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, swarm: Any) -> Iterator[SwarmApp]:  # noqa: F811
    """A repository recording into SQLite; its services, configs and secrets removed after."""
    application = _make_app(request, tmp_path, swarm, "sqlite")
    yield application
    remove_prefixed(swarm, application.prefix)


def write(app: SwarmApp, image: str, config: str) -> None:
    """A two-replica service of `image` mounting a config file with `config`."""
    app.write(image=image, config=config, timeout="40s")
    path = app.root / "deploy" / f"{app.name}.yml"
    text = path.read_text()
    start, end = text.index("  update:"), text.index("  labels:")
    path.write_text(text[:start] + POLICY + text[end:])


def killed_apply(app: SwarmApp, pattern: str) -> Killed:
    """`bojdeploy apply` in a child, SIGKILLed when it prints a line matching `pattern`."""
    args = ["--database-url", app.db_url, "apply", "--env", "test", str(app.root)]
    result = kill_when(args, pattern, cwd=app.root, env={"APP_SESSION": SECRET}, timeout=60)
    KILLS["tried"] += 1
    return result


def image_of(app: SwarmApp) -> str:
    return str(app.spec()["TaskTemplate"]["ContainerSpec"]["Image"])


def used_configs(app: SwarmApp) -> list[str]:
    """The configs the service's spec mounts."""
    refs = app.spec()["TaskTemplate"]["ContainerSpec"].get("Configs") or []
    return sorted(r["ConfigName"] for r in refs)


def pinned(app: SwarmApp, image: str) -> str:
    return f"{REGISTRY}/{image}@{digest_of(app.docker, image)}"


@pytest.mark.parametrize("point", list(POINTS))
def test_a_killed_update_to_a_good_image_is_finished_by_the_next_run(
    app: SwarmApp, point: str
) -> None:
    write(app, "web:1", "config one")
    assert app.apply().code == 0
    write(app, "web:2", "config two")

    killed = killed_apply(app, POINTS[point])
    assert killed.killed, killed.text
    if point != "after config creation":  # the new spec is in place, not yet recorded as done
        assert app.cli("status", "--env", "test", str(app.root)).code == 1

    again = app.apply()
    out = again.out + again.err
    assert again.code == 0, out
    assert "1 changed, 0 unchanged" in again.out, out
    if point != "after config creation":  # Swarm was still updating: the run waited for it
        assert "finished the interrupted deployment #2" in out, out
    web2 = pinned(app, "web:2")
    assert set(app.tasks().values()) == {web2} and len(app.tasks()) == 2
    assert app.served() == ["version 2"] * 2
    assert app.served("/config.txt") == ["config two"] * 2
    rows = app.rows()
    assert rows[0].status == "completed", out
    assert all(r.status != "running" for r in rows)
    assert app.configs() == used_configs(app)

    stable = app.apply()
    assert stable.code == 0 and app.rows()[0].status == "unchanged", stable.out + stable.err
    status = app.cli("status", "--env", "test", str(app.root))
    assert status.code == 0 and "in sync" in status.out, status.out
    KILLS["held"] += 1


@pytest.mark.parametrize("point", list(POINTS))
def test_a_killed_update_to_a_failing_image_is_undone_by_the_next_run(
    app: SwarmApp, point: str
) -> None:
    write(app, "web:1", "config one")
    assert app.apply().code == 0
    web1, before = pinned(app, "web:1"), app.configs()
    write(app, "crash:1", "config two")

    killed = killed_apply(app, POINTS[point])
    assert killed.killed, killed.text

    again = app.apply()
    out = again.out + again.err
    assert again.code == 1, out
    assert "rolled" in out and "back" in out
    assert image_of(app) == web1 and set(app.tasks().values()) == {web1}
    assert app.served() == ["version 1"] * 2
    assert app.rows()[0].status == "failed"
    assert app.configs() == before == used_configs(app)

    stable = app.apply()
    assert stable.code == 1 and app.rows()[0].status == "failed"
    assert set(app.tasks().values()) == {web1} and app.configs() == before
    status = app.cli("status", "--env", "test", str(app.root))
    assert status.code == 0 and "in sync" in status.out, status.out  # web:1, as recorded
    KILLS["held"] += 1


def test_kill_counts() -> None:
    """Print how many kills were tried and held (run last in this file)."""
    print(f"\nservice kills: tried {KILLS['tried']}, held {KILLS['held']}")
