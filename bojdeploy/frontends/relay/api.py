"""The REST API under /api/v1 (DESIGN §8): deployment history, jobs, redeploy and rollback.

Reads are open and go through the store. Writes need `Authorization: Bearer <API token>`
(compared in constant time); without BOJDEPLOY_API_TOKEN the relay refuses every write.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from bojdeploy.engine.rollback import same_repository
from bojdeploy.frontends.relay import manual
from bojdeploy.frontends.relay.config import API_TOKEN_VAR, RelayConfig
from bojdeploy.frontends.relay.jobs import JobOut, read_job
from bojdeploy.store.base import Deployment, StateStore

MAX_ID = 2**53 - 1  # ids exact in every JSON reader
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
REPOSITORY = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
STATUS = r"^[a-z_]+$"
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class Problem(BaseModel):
    """An error: what went wrong, in one line."""

    detail: str


class DeploymentOut(BaseModel):
    """One recorded deployment of one target (its config holds secret references, no values)."""

    id: int
    deployment_type: str
    name: str
    environment: str
    status: str
    git_commit: str | None
    git_branch: str | None
    git_repository: str | None
    config: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    error_message: str | None
    rollback_from: int | None
    reason: str | None
    config_hash: str | None
    manifest: str | None


class DeploymentPage(BaseModel):
    """Deployments, newest first; ask for `?before_id=<next_before_id>` for the next page."""

    items: list[DeploymentOut]
    next_before_id: int | None


class LogOut(BaseModel):
    """One log line of a deployment."""

    id: int
    deployment_id: int
    timestamp: datetime
    level: str
    message: str
    metadata: dict[str, Any] | None


class RedeployIn(BaseModel):
    """Apply one manifest again, at the commit last deployed for its repository+environment."""

    repository: str = Field(pattern=REPOSITORY, max_length=500, examples=["infra/deployments"])
    environment: str = Field(pattern=NAME, max_length=50, examples=["production"])
    name: str = Field(pattern=NAME, max_length=255, examples=["web"])


class RollbackIn(BaseModel):
    """Redeploy the config a past deployment recorded."""

    deployment_id: int = Field(ge=1, le=MAX_ID)


class Queued(BaseModel):
    """The job that will do it, and its page."""

    job_id: int
    url: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such id"}}
WRITE: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not JSON"},
    401: {"model": Problem, "description": "missing or wrong bearer token"},
    403: {"model": Problem, "description": f"writes are disabled ({API_TOKEN_VAR} unset)"},
    404: {"model": Problem, "description": "nothing to redeploy or roll back"},
    409: {"model": Problem, "description": "not possible through this relay"},
}


def bearer(request: Request) -> None:
    """Refuse a write without the API token (403 when the relay has none)."""
    config: RelayConfig = request.app.state.config
    if config.api_token is None:
        raise HTTPException(403, f"writes are disabled: {API_TOKEN_VAR} is not set on the relay")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), config.api_token.encode()
    ):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


router = APIRouter(prefix="/api/v1", tags=["api"])
writes = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(bearer)])


def store_of(request: Request) -> StateStore:
    """The relay's store (history reads)."""
    return request.app.state.store  # type: ignore[no-any-return]


async def found(request: Request, deployment_id: int) -> Deployment:
    """A deployment, or 404."""
    record = await asyncio.to_thread(store_of(request).get_deployment, deployment_id)
    if record is None:
        raise HTTPException(404, f"no deployment {deployment_id}")
    return record


@router.get("/deployments", response_model=DeploymentPage)
async def list_deployments(
    request: Request,
    environment: Annotated[str | None, Query(pattern=NAME, max_length=50)] = None,
    name: Annotated[str | None, Query(pattern=NAME, max_length=255)] = None,
    status: Annotated[str | None, Query(pattern=STATUS, max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> DeploymentPage:
    """Deployments, newest first, filtered; paged by `before_id`."""
    rows = await asyncio.to_thread(
        store_of(request).list_deployments,
        environment=environment,
        name=name,
        status=status,
        limit=limit + 1,
        before_id=before_id,
    )
    more = len(rows) > limit
    items = [DeploymentOut(**r.to_dict()) for r in rows[:limit]]
    return DeploymentPage(items=items, next_before_id=items[-1].id if more else None)


@router.get("/deployments/{deployment_id}", response_model=DeploymentOut, responses=NOT_FOUND)
async def get_deployment(request: Request, deployment_id: Id) -> DeploymentOut:
    """One deployment."""
    return DeploymentOut(**(await found(request, deployment_id)).to_dict())


@router.get("/deployments/{deployment_id}/logs", response_model=list[LogOut], responses=NOT_FOUND)
async def get_logs(request: Request, deployment_id: Id) -> list[LogOut]:
    """A deployment's log lines, in the order they were written."""
    await found(request, deployment_id)
    lines = await asyncio.to_thread(store_of(request).get_logs, deployment_id)
    return [LogOut(**line.to_dict()) for line in lines]


@router.get("/jobs/{job_id}", response_model=JobOut, responses=NOT_FOUND)
async def get_job(request: Request, job_id: Id) -> JobOut:
    """One queued job: its state and the pushes or requests it covers."""
    job = await read_job(request.app.state.queue.connector.pool, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@writes.post("/redeploy", status_code=202, response_model=Queued, responses=WRITE)
async def redeploy(request: Request, body: RedeployIn) -> Queued:
    """Queue a redeploy of one manifest (applied even when unchanged)."""
    rows = await asyncio.to_thread(
        store_of(request).list_deployments, environment=body.environment, name=body.name, limit=200
    )
    if not any(same_repository(r.git_repository or "", body.repository) for r in rows):
        raise HTTPException(
            404, f"no deployment of {body.name!r} in {body.environment} from {body.repository}"
        )
    reason = f"redeploy of {body.name} requested through the API"
    pair = (body.repository, body.environment)
    return await _queue(request, "redeploy", pair, reason, name=body.name)


@writes.post("/rollback", status_code=202, response_model=Queued, responses=WRITE)
async def rollback(request: Request, body: RollbackIn) -> Queued:
    """Queue a rollback to the config deployment `deployment_id` recorded."""
    record = await found(request, body.deployment_id)
    if not record.config or record.config.get("deleted"):
        raise HTTPException(409, f"deployment #{record.id} recorded no config to redeploy")
    if not record.git_repository:
        raise HTTPException(409, f"deployment #{record.id} recorded no repository")
    reason = f"rollback to deployment #{record.id} requested through the API"
    pair = (record.git_repository, record.environment)
    return await _queue(request, "rollback", pair, reason, deployment_id=record.id)


async def _queue(
    request: Request, task: str, pair: tuple[str, str], reason: str, **arguments: Any
) -> Queued:
    config: RelayConfig = request.app.state.config
    base = config.public_url or str(request.base_url).rstrip("/")
    queue = request.app.state.queue
    async with queue.connector.pool.connection() as conn, conn.transaction():
        source = await manual.deployed_source(conn, *pair)
        if source is None:
            raise HTTPException(
                409,
                f"{pair[0]} was never deployed to {pair[1]} through this relay: "
                "push to it first (the relay needs its clone URL and commit)",
            )
        job_id = await manual.request(queue, conn, task, pair, source, base, reason, **arguments)
    return Queued(job_id=job_id, url=f"{base}/jobs/{job_id}")
