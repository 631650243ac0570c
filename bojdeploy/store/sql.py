"""The SQL both backends share: deployments, logs, settings, and applying migrations."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from bojdeploy.errors import StoreError
from bojdeploy.store import drift
from bojdeploy.store.base import (
    INTERRUPTED,
    STATUSES,
    SUCCESSFUL,
    Confirmation,
    Deployment,
    DriftState,
    LogEntry,
)
from bojdeploy.store.migrations import (
    CREATE_SCHEMA_MIGRATIONS,
    load_migrations,
    migration_versions,
    split_statements,
)
from bojdeploy.store.reads import Reads

# q(sql, params) -> rows; SQL is written with "?" placeholders in both dialects.
Query = Callable[..., list[tuple[Any, ...]]]

KINDS = ("container", "service", "vm")
LEVELS = ("info", "warn", "error")
DEPLOYMENT_FIELDS = tuple(field.name for field in fields(Deployment))
SELECT_DEPLOYMENTS = f"SELECT {', '.join(DEPLOYMENT_FIELDS)} FROM deployments"
# A row and the newest later success of the same resource with the same config hash.
SELECT_CONFIRMATIONS = (
    "SELECT d.id, d.deployment_type, d.name, d.status, d.error_message, d.config_hash,"
    " (SELECT MAX(s.id) FROM deployments s WHERE s.environment = d.environment"
    " AND s.deployment_type = d.deployment_type AND s.name = d.name"
    " AND s.host = d.host AND s.config_hash = d.config_hash AND s.status IN (?, ?)"
    " AND s.id > d.id), d.host"
    " FROM deployments d WHERE d.environment = ? AND d.id IN ({ids})"
)
# create_deployment's fields: the columns of a new row besides its id and times
LATER = ("id", "created_at", "updated_at", "completed_at", "error_message")
NEW_DEPLOYMENT = tuple(column for column in DEPLOYMENT_FIELDS if column not in LATER)
CONFIRMATION_BATCH = 500  # ids per query: well under every backend's parameter limit
INSERT_LOG = (
    "INSERT INTO deployment_logs (deployment_id, timestamp, level, message, metadata) "
    "VALUES (?, ?, ?, ?, ?)"
)


def now_utc() -> datetime:
    """Return the current time, tz-aware UTC."""
    return datetime.now(UTC)


def check(value: str, allowed: tuple[str, ...], what: str) -> None:
    """Refuse a value outside a closed vocabulary before it reaches the database."""
    if value not in allowed:
        raise StoreError(f"invalid {what} {value!r}: expected one of {', '.join(allowed)}")


class SqlStore(Reads, ABC):
    """A StateStore over SQL; a backend supplies transactions and value conversions."""

    dialect: ClassVar[str]
    migrations_table_exists: ClassVar[str]  # a query with a row when schema_migrations exists
    _key: bytes | None = None

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Query]:
        """Run the block in one transaction and translate driver errors."""

    def _reading(self) -> AbstractContextManager[Query]:
        """Run a block of reads in one transaction (a backend may take fewer locks for it)."""
        return self._transaction()

    @abstractmethod
    def _lock_migrations(self, q: Query) -> None:
        """Keep other processes out of the migrations until this transaction ends."""

    @abstractmethod
    def _ts(self, moment: datetime) -> Any:
        """Convert a UTC datetime to a database value."""

    @abstractmethod
    def _read_ts(self, value: Any) -> datetime:
        """Convert a database timestamp to a tz-aware UTC datetime."""

    @abstractmethod
    def _json(self, value: Any) -> Any:
        """Convert a JSON-able value to a database value."""

    @abstractmethod
    def _read_json(self, value: Any) -> Any:
        """Convert a database JSON value to Python."""

    def _deployment(self, row: tuple[Any, ...]) -> Deployment:
        record = dict(zip(DEPLOYMENT_FIELDS, row, strict=True))
        for column in ("created_at", "updated_at", "completed_at"):
            record[column] = self._maybe(self._read_ts, record[column])
        record["config"] = self._maybe(self._read_json, record["config"])
        return Deployment(**record)

    @staticmethod
    def _maybe(convert: Callable[[Any], Any], value: Any) -> Any:
        return None if value is None else convert(value)

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied now.

        The versions applied are read first, without a lock: a database already up to date
        (every command but the first after an upgrade) costs that one query and never waits for
        another process. Only pending migrations take the migrations lock, and they are read
        again under it (another process may have applied them meanwhile).
        """
        if not self.pending_migrations():
            return []
        applied = []
        with self._transaction() as q:
            self._lock_migrations(q)
            q(CREATE_SCHEMA_MIGRATIONS)
            done = {row[0] for row in q("SELECT version FROM schema_migrations")}
            for version, name, sql in load_migrations(self.dialect):
                if version in done:
                    continue
                for statement in split_statements(sql):
                    q(statement)
                q(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, self._ts(now_utc())),
                )
                applied.append(version)
        return applied

    def pending_migrations(self) -> list[int]:
        """The versions of the migrations this database has not applied (a read, no lock)."""
        with self._reading() as q:
            exists = bool(q(self.migrations_table_exists))
            done = (
                {row[0] for row in q("SELECT version FROM schema_migrations")} if exists else set()
            )
        return [version for version in migration_versions(self.dialect) if version not in done]

    def create_deployment(
        self,
        *,
        deployment_type: str,
        name: str,
        environment: str,
        status: str = "pending",
        git_commit: str | None = None,
        git_branch: str | None = None,
        git_repository: str | None = None,
        config: dict[str, Any] | None = None,
        rollback_from: int | None = None,
        reason: str | None = None,
        config_hash: str | None = None,
        manifest: str | None = None,
        host: str = "",
    ) -> int:
        """Record a new deployment and return its id."""
        fields = {column: value for column, value in locals().items() if column in NEW_DEPLOYMENT}
        with self._transaction() as q:
            return self._insert(q, fields, self._ts(now_utc()))

    def _insert(self, q: Query, fields: Mapping[str, Any], now: Any, done: bool = False) -> int:
        """Insert one deployment row (create_deployment's fields); its id."""
        check(fields["deployment_type"], KINDS, "deployment type")
        check(fields["status"], STATUSES, "status")
        values = {
            **{column: fields.get(column) for column in NEW_DEPLOYMENT},
            "host": fields.get("host") or "",
            "config": self._maybe(self._json, fields.get("config")),
            "created_at": now,
            "updated_at": now,
            "completed_at": now if done else None,
        }
        rows = q(
            f"INSERT INTO deployments ({', '.join(values)})"
            f" VALUES ({', '.join('?' * len(values))}) RETURNING id",
            tuple(values.values()),
        )
        return int(rows[0][0])

    def record_unchanged(self, records: Sequence[Mapping[str, Any]], message: str) -> list[int]:
        """Record deployments that found their resource unchanged, in one transaction: each a
        row (create_deployment's fields, completed now) with `message` as its log line; their ids.
        """
        now = self._ts(now_utc())
        with self._transaction() as q:
            ids = [self._insert(q, {**r, "status": "unchanged"}, now, True) for r in records]
            for deployment_id in ids:
                q(INSERT_LOG, (deployment_id, now, "info", message, None))
        return ids

    def open_deployments(self, environment: str) -> set[tuple[str, str, str]]:
        """(deployment_type, name, host) of an environment's deployments still pending or
        running ('' = the default target)."""
        with self._reading() as q:
            rows = q(
                "SELECT DISTINCT deployment_type, name, host FROM deployments"
                " WHERE environment = ? AND status IN ('pending', 'running')",
                (environment,),
            )
        return {(str(kind), str(name), str(host or "")) for kind, name, host in rows}

    def update_deployment(
        self,
        deployment_id: int,
        *,
        status: str | None = None,
        error_message: str | None = None,
        config: dict[str, Any] | None = None,
        config_hash: str | None = None,
        completed: bool = False,
        at: datetime | None = None,
    ) -> None:
        """Change the given fields, bump updated_at, and set completed_at if completed.

        `at` is when it happened (default now): a change written late keeps its time.
        """
        if status is not None:
            check(status, STATUSES, "status")
        now = self._ts(at or now_utc())
        changes: dict[str, Any] = {
            "status": status,
            "error_message": error_message,
            "config": self._maybe(self._json, config),
            "config_hash": config_hash,
            "completed_at": now if completed else None,
        }
        changes = {"updated_at": now} | {k: v for k, v in changes.items() if v is not None}
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._transaction() as q:
            rows = q(
                f"UPDATE deployments SET {assignments} WHERE id = ? RETURNING id",
                (*changes.values(), deployment_id),
            )
        if not rows:
            raise StoreError(f"deployment {deployment_id} does not exist")

    def get_deployment(self, deployment_id: int) -> Deployment | None:
        """Return one deployment, or None if there is no such id."""
        with self._reading() as q:
            rows = q(f"{SELECT_DEPLOYMENTS} WHERE id = ?", (deployment_id,))
        return self._deployment(rows[0]) if rows else None

    def list_deployments(
        self,
        *,
        environment: str | None = None,
        name: str | None = None,
        deployment_type: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
        host: str | None = None,
    ) -> list[Deployment]:
        """Return matching deployments, newest first (only ids below `before_id` if given)."""
        filters = {
            "environment": environment,
            "name": name,
            "deployment_type": deployment_type,
            "status": status,
            "host": host,
        }
        filters = {k: v for k, v in filters.items() if v is not None}
        where = " AND ".join(f"{column} = ?" for column in filters) or "1 = 1"
        below = () if before_id is None else (before_id,)
        if below:
            where += " AND id < ?"
        with self._reading() as q:
            rows = q(
                f"{SELECT_DEPLOYMENTS} WHERE {where} ORDER BY id DESC LIMIT ?",
                (*filters.values(), *below, limit),
            )
        return [self._deployment(row) for row in rows]

    def add_log(
        self,
        deployment_id: int,
        level: str,
        message: str,
        metadata: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append a log line to a deployment (`at`: when it was said, default now)."""
        check(level, LEVELS, "log level")
        with self._transaction() as q:
            q(
                INSERT_LOG,
                (
                    deployment_id,
                    self._ts(at or now_utc()),
                    level,
                    message,
                    self._maybe(self._json, metadata),
                ),
            )

    def get_logs(self, deployment_id: int) -> list[LogEntry]:
        """Return a deployment's log lines in the order they were written."""
        with self._reading() as q:
            rows = q(
                "SELECT id, deployment_id, timestamp, level, message, metadata"
                " FROM deployment_logs WHERE deployment_id = ? ORDER BY id",
                (deployment_id,),
            )
        return [
            LogEntry(id_, dep, self._read_ts(ts), level, msg, self._maybe(self._read_json, meta))
            for id_, dep, ts, level, msg, meta in rows
        ]

    def latest_states(self, environment: str) -> list[Deployment]:
        """Return, per target of an environment, its newest completed or unchanged deployment."""
        with self._reading() as q:
            rows = q(
                f"{SELECT_DEPLOYMENTS} WHERE id IN (SELECT MAX(id) FROM deployments"
                " WHERE environment = ? AND status IN (?, ?) GROUP BY deployment_type, name, host)"
                " ORDER BY deployment_type, name, host",
                (environment, *SUCCESSFUL),
            )
        return [self._deployment(row) for row in rows]

    def unfinished_kinds(self, environment: str, host: str | None = None) -> set[str]:
        """The kinds with a pending or running deployment in an environment (on `host`)."""
        on_host = "" if host is None else " AND host = ?"
        with self._reading() as q:
            rows = q(
                "SELECT DISTINCT deployment_type FROM deployments"
                f" WHERE environment = ? AND status IN ('pending', 'running'){on_host}",
                (environment,) if host is None else (environment, host),
            )
        return {str(row[0]) for row in rows}

    def environment_repositories(self) -> list[tuple[str, str | None]]:
        """Every environment with each repository that recorded deployments in it (one query:
        a row per pair, however many deployments there are)."""
        with self._reading() as q:
            rows = q(
                "SELECT DISTINCT environment, git_repository FROM deployments"
                " ORDER BY environment, git_repository"
            )
        return [(str(env), repository) for env, repository in rows]

    def successful_deployments(
        self,
        environment: str,
        deployment_type: str,
        name: str,
        limit: int = 10,
        host: str | None = None,
    ) -> list[Deployment]:
        """Return a target's completed deployments, newest first (on `host` only, if given)."""
        on_host = () if host is None else (host,)
        with self._reading() as q:
            rows = q(
                f"{SELECT_DEPLOYMENTS} WHERE environment = ? AND deployment_type = ?"
                f" AND name = ?{' AND host = ?' if on_host else ''} AND status = 'completed'"
                " ORDER BY id DESC LIMIT ?",
                (environment, deployment_type, name, *on_host, limit),
            )
        return [self._deployment(row) for row in rows]

    def mark_interrupted(
        self, environment: str, deployment_type: str, name: str, host: str = ""
    ) -> list[int]:
        """Mark a target's pending/running rows failed (call while holding its lock)."""
        now = self._ts(now_utc())
        with self._transaction() as q:
            rows = q(
                "UPDATE deployments SET status = 'failed', error_message = ?, updated_at = ?,"
                " completed_at = ? WHERE environment = ? AND deployment_type = ? AND name = ?"
                " AND host = ? AND status IN ('pending', 'running') RETURNING id",
                (INTERRUPTED, now, now, environment, deployment_type, name, host),
            )
            ids = sorted(int(row[0]) for row in rows)
            for deployment_id in ids:
                q(INSERT_LOG, (deployment_id, now, "error", "marked failed: interrupted", None))
        return ids

    def confirmations(
        self, environment: str, deployment_ids: Collection[int]
    ) -> dict[int, Confirmation]:
        """The rows of an environment with these ids, each with its later confirmation."""
        ids = sorted({int(i) for i in deployment_ids})
        found: dict[int, Confirmation] = {}
        with self._reading() as q:
            for start in range(0, len(ids), CONFIRMATION_BATCH):
                batch = ids[start : start + CONFIRMATION_BATCH]
                sql = SELECT_CONFIRMATIONS.format(ids=", ".join("?" * len(batch)))
                for row in q(sql, (*SUCCESSFUL, environment, *batch)):
                    found[int(row[0])] = Confirmation(*row)
        return found

    def save_drift(
        self,
        observations: Collection[DriftState],
        *,
        scope: tuple[str, str | None] | None = None,
    ) -> None:
        """Upsert observations per (environment, kind, name, repository); with a scope
        (environment, repository), that pair's other rows are deleted (they were all checked)."""
        for o in observations:
            check(o.kind, KINDS, "kind")
        with self._transaction() as q:
            drift.write(q, self._ts, observations, scope)

    def drift_states(self, environment: str | None = None) -> list[DriftState]:
        """Return the last drift observations (of one environment), by environment, kind, name."""
        with self._reading() as q:
            return drift.read(q, self._read_ts, environment)

    def installation_key(self) -> bytes:
        """Return this installation's 32-byte secret key, creating it once."""
        if self._key is None:
            select = "SELECT value FROM settings WHERE key = 'installation_key'"
            with self._transaction() as q:
                rows = q(select)
                if not rows:
                    q(
                        "INSERT INTO settings (key, value) VALUES ('installation_key', ?)"
                        " ON CONFLICT (key) DO NOTHING",
                        (secrets.token_hex(32),),
                    )
                    rows = q(select)
            self._key = bytes.fromhex(rows[0][0])
        return self._key

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
