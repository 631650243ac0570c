"""Commit statuses and the outcome table of an action run; status calls never fail a deploy."""

from __future__ import annotations

import html
from collections.abc import Sequence

from bojdeploy.action_io import Console
from bojdeploy.deploy import Outcome
from bojdeploy.errors import ForgeError
from bojdeploy.forge.gitea import GiteaClient

MAX_DESCRIPTION = 140
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


def describe_run(outcomes: Sequence[Outcome], seconds: float) -> str:
    """The overall description: '2 deployed, 1 unchanged, 0 failed in 5.1s'."""
    if not outcomes:
        return "nothing to deploy: no manifest changed"
    count = {s: sum(o.status == s for o in outcomes) for s in ("completed", "unchanged", "failed")}
    text = f"{count['completed']} deployed, {count['unchanged']} unchanged"
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        text += f", {len(failed)} failed ({', '.join(o.name for o in failed)})"
    return shorten(f"{text} in {seconds:.1f}s")


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
            cells = [o.status, o.kind, o.name, ident, describe_outcome(o)]
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

    def finish(self, outcomes: Sequence[Outcome], seconds: float) -> None:
        """Final statuses from the outcomes, then the overall one."""
        for o in outcomes:
            self.set(_STATE.get(o.status, "failure"), describe_outcome(o), o.name)
        failed = any(o.status == "failed" for o in outcomes)
        self.set("failure" if failed else "success", describe_run(outcomes, seconds))

    def abort(self, state: str, message: str) -> None:
        """The run stopped: every pending manifest and the environment get `state`."""
        for name in list(self.open):
            self.set(state, f"not deployed: {message}", name)
        self.set(state, message)
