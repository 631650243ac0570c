"""The drift watch's observations, on SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bojdeploy.errors import StoreError
from bojdeploy.store import DriftState, StateStore

AT = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def seen(name: str, drifted: bool, **fields: object) -> DriftState:
    """An observation of container `name` in production from ops/infra."""
    values: dict = {
        "environment": "production",
        "kind": "container",
        "name": name,
        "drifted": drifted,
        "state": "stopped" if drifted else "in sync",
        "detail": "state is exited" if drifted else "",
        "checked_at": AT,
        "repository": "ops/infra",
        "deployment_id": None,
    }
    return DriftState(**(values | fields))


def test_saved_observations_read_back_in_order(store: StateStore) -> None:
    web, api = seen("web", True), seen("api", False, kind="service", environment="staging")
    store.save_drift([web, api])
    assert store.drift_states() == [web, api]
    assert store.drift_states("production") == [web]
    assert store.drift_states("nowhere") == []


def test_a_later_observation_replaces_the_earlier_one(store: StateStore) -> None:
    store.save_drift([seen("web", True)])
    later = seen("web", False, checked_at=AT + timedelta(minutes=5), deployment_id=None)
    store.save_drift([later])
    assert store.drift_states() == [later]


def test_repositories_keep_their_own_rows(store: StateStore) -> None:
    mine, theirs = seen("web", True), seen("web", False, repository=None)
    store.save_drift([mine, theirs])
    assert store.drift_states() == [theirs, mine]


def test_a_scope_drops_what_was_not_seen_again(store: StateStore) -> None:
    store.save_drift([seen("web", True), seen("db", False), seen("web", True, repository="x/y")])
    store.save_drift([seen("web", False)], scope=("production", "ops/infra"))
    assert [(s.name, s.repository, s.drifted) for s in store.drift_states()] == [
        ("web", "ops/infra", False),
        ("web", "x/y", True),
    ]
    store.save_drift([], scope=("production", "ops/infra"))
    assert [s.repository for s in store.drift_states()] == ["x/y"]


def test_an_unknown_kind_is_refused(store: StateStore) -> None:
    with pytest.raises(StoreError, match="kind"):
        store.save_drift([seen("web", True, kind="pod")])
    assert store.drift_states() == []
