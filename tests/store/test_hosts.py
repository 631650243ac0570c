"""Records per host (migration 007): a fleet's hosts never mix in reads, confirmations or locks."""

from __future__ import annotations

import pytest

from bojdeploy.errors import LockTimeout
from bojdeploy.store import StateStore
from tests.store.conftest import raw_rows


def deploy(store: StateStore, host: str = "", status: str = "completed", **fields: object) -> int:
    values: dict = {"deployment_type": "container", "name": "web", "environment": "production"}
    return store.create_deployment(status=status, host=host, **(values | fields))


def test_records_without_a_host_are_the_default_target(store: StateStore, store_url: str) -> None:
    plain = store.create_deployment(deployment_type="container", name="web", environment="prod")
    assert store.get_deployment(plain).host == ""
    assert raw_rows(store_url, f"SELECT host FROM deployments WHERE id = {plain}") == [("",)]


def test_latest_states_and_successes_are_per_host(store: StateStore) -> None:
    default = deploy(store)
    edge_1 = deploy(store, "edge-1")
    deploy(store, "edge-2", status="failed")
    latest = {d.host: d.id for d in store.latest_states("production")}
    assert latest == {"": default, "edge-1": edge_1}
    assert [d.id for d in store.successful_deployments("production", "container", "web")] == [
        edge_1,
        default,
    ]
    on_edge = store.successful_deployments("production", "container", "web", host="edge-1")
    assert [d.id for d in on_edge] == [edge_1]
    assert [d.id for d in store.list_deployments(host="edge-1")] == [edge_1]


def test_interrupted_rows_of_one_host_leave_the_others(store: StateStore) -> None:
    on_default = deploy(store, status="running")
    on_edge = deploy(store, "edge-1", status="running")
    assert store.mark_interrupted("production", "container", "web", "edge-1") == [on_edge]
    assert store.get_deployment(on_default).status == "running"


def test_confirmation_comes_from_the_same_host(store: StateStore) -> None:
    failed = deploy(store, "edge-1", status="failed", config_hash="h1")
    deploy(store, "edge-2", config_hash="h1")
    found = store.confirmations("production", [failed])[failed]
    assert (found.host, found.confirmed_by) == ("edge-1", None)
    later = deploy(store, "edge-1", config_hash="h1")
    assert store.confirmations("production", [failed])[failed].confirmed_by == later


def test_locks_are_per_host(store: StateStore) -> None:
    with store.lock("production", "container", "web", host="edge-1", timeout=5):
        with store.lock("production", "container", "web", host="edge-2", timeout=5):
            pass
        with (
            pytest.raises(LockTimeout, match="production/container/web@edge-1"),
            store.lock("production", "container", "web", host="edge-1", timeout=0.2),
        ):
            pass
