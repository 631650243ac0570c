"""The procrastinate app on the relay's PostgreSQL, its schema, and workers that put the jobs
of dead workers back in the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import procrastinate
import procrastinate.exceptions
import procrastinate.jobs
import psycopg

from bojdeploy.errors import DatabaseUnreachable, UsageError
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.schema import bring_up_to_date
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


def apply_schema(database_url: str, upgrade: bool = True) -> bool:
    """Create procrastinate's schema, or bring it to the installed procrastinate's version
    (`upgrade`; otherwise UsageError saying to run `bojdeploy db migrate`); whether anything
    was applied now."""
    try:
        with psycopg.connect(
            database_url, connect_timeout=int(POOL_TIMEOUT), autocommit=True
        ) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('bojdeploy/procrastinate'))")
            return bring_up_to_date(conn, upgrade)
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
    from bojdeploy.frontends.relay.tasks import clones_of

    stalled = stalled_after(config.settings.environ)
    removed = await asyncio.to_thread(clones_of(config).clean)  # (of workers killed here)
    if removed:
        log.info("removed %d work trees left by stopped workers", removed)
    recovery = asyncio.create_task(recover_stalled(app, stalled))
    # deploys block a thread each: their own pool, so they never starve the HTTP side's
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bojdeploy-job")
    try:
        while True:
            try:
                await app.run_worker_async(
                    concurrency=concurrency,
                    install_signal_handlers=False,
                    additional_context={"config": config, "executor": executor},
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
        executor.shutdown(wait=False)


async def recover_stalled(app: procrastinate.App, stalled: float) -> None:
    """Every third of `stalled` seconds: retry the jobs of workers silent for `stalled` seconds
    (a retried deploy claims its pushes again; the engine marks its interrupted rows failed)."""
    while True:
        await asyncio.sleep(stalled / 3)
        try:
            found = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled)
            for job in found:
                await _recover(app, job)
        except (procrastinate.exceptions.ConnectorException, OSError) as e:
            log.warning("cannot look for the jobs of stopped workers: %s", e)


async def _recover(app: procrastinate.App, job: procrastinate.jobs.Job) -> None:
    """Put the job of a stopped worker back in the queue; when a job with the same queueing lock
    already waits (a deploy of the same pair), end it as failed instead: the waiting job takes
    over its pushes (they stay `deploying`, and a deploy claims those too)."""
    try:
        await app.job_manager.retry_job(job)
    except procrastinate.exceptions.UniqueViolation:
        try:
            await app.job_manager.finish_job(job, procrastinate.jobs.Status.FAILED, False)
        except procrastinate.exceptions.ConnectorException:
            return  # (another worker was first)
        log.warning(
            "job %s of a stopped worker ends as failed: another job of %s waits, and takes over "
            "its pushes",
            job.id,
            job.queueing_lock,
        )
    except procrastinate.exceptions.ConnectorException:
        return  # (another worker was first)
    else:
        log.warning("job %s of a stopped worker goes back in the queue", job.id)
