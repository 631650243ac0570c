"""GET /health (the process answers) and GET /health/ready (database, Gitea, Docker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bojdeploy import __version__
from bojdeploy.engine.probe import ping_docker
from bojdeploy.forge.gitea import GiteaClient
from bojdeploy.frontends.relay.config import RelayConfig

router = APIRouter(tags=["operations"])
TIMEOUT = 3.0  # seconds each check may take


class Alive(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="bojdeploy's version")


class Check(BaseModel):
    """One dependency: whether it answered, and how fast."""

    status: Literal["ok", "error", "not configured"]
    latency_ms: float | None = Field(description="time to answer (None: not checked)")
    error: str | None = None


class Ready(BaseModel):
    """Each dependency; `ok` is false (and the answer 503) when the database is down."""

    ok: bool
    version: str
    database: Check
    gitea: Check
    docker: Check


@router.get("/health", response_model=Alive)
async def health() -> Alive:
    """The process answers (no dependency is checked)."""
    return Alive(version=__version__)


@router.get(
    "/health/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "the database is unreachable"}},
)
async def ready(request: Request) -> JSONResponse:
    """The database, Gitea and Docker, each with its latency; 503 when the database is down."""
    config: RelayConfig = request.app.state.config
    pool = request.app.state.queue.connector.pool
    database, gitea, docker = await asyncio.gather(
        timed(lambda: _database(pool)),
        timed(lambda: asyncio.to_thread(_gitea, config)) if _has_gitea(config) else skipped(),
        timed(lambda: asyncio.to_thread(ping_docker, config.settings, int(TIMEOUT))),
    )
    answer = Ready(
        ok=database.status == "ok", version=__version__, database=database, gitea=gitea,
        docker=docker,
    )  # fmt: skip
    return JSONResponse(answer.model_dump(), status_code=200 if answer.ok else 503)


async def timed(check: Callable[[], Awaitable[object]]) -> Check:
    """Run one check within TIMEOUT seconds."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), TIMEOUT)
    except TimeoutError:
        return Check(status="error", latency_ms=_ms(started), error=f"no answer in {TIMEOUT:g}s")
    except Exception as e:  # noqa: BLE001 - any failure is this dependency's error
        return Check(status="error", latency_ms=_ms(started), error=_reason(e))
    return Check(status="ok", latency_ms=_ms(started))


async def skipped() -> Check:
    """A dependency the relay has no settings for."""
    return Check(status="not configured", latency_ms=None)


async def _database(pool: object) -> None:
    async with pool.connection(timeout=TIMEOUT) as conn:  # type: ignore[attr-defined]
        await conn.execute("SELECT 1")


def _has_gitea(config: RelayConfig) -> bool:
    return bool(config.settings.gitea_url)


def _gitea(config: RelayConfig) -> None:
    url = config.settings.gitea_url or ""
    client = GiteaClient(url, config.settings.gitea_token or "", timeout=TIMEOUT, attempts=1)
    try:
        client.version()
    finally:
        client.close()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _reason(error: Exception) -> str:
    """One line, with no credentials (connection errors never carry the password here)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
