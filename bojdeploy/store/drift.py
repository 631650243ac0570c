"""The SQL of the drift watch's observations (`drift_states`), shared by both backends."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from bojdeploy.store.base import DriftState

# q(sql, params) -> rows, with "?" placeholders (see sql.Query)
Query = Callable[..., list[tuple[Any, ...]]]

COLUMNS = "environment, kind, name, repository, drifted, state, detail, deployment_id, checked_at"
UPSERT = (
    f"INSERT INTO drift_states ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (environment, kind, name, repository) DO UPDATE SET"
    " drifted = excluded.drifted, state = excluded.state, detail = excluded.detail,"
    " deployment_id = excluded.deployment_id, checked_at = excluded.checked_at"
)


def write(
    q: Query,
    ts: Callable[[datetime], Any],
    observations: Collection[DriftState],
    scope: tuple[str, str | None] | None,
) -> None:
    """Upsert the observations; with a scope, delete the pair's rows not among them."""
    keys = []
    for o in observations:
        repository = o.repository or ""
        keys.append((o.environment, o.kind, o.name, repository))
        q(
            UPSERT,
            (
                o.environment,
                o.kind,
                o.name,
                repository,
                bool(o.drifted),
                o.state,
                o.detail,
                o.deployment_id,
                ts(o.checked_at),
            ),
        )
    if scope is None:
        return
    environment, repository = scope[0], scope[1] or ""
    seen = {
        (kind, name) for env, kind, name, repo in keys if (env, repo) == (environment, repository)
    }
    rows = q(
        "SELECT kind, name FROM drift_states WHERE environment = ? AND repository = ?",
        (environment, repository),
    )
    for kind, name in rows:
        if (kind, name) not in seen:
            q(
                "DELETE FROM drift_states WHERE environment = ? AND repository = ?"
                " AND kind = ? AND name = ?",
                (environment, repository, kind, name),
            )


def read(q: Query, read_ts: Callable[[Any], datetime], environment: str | None) -> list[DriftState]:
    """The observations (of one environment), ordered by environment, kind, name, repository."""
    where, params = ("WHERE environment = ?", (environment,)) if environment else ("", ())
    rows = q(
        f"SELECT {COLUMNS} FROM drift_states {where} ORDER BY environment, kind, name, repository",
        params,
    )
    return [
        DriftState(
            environment=env,
            kind=kind,
            name=name,
            drifted=bool(drifted),
            state=state,
            detail=detail,
            checked_at=read_ts(checked),
            repository=repository or None,
            deployment_id=deployment_id,
        )
        for env, kind, name, repository, drifted, state, detail, deployment_id, checked in rows
    ]
