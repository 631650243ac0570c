"""What the CLI's commands share: output, error handling, options, opening the store and the
repository."""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bojdeploy.errors import EXIT_FAILED, BojdeployError, ManifestError, internal_error_line

# click's own control flow (exit codes, usage errors, ^C) passes through the error handling
CLICK_FLOW = (click.exceptions.Exit, click.ClickException, click.Abort)


class Output:
    """Human text or JSON lines on stderr for diagnostics; results go to stdout."""

    def __init__(self, fmt: str, verbose: int):
        self.fmt = fmt
        self.verbose = verbose
        self._json: Any = json_logger_for_cli() if fmt == "json" else None

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


def json_logger_for_cli() -> Any:
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


def get_settings(ctx: click.Context) -> Any:
    from bojdeploy.settings import Settings

    return Settings.from_env(database_url=ctx.obj["database_url"])


def prepare_run(
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


def workspace_at(path: Path | None) -> Any:
    """The repository around `path` (or the current folder), as apply and plan find it."""
    from bojdeploy.engine.workspace import open_workspace

    return open_workspace([path] if path else [], branch=os.environ.get("GITHUB_REF_NAME"))


def print_notes(ctx: click.Context, prepared: Any, plan_: Any) -> None:
    """Tell, under a plan, that applying it to a protected environment would be refused."""
    from bojdeploy.engine.protection import plan_notes

    ws = prepared.workspace
    for note in plan_notes(ws.config, prepared.environment, ws.info.branch, plan_):
        ctx.obj["out"].event("note", note)


def open_db(ctx: click.Context) -> Any:
    from bojdeploy.store import open_store

    return open_store(ctx.obj["database_url"])


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


def progress_reporter(out: Output) -> Any:
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


def publish_metrics(metrics_file: str | None, environment: str, repository: str, run: Any) -> None:
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


def finish_run(run: Any, as_json: bool) -> int:
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
