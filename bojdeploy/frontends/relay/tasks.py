"""The relay's jobs: route a push to its environment, deploy a repository+environment, and put
the jobs of killed workers back in the queue.

Deploys of one repository+environment hold one procrastinate `lock` (one at a time) and one
`queueing_lock` (at most one waiting). A push routed while a deploy of its pair waits joins that
waiting deploy; a deploy takes every push of its pair routed so far and deploys the newest one,
with the change set counted from the last commit deployed for the pair: nothing is skipped and
nothing is deployed twice. A push whose routing fails on its last attempt is recorded as failed,
with the reason, and its commit gets an `error` status saying it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from procrastinate import Blueprint, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from bojdeploy import logs
from bojdeploy.core.config import CONFIG_FILE, parse_config
from bojdeploy.frontends.relay import deliveries
from bojdeploy.frontends.relay.clones import Clones, state_dir
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.job import Push, deploy, set_statuses

log = logging.getLogger("bojdeploy.relay")
tasks = Blueprint()
ROUTE_RETRIES = RetryStrategy(max_attempts=3, wait=2)  # a clone may fail for a moment


def pair_lock(repository: str, environment: str) -> str:
    """The procrastinate lock (and queueing lock) of a repository+environment."""
    return f"deploy:{repository}:{environment}"


def relay_config(context: JobContext) -> RelayConfig:
    """The settings the worker was started with."""
    return context.additional_context["config"]  # type: ignore[no-any-return]


def clones_of(config: RelayConfig) -> Clones:
    """The clone cache of this machine."""
    environ = config.settings.environ
    return Clones(state_dir(environ) / "relay" / "clones", config.settings.gitea_token)


@tasks.task(name="route_push", pass_context=True, retry=ROUTE_RETRIES)
async def route_push(context: JobContext, delivery_id: int) -> None:
    """Find the pushed branch's environment in the pushed commit's bojdeploy.yaml; queue its
    deploy, or record the push as ignored."""
    config = relay_config(context)
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        push = await deliveries.get(conn, delivery_id)
    if push is None or push.status not in ("queued", "routed") or not push.clone_url:
        return
    with logs.bound(job_id=context.job.id, delivery=push.delivery, repository=push.repository):
        try:
            environment = push.environment
            if push.status == "queued":  # (routed: a retry after the deploy could not be queued)
                environment = await _route(config, pool, push)
            if environment is not None:
                await _queue_deploy(context, push.repository, environment, push.after_sha)
        except Exception as e:
            if ROUTE_RETRIES.get_retry_decision(exception=e, job=context.job) is None:
                await _give_up(context, config, push, e)
            raise


async def _give_up(
    context: JobContext, config: RelayConfig, push: deliveries.Delivery, error: Exception
) -> None:
    """The last attempt failed: record the push as failed, and say it in a commit status."""
    why = f"could not route the push after {context.job.attempts + 1} attempts: {error}"
    log.error("push %s (delivery %s): %s", push.after_sha[:7], push.id, why)
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        await deliveries.update(conn, push.id, status="failed", reason=why)
    page = f"{(config.public_url or push.relay_url or '').rstrip('/')}/jobs/{context.job.id}"
    await asyncio.to_thread(
        set_statuses,
        config.settings,
        push.repository,
        push.environment,
        [push.after_sha],
        "error",
        f"not deployed: {why}",
        page,
        f"job {context.job.id}",
    )


async def _route(config: RelayConfig, pool: Any, push: deliveries.Delivery) -> str | None:
    """Record the environment of a push's branch (or why it has none)."""
    clones = clones_of(config)
    assert push.clone_url is not None
    text = await asyncio.to_thread(clones.show, push.clone_url, push.after_sha, CONFIG_FILE)
    repo_config, problems = parse_config(text or "")
    async with pool.connection() as conn:
        if repo_config is None:
            why = f"{CONFIG_FILE} at {push.after_sha[:7]} is invalid: {problems[0]}"
            await deliveries.update(conn, push.id, status="ignored", reason=why)
            return None
        environment = repo_config.environment_for_branch(push.branch)
        if environment is None:
            why = f"branch {push.branch!r} maps to no environment in {CONFIG_FILE}"
            await deliveries.update(conn, push.id, status="ignored", reason=why)
            return None
        await deliveries.update(conn, push.id, status="routed", environment=environment)
    return environment


async def _queue_deploy(context: JobContext, repository: str, environment: str, sha: str) -> None:
    """Queue a deploy of the pair, unless one is already waiting (which will take this push)."""
    lock = pair_lock(repository, environment)
    try:
        await context.app.configure_task(
            "bojdeploy:deploy_pair", lock=lock, queueing_lock=lock
        ).defer_async(repository=repository, environment=environment)
    except AlreadyEnqueued:
        log.info("push %s joins the waiting deploy of %s", sha[:7], lock)


@tasks.task(name="deploy_pair", pass_context=True)
async def deploy_pair(context: JobContext, repository: str, environment: str) -> dict[str, Any]:
    """Deploy the newest routed push of the pair, covering every push routed before it."""
    config = relay_config(context)
    job_id = context.job.id
    assert job_id is not None
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        taken = await deliveries.claim(conn, repository, environment, job_id)
        since = await deliveries.last_deployed(conn, repository, environment)
    if not taken:
        return {"deployed": None}
    newest = taken[-1]
    pages = (config.public_url or newest.relay_url or "").rstrip("/")
    push = Push(
        repository=repository,
        environment=environment,
        branch=newest.branch,
        sha=newest.after_sha,
        since=since,
        clone_url=newest.clone_url or "",
        job_page=f"{pages}/jobs/{job_id}",
        pages=pages,
        covered=tuple(dict.fromkeys(d.after_sha for d in taken[:-1])),
    )
    with logs.bound(job_id=job_id, repository=repository, environment=environment):
        log.info("job %s: deploying %s to %s (since %s)", job_id, push.sha[:7], environment, since)
        result = await asyncio.to_thread(
            deploy, push, config.settings, clones_of(config), f"job {job_id}"
        )
    status = "failed" if result.failed else "deployed"
    async with pool.connection() as conn:
        await deliveries.finish(conn, job_id, status, result.summary, result.deployments)
    return {"deployed": push.sha, "pushes": len(taken), "deployments": result.deployments}
