"""The CLI's other commands: rollback, status, history, logs, db, relay, worker, dashboard
and schema (registered on `bojdeploy.frontends.cli.main`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bojdeploy.frontends.cli import main
from bojdeploy.frontends.cli_base import (
    Output,
    allow_delete_option,
    env_option,
    finish_run,
    get_settings,
    handled,
    metrics_option,
    open_db,
    progress_reporter,
    publish_metrics,
    workspace_at,
)


@main.command()
@click.argument("args", nargs=-1, metavar="[DEPLOYMENT_ID] [PATH]")
@click.option("--name", metavar="NAME", help="Roll back this manifest to its previous config.")
@click.option(
    "--host",
    metavar="HOST",
    help="With --name on a fleet: the host to roll back ('default': the environment's own).",
)
@env_option
@allow_delete_option
@metrics_option
@click.option("--json", "as_json", is_flag=True, help="Outcomes as JSON on stdout.")
@click.pass_context
def rollback(
    ctx: click.Context,
    args: tuple[str, ...],
    name: str | None,
    host: str | None,
    environment: str | None,
    allow_delete: bool,
    metrics_file: str | None,
    as_json: bool,
) -> None:
    """Redeploy a recorded config: DEPLOYMENT_ID, or --name/--env for the previous one.

    PATH is the deployment repository (default: the one around the current folder): the
    deployment must come from it, and it goes where that deployment was made. A manifest
    deployed on several hosts of a fleet needs --host with --name.
    """
    from bojdeploy.engine.rollback import find_target
    from bojdeploy.engine.rollback import rollback as do_rollback

    out: Output = ctx.obj["out"]
    with handled(ctx):
        deployment_id, path = _rollback_args(args, name, environment, host)
        settings = get_settings(ctx)
        ws = workspace_at(path)
        with open_db(ctx) as store:
            record = find_target(
                store, deployment_id, name, environment, ws.info.repository, host=host
            )
            run = do_rollback(
                store,
                settings,
                progress_reporter(out),
                workspace=ws,
                record=record,
                allow_delete=allow_delete,
            )
            publish_metrics(metrics_file, record.environment, ws.info.repository, run)
            ctx.exit(finish_run(run, as_json))


def _rollback_args(
    args: tuple[str, ...], name: str | None, environment: str | None, host: str | None = None
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
    if host is not None and name is None:
        raise UsageError("--host goes with --name (a deployment id names its host already)")
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
        settings = get_settings(ctx)
        ws = workspace_at(path)
        with open_db(ctx) as store:
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

    with handled(ctx), open_db(ctx) as store:
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

    with handled(ctx), open_db(ctx) as store:
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
    with handled(ctx), open_db(ctx) as store:
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

        run_dashboard(ctx.obj["database_url"], get_settings(ctx), host, port)


@main.command()
def schema() -> None:
    """Print the JSON Schema of manifests (for editors)."""
    from bojdeploy.core.schema import manifest_schema

    click.echo(json.dumps(manifest_schema(), indent=2))
