"""The procrastinate app on the relay's PostgreSQL, its schema, and workers that put the jobs
of dead workers back in the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

import procrastinate
import procrastinate.exceptions
import psycopg
from procrastinate.schema import SchemaManager

from bojdeploy.errors import DatabaseUnreachable, UsageError
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.store.base import redact_url

POOL_TIMEOUT = 5.0  # seconds to wait for a connection: then the database is down (503)
STALLED_VAR = "BOJDEPLOY_RELAY_STALLED_AFTER"
STALLED_AFTER = 30.0
RESTART_AFTER = 2.0  # seconds before a worker that lost the database starts again
log = logging.getLogger("bojdeploy.relay")


def make_app(
    database_url: str, *, pool_size: int = 10, drift_interval: int | None = None
) -> procrastinate.App:
    """A procrastinate App on `database_url`, with the relay's tasks (and the drift watch
    every `drift_interval` seconds)."""
    from bojdeploy.frontends.relay.drift import schedule, watch
    from bojdeploy.frontends.relay.housekeeping import housekeeping
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
    app.add_tasks_from(watch, namespace="bojdeploy")
    app.add_tasks_from(housekeeping, namespace="bojdeploy")
    schedule(app, drift_interval)
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


def stalled_after(environ: Mapping[str, str]) -> float:
    """Seconds without a heartbeat after which a worker counts as dead and its jobs go back in
    the queue (BOJDEPLOY_RELAY_STALLED_AFTER, default 30); workers beat three times as often."""
    raw = environ.get(STALLED_VAR, "").strip()
    try:
        seconds = float(raw) if raw else STALLED_AFTER
    except ValueError as e:
        raise UsageError(f"{STALLED_VAR} must be a number of seconds, not {raw!r}") from e
    if seconds < 1:
        raise UsageError(f"{STALLED_VAR} must be at least 1 second, not {raw!r}")
    return seconds


async def run_workers(app: procrastinate.App, config: RelayConfig, concurrency: int) -> None:
    """Run `concurrency` jobs at a time, and put the jobs of dead workers back in the queue.

    procrastinate's worker stops when it loses the database; it is started again (every few
    seconds while the database stays out of reach), so workers outlive an outage."""
    stalled = stalled_after(config.settings.environ)
    recovery = asyncio.create_task(recover_stalled(app, stalled))
    try:
        while True:
            try:
                await app.run_worker_async(
                    concurrency=concurrency,
                    install_signal_handlers=False,
                    additional_context={"config": config},
                    update_heartbeat_interval=stalled / 3,
                    stalled_worker_timeout=stalled,
                )
                log.warning("the worker stopped; starting it again in %gs", RESTART_AFTER)
            except (procrastinate.exceptions.ConnectorException, psycopg.Error, OSError) as e:
                log.warning("the worker lost the database (%s); again in %gs", e, RESTART_AFTER)
            await asyncio.sleep(RESTART_AFTER)
    finally:
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery


async def recover_stalled(app: procrastinate.App, stalled: float) -> None:
    """Every third of `stalled` seconds: retry the jobs of workers silent for `stalled` seconds
    (a retried deploy claims its pushes again; the engine marks its interrupted rows failed)."""
    while True:
        await asyncio.sleep(stalled / 3)
        try:
            found = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled)
            for job in found:
                log.warning("job %s of a stopped worker goes back in the queue", job.id)
                with contextlib.suppress(procrastinate.exceptions.ConnectorException):
                    await app.job_manager.retry_job(job)  # (another worker may have been first)
        except (procrastinate.exceptions.ConnectorException, OSError) as e:
            log.warning("cannot look for the jobs of stopped workers: %s", e)
