"""The dashboard's reads: the newest row of every target, filtered history, durations, chains."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bojdeploy.store.base import Deployment

Query = Callable[..., list[tuple[Any, ...]]]
COLUMNS = tuple(Deployment.__dataclass_fields__)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM deployments"


@dataclass(frozen=True)
class HistoryFilter:
    """Which deployments a history shows (None: any); `since`/`until` bound created_at."""

    environment: str | None = None
    name: str | None = None
    deployment_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Duration:
    """How long one finished deployment of a target took."""

    deployment_id: int
    deployment_type: str
    name: str
    status: str
    seconds: float


class Reads:
    """Reads over SQL for the dashboard (SqlStore supplies the transaction and conversions)."""

    def _reading(self) -> AbstractContextManager[Query]:
        raise NotImplementedError

    def _ts(self, moment: datetime) -> Any:
        raise NotImplementedError

    def _read_ts(self, value: Any) -> datetime:
        raise NotImplementedError

    def _deployment(self, row: tuple[Any, ...]) -> Deployment:
        raise NotImplementedError

    def current_deployments(self, environment: str | None = None) -> list[Deployment]:
        """The newest row of every target (of one environment, or all), by environment and name."""
        where, params = ("WHERE environment = ?", (environment,)) if environment else ("", ())
        with self._reading() as q:
            rows = q(
                f"{SELECT} WHERE id IN (SELECT MAX(id) FROM deployments {where}"
                " GROUP BY environment, deployment_type, name)"
                " ORDER BY environment, name, deployment_type",
                params,
            )
        return [self._deployment(row) for row in rows]

    def _where(self, only: HistoryFilter) -> tuple[str, tuple[Any, ...]]:
        equal = {
            "environment": only.environment,
            "name": only.name,
            "deployment_type": only.deployment_type,
            "status": only.status,
        }
        parts = [f"{column} = ?" for column, value in equal.items() if value is not None]
        params: list[Any] = [value for value in equal.values() if value is not None]
        for op, moment in ((">=", only.since), ("<", only.until)):
            if moment is not None:
                parts.append(f"created_at {op} ?")
                params.append(self._ts(moment))
        return " AND ".join(parts) or "1 = 1", tuple(params)

    def history(
        self, only: HistoryFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[Deployment]:
        """Deployments matching `only`, newest first; ids below `before_id` when given."""
        where, params = self._where(only)
        if before_id is not None:
            where, params = f"{where} AND id < ?", (*params, before_id)
        with self._reading() as q:
            rows = q(f"{SELECT} WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [self._deployment(row) for row in rows]

    def durations(self, only: HistoryFilter, *, limit: int = 500) -> list[Duration]:
        """How long the newest `limit` finished deployments matching `only` took, newest first."""
        where, params = self._where(only)
        with self._reading() as q:
            rows = q(
                "SELECT id, deployment_type, name, status, created_at, completed_at"
                f" FROM deployments WHERE {where} AND completed_at IS NOT NULL"
                " AND status <> 'unchanged' ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
        return [
            Duration(
                int(id_),
                kind,
                name,
                status,
                max(0.0, (self._read_ts(done) - self._read_ts(start)).total_seconds()),
            )
            for id_, kind, name, status, start, done in rows
        ]

    def later_deployments(self, record: Deployment, limit: int = 10) -> list[Deployment]:
        """The rows of the same target after `record`, oldest first."""
        with self._reading() as q:
            rows = q(
                f"{SELECT} WHERE environment = ? AND deployment_type = ? AND name = ?"
                " AND id > ? ORDER BY id LIMIT ?",
                (record.environment, record.deployment_type, record.name, record.id, limit),
            )
        return [self._deployment(row) for row in rows]

    def rollbacks_to(self, deployment_id: int, limit: int = 10) -> list[Deployment]:
        """The deployments that restored the config `deployment_id` recorded, oldest first."""
        with self._reading() as q:
            rows = q(
                f"{SELECT} WHERE rollback_from = ? ORDER BY id LIMIT ?", (deployment_id, limit)
            )
        return [self._deployment(row) for row in rows]
