"""`history`, `logs`, `db migrate` and `schema`: what users read back from the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bojdeploy.store import open_store
from tests.helpers import run_cli


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        ok = store.create_deployment(
            deployment_type="container",
            name="web",
            environment="production",
            status="running",
            git_commit="0123456789abcdef",
            config={"spec": {}},
        )
        store.add_log(ok, "info", "pulling 127.0.0.1:5000/web:2")
        store.add_log(ok, "info", "replaced container web")
        store.update_deployment(ok, status="completed", completed=True)
        bad = store.create_deployment(
            deployment_type="service", name="api", environment="staging", status="running"
        )
        store.add_log(bad, "error", "Swarm rolled the update back: task exited (1)")
        store.update_deployment(
            bad, status="failed", error_message="Swarm rolled the update back", completed=True
        )
    return url


def test_history_lists_newest_first_with_filters(db_url: str) -> None:
    result = run_cli("--database-url", db_url, "history")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "(UTC)"]
    assert lines[1].split()[0] == "2" and "failed" in lines[1]
    assert "Swarm rolled the update back" in lines[1]
    assert lines[2].split()[0] == "1" and "0123456" in lines[2] and "completed" in lines[2]

    only = run_cli("--database-url", db_url, "history", "--env", "production", "--json")
    data = json.loads(only.out)
    assert [(d["id"], d["name"], d["status"]) for d in data] == [(1, "web", "completed")]


def test_logs_show_each_step(db_url: str) -> None:
    result = run_cli("--database-url", db_url, "logs", "1")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "deployment #1: container web (production) completed"
    assert lines[1].endswith("info   pulling 127.0.0.1:5000/web:2")
    assert lines[2].endswith("info   replaced container web")

    failed = run_cli("--database-url", db_url, "logs", "2", "--json")
    data = json.loads(failed.out)
    assert data["deployment"]["error_message"] == "Swarm rolled the update back"
    assert [e["level"] for e in data["logs"]] == ["error"]


def test_logs_of_an_unknown_deployment_is_invalid_input(db_url: str) -> None:
    result = run_cli("--database-url", db_url, "logs", "99")
    assert result.code == 2
    assert "no deployment with id 99" in result.err


def test_history_of_an_empty_store(tmp_path: Path) -> None:
    result = run_cli("--database-url", f"sqlite:///{tmp_path / 'new.db'}", "history")
    assert (result.code, result.out.strip()) == (0, "No deployments recorded.")


def test_db_migrate_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    first = run_cli("--database-url", url, "db", "migrate")
    second = run_cli("--database-url", url, "db", "migrate")
    assert first.code == second.code == 0
    assert first.out == second.out == f"{url}: schema up to date (migration 007)\n"


def test_default_database_is_under_xdg_state_home(tmp_path: Path) -> None:
    result = run_cli("db", "migrate", env={"XDG_STATE_HOME": str(tmp_path)})
    assert result.code == 0, result.err
    assert (tmp_path / "bojdeploy" / "state.db").is_file()


def test_unreachable_database_exits_3() -> None:
    result = run_cli("--database-url", "postgresql://u:pw@127.0.0.1:1/db", "history")
    assert result.code == 3
    assert "pw" not in result.err and "127.0.0.1" in result.err


def test_schema_accepts_what_users_write() -> None:
    result = run_cli("schema")
    schema = json.loads(result.out)
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]}
    assert kinds == {"ContainerManifest", "ServiceManifest", "VMManifest"}
    spec = schema["$defs"]["ContainerSpec"]
    assert {"type": "string"} in spec["properties"]["timeout"]["anyOf"]
    assert spec["additionalProperties"] is False
    assert spec["required"] == ["image"]
