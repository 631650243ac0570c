"""The command line: gathers inputs, calls the engine, prints results, chooses exit codes."""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
from pathlib import Path

import click

from bojdeploy import __version__
from bojdeploy.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    ManifestError,
    internal_error_line,
)
from bojdeploy.frontends.cli_base import (
    Output,
    allow_delete_option,
    env_option,
    finish_run,
    get_settings,
    handled,
    metrics_option,
    open_db,
    paths_argument,
    prepare_run,
    print_notes,
    progress_reporter,
    publish_metrics,
    since_option,
)

SERVERS = frozenset({"relay", "worker", "dashboard"})  # long-running: Python's usual collection
ONE_SHOT_GC_THRESHOLD = 20_000


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

    if ctx.invoked_subcommand not in SERVERS:
        # A one-shot run allocates millions of short-lived objects while loading, few of them
        # in cycles: fewer young-generation collections save 5-10 % of a large validate.
        gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *gc.get_threshold()[1:])
        # pydantic otherwise scans every installed package's metadata for plugins
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    logs.configure(verbose, log_format)
    ctx.ensure_object(dict)
    ctx.obj.update(database_url=database_url, out=Output(log_format, verbose))


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
        settings = get_settings(ctx)
        prepared = prepare_run(ctx, settings, paths, environment, changed_since, False)
        ws, env = prepared.workspace, prepared.environment
        with open_db(ctx) as store:
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
        print_notes(ctx, prepared, result)


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
        settings = get_settings(ctx)
        prepared = prepare_run(ctx, settings, paths, environment, changed_since, not dry_run)
        env = prepared.environment
        with open_db(ctx) as store:
            if dry_run:
                result = engine.make_plan_for(prepared, store, settings, prune=prune)
                if as_json:
                    click.echo(json.dumps(plan_to_dict(result), indent=2))
                else:
                    click.echo(plan_to_text(result, header=f"Dry run for environment {env}"))
                print_notes(ctx, prepared, result)
                return
            plan_, run = engine.apply(
                prepared,
                store,
                settings,
                progress_reporter(out),
                prune=prune,
                parallel=parallel,
                allow_delete=allow_delete,
            )
            if plan_.orphans:
                out.event("warning", orphan_note(plan_))
            publish_metrics(metrics_file, env, prepared.workspace.info.repository, run)
            ctx.exit(finish_run(run, as_json))


from bojdeploy.frontends import cli_ops  # noqa: E402, F401  (registers its commands on main)


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
