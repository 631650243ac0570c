"""The dashboard's Redeploy and Roll back buttons on the relay: the REST API's own handlers."""

from __future__ import annotations

from fastapi import HTTPException, Request
from pydantic import ValidationError

from bojdeploy.frontends.dashboard.actions import Writes
from bojdeploy.frontends.relay import api
from bojdeploy.store.base import Deployment


async def rollback(request: Request, deployment_id: int) -> int:
    """Queue a rollback to `deployment_id`'s config, as POST /api/v1/rollback does; the job."""
    queued = await api.rollback(request, api.RollbackIn(deployment_id=deployment_id))
    return queued.job_id


async def redeploy(request: Request, record: Deployment) -> int:
    """Queue a redeploy of the record's manifest, as POST /api/v1/redeploy does; the job."""
    try:
        wanted = api.RedeployIn(
            repository=record.git_repository or "",
            environment=record.environment,
            name=record.name,
        )
    except ValidationError as e:
        raise HTTPException(
            409, f"deployment #{record.id} names no owner/name repository the relay deploys"
        ) from e
    queued = await api.redeploy(request, wanted)
    return queued.job_id


def writes(token: str | None) -> Writes | None:
    """The buttons, when the relay has an API token."""
    return None if token is None else Writes(token=token, rollback=rollback, redeploy=redeploy)
