"""Redeploys and rollbacks asked for through the REST API, run as queue jobs.

Each request is recorded as a row of relay_deliveries (no delivery id; status `requested`, then
`deploying`, then `deployed` or `failed`) and queued under the same procrastinate `lock` as the
pushes of its repository+environment, so it never runs beside a deploy of the pair. The job
checks out the commit last deployed for the pair (its bojdeploy.yaml decides targets and
protection) and runs the engine with the action's statuses: a redeploy applies one manifest
even when unchanged, a rollback redeploys the config a past deployment recorded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from procrastinate import App, Blueprint, JobContext
from psycopg import AsyncConnection

from bojdeploy import logs
from bojdeploy.engine.rollback import find_target
from bojdeploy.engine.rollback import rollback as roll_back
from bojdeploy.engine.workspace import open_workspace
from bojdeploy.forge.gitea import GiteaClient
from bojdeploy.frontends.action.status import Statuses
from bojdeploy.frontends.relay import deliveries
from bojdeploy.frontends.relay.job import (
    JobConsole,
    Push,
    Result,
    Work,
    deploy,
    finished,
    reporter,
    run_job,
)
from bojdeploy.frontends.relay.tasks import clones_of, pair_lock, relay_config
from bojdeploy.settings import Settings
from bojdeploy.store import open_store

manual = Blueprint()


@dataclass(frozen=True)
class Source:
    """Where a pair's last deployed commit comes from."""

    clone_url: str
    branch: str
    sha: str


async def deployed_source(
    conn: AsyncConnection[Any], repository: str, environment: str
) -> Source | None:
    """The clone URL, branch and commit of the newest deploy of the pair through the relay."""
    cur = await conn.execute(
        "SELECT clone_url, branch, after_sha FROM relay_deliveries WHERE repository = %s "
        "AND environment = %s AND status = 'deployed' AND coalesce(clone_url, '') <> '' "
        "ORDER BY deploy_job_id DESC, id DESC LIMIT 1",
        (repository, environment),
    )
    row = await cur.fetchone()
    return None if row is None else Source(*row)


async def request(
    queue: App,
    conn: AsyncConnection[Any],
    task: str,
    pair: tuple[str, str],
    source: Source,
    relay_url: str,
    reason: str,
    **arguments: Any,
) -> int:
    """Record a request and queue its job (in the caller's transaction); the job's id."""
    repository, environment = pair
    row_id = await deliveries.insert(
        conn,
        "requested",
        delivery=None,
        repository=repository,
        branch=source.branch,
        after_sha=source.sha,
        clone_url=source.clone_url,
        relay_url=relay_url,
        environment=environment,
        reason=reason,
    )
    assert row_id is not None  # no delivery id: never a duplicate
    lock = pair_lock(repository, environment)
    job_id: int = await queue.configure_task(
        f"bojdeploy:{task}", lock=lock, connection=conn
    ).defer_async(request_id=row_id, **arguments)
    await deliveries.update(conn, row_id, job_id=job_id)
    return job_id


@manual.task(name="redeploy", pass_context=True)
async def redeploy(context: JobContext, request_id: int, name: str) -> None:
    """Apply one manifest at the pair's last deployed commit, even when unchanged."""
    await _run(context, request_id, None, names=(name,), force=True)


@manual.task(name="rollback", pass_context=True)
async def rollback(context: JobContext, request_id: int, deployment_id: int) -> None:
    """Redeploy the config deployment `deployment_id` recorded."""
    await _run(context, request_id, _rollback_to(deployment_id))


async def _run(context: JobContext, request_id: int, work: Work | None, **options: Any) -> None:
    config = relay_config(context)
    job_id = context.job.id
    assert job_id is not None
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        row = await deliveries.get(conn, request_id)
        if row is None or row.status not in ("requested", "deploying"):
            return
        await deliveries.update(conn, row.id, status="deploying", deploy_job_id=job_id)
    pages = (config.public_url or row.relay_url or "").rstrip("/")
    push = Push(
        repository=row.repository,
        environment=row.environment or "",
        branch=row.branch,
        sha=row.after_sha,
        since=None,
        clone_url=row.clone_url or "",
        job_page=f"{pages}/jobs/{job_id}",
        pages=pages,
        **options,
    )
    clones = clones_of(config)
    with logs.bound(job_id=job_id, repository=push.repository, environment=push.environment):
        if work is None:
            result = await asyncio.to_thread(deploy, push, config.settings, clones, f"job {job_id}")
        else:
            result = await asyncio.to_thread(
                run_job, push, config.settings, clones, f"job {job_id}", work
            )
    async with pool.connection() as conn:
        status = "failed" if result.failed else "deployed"
        await deliveries.finish(conn, job_id, status, result.summary, result.deployments)


def _rollback_to(deployment_id: int) -> Work:
    def work(
        push: Push,
        settings: Settings,
        client: GiteaClient | None,
        console: JobConsole,
        statuses: Statuses,
        tree: Any,
    ) -> Result:
        ws = open_workspace([tree], branch=push.branch, repository=push.repository)
        with open_store(settings.database_url) as store:
            record = find_target(store, deployment_id, None, None, push.repository)
            statuses.pending([record.name], f"rolling back to deployment #{record.id}")
            started = time.monotonic()
            run = roll_back(store, settings, reporter(console), workspace=ws, record=record)
        return finished(run.outcomes, time.monotonic() - started, "", statuses)

    return work
