"""`bojdeploy dashboard`: the dashboard's pages, read-only, against any database URL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bojdeploy.errors import UsageError
from bojdeploy.settings import Settings
from bojdeploy.store import open_store


def create_app(database_url: str | None, settings: Settings):  # type: ignore[no-untyped-def]
    """The read-only dashboard: no queue, no buttons, the same pages as the relay's."""
    from fastapi import FastAPI

    from bojdeploy import __version__
    from bojdeploy.frontends.dashboard import actions, web

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = await asyncio.to_thread(open_store, database_url)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(
        title="bojdeploy dashboard",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.dashboard = web.DashboardConfig(gitea_url=settings.gitea_url)
    app.include_router(web.router)
    app.include_router(actions.router)
    return app


def run_dashboard(database_url: str | None, settings: Settings, host: str, port: int) -> None:
    """Serve the read-only dashboard until stopped (the store is opened, and migrated, first)."""
    try:
        import uvicorn
    except ImportError as e:
        raise UsageError(
            "the dashboard needs the relay extra: pip install 'bojdeploy[relay]'"
        ) from e
    open_store(database_url).close()  # a wrong URL or an unreachable database: one line, now
    uvicorn.run(create_app(database_url, settings), host=host, port=port, log_config=None)
