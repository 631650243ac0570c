"""`bojdeploy relay` and `bojdeploy worker`: check the settings and the schema, then run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.queue import apply_schema, make_app, run_workers, stalled_after
from bojdeploy.store import open_store


def prepare_database(config: RelayConfig) -> None:
    """Check the worker settings, apply bojdeploy's migrations and procrastinate's schema
    (idempotent)."""
    stalled_after(config.settings.environ)
    open_store(config.database_url).close()
    apply_schema(config.database_url)


def run_relay(config: RelayConfig, host: str, port: int, workers: int) -> None:
    """Serve the relay until stopped."""
    import uvicorn

    from bojdeploy.frontends.relay.app import create_app

    prepare_database(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(config, workers), host=host, port=port, log_level="info")


def run_worker(config: RelayConfig, concurrency: int) -> None:
    """Run deploy jobs until stopped."""
    prepare_database(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_work(config, concurrency))


async def _work(config: RelayConfig, concurrency: int) -> None:
    app = make_app(config.database_url)
    async with app.open_async():
        worker = asyncio.create_task(run_workers(app, config, concurrency))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await worker
