"""The relay's jobs: route a push to its environment, deploy a repository+environment, and put
the jobs of killed workers back in the queue.

Deploys of one repository+environment hold one procrastinate `lock` (one at a time) and one
`queueing_lock` (at most one waiting). A push routed while a deploy of its pair waits joins that
waiting deploy; a deploy takes every push of its pair routed so far and deploys the newest one
by history (order.py), with the change set counted from the last commit deployed for the pair:
nothing is skipped, nothing is deployed twice, an older commit never rolls the pair back. A
push whose routing fails on its last attempt, or whose bojdeploy.yaml is invalid, is recorded
as failed, with the reason, and its commit gets an `error` status saying it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from procrastinate import Blueprint, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from bojdeploy import logs
from bojdeploy.core.config import CONFIG_FILE, parse_config
from bojdeploy.errors import BojdeployError
from bojdeploy.frontends.relay import deliveries
from bojdeploy.frontends.relay.clones import Clones, git_timeout, state_dir
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.job import Push, deploy, set_statuses
from bojdeploy.frontends.relay.order import Order, arrange

log = logging.getLogger("bojdeploy.relay")
tasks = Blueprint()
T = TypeVar("T")
ROUTE_RETRIES = RetryStrategy(max_attempts=3, wait=2)  # a clone may fail for a moment


class InvalidConfig(Exception):
    """The pushed commit's bojdeploy.yaml cannot be read: the push fails, without retries."""


def pair_lock(repository: str, environment: str) -> str:
    """The procrastinate lock (and queueing lock) of a repository+environment."""
    return f"deploy:{repository}:{environment}"


def relay_config(context: JobContext) -> RelayConfig:
    """The settings the worker was started with."""
    return context.additional_context["config"]  # type: ignore[no-any-return]


def clones_of(config: RelayConfig) -> Clones:
    """The clone cache of this machine."""
    environ = config.settings.environ
    root = state_dir(environ) / "relay" / "clones"
    return Clones(root, config.settings.gitea_token, git_timeout(environ))


async def in_executor(context: JobContext, work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)` in the worker's own threads (one per job it runs at a time, never the
    threads the relay's HTTP side uses), with the log context bound here (as to_thread)."""
    executor = context.additional_context.get("executor")
    call = functools.partial(contextvars.copy_context().run, work, *args)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


@tasks.task(name="route_push", pass_context=True, retry=ROUTE_RETRIES)
async def route_push(context: JobContext, delivery_id: int) -> None:
    """Find the pushed branch's environment in the pushed commit's bojdeploy.yaml; queue its
    deploy, or record the push as ignored (no environment) or failed (an invalid file)."""
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
                environment = await _route(context, config, pool, push)
            if environment is not None:
                await _queue_deploy(context, push.repository, environment, push.after_sha)
        except InvalidConfig as e:
            await _fail(context, config, push, str(e))
        except Exception as e:
            if ROUTE_RETRIES.get_retry_decision(exception=e, job=context.job) is None:
                await _give_up(context, config, push, e)
            raise


async def _give_up(
    context: JobContext, config: RelayConfig, push: deliveries.Delivery, error: Exception
) -> None:
    """The last attempt failed: record the push as failed, and say it in a commit status."""
    await _fail(
        context,
        config,
        push,
        f"could not route the push after {context.job.attempts + 1} attempts: {error}",
    )


async def _fail(
    context: JobContext, config: RelayConfig, push: deliveries.Delivery, why: str
) -> None:
    """Record the push as failed, and say why in an `error` commit status."""
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


async def _route(
    context: JobContext, config: RelayConfig, pool: Any, push: deliveries.Delivery
) -> str | None:
    """Record the environment of a push's branch (or why it has none)."""
    clones = clones_of(config)
    assert push.clone_url is not None
    text = await in_executor(context, clones.show, push.clone_url, push.after_sha, CONFIG_FILE)
    repo_config, problems = parse_config(text or "")
    async with pool.connection() as conn:
        if repo_config is None:
            raise InvalidConfig(f"{CONFIG_FILE} at {push.after_sha[:7]} is invalid: {problems[0]}")
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
    order = await _arrange(context, config, taken, since)
    await _not_deployed(context, config, order, since)
    newest = order.newest
    if newest is None:
        return {"deployed": None, "superseded": len(order.superseded)}
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
        covered=tuple(dict.fromkeys(d.after_sha for d in order.covered)),
    )
    with logs.bound(job_id=job_id, repository=repository, environment=environment):
        log.info("job %s: deploying %s to %s (since %s)", job_id, push.sha[:7], environment, since)
        result = await in_executor(
            context, deploy, push, config.settings, clones_of(config), f"job {job_id}"
        )
    status = "failed" if result.failed else "deployed"
    async with pool.connection() as conn:
        await deliveries.finish(conn, job_id, status, result.summary, result.deployments, push.sha)
    return {"deployed": push.sha, "pushes": len(taken), "deployments": result.deployments}


async def _arrange(
    context: JobContext, config: RelayConfig, taken: list[deliveries.Delivery], since: str | None
) -> Order:
    """Order the pushes by their history (order.py); by arrival when it cannot be read (the
    deploy then reports why the repository cannot be fetched)."""

    def read() -> Order:
        clones = clones_of(config)
        url = taken[-1].clone_url or ""
        for push in taken:
            mirror = clones.fetch(url, push.after_sha)
        return arrange(mirror, taken, since)

    try:
        return await in_executor(context, read)
    except BojdeployError as e:
        log.warning("cannot read the history of the pushes, taking them as received: %s", e)
        return Order(taken[-1], list(taken[:-1]))


async def _not_deployed(
    context: JobContext, config: RelayConfig, order: Order, since: str | None
) -> None:
    """Record the pushes this deploy does not deploy, and say it in their commit statuses."""
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    newest = order.newest.after_sha[:7] if order.newest else ""
    groups = [
        (
            order.superseded,
            "success",
            f"already deployed: {(since or '')[:7]}, which contains it, is deployed",
        ),
        (
            order.replaced,
            "error",
            f"not deployed: {newest}, pushed later on a diverged history, is deployed instead",
        ),
    ]
    for pushes, state, why in groups:
        if not pushes:
            continue
        for push in pushes:
            log.warning("push %s (delivery %s) is superseded: %s", push.after_sha[:7], push.id, why)
            async with pool.connection() as conn:
                await deliveries.update(conn, push.id, status="superseded", reason=why)
        first = pushes[0]
        page = f"{(config.public_url or first.relay_url or '').rstrip('/')}/jobs/{context.job.id}"
        await asyncio.to_thread(
            set_statuses,
            config.settings,
            first.repository,
            first.environment,
            list(dict.fromkeys(p.after_sha for p in pushes)),
            state,
            why,
            page,
            f"job {context.job.id}",
        )
