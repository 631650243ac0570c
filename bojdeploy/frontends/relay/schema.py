"""procrastinate's schema in the relay's database: created whole, then kept at the installed
procrastinate's version with the migrations procrastinate ships.

procrastinate records no version in the database; bojdeploy records the name of the last of its
migrations the schema has (table bojdeploy_procrastinate_schema). A database whose queue was
created before that record existed is taken as current when every function of the installed
procrastinate's schema is there.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import psycopg
from procrastinate.schema import SchemaManager

from bojdeploy.errors import UsageError

TABLE = "bojdeploy_procrastinate_schema"


def migrations() -> list[Path]:
    """procrastinate's migrations, oldest first (their names sort by version)."""
    return sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql"))


def bring_up_to_date(conn: psycopg.Connection[tuple[object, ...]], upgrade: bool) -> bool:
    """Create the schema, or apply its pending migrations (`upgrade`; otherwise UsageError
    naming what to run); whether anything was applied. `conn` is in autocommit, its caller
    holds the lock."""
    latest = migrations()[-1].stem
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version VARCHAR(200) NOT NULL)")
    found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
    if found is None or found[0] is None:
        with conn.transaction():
            conn.execute(SchemaManager.get_schema())
            _record(conn, latest)
        return True
    row = conn.execute(f"SELECT version FROM {TABLE}").fetchone()
    recorded = str(row[0]) if row else _baseline(conn, latest)
    pending = [m for m in migrations() if m.stem > recorded]
    if not pending:
        return False
    if not upgrade:
        raise UsageError(
            f"the job queue's schema is older than procrastinate {version('procrastinate')}'s "
            f"({len(pending)} migrations pending, from {pending[0].stem}): stop every relay "
            "and worker, then run `bojdeploy db migrate`"
        )
    for migration in pending:
        conn.execute(migration.read_text())  # (one at a time: some cannot run in a transaction)
        _record(conn, migration.stem)
    return True


def _baseline(conn: psycopg.Connection[tuple[object, ...]], latest: str) -> str:
    """A queue created before versions were recorded: current when every function of the
    installed schema is there (recorded so from now on); UsageError otherwise."""
    wanted = set(re.findall(r"CREATE FUNCTION (\w+)\(", SchemaManager.get_schema()))
    rows = conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'procrastinate%'")
    missing = sorted(wanted - {str(name) for (name,) in rows.fetchall()})
    if missing:
        raise UsageError(
            f"the job queue's schema is older than procrastinate {version('procrastinate')}'s "
            f"(no {missing[0]}) and its version is not recorded: apply the migrations it lacks "
            "from `procrastinate schema --migrations-path` (see docs/relay.md), then run "
            "`bojdeploy db migrate`"
        )
    _record(conn, latest)
    return latest


def _record(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(f"DELETE FROM {TABLE}")
    conn.execute(f"INSERT INTO {TABLE} (version) VALUES (%s)", (name,))
