"""Reads that stay cheap however much history there is, and commands that never wait for the
migrations lock once the schema is current."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from bojdeploy.core.config import RepoConfig
from bojdeploy.engine.drift import drift_report
from bojdeploy.store import StateStore, open_store
from bojdeploy.store.postgres import MIGRATIONS_LOCK
from bojdeploy.store.sql import SqlStore

MANY = 100_000
COLUMNS = ("deployment_type", "name", "environment", "status", "git_repository")
# environment -> the repositories that deployed there (None: a row without a repository)
SCOPES = {
    "production": ("team/app",),
    "staging": ("team/app", "other/repo"),
    "qa": ("other/repo",),
    "sandbox": (None,),
}


def fill(url: str, rows: int) -> None:
    """`rows` failed deployments over SCOPES, written directly (fast, bypassing bojdeploy)."""
    pairs = [(env, repo) for env, repos in SCOPES.items() for repo in repos]
    values = [
        (
            "container",
            f"web{i % 50}",
            *pairs[i % len(pairs)][:1],
            "failed",
            pairs[i % len(pairs)][1],
        )
        for i in range(rows)
    ]
    now = "2026-01-01 00:00:00"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executemany(
                f"INSERT INTO deployments ({', '.join(COLUMNS)}, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*v, now, now) for v in values],
            )
        return
    with psycopg.connect(url) as pg, pg.cursor() as cur:
        copy = f"COPY deployments ({', '.join(COLUMNS)}, created_at, updated_at) FROM STDIN"
        with cur.copy(copy) as out:
            for v in values:
                out.write_row((*v, now, now))


@contextmanager
def rows_fetched(store: Any) -> Iterator[list[int]]:
    """Count the rows every query of `store` returns while the block runs."""
    counts: list[int] = []

    def counting(opener: Callable[[], Any]) -> Callable[[], Any]:
        @contextmanager
        def wrapped() -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
            with opener() as q:

                def counted(*args: Any) -> list[tuple[Any, ...]]:
                    rows = q(*args)
                    counts.append(len(rows))
                    return rows

                yield counted

        return wrapped

    # A backend without reads of its own reads through _transaction: count those once.
    own_reads = type(store)._reading is not SqlStore._reading
    store._transaction = counting(store._transaction)
    if own_reads:
        store._reading = counting(store._reading)
    try:
        yield counts
    finally:
        del store._transaction
        if own_reads:
            del store._reading


@pytest.fixture
def crowded(store_url: str) -> Iterator[StateStore]:
    """A store holding MANY deployments."""
    open_store(store_url).close()
    fill(store_url, MANY)
    with open_store(store_url) as store:
        yield store


def test_environments_are_listed_by_one_query_not_by_loading_every_row(
    crowded: StateStore,
) -> None:
    with rows_fetched(crowded) as counts:
        pairs = crowded.environment_repositories()
    assert pairs == sorted(
        ((env, repo) for env, repos in SCOPES.items() for repo in repos),
        key=lambda p: (p[0], p[1] or ""),
    )
    assert len(counts) == 1 and counts[0] == len(pairs)


def test_status_reads_the_environments_of_its_repository_without_every_row(
    crowded: StateStore,
) -> None:
    """`status` of team/app: production, staging and the rows without a repository (sandbox);
    never qa. None of them has a successful deployment, so no target is contacted."""
    asked: list[str] = []
    latest = crowded.latest_states

    def spy(environment: str) -> list[Any]:
        asked.append(environment)
        return latest(environment)

    crowded.latest_states = spy  # type: ignore[method-assign]
    workspace = SimpleNamespace(
        info=SimpleNamespace(repository="Team/App.git"), config=RepoConfig()
    )
    with rows_fetched(crowded) as counts:
        items = drift_report(crowded, None, None, workspace)  # type: ignore[arg-type]
    assert items == []
    assert asked == ["production", "sandbox", "staging"]
    assert sum(counts) <= len(SCOPES) * 2  # a handful of rows, never the MANY deployments


def bojdeploy(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child; the timeout only keeps a hung child from hanging the suite."""
    return subprocess.run(
        [sys.executable, "-m", "bojdeploy", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_command_on_a_migrated_postgres_does_not_take_the_migrations_lock(
    postgres_database: str,
) -> None:
    assert bojdeploy(postgres_database, "db", "migrate").returncode == 0
    with psycopg.connect(postgres_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATIONS_LOCK,))
        done = bojdeploy(postgres_database, "history")  # would wait for the lock if it took it
        waiting = holder.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    assert done.returncode == 0, done.stderr
    assert waiting == (0,)


def test_a_command_on_a_migrated_sqlite_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """SQLite's migrations lock is its write lock: a current database is only read."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert bojdeploy(url, "db", "migrate").returncode == 0
    with sqlite3.connect(tmp_path / "state.db", isolation_level=None) as writer:
        writer.execute("BEGIN IMMEDIATE")  # held: anything that writes would wait, then fail
        done = bojdeploy(url, "history")
        writer.execute("ROLLBACK")
    assert done.returncode == 0, done.stderr


def test_a_database_behind_the_code_is_migrated_under_the_lock(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.pending_migrations() == []
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
            conn.execute("DELETE FROM schema_migrations WHERE version = 3")
            conn.execute("DROP TABLE settings")
    else:
        with psycopg.connect(store_url) as pg:
            pg.execute("DELETE FROM schema_migrations WHERE version = 3")
            pg.execute("DROP TABLE settings")
    with open_store(store_url) as store:
        assert store.pending_migrations() == []
        assert len(store.installation_key()) == 32
