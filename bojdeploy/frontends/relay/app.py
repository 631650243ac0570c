"""The relay's ASGI app: one router per area, the queue opened (and workers run) for its life."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI

from bojdeploy import __version__, logs
from bojdeploy.frontends.dashboard import actions, web
from bojdeploy.frontends.relay import api, buttons, health, metrics, pages, webhook
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.queue import make_app, run_workers
from bojdeploy.store import open_store

log = logging.getLogger("bojdeploy.relay")


def create_app(config: RelayConfig, workers: int = 1) -> FastAPI:
    """The relay: webhooks and pages, with `workers` jobs run at a time in this process."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue = make_app(config.database_url, drift_interval=config.drift_interval)
        app.state.config = config
        app.state.queue = queue
        app.state.store = await asyncio.to_thread(open_store, config.database_url)
        async with queue.open_async():
            running = None
            if workers > 0:
                running = asyncio.create_task(run_workers(queue, config, workers))
            try:
                yield
            finally:
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
                app.state.store.close()
                metrics.process_exited()

    app = FastAPI(title="bojdeploy relay", version=__version__, lifespan=lifespan)
    app.add_middleware(metrics.Timed)
    app.include_router(webhook.router, tags=["webhook"])
    app.include_router(api.router)
    app.include_router(api.writes)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(pages.router, include_in_schema=False)
    app.state.dashboard = web.DashboardConfig(
        gitea_url=config.settings.gitea_url, writes=buttons.writes(config.api_token)
    )
    app.include_router(web.router)
    app.include_router(actions.router)
    return app


def from_env() -> FastAPI:
    """The relay from the environment's settings, for `uvicorn --factory --workers N` (set
    PROMETHEUS_MULTIPROC_DIR to an empty folder so /metrics sums every process)."""
    logs.setup(os.environ.get("BOJDEPLOY_LOG_FORMAT", "text"))
    config = RelayConfig.from_env()
    workers = int(os.environ.get("BOJDEPLOY_RELAY_WORKERS", "1"))
    return create_app(config, workers)
