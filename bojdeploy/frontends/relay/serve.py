"""`bojdeploy relay` and `bojdeploy worker`: check the settings and the schema, then run."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from bojdeploy import logs
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.housekeeping import keep_hours
from bojdeploy.frontends.relay.queue import apply_schema, make_app, run_workers, stalled_after
from bojdeploy.store import open_store


def prepare_database(config: RelayConfig) -> None:
    """Check the worker settings, apply bojdeploy's migrations and procrastinate's schema
    (idempotent)."""
    stalled_after(config.settings.environ)
    keep_hours(config.settings.environ)
    open_store(config.database_url).close()
    apply_schema(config.database_url)


def run_relay(
    config: RelayConfig, host: str, port: int, workers: int, log_format: str = "text"
) -> None:
    """Serve the relay until stopped."""
    import uvicorn

    from bojdeploy.frontends.relay.app import create_app

    logs.setup(log_format)
    prepare_database(config)
    uvicorn.run(create_app(config, workers), host=host, port=port, log_config=None)


def run_worker(config: RelayConfig, concurrency: int, log_format: str = "text") -> None:
    """Run deploy jobs until stopped."""
    logs.setup(log_format)
    prepare_database(config)
    asyncio.run(_work(config, concurrency))


async def _work(config: RelayConfig, concurrency: int) -> None:
    app = make_app(config.database_url, drift_interval=config.drift_interval)
    async with app.open_async():
        worker = asyncio.create_task(run_workers(app, config, concurrency))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await worker
