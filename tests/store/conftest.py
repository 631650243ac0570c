"""Fresh stores for every test: SQLite in tmp_path and a new database on a real PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from bojdeploy.store import StateStore, open_store

POSTGRES_URL = os.environ.get(
    "BOJDEPLOY_TEST_POSTGRES_URL",
    "postgresql://bojdeploy:bojdeploy@127.0.0.1:5432/bojdeploy_test",
)


def require_or_skip(reason: str) -> NoReturn:
    """Skip a test whose system is missing, but fail it under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def raw_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run a query on a store's database directly, bypassing bojdeploy."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(url) as pg:
        return pg.execute(query).fetchall()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test PostgreSQL server, or skip (fail under CI) if it is unreachable."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as e:
        require_or_skip(f"PostgreSQL is not reachable ({e}); set BOJDEPLOY_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"bojdeploy_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(postgres_server)._replace(path=f"/{name}").geturl()
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    """An opened, migrated store on each backend."""
    with open_store(store_url) as opened:
        yield opened
