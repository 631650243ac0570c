"""`confirmations`: what the records say about the deployments named by resource labels."""

from __future__ import annotations

from bojdeploy.store import StateStore
from bojdeploy.store.base import Confirmation


def deploy(store: StateStore, name: str = "web", **fields: object) -> int:
    """Record a deployment of container `name` in production unless fields say otherwise."""
    values: dict = {
        "deployment_type": "container",
        "name": name,
        "environment": "production",
        "config_hash": "h1",
    }
    return store.create_deployment(**(values | fields))


def test_a_completed_row_is_its_own_confirmation(store: StateStore) -> None:
    done = deploy(store, status="completed")
    assert store.confirmations("production", [done]) == {
        done: Confirmation(done, "container", "web", "completed", None, "h1", None)
    }


def test_an_interrupted_row_is_confirmed_only_by_a_later_success_of_the_same_config(
    store: StateStore,
) -> None:
    killed = deploy(store, status="running")
    deploy(store, status="completed", config_hash="h2")  # another config: no confirmation
    deploy(store, "api", status="completed")  # another resource
    deploy(store, deployment_type="service", status="completed")  # another kind
    deploy(store, environment="staging", status="completed")  # another environment
    assert store.confirmations("production", [killed])[killed].confirmed_by is None

    store.mark_interrupted("production", "container", "web")
    finished = deploy(store, status="completed")
    again = deploy(store, status="unchanged")
    found = store.confirmations("production", [killed])[killed]
    assert (found.status, found.confirmed_by) == ("failed", again)
    assert found.error_message and "interrupted" in found.error_message
    assert finished < again


def test_unknown_ids_and_other_environments_are_left_out(store: StateStore) -> None:
    here = deploy(store, status="failed")
    there = deploy(store, environment="staging", status="completed")
    assert set(store.confirmations("production", [here, there, 999_999])) == {here}
    assert store.confirmations("production", []) == {}


def test_many_ids_in_one_call(store: StateStore) -> None:
    ids = [deploy(store, f"web{i}", status="completed") for i in range(620)]
    found = store.confirmations("production", ids)
    assert sorted(found) == ids
    assert all(c.status == "completed" for c in found.values())
