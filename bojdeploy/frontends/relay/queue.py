"""The procrastinate app on the relay's PostgreSQL, and its schema."""

from __future__ import annotations

import procrastinate
import psycopg
from procrastinate.schema import SchemaManager

from bojdeploy.errors import DatabaseUnreachable
from bojdeploy.store.base import redact_url

POOL_TIMEOUT = 5.0  # seconds to wait for a connection: then the database is down (503)


def make_app(database_url: str, *, pool_size: int = 10) -> procrastinate.App:
    """A procrastinate App on `database_url`, with the relay's tasks."""
    from bojdeploy.frontends.relay.manual import manual
    from bojdeploy.frontends.relay.tasks import tasks

    connector = procrastinate.PsycopgConnector(
        conninfo=database_url,
        min_size=1,
        max_size=pool_size,
        timeout=POOL_TIMEOUT,
        kwargs={"connect_timeout": int(POOL_TIMEOUT), "application_name": "bojdeploy-relay"},
    )
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(tasks, namespace="bojdeploy")
    app.add_tasks_from(manual, namespace="bojdeploy")
    return app


def apply_schema(database_url: str) -> bool:
    """Create procrastinate's schema unless it is there; whether it was created now."""
    try:
        with psycopg.connect(database_url, connect_timeout=int(POOL_TIMEOUT)) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('bojdeploy/procrastinate'))")
            found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if found is not None and found[0] is not None:
                return False
            conn.execute(SchemaManager.get_schema())
            return True
    except psycopg.OperationalError as e:
        lines = str(e).strip().splitlines() or [type(e).__name__]
        raise DatabaseUnreachable(
            f"cannot reach the database at {redact_url(database_url)}: {lines[0]}"
        ) from e
