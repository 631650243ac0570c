"""The embedded SQLite state store: one connection shared by threads, file locks per target."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bojdeploy.errors import ConnectError, StoreError
from bojdeploy.store.locks import default_holder, file_lock, target_name
from bojdeploy.store.sql import Query, SqlStore

BUSY_TIMEOUT = 30.0


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL; SQLite answers 'locked' at once (no busy wait) while another run does."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class SqliteStore(SqlStore):
    """State in one SQLite file (WAL mode); locks in flock'ed files beside it."""

    dialect = "sqlite"
    migrations_table_exists = (
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )

    def __init__(self, path: Path):
        self.path = path
        self._mutex = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            _use_wal(self._conn)
            self._conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as e:
            raise ConnectError(f"cannot open the SQLite database {path}: {e}") from e

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[Query]:
        with self._mutex:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._query
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.rollback()
                    raise
            except sqlite3.Error as e:
                raise StoreError(f"SQLite database {self.path}: {e}") from e

    @contextmanager
    def _reading(self) -> Iterator[Query]:
        """A deferred transaction: in WAL mode reads never wait for another process's writes."""
        with self._mutex:
            try:
                self._conn.execute("BEGIN")
                try:
                    yield self._query
                finally:
                    self._conn.rollback()
            except sqlite3.Error as e:
                raise StoreError(f"SQLite database {self.path}: {e}") from e

    def _lock_migrations(self, q: Query) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's write lock."""

    def _ts(self, moment: datetime) -> str:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def _read_ts(self, value: str) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def _json(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    def _read_json(self, value: str) -> Any:
        return json.loads(value)

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
    ) -> AbstractContextManager[None]:
        """Hold the target's lock across processes; raise LockTimeout after timeout seconds."""
        return file_lock(
            Path(f"{self.path}.locks"),
            target_name(environment, deployment_type, name, host),
            timeout=timeout,
            holder=holder or default_holder(),
            on_wait=on_wait,
        )

    def close(self) -> None:
        """Close the connection."""
        with self._mutex:
            self._conn.close()
