"""The drift watch: a procrastinate periodic task that checks, every BOJDEPLOY_DRIFT_INTERVAL,
each repository+environment the relay deployed against what runs on its targets.

The periodic `drift_watch` job (one at a time across every relay: a procrastinate `lock` and
`queueing_lock`) queues one `drift_check` per pair under the pair's deploy lock, so a check never
runs beside a deploy of the same pair. A check checks out the pair's last deployed commit (its
bojdeploy.yaml decides targets and `self_heal`), runs the engine's `drift_report`, stores what it
saw (`drift_states`, read by /metrics and the dashboard), lets the engine re-apply what drifted
when `self_heal: true`, and, with BOJDEPLOY_DRIFT_STATUS, sets a commit status when the drift of
the pair changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import procrastinate
from procrastinate import Blueprint, JobContext
from procrastinate.exceptions import AlreadyEnqueued

from bojdeploy import logs
from bojdeploy.engine.drift import DriftItem, drift_report
from bojdeploy.engine.heal import heal
from bojdeploy.engine.workspace import open_workspace
from bojdeploy.errors import BojdeployError
from bojdeploy.frontends.relay.config import RelayConfig, drift_cron
from bojdeploy.frontends.relay.job import JobConsole, PushStatuses, gitea_client, reporter
from bojdeploy.frontends.relay.manual import Source, deployed_source
from bojdeploy.frontends.relay.tasks import clones_of, pair_lock, relay_config
from bojdeploy.store import StateStore, open_store
from bojdeploy.store.base import DriftState

log = logging.getLogger("bojdeploy.relay")
watch = Blueprint()
WATCH_LOCK = "drift-watch"
PAIRS = (
    "SELECT DISTINCT repository, environment FROM relay_deliveries WHERE status = 'deployed' "
    "AND environment IS NOT NULL ORDER BY repository, environment"
)


def schedule(app: procrastinate.App, seconds: int | None) -> None:
    """Make `drift_watch` periodic on `app`, every `seconds` (None: no watch)."""
    if seconds is None:
        return
    task = app.tasks["bojdeploy:drift_watch"]
    app.periodic(
        cron=drift_cron(seconds), periodic_id="drift", lock=WATCH_LOCK, queueing_lock=WATCH_LOCK
    )(task)


@watch.task(name="drift_watch", pass_context=True)
async def drift_watch(context: JobContext, timestamp: int) -> int:
    """Queue a drift check of every repository+environment the relay deployed; how many."""
    config = relay_config(context)
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        pairs = await (await conn.execute(PAIRS)).fetchall()
    queued = 0
    for repository, environment in pairs:
        if not config.allows(repository):
            continue
        try:
            await context.app.configure_task(
                "bojdeploy:drift_check",
                lock=pair_lock(repository, environment),
                queueing_lock=f"drift:{repository}:{environment}",
            ).defer_async(repository=repository, environment=environment)
            queued += 1
        except AlreadyEnqueued:  # the previous check of the pair still waits: it will do
            pass
    return queued


@watch.task(name="drift_check", pass_context=True)
async def drift_check(context: JobContext, repository: str, environment: str) -> dict[str, Any]:
    """Check one repository+environment at its last deployed commit (and heal, if asked)."""
    config = relay_config(context)
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        source = await deployed_source(conn, repository, environment)
    if source is None:
        return {"checked": 0}
    job = f"job {context.job.id}"
    with logs.bound(job_id=context.job.id, repository=repository, environment=environment):
        try:
            return await asyncio.to_thread(check, config, repository, environment, source, job)
        except BojdeployError as e:
            log.error("%s: drift of %s in %s not checked: %s", job, repository, environment, e)
            return {"checked": 0, "error": str(e)}


def check(
    config: RelayConfig, repository: str, environment: str, source: Source, job: str
) -> dict[str, Any]:
    """Check, store, heal (then check again), and report the pair's drift."""
    settings = config.settings
    console = JobConsole(job)
    console.mask([v for v in (settings.gitea_token,) if v])
    with (
        clones_of(config).checkout(source.clone_url, source.sha) as tree,
        open_store(settings.database_url) as store,
    ):
        workspace = open_workspace([tree], branch=source.branch, repository=repository)
        before = _drifted(store.drift_states(environment), repository)
        items = drift_report(store, settings, environment, workspace)
        _save(store, items, environment, repository)
        heals = heal(store, settings, reporter(console), workspace, items)
        if any(h.outcomes for h in heals):
            items = drift_report(store, settings, environment, workspace)
            _save(store, items, environment, repository)
    drifted = [i for i in items if i.drifted]
    for item in drifted:
        with logs.bound(kind=item.kind, name=item.name):
            log.warning(
                "%s: %s/%s drifted: %s %s", job, item.kind, item.name, item.state, item.detail
            )
    now = {(i.kind, i.name): i.state for i in drifted}
    if config.drift_status and now != before:
        _status(config, console, repository, environment, source.sha, items)
    return {
        "checked": len(items),
        "drifted": len(drifted),
        "healed": [o.deployment_id for h in heals for o in h.outcomes],
    }


def _drifted(states: Sequence[DriftState], repository: str) -> dict[tuple[str, str], str] | None:
    """What drifted at the pair's previous check (None: never checked)."""
    mine = [s for s in states if s.repository == repository]
    return {(s.kind, s.name): s.state for s in mine if s.drifted} if mine else None


def _save(store: StateStore, items: Sequence[DriftItem], environment: str, repository: str) -> None:
    at = datetime.now(UTC)
    store.save_drift(
        [
            DriftState(
                environment=i.environment,
                kind=i.kind,
                name=i.name,
                drifted=i.drifted,
                state=i.state,
                detail=i.detail,
                checked_at=at,
                repository=repository,
                deployment_id=i.deployment_id,
            )
            for i in items
            if i.name is not None  # (unmanaged resources are not asked for here)
        ],
        scope=(environment, repository),
    )


class DriftStatus(PushStatuses):
    """The drift status of an environment: context `bojdeploy/<environment>:drift` (a colon
    is in no manifest name, so it never collides with a manifest's own context)."""

    def context(self, name: str | None = None) -> str:
        """The drift context of the environment."""
        return f"bojdeploy/{self.environment}:drift"


def _status(
    config: RelayConfig,
    console: JobConsole,
    repository: str,
    environment: str,
    sha: str,
    items: Sequence[DriftItem],
) -> None:
    """Say the pair's drift on its last deployed commit: success in sync, failure drifted."""
    client = gitea_client(config.settings, console)
    if client is None:
        return
    drifted = [i for i in items if i.drifted]
    words = ", ".join(f"{i.name} {i.state}" for i in drifted)
    description = f"{len(drifted)} of {len(items)} drifted: {words}" if drifted else "in sync"
    page = f"{config.public_url}/" if config.public_url else None
    try:
        DriftStatus(client, repository, sha, environment, page, console).set(
            "failure" if drifted else "success", description
        )
    finally:
        client.close()
