"""The CLI's record, maintenance and server commands: history, logs, db, relay, worker,
dashboard and schema (registered on `bojdeploy.frontends.cli.main`)."""

from __future__ import annotations

import json

import click

from bojdeploy.frontends.cli import _settings, _store, env_option, handled, main


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
