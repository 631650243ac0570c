"""Confirmation of observed resources by the records of the deployments that made them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bojdeploy.core.plan import Observed
from bojdeploy.engine.confirm import confirm
from bojdeploy.store import StateStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def row(store: StateStore, status: str, name: str = "web", config_hash: str = "h1") -> int:
    return store.create_deployment(
        deployment_type="container",
        name=name,
        environment="prod",
        status=status,
        config_hash=config_hash,
    )


def seen(deployment_id: int | None, unfinished: str | None = None, **fields: object) -> Observed:
    values: dict = {"name": "web", "environment": "prod", "config_hash": "h1"} | fields
    return Observed(
        "container", "web", True, deployment_id=deployment_id, unfinished=unfinished, **values
    )


def verdict(store: StateStore, obs: Observed) -> str | None:
    [judged] = confirm(store, "prod", [obs])
    return judged.unfinished


def test_a_completed_deployment_confirms_its_resource(store: StateStore) -> None:
    assert verdict(store, seen(row(store, "completed"))) is None


def test_an_interrupted_or_failed_deployment_does_not(store: StateStore) -> None:
    killed = row(store, "running")
    assert verdict(store, seen(killed)) == (
        f"deployment #{killed} has not finished (interrupted, or still running)"
    )
    store.mark_interrupted("prod", "container", "web")
    assert verdict(store, seen(killed)) == f"deployment #{killed} was interrupted"
    failed = row(store, "failed")
    assert verdict(store, seen(failed, "web.previous is still beside it")) == (
        f"deployment #{failed} failed; web.previous is still beside it"
    )


def test_a_later_success_of_the_same_config_confirms_it(store: StateStore) -> None:
    killed = row(store, "running")
    row(store, "completed", config_hash="h2")
    row(store, "completed", name="api")
    assert verdict(store, seen(killed)) is not None
    row(store, "completed")
    assert verdict(store, seen(killed)) is None


def test_an_unknown_deployment_leaves_the_target_evidence(store: StateStore) -> None:
    other = row(store, "running", name="api")
    assert verdict(store, seen(other)) is None  # the id names another resource here
    assert verdict(store, seen(424242, "web.previous is still beside it")) == (
        "web.previous is still beside it"
    )
    assert verdict(store, seen(None, "its health check is starting")) == (
        "its health check is starting"
    )
    mismatch = row(store, "running", config_hash="h9")
    assert verdict(store, seen(mismatch)) is None  # another database's config hash


def test_health_alone_does_not_unconfirm_a_confirmed_deployment(store: StateStore) -> None:
    done = row(store, "completed")
    assert verdict(store, seen(done, "its health check is unhealthy")) is None
    swap = "web.previous is still beside it (a swap was not finished)"
    assert verdict(store, seen(done, swap)) == swap


def test_one_query_for_every_observation(store: StateStore) -> None:
    ids = [row(store, "completed", name=f"web{i}") for i in range(300)]
    observed = [seen(i, name=f"web{n}") for n, i in enumerate(ids)]
    calls = []
    original = store.confirmations

    def counted(*args: object) -> object:
        calls.append(args)
        return original(*args)  # type: ignore[arg-type]

    store.confirmations = counted  # type: ignore[method-assign]
    assert all(o.unfinished is None for o in confirm(store, "prod", observed))
    assert len(calls) == 1
