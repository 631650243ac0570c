"""Fresh stores for every test: SQLite in tmp_path and a new database on a real PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bojdeploy.store import StateStore, open_store

POSTGRES_URL = os.environ.get(
    "BOJDEPLOY_TEST_POSTGRES_URL",
    "postgresql://bojdeploy:bojdeploy@127.0.0.1:5432/bojdeploy_test",
)


def raw_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run a query on a store's database directly, bypassing bojdeploy."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(url) as pg:
        return pg.execute(query).fetchall()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    """An opened, migrated store on each backend."""
    with open_store(store_url) as opened:
        yield opened
