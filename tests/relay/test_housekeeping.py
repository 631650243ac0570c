"""Finished queue jobs are removed after the retention, so the queue's tables and the
`bojdeploy_queue_jobs{status="succeeded"}` count do not grow for ever; recent and waiting jobs
stay."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from bojdeploy.errors import UsageError
from bojdeploy.frontends.relay.housekeeping import KEEP_VAR, keep_hours
from bojdeploy.frontends.relay.queue import apply_schema, make_app


def test_the_retention_is_read_and_checked() -> None:
    assert keep_hours({}) == 168
    assert keep_hours({KEEP_VAR: "24"}) == 24
    assert keep_hours({KEEP_VAR: "0"}) == 0
    with pytest.raises(UsageError, match=f"{KEEP_VAR} must be a whole number of hours"):
        keep_hours({KEEP_VAR: "1.5d"})


def _finished_job(conn: psycopg.Connection, status: str, hours_ago: int) -> int:
    """A job of the relay's queue that finished `hours_ago` hours ago with `status`."""
    row = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
        "VALUES ('default', 'bojdeploy:deploy_pair', '{}', %s) RETURNING id",
        (status,),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO procrastinate_events (job_id, type, at) "
        "VALUES (%s, 'deferred', now() - make_interval(hours => %s + 1)), "
        "(%s, 'succeeded', now() - make_interval(hours => %s))",
        (row[0], hours_ago, row[0], hours_ago),
    )
    return int(row[0])


def test_old_finished_jobs_go_recent_and_waiting_ones_stay(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEEP_VAR, "24")
    apply_schema(postgres_database)
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        old_ok = _finished_job(conn, "succeeded", 30)
        old_failed = _finished_job(conn, "failed", 30)
        recent = _finished_job(conn, "succeeded", 2)
    app = make_app(postgres_database)
    assert "bojdeploy:remove_old_jobs" in app.tasks

    async def run_once() -> None:
        async with app.open_async():
            await app.tasks["bojdeploy:remove_old_jobs"].defer_async(timestamp=0)
            await app.run_worker_async(wait=False, install_signal_handlers=False)

    # in a thread of its own: a browser test's event loop may still be set on this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(run_once())).result(timeout=60)
    with psycopg.connect(postgres_database) as conn:
        left = {r[0] for r in conn.execute("SELECT id FROM procrastinate_jobs").fetchall()}
    assert old_ok not in left and old_failed not in left
    assert recent in left
