"""Unchanged resources whose records confirm them: no lock, no second look, one batch write;
every other unchanged resource still goes the locked way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.core.plan import Action, Observed, Plan, Step
from bojdeploy.engine.apply import apply_plan
from bojdeploy.engine.fleet import HostStore
from bojdeploy.engine.unchanged import quick_unchanged
from bojdeploy.store import StateStore, open_store
from tests.engine.fakes import ENV, FakeDriver, make_run, sqlite_url, step


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(sqlite_url(tmp_path)) as opened:
        yield opened


def record(
    store: StateStore, name: str, status: str, config_hash: str | None = None, host: str = ""
) -> int:
    """A deployment row of the container `name` (on `host`: '' = the default target)."""
    return store.create_deployment(
        deployment_type="container",
        name=name,
        environment=ENV,
        status=status,
        config_hash=config_hash or f"hash-{name}",
        host=host,
    )


def unchanged(name: str, deployment_id: int | None = None, **seen: Any) -> Step:
    """The plan's unchanged step of a container found running with `name`'s desired hash."""
    want = step(name).desired
    assert want is not None
    observed = Observed(
        "container",
        name,
        True,
        name=name,
        environment=ENV,
        config_hash=want.config_hash,
        state="running",
        deployment_id=deployment_id,
    )
    return Step(Action.UNCHANGED, "container", name, ENV, want, replace(observed, **seen))


def test_confirmed_unchanged_resources_take_no_lock_and_no_second_look(store: StateStore) -> None:
    ids = [record(store, f"web{i}", "completed") for i in range(5)]
    plan = Plan(ENV, tuple(unchanged(f"web{i}", ids[i]) for i in range(5)))
    run = make_run(NoLocks(store), FakeDriver())
    run.observe = lambda kind, name: pytest.fail(f"{kind} {name} looked at again")
    run.quick = quick_unchanged(store, ENV, plan)
    assert run.quick == {("container", f"web{i}", "") for i in range(5)}
    outcomes = apply_plan(run, plan)
    assert [(o.name, o.status) for o in outcomes] == [(f"web{i}", "unchanged") for i in range(5)]
    for outcome in outcomes:
        assert outcome.deployment_id is not None
        row = store.get_deployment(outcome.deployment_id)
        assert row is not None and row.status == "unchanged" and row.completed_at is not None
        assert row.config_hash == f"hash-{outcome.name}"
        [line] = store.get_logs(outcome.deployment_id)
        assert line.message == "config hash unchanged on the target: nothing to do"
    assert ("container/web0", "info", "unchanged") in run.lines  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "seen", "why"),
    [
        ("failed", {}, "the deployment on its label failed"),
        ("running", {}, "the deployment on its label never finished"),
        ("completed", {"deployment_id": 999}, "this database does not know that deployment"),
        ("completed", {"config_hash": "other"}, "the label's hash is not the recorded one"),
        ("completed", {"unfinished": "its health check is starting"}, "target-side evidence"),
        ("completed", {"source": "record"}, "seen in the records only, not on the target"),
        ("completed", {"environment": "staging"}, "another environment's resource"),
    ],
)
def test_unconfirmed_unchanged_resources_go_the_locked_way(
    store: StateStore, status: str, seen: dict[str, Any], why: str
) -> None:
    dep_id = record(store, "web", status)
    seen = {"deployment_id": dep_id, **seen}
    plan = Plan(ENV, (unchanged("web", **seen),))
    assert quick_unchanged(store, ENV, plan) == frozenset(), why


def test_a_resource_with_an_open_deployment_goes_the_locked_way(store: StateStore) -> None:
    """A killed run's row is marked interrupted under the lock, as before."""
    confirmed = record(store, "web", "completed")
    killed = record(store, "web", "running")
    plan = Plan(ENV, (unchanged("web", confirmed),))
    run = make_run(store, FakeDriver())
    run.quick = quick_unchanged(store, ENV, plan)
    assert run.quick == frozenset()
    run.observe = lambda kind, name: [unchanged("web", confirmed).observed]  # type: ignore[list-item]
    [outcome] = apply_plan(run, plan)
    assert outcome.status == "unchanged"
    row = store.get_deployment(killed)
    assert row is not None and row.status == "failed"


def test_a_record_on_another_host_never_confirms_a_resource(store: StateStore) -> None:
    """A fleet: `web` done on edge-1 says nothing of `web` on edge-2, whose label names that
    row (the same deployment's label copied, or a row made on the other host)."""
    on_a = record(store, "web", "completed", host="edge-1")
    plan = Plan(ENV, (unchanged("web", on_a),))
    assert quick_unchanged(store, ENV, plan, "edge-1") == {("container", "web", "edge-1")}
    assert quick_unchanged(store, ENV, plan, "edge-2") == frozenset()
    assert quick_unchanged(store, ENV, plan) == frozenset()  # nor the default target
    scoped = HostStore(store, "edge-2")
    assert quick_unchanged(scoped, ENV, plan, "edge-2") == frozenset()  # type: ignore[arg-type]


def test_an_open_deployment_holds_back_its_own_host_only(store: StateStore) -> None:
    on_a = record(store, "web", "completed", host="edge-1")
    on_b = record(store, "web", "completed", host="edge-2")
    record(store, "web", "running", host="edge-2")  # a run at work on edge-2, or killed there
    plan_a = Plan(ENV, (unchanged("web", on_a),))
    plan_b = Plan(ENV, (unchanged("web", on_b),))
    assert quick_unchanged(store, ENV, plan_a, "edge-1") == {("container", "web", "edge-1")}
    assert quick_unchanged(store, ENV, plan_b, "edge-2") == frozenset()


def test_unchanged_resources_of_a_host_are_recorded_on_that_host(store: StateStore) -> None:
    done = record(store, "web", "completed", host="edge-1")
    plan = Plan(ENV, (unchanged("web", done),))
    run = make_run(NoLocks(HostStore(store, "edge-1")), FakeDriver())  # type: ignore[arg-type]
    run.host = "edge-1"
    run.observe = lambda kind, name: pytest.fail(f"{kind} {name} looked at again")
    run.quick = quick_unchanged(store, ENV, plan, "edge-1")
    [outcome] = apply_plan(run, plan)
    assert (outcome.status, outcome.host) == ("unchanged", "edge-1")
    assert outcome.deployment_id is not None
    row = store.get_deployment(outcome.deployment_id)
    assert row is not None and (row.status, row.host) == ("unchanged", "edge-1")


def test_a_quick_set_of_one_host_is_not_used_on_another(store: StateStore) -> None:
    """The run of edge-2 takes the locked way, even handed edge-1's quick set."""
    done = record(store, "web", "completed", host="edge-1")
    plan = Plan(ENV, (unchanged("web", done),))
    run = make_run(HostStore(store, "edge-2"), FakeDriver())  # type: ignore[arg-type]
    run.host = "edge-2"
    run.quick = quick_unchanged(store, ENV, plan, "edge-1")
    locked: list[tuple[str, ...]] = []
    lock = run.store.lock  # edge-2's lock

    def watched(*args: str, **options: Any) -> AbstractContextManager[None]:
        locked.append(args)
        return lock(*args, **options)

    run.store.lock = watched  # type: ignore[method-assign]
    run.observe = lambda kind, name: [unchanged("web", done).observed]  # type: ignore[list-item]
    [outcome] = apply_plan(run, plan)
    assert outcome.status == "unchanged"
    assert locked == [(ENV, "container", "web")]
    assert outcome.deployment_id is not None
    row = store.get_deployment(outcome.deployment_id)
    assert row is not None and row.host == "edge-2"


class NoLocks:
    """The store, but taking a lock is a failure of the test."""

    def __init__(self, store: StateStore):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def lock(self, *args: Any, **kwargs: Any) -> AbstractContextManager[None]:
        raise AssertionError(f"lock taken: {args}")
