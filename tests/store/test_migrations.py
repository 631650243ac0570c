"""Schema migrations, the DESIGN §5 schema, and opening stores by URL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bojdeploy.errors import ConnectError, UsageError
from bojdeploy.store import StateStore, default_database_url, open_store
from tests.store.conftest import raw_rows

VERSIONS = [
    (1, "seed"),
    (2, "deployment_context"),
    (3, "settings"),
    (5, "drift"),
    (6, "dashboard"),
]
POSTGRES_ONLY = [(4, "relay")]  # the webhook relay's deliveries (the relay needs PostgreSQL)
LATER = [(7, "hosts")]  # the host of each deployment (fleets)


def versions(url: str) -> list[tuple[int, str]]:
    """The migrations a database at `url` records."""
    return sorted(VERSIONS + (POSTGRES_ONLY if url.startswith("postgresql") else []) + LATER)


# column -> (PostgreSQL information_schema type, SQLite declared type), DESIGN §5 + 002.
DEPLOYMENTS = {
    "id": ("integer", "INTEGER"),
    "deployment_type": ("character varying(50)", "VARCHAR(50)"),
    "name": ("character varying(255)", "VARCHAR(255)"),
    "environment": ("character varying(50)", "VARCHAR(50)"),
    "status": ("character varying(50)", "VARCHAR(50)"),
    "git_commit": ("character varying(255)", "VARCHAR(255)"),
    "git_branch": ("character varying(255)", "VARCHAR(255)"),
    "git_repository": ("character varying(500)", "VARCHAR(500)"),
    "config": ("jsonb", "TEXT"),
    "created_at": ("timestamp without time zone", "TIMESTAMP"),
    "updated_at": ("timestamp without time zone", "TIMESTAMP"),
    "completed_at": ("timestamp without time zone", "TIMESTAMP"),
    "error_message": ("text", "TEXT"),
    "host": ("character varying(255)", "VARCHAR(255)"),
    "rollback_from": ("integer", "INTEGER"),
    "reason": ("text", "TEXT"),
    "config_hash": ("character varying(64)", "VARCHAR(64)"),
    "manifest": ("character varying(500)", "VARCHAR(500)"),
}
DEPLOYMENT_LOGS = {
    "id": ("integer", "INTEGER"),
    "deployment_id": ("integer", "INTEGER"),
    "timestamp": ("timestamp without time zone", "TIMESTAMP"),
    "level": ("character varying(20)", "VARCHAR(20)"),
    "message": ("text", "TEXT"),
    "metadata": ("jsonb", "TEXT"),
}


def columns(url: str, table: str) -> dict[str, str]:
    """Return a table's columns and their declared types, in table order."""
    if url.startswith("sqlite:"):
        return {row[1]: row[2] for row in raw_rows(url, f"PRAGMA table_info({table})")}
    rows = raw_rows(
        url,
        "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns"
        f" WHERE table_name = '{table}' ORDER BY ordinal_position",
    )
    return {name: f"{kind}({size})" if size else kind for name, kind, size in rows}


def test_migrations_are_recorded_once_and_rerun_as_no_ops(
    store: StateStore, store_url: str
) -> None:
    assert store.migrate() == []
    assert store.migrate() == []
    with open_store(store_url) as again:
        assert again.migrate() == []
    recorded = raw_rows(store_url, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded == versions(store_url)


def test_schema_matches_the_design(store: StateStore, store_url: str) -> None:
    column = 0 if store_url.startswith("postgres") else 1
    assert columns(store_url, "deployments") == {c: t[column] for c, t in DEPLOYMENTS.items()}
    assert columns(store_url, "deployment_logs") == {
        c: t[column] for c, t in DEPLOYMENT_LOGS.items()
    }


def test_ids_are_serial_on_postgres(postgres_database: str) -> None:
    open_store(postgres_database).close()
    defaults = raw_rows(
        postgres_database,
        "SELECT table_name, column_default FROM information_schema.columns"
        " WHERE column_name = 'id' AND table_name LIKE 'deployment%' ORDER BY table_name",
    )
    assert defaults == [
        ("deployment_logs", "nextval('deployment_logs_id_seq'::regclass)"),
        ("deployments", "nextval('deployments_id_seq'::regclass)"),
    ]


def test_processes_migrating_a_fresh_database_at_once_all_succeed(store_url: str) -> None:
    script = "import sys; from bojdeploy.store import open_store; open_store(sys.argv[1]).close()"
    runs = [subprocess.Popen([sys.executable, "-c", script, store_url]) for _ in range(4)]
    assert [run.wait(timeout=60) for run in runs] == [0, 0, 0, 0]
    recorded = raw_rows(store_url, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded == versions(store_url)


def test_default_url_follows_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_database_url() == f"sqlite:///{tmp_path}/state/bojdeploy/state.db"
    with open_store(None) as store:
        store.create_deployment(deployment_type="vm", name="db", environment="production")
    assert (tmp_path / "state" / "bojdeploy" / "state.db").is_file()
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/.local/state/bojdeploy/state.db"


def test_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///sub/state.db").close()
    assert (tmp_path / "sub" / "state.db").is_file()


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db/x", "sqlite://state.db", "sqlite:///", "state.db"]
)
def test_unsupported_urls_are_usage_errors_without_the_password(url: str) -> None:
    with pytest.raises(UsageError, match="unsupported database URL") as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value)


def test_unreachable_postgres_is_a_fast_connect_error_without_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        open_store("postgresql://bojdeploy:hunter2@127.0.0.1:1/nothing")
    message = str(caught.value)
    assert "postgresql://bojdeploy:***@127.0.0.1:1/nothing" in message
    assert "hunter2" not in message and "refused" in message.lower()
    assert caught.value.exit_code == 3
    assert time.monotonic() - started < 10


def test_wrong_postgres_password_is_a_connect_error(postgres_url: str) -> None:
    server = urlsplit(postgres_url)
    wrong = f"{server.username}:wrong-password@{server.hostname}:{server.port or 5432}"
    url = server._replace(netloc=wrong).geturl()
    with pytest.raises(ConnectError, match="password authentication failed") as caught:
        open_store(url)
    assert "wrong-password" not in str(caught.value)


def test_unopenable_sqlite_path_is_a_connect_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConnectError, match="cannot open the SQLite database"):
        open_store(f"sqlite:///{tmp_path}/file/state.db")


def test_importing_the_store_does_not_load_psycopg() -> None:
    script = "import sys, bojdeploy.store; print('psycopg' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
