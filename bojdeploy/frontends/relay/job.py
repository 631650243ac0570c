"""One deploy of a pushed commit: checkout, the engine, and the action's commit statuses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bojdeploy import engine, logs
from bojdeploy.engine.apply import Outcome
from bojdeploy.engine.workspace import open_workspace
from bojdeploy.errors import BojdeployError
from bojdeploy.forge.gitea import GiteaClient
from bojdeploy.frontends.action.io import Console
from bojdeploy.frontends.action.status import Statuses, describe_run, not_pruned, report_error
from bojdeploy.frontends.relay.clones import Clones
from bojdeploy.settings import Settings
from bojdeploy.store import open_store

log = logging.getLogger("bojdeploy.relay")


@dataclass(frozen=True)
class Push:
    """The commit a deploy job deploys, and the one its change set starts from."""

    repository: str  # owner/name
    environment: str
    branch: str
    sha: str
    since: str | None  # the last commit deployed for the pair; None: every manifest
    clone_url: str
    job_page: str  # the relay's page for this job
    pages: str  # the relay's base URL for deployment pages
    names: tuple[str, ...] = ()  # only these manifests (a redeploy); (): what changed
    force: bool = False  # apply even what is unchanged (a redeploy)
    covered: tuple[str, ...] = ()  # older pushed commits this deploy covers


@dataclass(frozen=True)
class Result:
    """What a deploy job did: whether anything failed, its deployments, one human line."""

    failed: bool
    deployments: list[int]
    summary: str


class JobConsole(Console):
    """The action's console, writing to the relay's log instead of a step log."""

    def __init__(self, job: str):
        super().__init__()
        self.job = job

    def _raw(self, text: str) -> None:
        if text.startswith(("::add-mask::", "::group::", "::endgroup::")):
            return
        for line in text.splitlines():
            level = logging.WARNING if line.startswith(("::warning::", "::error::")) else 20
            log.log(level, "%s: %s", self.job, line.partition("::")[2].partition("::")[2] or line)


class PushStatuses(Statuses):
    """The action's statuses; without an environment (a push not routed), context `bojdeploy`."""

    def context(self, name: str | None = None) -> str:
        """The status context of the environment, or of one manifest in it."""
        return super().context(name) if self.environment else "bojdeploy"


def gitea_client(settings: Settings, console: Console) -> GiteaClient | None:
    """A client for commit statuses, when Gitea's URL and a token are set."""
    if not (settings.gitea_url and settings.gitea_token):
        return None
    return GiteaClient(settings.gitea_url, settings.gitea_token, warn=console.warning)


def set_statuses(
    settings: Settings,
    repository: str,
    environment: str | None,
    shas: Sequence[str],
    state: str,
    description: str,
    target_url: str,
    job: str,
) -> None:
    """Set one overall status on each of these commits; never raises."""
    console = JobConsole(job)
    console.mask([v for v in (settings.gitea_token,) if v])
    client = gitea_client(settings, console)
    if client is None:
        return
    try:
        for sha in shas:
            statuses = PushStatuses(client, repository, sha, environment or "", target_url, console)
            statuses.set(state, description)
    finally:
        client.close()


class LinkedStatuses(PushStatuses):
    """The action's statuses; each manifest's final status links to its deployment's page."""

    def __init__(self, *args: Any, page: Callable[[int], str]):
        super().__init__(*args)
        self.page = page
        self.job_page = self.target_url
        self.ids: dict[str, int | None] = {}

    def finish(self, outcomes: Sequence[Outcome], overall: str) -> None:
        """Final statuses, linked to the deployments they made."""
        self.ids = {o.name: o.deployment_id for o in outcomes}
        super().finish(outcomes, overall)

    def set(self, state: str, description: str, name: str | None = None) -> None:
        """Set one status; never raises."""
        found = self.ids.get(name) if name else None
        self.target_url = self.page(found) if found else self.job_page
        super().set(state, description, name)


Work = Callable[[Push, Settings, GiteaClient | None, JobConsole, Statuses, Any], Result]


def deploy(push: Push, settings: Settings, clones: Clones, job: str) -> Result:
    """Check out the pushed commit and deploy what changed since `push.since`; never raises
    for a failed deploy (the statuses and the result say it)."""
    return run_job(push, settings, clones, job, _deploy)


def run_job(push: Push, settings: Settings, clones: Clones, job: str, work: Work) -> Result:
    """Check out `push.sha` and do `work` in it with the action's statuses and console; never
    raises (a failure ends as statuses and a failed result)."""
    console = JobConsole(job)
    console.mask([v for v in (settings.gitea_token,) if v])
    client = gitea_client(settings, console)
    statuses = LinkedStatuses(
        client,
        push.repository,
        push.sha,
        push.environment,
        push.job_page,
        console,
        page=lambda dep: f"{push.pages}/deployments/{dep}",
    )
    covered = [
        PushStatuses(client, push.repository, sha, push.environment, push.job_page, console)
        for sha in push.covered
        if sha != push.sha
    ]
    short = push.sha[:7]
    try:
        statuses.set("pending", f"deploying to {push.environment}")
        for older in covered:
            older.set("pending", f"deploying to {push.environment} with {short}")
        with clones.checkout(push.clone_url, push.sha) as tree:
            result = work(push, settings, client, console, statuses, tree)
    except Exception as e:  # noqa: BLE001 - every failure ends as statuses and a result
        bug = not isinstance(e, BojdeployError)  # its traceback goes to the relay's own log
        report_error(console, statuses, False, e, debug=bug, hint="")
        result = Result(True, [], console.scrub(f"{type(e).__name__}: {e}"))
    try:
        for older in covered:
            if result.failed:
                older.set("failure", f"the deploy with {short} failed: {result.summary}")
            else:
                older.set("success", f"deployed with {short}: {result.summary}")
        return result
    finally:
        if client is not None:
            client.close()


def _deploy(
    push: Push,
    settings: Settings,
    client: GiteaClient | None,
    console: JobConsole,
    statuses: Statuses,
    work: Any,
) -> Result:
    ws = open_workspace([work], branch=push.branch, repository=push.repository)
    owner, _, repo = push.repository.partition("/")
    prepared = engine.prepare(
        ws,
        ws.environment(push.environment),
        settings.environ,
        changed_since=push.since,
        require_secrets=True,
        fallback=(lambda a, b: client.compare(owner, repo, a, b)) if client else None,
        names=push.names,
    )
    environ = settings.environ
    console.mask([v for m in prepared.selected for v in engine.secret_values(m, environ).values()])
    for warning in prepared.warnings:
        console.warning(warning)
    statuses.pending([m.name for m in prepared.selected], f"deploying to {push.environment}")
    started = time.monotonic()
    with open_store(settings.database_url) as store:
        the_plan, run = engine.apply(prepared, store, settings, reporter(console), force=push.force)
    note = not_pruned(the_plan.orphans, len(prepared.selection.deleted), run.outcomes)
    return finished(run.outcomes, time.monotonic() - started, note, statuses)


def finished(outcomes: Sequence[Outcome], seconds: float, note: str, statuses: Statuses) -> Result:
    """Log each outcome, set the final statuses, and say what the job did."""
    for o in outcomes:
        with logs.bound(deployment_id=o.deployment_id, kind=o.kind, name=o.name):
            log.info("%s/%s: %s (%s)", o.kind, o.name, o.status, o.summary)
    overall = describe_run(outcomes, seconds, note)
    statuses.finish(outcomes, overall)
    ids = [o.deployment_id for o in outcomes if o.deployment_id is not None]
    return Result(any(o.status == "failed" for o in outcomes), ids, overall)


def reporter(console: JobConsole) -> Callable[[str, str, str], None]:
    def report(resource: str, level: str, message: str) -> None:
        console.write(level, f"{resource}: {message}" if resource else message)

    return report
