"""The Gitea Action front end: reads act_runner's environment, calls the engine, reports back."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bojdeploy import engine, logs
from bojdeploy.core.config import CONFIG_FILE
from bojdeploy.core.render import plan_to_markdown, plan_to_text
from bojdeploy.engine.apply import Outcome
from bojdeploy.engine.protection import plan_notes
from bojdeploy.engine.workspace import Compare, Workspace, open_workspace
from bojdeploy.errors import (
    EXIT_FAILED,
    EXIT_OK,
    ForgeError,
    UsageError,
)
from bojdeploy.forge.gitea import GiteaClient
from bojdeploy.frontends.action.inputs import PR_EVENTS, ActionContext, known_secrets, parse_flag
from bojdeploy.frontends.action.io import (
    Console,
    GroupedLog,
    give_back,
    watch,
    write_outputs,
    write_summary,
)
from bojdeploy.frontends.action.status import (
    Statuses,
    deployments_output,
    describe_plan,
    describe_run,
    not_pruned,
    outcomes_markdown,
    report_error,
    run_link,
)
from bojdeploy.frontends.metrics import METRICS_FILE_ENV, PUSHGATEWAY_ENV, publish
from bojdeploy.frontends.present import outcome_lines
from bojdeploy.store import open_store
from bojdeploy.store.base import StateStore

ENV_HINT = "set the environment input (or the dispatch's environment)"
PRUNE_HINT = "set the prune input or bojdeploy.yaml's prune to delete what was left"


class ActionRun:
    """One run of the action: the work the event asks for, done through the engine."""

    def __init__(self, ctx: ActionContext, console: Console):
        self.ctx = ctx
        self.console = console
        self.env = ctx.environ
        self.client = self._client()
        self.statuses = Statuses(None, "", "", "", None, console)  # until the environment is known
        self.result = "failure"
        self.deployments: list[dict[str, Any]] = []
        self.planning = False
        self.settings = ctx.settings()
        self.link: str | None = None  # the run's web page, once Gitea's version is known

    def run(self) -> int:
        """Do the work; the exit code."""
        work = self.ctx.work()
        if work == "redeploy" and not self.ctx.dispatch("name"):
            raise UsageError("redeploy needs the name of the manifest to redeploy")
        dry_run = bool(parse_flag(self.ctx.dispatch("dry-run"), "dry-run"))
        if work == "rollback":
            if dry_run:
                raise UsageError("dry-run is not supported for a rollback")
            return self.rollback()
        if work == "plan" or dry_run:
            return self.plan(force=work == "redeploy")
        return self.apply(force=work == "redeploy")

    def apply(self, *, force: bool) -> int:
        """Deploy the selected manifests of the environment."""
        ws = self._workspace()
        env = self._environment(ws)
        if env is None:
            return EXIT_OK
        self._statuses(env).set("pending", f"deploying to {env}")
        prepared = self._prepare(ws, env, strict=True)
        self.statuses.pending([m.name for m in prepared.selected], f"deploying to {env}")
        started = time.monotonic()
        log = GroupedLog(self.console)
        with self._store() as store, log:
            the_plan, run = engine.apply(
                prepared,
                watch(store, log),
                self.settings,
                log,
                prune=self.ctx.prune(),
                parallel=self.ctx.parallel(),
                force=force,
                allow_delete=self.ctx.allow_delete(),
            )
        note = not_pruned(the_plan.orphans, len(prepared.selection.deleted), run.outcomes)
        return self._finish(env, run.outcomes, time.monotonic() - started, note)

    def plan(self, *, force: bool) -> int:
        """Validate and plan against the targets; change nothing; report the plan."""
        self.planning = True
        ws = self._workspace()
        env = self._environment(ws)
        if env is None:
            return EXIT_OK
        self._statuses(env).set("pending", f"planning {env}")
        prepared = self._prepare(ws, env, strict=False)
        with self._store() as store:
            the_plan = engine.make_plan_for(
                prepared, store, self.settings, prune=self.ctx.prune(), force=force
            )
        where = f" at {ws.info.short_sha}" if ws.info.short_sha else ""
        self.console.line(plan_to_text(the_plan, header=f"Plan for environment {env}{where}"))
        markdown = f"### bojdeploy plan for `{env}`{where}\n\n{plan_to_markdown(the_plan)}"
        markdown += "".join(f"\n- warning: {w}" for w in prepared.warnings)
        notes = plan_notes(ws.config, env, ws.info.branch, the_plan)
        for note in notes:
            self.console.warning(note)
        markdown += "".join(f"\n- note: {n}" for n in notes)
        write_summary(self.env, markdown)
        self._comment(env, markdown)
        self.statuses.set("success", describe_plan(the_plan))
        self.result = "success" if the_plan.has_changes else "unchanged"
        return EXIT_OK

    def rollback(self) -> int:
        """Redeploy a recorded config, by deployment id or by manifest name."""
        from bojdeploy.engine.rollback import find_target, rollback

        dep_id, name = self.ctx.deployment_id(), self.ctx.dispatch("name")
        if (dep_id is None) == (not name):
            raise UsageError("rollback needs either deployment-id or name")
        ws = self._workspace()  # its targets, branch and repository decide where and whether
        env = self.ctx.dispatch("environment") or None
        if name and not env:
            env = ws.environment(None, hint=ENV_HINT)
        with self._store() as store:
            target = find_target(store, dep_id, name or None, env, ws.info.repository)
            what = f"rolling back to deployment #{target.id}"
            self._statuses(target.environment).set("pending", f"{target.name}: {what}")
            self.statuses.pending([target.name], what)
            started = time.monotonic()
            run = rollback(
                store,
                self.settings,
                GroupedLog(self.console),
                workspace=ws,
                record=target,
                allow_delete=self.ctx.allow_delete(),
            )
        return self._finish(target.environment, run.outcomes, time.monotonic() - started)

    def _finish(self, env: str, outcomes: Sequence[Outcome], seconds: float, note: str = "") -> int:
        """Print, report and record the outcomes (`note`: what was left alone); the exit code."""
        self.console.end_group()
        self.console.line(outcome_lines(outcomes))
        if note:
            self.console.warning(note + (f" ({PRUNE_HINT})" if "(prune is off)" in note else ""))
        overall = describe_run(outcomes, seconds, note)
        self.statuses.finish(outcomes, overall)
        failed = any(o.status == "failed" for o in outcomes)
        changed = any(o.status == "completed" for o in outcomes)
        self.result = "failure" if failed else "success" if changed else "unchanged"
        self.deployments = deployments_output(outcomes)
        self._publish(env, outcomes)
        title = f"bojdeploy: {env}" + (f" at {self.ctx.sha[:7]}" if self.ctx.sha else "")
        write_summary(self.env, outcomes_markdown(title, outcomes, overall))
        return EXIT_FAILED if failed else EXIT_OK

    def _publish(self, env: str, outcomes: Sequence[Outcome]) -> None:
        """The run's metrics to BOJDEPLOY_METRICS_FILE and BOJDEPLOY_PUSHGATEWAY_URL, if set."""
        metrics_file = self.env.get(METRICS_FILE_ENV)
        pushgateway = self.env.get(PUSHGATEWAY_ENV)
        if metrics_file or pushgateway:
            publish(
                outcomes,
                metrics_file=metrics_file,
                pushgateway=pushgateway,
                grouping={"environment": env, "repository": self.ctx.repository or None},
                warn=self.console.warning,
            )

    def _environment(self, ws: Workspace) -> str | None:
        """The environment to work on; None (a notice) when a push's or pull request's branch
        maps to none: such branches are simply not deployed."""
        requested = self.ctx.dispatch("environment") or None
        branch = ws.info.branch
        automatic = self.ctx.event_name in ("push", *PR_EVENTS)
        if requested or not automatic or not branch or ws.config.environment_for_branch(branch):
            return ws.environment(requested, hint=ENV_HINT)
        message = (
            f"branch {branch!r} maps to no environment in {CONFIG_FILE}: nothing to do "
            "(set the environment input to deploy it anyway)"
        )
        self.console.notice(message)
        write_summary(self.env, f"### bojdeploy: nothing to do\n\n{message}\n")
        self.result = "unchanged"  # nothing to do is not a change
        return None

    def _prepare(self, ws: Workspace, env: str, *, strict: bool) -> engine.Prepared:
        """Load and select (push: what changed since `before`), mask secrets, warn."""
        name = self.ctx.dispatch("name")
        prepared = engine.prepare(
            ws,
            env,
            self.settings.environ,
            changed_since=self.ctx.changed_since(),
            require_secrets=strict,
            fallback=self._compare(),
            names=[name] if name else (),
        )
        self.console.mask(prepared.secret_texts)
        for warning in prepared.warnings:
            self.console.warning(warning)
        return prepared

    def _compare(self) -> Compare | None:
        """Gitea's compare API, for change detection when `before` is not in the clone."""
        if self.client is None:
            return None
        owner, _, repo = self.ctx.repository.partition("/")
        client = self.client
        return lambda before, after: client.compare(owner, repo, before, after)

    def _workspace(self) -> Workspace:
        """The checked-out repository, with the manifests input and the compare fallback."""
        ws = open_workspace(
            [self.ctx.workspace], branch=self.ctx.branch(), repository=self.ctx.repository or None
        )
        patterns = self.ctx.manifest_patterns()
        if patterns:
            config = ws.config.model_copy(update={"manifests": patterns})
            ws = dataclasses.replace(ws, config=config)
        return ws

    def _client(self) -> GiteaClient | None:
        token = self.ctx.inputs["token"]
        if token.startswith("${{"):  # action.yml's default, not interpolated outside act_runner
            token = ""
        token = token or self.env.get("BOJDEPLOY_GITEA_TOKEN", "")
        if token and self.ctx.server_url:
            return GiteaClient(self.ctx.server_url, token, warn=self.console.warning)
        self.console.warning("no token input: commit statuses and PR comments are skipped")
        return None

    def _statuses(self, environment: str) -> Statuses:
        self.statuses = Statuses(
            self.client,
            self.ctx.repository,
            self.ctx.sha,
            environment,
            self._run_link(),
            self.console,
        )
        return self.statuses

    def _run_link(self) -> str | None:
        """The run's web page for statuses (asks Gitea its version once per run)."""
        if self.link is None and self.client is not None and self.ctx.repository:
            base = f"{self.ctx.server_url}/{self.ctx.repository}"
            self.link = run_link(self.client, base, self.env, self.console)
        return self.link

    def _store(self) -> StateStore:
        if not self.settings.database_url:
            self.console.warning(
                "no database-url: the state goes to an SQLite file inside the action container "
                "and is lost when it ends (history, rollbacks and locks need a shared database)"
            )
        return open_store(self.settings.database_url)

    def _comment(self, env: str, markdown: str) -> None:
        """Post or update the plan comment of the pull request (when asked to)."""
        number = self.ctx.pr_number()
        if not (self.ctx.flag("comment") and number and self.client is not None):
            return
        owner, _, repo = self.ctx.repository.partition("/")
        body = self.console.scrub(markdown)
        try:
            self.client.upsert_comment(owner, repo, number, f"<!-- bojdeploy:{env} -->", body)
        except ForgeError as e:
            self.console.warning(f"could not post the plan comment: {e}")


def debug_logging(env: Mapping[str, str]) -> bool:
    """Debug logging is on: RUNNER_DEBUG=1 (a re-run with debug logging, or set by hand) or
    the ACTIONS_STEP_DEBUG=true variable that turns it on for every run."""
    return env.get("RUNNER_DEBUG") == "1" or env.get("ACTIONS_STEP_DEBUG", "").lower() == "true"


def main(environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> int:
    """Run the action with act_runner's environment; the exit code (0, 1, 2 or 3)."""
    env = dict(os.environ if environ is None else environ)
    started = time.time()
    console = Console(stream)
    console.mask(known_secrets(env))
    # debug logging on: every Docker, XenAPI and Gitea call in the step log, scrubbed
    logs.configure(2 if debug_logging(env) else 0, write=console.line)
    run = None
    try:
        run = ActionRun(ActionContext.from_env(env), console)
        return run.run()
    except Exception as e:  # noqa: BLE001 - every failure must end as statuses and an exit code
        debug = debug_logging(env)
        statuses = run.statuses if run is not None else None
        return report_error(console, statuses, run is not None and run.planning, e, debug)
    finally:
        console.end_group()
        outputs = {
            "result": run.result if run else "failure",
            "deployments": json.dumps(run.deployments if run else []),
        }
        write_outputs(env, outputs)
        if run is not None and run.client is not None:
            run.client.close()
        give_back(console, Path(env.get("GITHUB_WORKSPACE") or "."), started)
