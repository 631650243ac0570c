"""The command line: gathers inputs, calls the engine, prints results, chooses exit codes."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bojdeploy import __version__
from bojdeploy.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    BojdeployError,
    ManifestError,
    internal_error_line,
)

# click's own control flow (exit codes, usage errors, ^C) passes through the error handling
CLICK_FLOW = (click.exceptions.Exit, click.ClickException, click.Abort)


class Output:
    """Human text or JSON lines on stderr for diagnostics; results go to stdout."""

    def __init__(self, fmt: str, verbose: int):
        self.fmt = fmt
        self.verbose = verbose
        self._json: Any = _json_logger() if fmt == "json" else None

    def event(self, level: str, message: str, **fields: Any) -> None:
        """One diagnostic line (a problem, a warning, progress)."""
        if self._json is not None:
            self._json.msg(message, level=level, **fields)
        elif level == "info":
            click.echo(message, err=True)
        else:
            click.echo(f"{level}: {message}", err=True)

    def problems(self, error: ManifestError) -> None:
        """Every problem of an invalid input, one per line, then a summary."""
        for p in error.problems:
            level = "warning" if p.warning else "error"
            self.event(level, str(p), file=p.file, line=p.line, key=p.path)
        n = len([p for p in error.problems if not p.warning])
        self.event("error", f"{n} problem{'s' if n != 1 else ''} found; nothing was deployed")


def _json_logger() -> Any:
    """One JSON object a line on stderr, with the keys of `bojdeploy.logs` (`event`, ...)."""
    from bojdeploy.logs import json_logger

    return json_logger()


@contextmanager
def handled(ctx: click.Context) -> Iterator[None]:
    """Turn bojdeploy errors into clear messages and exit codes (tracebacks only with -v)."""
    out: Output = ctx.obj["out"]
    try:
        yield
    except ManifestError as e:
        out.problems(e)
        ctx.exit(e.exit_code)
    except BojdeployError as e:
        if out.verbose:
            traceback.print_exc()
        out.event("error", str(e))
        ctx.exit(e.exit_code)
    except CLICK_FLOW:
        raise
    except Exception as e:  # noqa: BLE001 - a bug: one line, the traceback only with -v
        if out.verbose:
            traceback.print_exc()
        out.event("error", internal_error_line(e, hint="" if out.verbose else "run with -v"))
        ctx.exit(EXIT_FAILED)


def _settings(ctx: click.Context) -> Any:
    from bojdeploy.settings import Settings

    return Settings.from_env(database_url=ctx.obj["database_url"])


def _prepare(
    ctx: click.Context,
    settings: Any,
    paths: tuple[Path, ...],
    environment: str | None,
    changed_since: str | None,
    require_secrets: bool,
) -> Any:
    """Open the repository, pick the environment, load and select; print warnings."""
    from bojdeploy import engine
    from bojdeploy.engine.workspace import open_workspace

    ws = open_workspace(paths, branch=os.environ.get("GITHUB_REF_NAME"))
    env = ws.environment(environment, hint="pass --env")
    prepared = engine.prepare(
        ws, env, settings.environ, changed_since=changed_since, require_secrets=require_secrets
    )
    for warning in prepared.warnings:
        ctx.obj["out"].event("warning", warning)
    return prepared


def _workspace(path: Path | None) -> Any:
    """The repository around `path` (or the current folder), as apply and plan find it."""
    from bojdeploy.engine.workspace import open_workspace

    return open_workspace([path] if path else [], branch=os.environ.get("GITHUB_REF_NAME"))


def _notes(ctx: click.Context, prepared: Any, plan_: Any) -> None:
    """Tell, under a plan, that applying it to a protected environment would be refused."""
    from bojdeploy.engine.protection import plan_notes

    ws = prepared.workspace
    for note in plan_notes(ws.config, prepared.environment, ws.info.branch, plan_):
        ctx.obj["out"].event("note", note)


def _store(ctx: click.Context) -> Any:
    from bojdeploy.store import open_store

    return open_store(ctx.obj["database_url"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bojdeploy")
@click.option(
    "--database-url",
    envvar="BOJDEPLOY_DATABASE_URL",
    metavar="URL",
    help="postgresql://... or sqlite:///path (default: SQLite in $XDG_STATE_HOME/bojdeploy).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Diagnostics on stderr as text or JSON lines.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Tracebacks on errors; the libraries' log lines (-v: info, -vv: debug: every Docker, "
    "XenAPI and Gitea call).",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, log_format: str, verbose: int) -> None:
    """bojdeploy: GitOps deployments from a Gitea repository to Docker, Swarm and Xen."""
    from bojdeploy import logs

    logs.configure(verbose, log_format)
    ctx.ensure_object(dict)
    ctx.obj.update(database_url=database_url, out=Output(log_format, verbose))


paths_argument = click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
env_option = click.option("--env", "environment", metavar="ENV", help="Target environment.")
allow_delete_option = click.option(
    "--allow-delete",
    is_flag=True,
    help="Allow deletes (prune, VM destroy) in a protected environment.",
)
metrics_option = click.option(
    "--metrics-file",
    envvar="BOJDEPLOY_METRICS_FILE",
    metavar="PATH",
    help="Write this run's metrics here (node_exporter textfile format, e.g. "
    "/var/lib/node_exporter/textfile/bojdeploy.prom); BOJDEPLOY_PUSHGATEWAY_URL pushes them.",
)
since_option = click.option(
    "--changed-since", metavar="REV", help="Only manifests changed since this git revision."
)


@main.command()
@paths_argument
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Validate manifests for every environment they apply to (exit 0 valid, 2 invalid)."""
    from bojdeploy.engine.validate import validate_workspace
    from bojdeploy.engine.workspace import open_workspace

    out: Output = ctx.obj["out"]
    with handled(ctx):
        ws = open_workspace(paths)
        report = validate_workspace(ws, dict(os.environ))
        for warning in report.warnings:
            out.event("warning", str(warning))
        if not ws.manifest_files():
            out.event("warning", ws.nothing_found())
        if report.errors:
            raise ManifestError(report.errors)
        click.echo(report.summary())


@main.command()
@paths_argument
@env_option
@since_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan on stdout.")
@click.option("--offline", is_flag=True, help="Plan against the recorded state; contact no target.")
@click.option("--prune", is_flag=True, default=None, help="Plan deletions of orphaned resources.")
@click.pass_context
def plan(
    ctx: click.Context,
    paths: tuple[Path, ...],
    environment: str | None,
    changed_since: str | None,
    as_json: bool,
    offline: bool,
    prune: bool | None,
) -> None:
    """Show what apply would change, without changing anything."""
    from bojdeploy import engine
    from bojdeploy.core.render import plan_to_dict, plan_to_text

    with handled(ctx):
        settings = _settings(ctx)
        prepared = _prepare(ctx, settings, paths, environment, changed_since, False)
        ws, env = prepared.workspace, prepared.environment
        with _store(ctx) as store:
            result = engine.make_plan_for(prepared, store, settings, offline=offline, prune=prune)
        if as_json:
            data = plan_to_dict(result)
            data["offline"] = offline
            click.echo(json.dumps(data, indent=2))
        else:
            source = "recorded state (offline)" if offline else "the targets"
            header = f"Plan for environment {env} against {source}"
            if ws.info.short_sha:
                header += f" at {ws.info.short_sha}"
            click.echo(plan_to_text(result, header=header, color=sys.stdout.isatty()))
        _notes(ctx, prepared, result)


def _reporter(out: Output) -> Any:
    """Progress lines on stderr: '[container/web] message'."""
    import threading

    lock = threading.Lock()

    def report(resource: str, level: str, message: str) -> None:
        with lock:
            if out.fmt == "json":
                out.event(level, message, resource=resource)
            else:
                prefix = "" if level == "info" else f"{level}: "
                click.echo(f"[{resource}] {prefix}{message}", err=True)

    return report


def _publish(metrics_file: str | None, environment: str, repository: str, run: Any) -> None:
    """The run's metrics to the file and the Pushgateway, when asked for (warnings only)."""
    pushgateway = os.environ.get("BOJDEPLOY_PUSHGATEWAY_URL")
    if not metrics_file and not pushgateway:
        return  # prometheus_client is not even imported
    from bojdeploy.frontends.metrics import publish

    out: Output = click.get_current_context().obj["out"]
    grouping = {"environment": environment, "repository": repository or None}
    publish(
        run.outcomes,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        grouping=grouping,
        warn=lambda message: out.event("warning", message),
    )


def _finish(run: Any, as_json: bool) -> int:
    """Print the outcome of a run and return its exit code."""
    from bojdeploy.frontends.present import outcome_lines

    if as_json:
        click.echo(json.dumps([o.to_dict() for o in run.outcomes], indent=2))
    else:
        click.echo(outcome_lines(run.outcomes))
    out: Output = click.get_current_context().obj["out"]
    for note in run.unrecorded_notes():
        out.event("error", note)
    return int(run.exit_code)


@main.command()
@paths_argument
@env_option
@since_option
@click.option(
    "--prune", is_flag=True, default=None, help="Delete managed resources whose manifest is gone."
)
@click.option(
    "--parallel",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Independent manifests applied at once.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@allow_delete_option
@metrics_option
@click.option("--json", "as_json", is_flag=True, help="Outcomes as JSON on stdout.")
@click.pass_context
def apply(
    ctx: click.Context,
    paths: tuple[Path, ...],
    environment: str | None,
    changed_since: str | None,
    prune: bool | None,
    parallel: int,
    dry_run: bool,
    allow_delete: bool,
    metrics_file: str | None,
    as_json: bool,
) -> None:
    """Deploy: plan against the targets, then apply in dependency order."""
    from bojdeploy import engine
    from bojdeploy.core.render import orphan_note, plan_to_dict, plan_to_text

    out: Output = ctx.obj["out"]
    with handled(ctx):
        settings = _settings(ctx)
        prepared = _prepare(ctx, settings, paths, environment, changed_since, not dry_run)
        env = prepared.environment
        with _store(ctx) as store:
            if dry_run:
                result = engine.make_plan_for(prepared, store, settings, prune=prune)
                if as_json:
                    click.echo(json.dumps(plan_to_dict(result), indent=2))
                else:
                    click.echo(plan_to_text(result, header=f"Dry run for environment {env}"))
                _notes(ctx, prepared, result)
                return
            plan_, run = engine.apply(
                prepared,
                store,
                settings,
                _reporter(out),
                prune=prune,
                parallel=parallel,
                allow_delete=allow_delete,
            )
            if plan_.orphans:
                out.event("warning", orphan_note(plan_))
            _publish(metrics_file, env, prepared.workspace.info.repository, run)
            ctx.exit(_finish(run, as_json))


@main.command()
@click.argument("args", nargs=-1, metavar="[DEPLOYMENT_ID] [PATH]")
@click.option("--name", metavar="NAME", help="Roll back this manifest to its previous config.")
@env_option
@allow_delete_option
@metrics_option
@click.option("--json", "as_json", is_flag=True, help="Outcomes as JSON on stdout.")
@click.pass_context
def rollback(
    ctx: click.Context,
    args: tuple[str, ...],
    name: str | None,
    environment: str | None,
    allow_delete: bool,
    metrics_file: str | None,
    as_json: bool,
) -> None:
    """Redeploy a recorded config: DEPLOYMENT_ID, or --name/--env for the previous one.

    PATH is the deployment repository (default: the one around the current folder): the
    deployment must come from it, and it goes where that deployment was made.
    """
    from bojdeploy.engine.rollback import find_target
    from bojdeploy.engine.rollback import rollback as do_rollback

    out: Output = ctx.obj["out"]
    with handled(ctx):
        deployment_id, path = _rollback_args(args, name, environment)
        settings = _settings(ctx)
        ws = _workspace(path)
        with _store(ctx) as store:
            record = find_target(store, deployment_id, name, environment, ws.info.repository)
            run = do_rollback(
                store,
                settings,
                _reporter(out),
                workspace=ws,
                record=record,
                allow_delete=allow_delete,
            )
            _publish(metrics_file, record.environment, ws.info.repository, run)
            ctx.exit(_finish(run, as_json))


def _rollback_args(
    args: tuple[str, ...], name: str | None, environment: str | None
) -> tuple[int | None, Path | None]:
    """DEPLOYMENT_ID (unless --name) and the optional PATH of `rollback`."""
    from bojdeploy.errors import UsageError

    rest = list(args)
    deployment_id = None
    if name is None and rest and rest[0].removeprefix("#").isdigit():
        deployment_id = int(rest.pop(0).removeprefix("#"))
    if (deployment_id is None) == (name is None):
        raise UsageError("give a DEPLOYMENT_ID, or --name NAME --env ENV")
    if name is not None and not environment:
        raise UsageError("--name needs --env")
    if len(rest) > 1:
        raise UsageError(f"expected at most one PATH (the repository), got {' '.join(rest)}")
    path = Path(rest[0]) if rest else None
    if path is not None and not path.exists():
        raise UsageError(f"{path} does not exist")
    return deployment_id, path


@main.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@env_option
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.pass_context
def status(ctx: click.Context, path: Path | None, environment: str | None, as_json: bool) -> None:
    """Drift: the recorded desired state against what runs (exit 1 when drifted).

    PATH is the deployment repository (default: the one around the current folder): its
    deployments are checked on its targets, as apply reaches them. VMs on an environment's pool
    that bojdeploy does not manage are listed as unmanaged (never drift).
    """
    from bojdeploy.engine.drift import drift_report
    from bojdeploy.frontends.present import drift_lines

    with handled(ctx):
        settings = _settings(ctx)
        ws = _workspace(path)
        with _store(ctx) as store:
            items = drift_report(store, settings, environment, ws, unmanaged=True)
        if as_json:
            click.echo(json.dumps([i.to_dict() for i in items], indent=2))
        else:
            click.echo(drift_lines(items))
        ctx.exit(1 if any(i.drifted for i in items) else 0)


@main.command()
@env_option
@click.option("--name", metavar="NAME", help="Only this manifest name.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.pass_context
def history(
    ctx: click.Context, environment: str | None, name: str | None, limit: int, as_json: bool
) -> None:
    """List recorded deployments, newest first."""
    from bojdeploy.frontends.present import history_table

    with handled(ctx), _store(ctx) as store:
        rows = store.list_deployments(environment=environment, name=name, limit=limit)
        if as_json:
            click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        else:
            click.echo(history_table(rows))


@main.command()
@click.argument("deployment_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.pass_context
def logs(ctx: click.Context, deployment_id: int, as_json: bool) -> None:
    """Show the step logs of one deployment."""
    from bojdeploy.errors import UsageError
    from bojdeploy.frontends.present import log_lines

    with handled(ctx), _store(ctx) as store:
        record = store.get_deployment(deployment_id)
        if record is None:
            raise UsageError(f"no deployment with id {deployment_id}")
        entries = store.get_logs(deployment_id)
        if as_json:
            data = {"deployment": record.to_dict(), "logs": [e.to_dict() for e in entries]}
            click.echo(json.dumps(data, indent=2))
        else:
            click.echo(log_lines(record, entries))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the schema (idempotent)."""
    from bojdeploy.store import default_database_url
    from bojdeploy.store.base import redact_url
    from bojdeploy.store.migrations import load_migrations

    url = ctx.obj["database_url"] or default_database_url()
    with handled(ctx), _store(ctx) as store:
        store.migrate()
        dialect = "sqlite" if url.startswith("sqlite") else "postgres"
        latest = load_migrations(dialect)[-1][0]
        click.echo(f"{redact_url(url)}: schema up to date (migration {latest:03d})")
        if dialect == "postgres" and _queue_schema(url):
            click.echo(f"{redact_url(url)}: the relay's job queue (procrastinate) is ready")


def _queue_schema(url: str) -> bool:
    """Apply procrastinate's schema when the relay extra is installed; whether it is there."""
    try:
        from bojdeploy.frontends.relay.queue import apply_schema
    except ImportError:
        return False
    apply_schema(url)
    return True


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Deploy jobs run at a time in this process (0: HTTP only).",
)
@click.pass_context
def relay(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the Gitea webhook relay (needs PostgreSQL and BOJDEPLOY_WEBHOOK_SECRET)."""
    from bojdeploy.frontends.relay.config import RelayConfig

    with handled(ctx):
        config = RelayConfig.from_env(database_url=ctx.obj["database_url"])
        from bojdeploy.frontends.relay.serve import run_relay

        run_relay(config, host, port, workers, ctx.obj["out"].fmt)


@main.command()
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Deploy jobs run at a time.",
)
@click.pass_context
def worker(ctx: click.Context, concurrency: int) -> None:
    """Run the relay's deploy jobs (on any machine reaching its PostgreSQL)."""
    from bojdeploy.frontends.relay.config import RelayConfig

    with handled(ctx):
        config = RelayConfig.from_env(database_url=ctx.obj["database_url"], need_secret=False)
        from bojdeploy.frontends.relay.serve import run_worker

        run_worker(config, concurrency, ctx.obj["out"].fmt)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int) -> None:
    """Serve the dashboard, read-only, from the database (any URL, SQLite included)."""
    with handled(ctx):
        from bojdeploy.frontends.dashboard.serve import run_dashboard

        run_dashboard(ctx.obj["database_url"], _settings(ctx), host, port)


@main.command()
def schema() -> None:
    """Print the JSON Schema of manifests (for editors)."""
    from bojdeploy.core.schema import manifest_schema

    click.echo(json.dumps(manifest_schema(), indent=2))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    try:
        code = main.main(args=argv, prog_name="bojdeploy", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        return EXIT_INVALID
    except (click.Abort, KeyboardInterrupt):
        click.echo(
            "interrupted; a deployment left half-way is marked failed by the next run", err=True
        )
        return 130
    except Exception as e:  # noqa: BLE001 - outside any command's handling: still one line
        verbose = _verbose(sys.argv[1:] if argv is None else argv)
        if verbose:
            traceback.print_exc()
        line = internal_error_line(e, hint="" if verbose else "run with -v")
        click.echo(f"error: {line}", err=True)
        return EXIT_FAILED
    return code if isinstance(code, int) else EXIT_OK


def _verbose(argv: list[str]) -> bool:
    """Whether the global -v/--verbose option is among `argv` (before any `--`)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            return True
    return False


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run())
