"""The PostgreSQL state store: a small connection pool, advisory locks per target."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from bojdeploy.errors import DatabaseUnreachable, StoreError
from bojdeploy.store.base import redact_url
from bojdeploy.store.locks import (
    UNKNOWN_HOLDER,
    default_holder,
    lock_key,
    target_name,
    utc_stamp,
    wait_for_lock,
)
from bojdeploy.store.sql import Query, SqlStore

CONNECT_TIMEOUT = 5
# A pooled connection not handed out within this many seconds is made directly instead: the pool
# reconnects on its own schedule (backing off), a direct attempt tells at once why it cannot.
POOL_WAIT = 1.0
# Connection-level failures: retrying later may work. Anything else is a refusal of the SQL.
UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")
# The pool logs every failed reconnection attempt; bojdeploy says it once, as an error of its own.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
MIGRATIONS_LOCK = lock_key("bojdeploy/migrations")
# Who holds an advisory lock: pg_locks splits a bigint key into classid (high) and objid (low).
HOLDER = """
SELECT a.application_name, a.pid, a.state_change
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s
"""


class PostgresStore(SqlStore):
    """State in PostgreSQL; locks are session advisory locks on dedicated connections."""

    dialect = "postgres"
    migrations_table_exists = "SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL"

    def __init__(self, url: str):
        self.url = url
        self.shown_url = redact_url(url)
        self._connect(default_holder()).close()  # fail fast, with the real cause
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=4,
            open=True,
            timeout=CONNECT_TIMEOUT,
            check=ConnectionPool.check_connection,
            kwargs={"application_name": default_holder()[:63], "connect_timeout": CONNECT_TIMEOUT},
        )

    def _connect(self, application_name: str, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self.url,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=application_name[:63],
                autocommit=autocommit,
            )
        except psycopg.Error as e:
            raise DatabaseUnreachable(self._unreachable(e)) from e

    def _unreachable(self, error: psycopg.Error) -> str:
        """One line: cannot reach the database at URL: cause."""
        lines = str(error).strip().splitlines() or [type(error).__name__]
        cause = lines[0].removeprefix("connection failed: ").strip()
        return f"cannot reach the database at {self.shown_url}: {cause}"

    def _error(self, error: psycopg.Error, what: str = "") -> StoreError:
        """DatabaseUnreachable for a lost or refused connection, else StoreError."""
        state = error.sqlstate or ""
        connection_failed = isinstance(error, psycopg.InterfaceError) or (
            isinstance(error, psycopg.OperationalError)
            and (not state or state.startswith(UNREACHABLE_STATES))
        )
        if connection_failed:
            return DatabaseUnreachable(self._unreachable(error))
        return StoreError(f"{what}PostgreSQL at {self.shown_url}: {error}")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection, or a direct one when the pool has none ready."""
        try:
            conn = self._pool.getconn(timeout=POOL_WAIT)
        except PoolTimeout:
            conn = None
        if conn is None:
            with self._connect(default_holder()) as direct:
                yield direct
            return
        try:
            with conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    @contextmanager
    def _transaction(self) -> Iterator[Query]:
        try:
            with self._connection() as conn:

                def q(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
                    cur = conn.execute(sql.replace("?", "%s"), params or None)
                    return cur.fetchall() if cur.description else []

                yield q
        except psycopg.Error as e:
            raise self._error(e) from e

    def _lock_migrations(self, q: Query) -> None:
        q("SELECT pg_advisory_xact_lock(?)", (MIGRATIONS_LOCK,))

    def _ts(self, moment: datetime) -> datetime:
        return moment.astimezone(UTC).replace(tzinfo=None)

    def _read_ts(self, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC)

    def _json(self, value: Any) -> Jsonb:
        return Jsonb(value)

    def _read_json(self, value: Any) -> Any:
        return value

    @contextmanager
    def lock(
        self,
        environment: str,
        deployment_type: str,
        name: str,
        *,
        timeout: float = 300,
        holder: str | None = None,
        on_wait: Callable[[str], None] | None = None,
        host: str = "",
    ) -> Iterator[None]:
        """Hold the target's lock across processes; raise LockTimeout after timeout seconds."""
        target = target_name(environment, deployment_type, name, host)
        key = lock_key(target)
        conn = self._connect(holder or default_holder(), autocommit=True)
        try:

            def fetch(sql: str, *params: Any) -> tuple[Any, ...] | None:
                try:
                    return conn.execute(sql, params).fetchone()
                except psycopg.Error as e:
                    raise self._error(e, f"lock {target}: ") from e

            def try_acquire() -> bool:
                return bool((fetch("SELECT pg_try_advisory_lock(%s)", key) or [False])[0])

            def who_holds() -> str:
                row = fetch(HOLDER, (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
                if row is None:
                    return UNKNOWN_HOLDER
                app, pid, since = row
                return f"{app or f'PostgreSQL session pid {pid}'} since {utc_stamp(since)}"

            wait_for_lock(try_acquire, who_holds, target, timeout, on_wait)
            yield
        finally:
            conn.close()  # ending the session releases the advisory lock

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
