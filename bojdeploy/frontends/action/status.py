"""Commit statuses and the outcome table of an action run; status calls never fail a deploy."""

from __future__ import annotations

import html
import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from bojdeploy.core.plan import Action, Observed, Plan
from bojdeploy.engine.apply import Outcome
from bojdeploy.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    BojdeployError,
    ForgeError,
    ManifestError,
    internal_error_line,
)
from bojdeploy.forge.gitea import GiteaClient
from bojdeploy.frontends.action.io import Console

MAX_DESCRIPTION = 140
DEBUG_HINT = "re-run with debug logging (RUNNER_DEBUG=1)"
_STATE = {"completed": "success", "unchanged": "success", "failed": "failure"}


def shorten(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """The first line of `text`, cut to `limit` characters with an ellipsis."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def describe_outcome(outcome: Outcome) -> str:
    """A status description: 'replaced container web with ...:2 in 3.2s', 'failed: ...'."""
    if outcome.status == "failed":
        return shorten(f"failed: {outcome.error or outcome.summary}")
    if outcome.status == "unchanged":
        return "unchanged: already deployed"
    return shorten(outcome.summary)


def counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """How many resources were deployed, deleted, unchanged and failed (a deletion is no deploy)."""
    done = [o for o in outcomes if o.status == "completed"]
    return {
        "deployed": sum(o.action != "delete" for o in done),
        "deleted": sum(o.action == "delete" for o in done),
        "unchanged": sum(o.status == "unchanged" for o in outcomes),
        "failed": sum(o.status == "failed" for o in outcomes),
    }


def describe_run(outcomes: Sequence[Outcome], seconds: float, note: str = "") -> str:
    """The overall description: '2 deployed, 1 unchanged, 1 failed (web) in 5.1s[; note]'."""
    if not outcomes:
        return shorten(note or "nothing to deploy: no manifest changed")
    count = counts(outcomes)
    parts = [f"{count[k]} {k}" for k in ("deployed", "deleted", "unchanged") if count[k]]
    failed = [o.name for o in outcomes if o.status == "failed"]
    if failed:
        parts.append(f"{len(failed)} failed ({', '.join(failed)})")
    return shorten(f"{', '.join(parts)} in {seconds:.1f}s" + (f"; {note}" if note else ""))


def not_pruned(orphans: Sequence[Observed], deleted: int, outcomes: Sequence[Outcome]) -> str:
    """What a run left of deleted manifests: '1 manifest deleted; not pruned (prune is off):
    container web still runs' ('' when nothing is left and no manifest was deleted)."""
    head = (
        f"{deleted} manifest{'s' * (deleted != 1)} deleted"
        if deleted
        else f"{len(orphans)} managed resource{'s' * (len(orphans) != 1)} without a manifest"
    )
    if orphans:
        names = ", ".join(f"{o.kind} {o.name or o.resource_name}" for o in orphans)
        return f"{head}; not pruned (prune is off): {names} still run{'s' * (len(orphans) == 1)}"
    if deleted and not outcomes:  # (a moved manifest is an added one too: never this case)
        return f"{head}; nothing of {'it' if deleted == 1 else 'them'} was running"
    return ""


def describe_plan(plan: Plan) -> str:
    """A plan status: '2 to create, 1 to update', 'no changes (3 unchanged)', plus what prune
    would leave."""
    changes = [
        f"{n} to {action.value}"
        for action, n in plan.counts().items()
        if n and action is not Action.UNCHANGED
    ]
    text = ", ".join(changes) or f"no changes ({plan.counts()[Action.UNCHANGED]} unchanged)"
    if plan.orphans:
        names = ", ".join(f"{o.kind} {o.name or o.resource_name}" for o in plan.orphans)
        text += f"; not pruned (prune is off): {names}"
    return shorten(text)


def deployments_output(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The `deployments` output: id, name, kind, action (a deletion is `delete`) and status."""
    keys = ("deployment_id", "name", "kind", "action", "status")
    return [{k.removeprefix("deployment_"): getattr(o, k) for k in keys} for o in outcomes]


def result_word(outcome: Outcome) -> str:
    """The result column: completed, deleted, unchanged or failed."""
    if outcome.status == "completed" and outcome.action == "delete":
        return "deleted"
    return outcome.status


def run_link(client: GiteaClient, base: str, env: Mapping[str, str], console: Console) -> str:
    """The web page of this run; `base` is {server}/{owner}/{repo}.

    Gitea up to 1.25 addresses a run by its number within the repository (GITHUB_RUN_NUMBER),
    1.26 on by its id (GITHUB_RUN_ID); when Gitea's version cannot be told, the repository's
    Actions page (rather than a link that may lead to another run).
    """
    try:
        version = client.version()
    except ForgeError as e:
        console.line(f"cannot tell Gitea's version ({e}): status links lead to {base}/actions")
        return f"{base}/actions"
    by_id = runs_by_id(version)
    run = "" if by_id is None else env.get("GITHUB_RUN_ID" if by_id else "GITHUB_RUN_NUMBER", "")
    if not run:
        console.line(f"cannot link a run of Gitea {version}: status links lead to {base}/actions")
        return f"{base}/actions"
    return f"{base}/actions/runs/{run}"


def runs_by_id(version: str) -> bool | None:
    """Whether a Gitea of `version` addresses runs by id (1.26 on); None when unknown.

    Forgejo reports '11.0.1+gitea-1.22.0': the Gitea it is compatible with decides.
    """
    gitea = version.rpartition("+gitea-")[2]
    match = re.match(r"v?(\d+)\.(\d+)", gitea.strip())
    if match is None:
        return None
    return (int(match[1]), int(match[2])) >= (1, 26)


def outcomes_markdown(title: str, outcomes: Sequence[Outcome], overall: str) -> str:
    """A markdown table of the outcomes, for the job summary."""
    lines = [f"### {_cell(title)}", ""]
    if outcomes:
        lines += [
            "| Result | Kind | Name | Deployment | Details |",
            "| --- | --- | --- | --- | --- |",
        ]
        for o in outcomes:
            ident = f"#{o.deployment_id}" if o.deployment_id else "-"
            cells = [result_word(o), o.kind, o.name, ident, describe_outcome(o)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    lines.append(f"**{_cell(overall)}**")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


class Statuses:
    """The commit statuses of one environment: `bojdeploy/<env>` and `bojdeploy/<env>/<name>`."""

    def __init__(
        self,
        client: GiteaClient | None,
        repository: str,
        sha: str,
        environment: str,
        target_url: str | None,
        console: Console,
    ):
        self.client = client if repository.count("/") == 1 and sha else None
        self.owner, _, self.repo = repository.partition("/")
        self.sha = sha
        self.environment = environment
        self.target_url = target_url
        self.console = console
        self.open: list[str] = []  # manifests still pending

    def context(self, name: str | None = None) -> str:
        """The status context of the environment, or of one manifest in it."""
        base = f"bojdeploy/{self.environment}"
        return f"{base}/{name}" if name else base

    def set(self, state: str, description: str, name: str | None = None) -> None:
        """Set one status; a failing call is logged as a warning, never raised."""
        if name in self.open and state != "pending":
            self.open.remove(name)
        if self.client is None:
            return
        context = self.context(name)
        try:
            self.client.set_status(
                self.owner,
                self.repo,
                self.sha,
                state,
                context,
                shorten(self.console.scrub(description)),
                self.target_url,
            )
        except ForgeError as e:
            self.console.warning(f"could not set commit status {context}: {e}")

    def pending(self, names: Sequence[str], description: str) -> None:
        """Mark these manifests pending."""
        for name in names:
            self.open.append(name)
            self.set("pending", description, name)

    def finish(self, outcomes: Sequence[Outcome], overall: str) -> None:
        """Final statuses from the outcomes, then the overall one (`overall` describes it)."""
        for o in outcomes:  # a fleet's named host: `bojdeploy/<env>/<name>@<host>`
            name = f"{o.name}@{o.host}" if getattr(o, "host", "") else o.name
            self.set(_STATE.get(o.status, "failure"), describe_outcome(o), name)
        for name in list(self.open):  # a manifest on named hosts only: its hosts summed up
            mine = [o for o in outcomes if o.name == name]
            if mine:
                bad = [o for o in mine if o.status == "failed"]
                what = f"failed on {len(bad)} of {len(mine)} hosts" if bad else "done on every host"
                self.set("failure" if bad else "success", what, name)
        failed = any(o.status == "failed" for o in outcomes)
        self.set("failure" if failed else "success", overall)

    def abort(self, state: str, message: str) -> None:
        """The run stopped: every pending manifest and the environment get `state`."""
        for name in list(self.open):
            self.set(state, f"not deployed: {message}", name)
        self.set(state, message)


def report_error(
    console: Console,
    statuses: Statuses | None,
    planning: bool,
    error: Exception,
    debug: bool,
    hint: str = DEBUG_HINT,
) -> int:
    """Print an error, set the statuses it leaves open, and return the exit code.

    An unexpected exception (a bug) is one `::error::` line ending with `hint`; its traceback is
    printed only with `debug` (in the action: debug logging on, RUNNER_DEBUG=1).
    """
    if debug:
        console.line(traceback.format_exc())
    if isinstance(error, ManifestError):
        for p in error.problems:
            (console.warning if p.warning else console.error)(str(p))
        n = sum(not p.warning for p in error.problems)
        message = f"{n} problem{'s' * (n != 1)} in the manifests; nothing deployed"
        code = EXIT_INVALID
    elif isinstance(error, BojdeployError):
        message, code = str(error), error.exit_code
        console.error(message)
    else:
        message, code = internal_error_line(error), EXIT_FAILED
        console.error(internal_error_line(error, hint="" if debug else hint))
    if statuses is not None:
        failed = code == EXIT_FAILED or (planning and code == EXIT_INVALID)
        statuses.abort("failure" if failed else "error", message)
    return code
