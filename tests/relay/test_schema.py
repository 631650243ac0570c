"""procrastinate's schema of an older procrastinate: the relay refuses to start, naming the
command; `bojdeploy db migrate` brings it up to date (real PostgreSQL, real processes)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bojdeploy.frontends.relay.schema import TABLE, migrations
from tests.relay import Relay, rows

pytestmark = pytest.mark.postgres


def test_an_older_queue_schema_is_refused_then_migrated(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    older, pending = migrations()[:-2], migrations()[-2:]
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        for migration in older:  # the queue as an older procrastinate left it, unrecorded
            conn.execute(migration.read_text())
    relay = Relay(tmp_path, postgres_database)

    for versioned in (False, True):
        refused = relay.command("relay", "--port", str(relay.port))
        assert refused.wait(timeout=60) == 2
        last = relay.log.read_text().strip().splitlines()[-1]
        assert last.startswith("error: the job queue's schema is older than procrastinate "), last
        if versioned:
            assert f"(2 migrations pending, from {pending[0].stem}): stop every relay" in last
        else:  # nothing says which version it is: the operator applies the missing ones
            assert "its version is not recorded" in last
            with psycopg.connect(postgres_database, autocommit=True) as conn:
                conn.execute(f"INSERT INTO {TABLE} VALUES (%s)", (older[-1].stem,))
        assert "Traceback" not in relay.log.read_text()

    migrate = relay.command("db", "migrate")
    assert migrate.wait(timeout=60) == 0
    assert rows(postgres_database, f"SELECT version FROM {TABLE}") == [(pending[-1].stem,)]
    found = "SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_retry_job_v2'"
    assert rows(postgres_database, found) == [(1,)]
    relays.append(relay.start(workers=1))
    assert relay.get("/health")["status"] == "ok"
