"""The StateStore contract, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bojdeploy.errors import StoreError
from bojdeploy.store import StateStore, open_store
from bojdeploy.store.base import INTERRUPTED
from tests.store.conftest import raw_rows

CONFIG = {
    "image": "registry.local/web:1.2",
    "env": {"GREETING": "grüß dich ☃", "EMPTY": ""},
    "ports": [{"host": 8080, "container": 80}],
    "nested": {"deep": {"list": [1, 2.5, True, None, "x"]}},
}


def deploy(store: StateStore, name: str = "web", **fields: object) -> int:
    """Record a deployment of container `name` in production unless fields say otherwise."""
    values: dict = {"deployment_type": "container", "name": name, "environment": "production"}
    return store.create_deployment(**(values | fields))


def test_created_deployment_reads_back_with_every_field(store: StateStore) -> None:
    first = deploy(store, status="completed")
    new_id = store.create_deployment(
        deployment_type="service",
        name="api",
        environment="staging",
        status="running",
        git_commit="0123abcd" * 5,
        git_branch="main",
        git_repository="https://git.example/ops/infra",
        config=CONFIG,
        rollback_from=first,
        reason="manifest changed: services/api.yaml",
        config_hash="f" * 64,
        manifest="services/api.yaml",
    )
    got = store.get_deployment(new_id)
    assert got is not None
    assert (got.id, got.deployment_type, got.name, got.environment, got.status) == (
        new_id,
        "service",
        "api",
        "staging",
        "running",
    )
    assert (got.git_commit, got.git_branch, got.git_repository) == (
        "0123abcd" * 5,
        "main",
        "https://git.example/ops/infra",
    )
    assert got.config == CONFIG
    assert got.rollback_from == first
    assert (got.reason, got.config_hash, got.manifest) == (
        "manifest changed: services/api.yaml",
        "f" * 64,
        "services/api.yaml",
    )
    assert got.completed_at is None and got.error_message is None


def test_missing_deployment_is_none(store: StateStore) -> None:
    assert store.get_deployment(424242) is None


@pytest.mark.parametrize("config", [CONFIG, {}, {"list": []}, {"s": "日本語 — ✓"}, None])
def test_config_roundtrips_exactly(store: StateStore, config: dict | None) -> None:
    got = store.get_deployment(deploy(store, config=config))
    assert got is not None and got.config == config


def test_timestamps_are_aware_utc_and_stored_as_utc(store: StateStore, store_url: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    got = store.get_deployment(deploy(store))
    assert got is not None
    assert got.created_at.tzinfo == UTC and before <= got.created_at <= datetime.now(UTC)
    assert got.updated_at == got.created_at
    ((raw,),) = raw_rows(store_url, f"SELECT created_at FROM deployments WHERE id = {got.id}")
    stored = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)
    assert stored.tzinfo is None and stored.replace(tzinfo=UTC) == got.created_at


def test_update_changes_fields_and_completion(store: StateStore) -> None:
    deployment_id = deploy(store, status="running")
    created = store.get_deployment(deployment_id)
    store.update_deployment(deployment_id, status="failed", error_message="pull failed: 404")
    failed = store.get_deployment(deployment_id)
    assert failed is not None and created is not None
    assert (failed.status, failed.error_message) == ("failed", "pull failed: 404")
    assert failed.updated_at > created.updated_at and failed.completed_at is None
    store.update_deployment(
        deployment_id, status="completed", config={"a": 1}, config_hash="ab" * 32, completed=True
    )
    done = store.get_deployment(deployment_id)
    assert done is not None and done.completed_at is not None
    assert (done.status, done.config, done.config_hash) == ("completed", {"a": 1}, "ab" * 32)
    assert done.completed_at == done.updated_at
    assert done.error_message == "pull failed: 404"


def test_update_of_unknown_deployment_fails(store: StateStore) -> None:
    with pytest.raises(StoreError, match="deployment 999 does not exist"):
        store.update_deployment(999, status="completed")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "succeeded"}, "invalid status 'succeeded'"),
        ({"deployment_type": "pod"}, "invalid deployment type 'pod'"),
    ],
)
def test_values_outside_the_vocabulary_are_refused(
    store: StateStore, fields: dict, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        deploy(store, **fields)
    assert store.list_deployments() == []


def test_list_filters_orders_newest_first_and_limits(store: StateStore) -> None:
    web1 = deploy(store, "web", status="completed")
    api = deploy(store, "api", status="failed")
    web2 = deploy(store, "web", status="failed")
    staging = deploy(store, "web", environment="staging", status="completed")
    vm = deploy(store, "web", deployment_type="vm", status="completed")

    assert [d.id for d in store.list_deployments()] == [vm, staging, web2, api, web1]
    assert [d.id for d in store.list_deployments(limit=2)] == [vm, staging]
    assert [d.id for d in store.list_deployments(environment="production", name="web")] == [
        vm,
        web2,
        web1,
    ]
    assert [d.id for d in store.list_deployments(name="web", deployment_type="container")] == [
        staging,
        web2,
        web1,
    ]
    assert [d.id for d in store.list_deployments(status="completed", name="web")] == [
        vm,
        staging,
        web1,
    ]
    assert store.list_deployments(environment="nowhere") == []


def test_logs_keep_order_and_metadata(store: StateStore) -> None:
    deployment_id = deploy(store)
    other = deploy(store, "api")
    store.add_log(deployment_id, "info", "pulling registry.local/web:1.2")
    store.add_log(other, "info", "unrelated")
    store.add_log(deployment_id, "warn", "health check slow", {"elapsed": 12.5, "tries": [1, 2]})
    store.add_log(deployment_id, "error", "container exited: code 137")
    logs = store.get_logs(deployment_id)
    assert [(e.level, e.message) for e in logs] == [
        ("info", "pulling registry.local/web:1.2"),
        ("warn", "health check slow"),
        ("error", "container exited: code 137"),
    ]
    assert [e.metadata for e in logs] == [None, {"elapsed": 12.5, "tries": [1, 2]}, None]
    assert all(e.deployment_id == deployment_id and e.timestamp.tzinfo == UTC for e in logs)
    assert logs[0].timestamp <= logs[1].timestamp <= logs[2].timestamp


def test_logs_need_an_existing_deployment_and_a_known_level(store: StateStore) -> None:
    with pytest.raises(StoreError):
        store.add_log(31337, "info", "orphan")
    with pytest.raises(StoreError, match="invalid log level 'debug'"):
        store.add_log(deploy(store), "debug", "too chatty")


def test_records_serialize_to_json(store: StateStore) -> None:
    deployment_id = deploy(store, config=CONFIG)
    store.add_log(deployment_id, "info", "started", {"step": 1})
    record = store.get_deployment(deployment_id)
    assert record is not None
    loaded = json.loads(json.dumps(record.to_dict()))
    assert loaded["config"] == CONFIG and loaded["name"] == "web"
    assert datetime.fromisoformat(loaded["created_at"]) == record.created_at
    log = json.loads(json.dumps(store.get_logs(deployment_id)[0].to_dict()))
    assert log["metadata"] == {"step": 1} and log["level"] == "info"


def test_latest_states_pick_the_newest_success_per_target(store: StateStore) -> None:
    deploy(store, "web", status="completed", config={"v": 1})
    web_v2 = deploy(store, "web", status="completed", config={"v": 2})
    deploy(store, "web", status="failed", config={"v": 3})
    deploy(store, "web", status="running", config={"v": 4})
    api_v1 = deploy(store, "api", status="completed", config={"v": 1})
    api_same = deploy(store, "api", status="unchanged", config={"v": 1})
    web_vm = deploy(store, "web", deployment_type="vm", status="completed")
    deploy(store, "db", status="failed")
    deploy(store, "web", environment="staging", status="completed")

    states = store.latest_states("production")
    assert [(d.deployment_type, d.name, d.id) for d in states] == [
        ("container", "api", api_same),
        ("container", "web", web_v2),
        ("vm", "web", web_vm),
    ]
    assert states[1].config == {"v": 2}
    assert api_v1 < api_same
    assert store.latest_states("nowhere") == []


def test_successful_deployments_for_rollback(store: StateStore) -> None:
    ok1 = deploy(store, status="completed", config={"v": 1})
    deploy(store, status="unchanged")
    ok2 = deploy(store, status="completed", config={"v": 2})
    deploy(store, status="failed")
    deploy(store, "api", status="completed")
    ok3 = deploy(store, status="completed", config={"v": 3})

    found = store.successful_deployments("production", "container", "web")
    assert [d.id for d in found] == [ok3, ok2, ok1]
    assert [d.config for d in found] == [{"v": 3}, {"v": 2}, {"v": 1}]
    assert [d.id for d in store.successful_deployments("production", "container", "web", 2)] == [
        ok3,
        ok2,
    ]
    assert store.successful_deployments("staging", "container", "web") == []


def test_mark_interrupted_fails_only_that_targets_unfinished_rows(store: StateStore) -> None:
    done = deploy(store, status="completed")
    stuck_pending = deploy(store, status="pending")
    stuck_running = deploy(store, status="running")
    other_target = deploy(store, "api", status="running")
    other_env = deploy(store, environment="staging", status="running")

    assert store.mark_interrupted("production", "container", "web") == [
        stuck_pending,
        stuck_running,
    ]
    for deployment_id in (stuck_pending, stuck_running):
        row = store.get_deployment(deployment_id)
        assert row is not None and row.status == "failed" and row.completed_at is not None
        assert row.error_message == INTERRUPTED
        assert [(e.level, e.message) for e in store.get_logs(deployment_id)] == [
            ("error", "marked failed: interrupted")
        ]
    statuses = {
        i: d.status for i in (done, other_target, other_env) if (d := store.get_deployment(i))
    }
    assert statuses == {done: "completed", other_target: "running", other_env: "running"}
    assert store.mark_interrupted("production", "container", "web") == []


def test_rollback_from_must_reference_a_deployment(store: StateStore) -> None:
    original = deploy(store, status="completed")
    rollback = deploy(store, rollback_from=original)
    got = store.get_deployment(rollback)
    assert got is not None and got.rollback_from == original
    with pytest.raises(StoreError):
        deploy(store, rollback_from=original + 1000)


def test_installation_key_is_created_once_and_survives_reopen(store_url: str) -> None:
    with open_store(store_url) as first:
        key = first.installation_key()
        assert len(key) == 32 and key != bytes(32)
        assert first.installation_key() == key
    with open_store(store_url) as again:
        assert again.installation_key() == key


def test_parallel_threads_share_one_store(store: StateStore) -> None:
    ids: list[int] = []

    def work(n: int) -> None:
        deployment_id = deploy(store, f"svc{n}")
        for step in range(5):
            store.add_log(deployment_id, "info", f"step {step}")
        store.update_deployment(deployment_id, status="completed", completed=True)
        ids.append(deployment_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 8
    assert len(store.latest_states("production")) == 8
    assert all(len(store.get_logs(i)) == 5 for i in ids)
