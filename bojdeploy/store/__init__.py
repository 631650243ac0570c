"""The state store: deployments, their logs and per-target locks, in SQLite or PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from bojdeploy.errors import UsageError
from bojdeploy.store.base import Deployment, DriftState, LogEntry, StateStore, redact_url

__all__ = [
    "Deployment",
    "DriftState",
    "LogEntry",
    "StateStore",
    "default_database_url",
    "open_store",
]


def default_database_url() -> str:
    """Return the default SQLite URL: $XDG_STATE_HOME/bojdeploy/state.db."""
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return f"sqlite:///{Path(state, 'bojdeploy', 'state.db')}"


def open_store(url: str | None) -> StateStore:
    """Open the store at url (sqlite:///path or postgresql://...) and migrate its schema."""
    url = url or default_database_url()
    store: StateStore
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from bojdeploy.store.sqlite import SqliteStore

        store = SqliteStore(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        from bojdeploy.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise UsageError(
            f"unsupported database URL {redact_url(url)!r}: expected postgresql://... "
            "or sqlite:///path (sqlite:////abs/path for an absolute path)"
        )
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
