"""POST /webhook/gitea: signed Gitea deliveries in; a push becomes a queued job (DESIGN §8).

Checks, in order: JSON only (415), at most 1 MiB read (413), the HMAC signature over the raw
body (401). Nothing is stored for a rejected delivery. A push is recorded and its routing job
queued in one transaction before the 202 answer; a repeated delivery id gets the first job's id.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import psycopg_pool
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bojdeploy import logs
from bojdeploy.frontends.relay import deliveries
from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.signature import signed

MAX_BODY = 1024 * 1024
ZERO_SHA = "0" * 40
log = logging.getLogger("bojdeploy.relay")
router = APIRouter()
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "a ping"},
    400: {"description": "not a push payload"},
    401: {"description": "missing or wrong X-Gitea-Signature; nothing stored"},
    403: {"description": "repository not in BOJDEPLOY_RELAY_REPOS"},
    413: {"description": "body larger than 1 MiB"},
    415: {"description": "content type is not application/json"},
    503: {"description": "the database is unreachable; redeliver later"},
}
# The body is read raw (the signature covers its bytes): declared here for the OpenAPI document.
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class Refused(Exception):
    """A delivery answered with an error status and nothing stored."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def answer(status: int, **body: Any) -> JSONResponse:
    """A JSON answer."""
    return JSONResponse(body, status_code=status)


async def read_body(request: Request) -> bytes:
    """The raw body, read up to MAX_BODY bytes; Refused(413) as soon as it is longer."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Refused(413, f"body larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def verified(request: Request, config: RelayConfig) -> bytes:
    """The body of a JSON delivery signed with the secret; Refused otherwise."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise Refused(415, "the webhook's content type must be application/json")
    body = await read_body(request)
    if not signed(config.secret, body, request.headers.get("x-gitea-signature")):
        raise Refused(401, "missing or wrong X-Gitea-Signature")
    return body


@router.post("/webhook/gitea", status_code=202, responses=ANSWERS, openapi_extra=BODY)
async def gitea_webhook(request: Request) -> JSONResponse:
    """Take one Gitea delivery in."""
    config: RelayConfig = request.app.state.config
    event = request.headers.get("x-gitea-event", "")
    with logs.bound(delivery=request.headers.get("x-gitea-delivery") or None):
        return await _take(request, config, event)


async def _take(request: Request, config: RelayConfig, event: str) -> JSONResponse:
    try:
        body = await verified(request, config)
        if event == "ping":
            return answer(200, ok=True)
        if event != "push":
            return answer(202, ignored=f"event {event or '(none)'} is not deployed")
        return await take_push(request, config, body)
    except Refused as e:
        log.info("webhook refused (%s): %s", e.status, e.detail)
        return answer(e.status, detail=e.detail)
    except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as e:
        log.warning("webhook not stored, the database is unreachable: %s", type(e).__name__)
        return answer(503, detail="the database is unreachable; redeliver later")


def push_fields(body: bytes) -> dict[str, Any]:
    """What the relay keeps of a push payload; Refused(400) when it is not one."""
    try:
        payload = json.loads(body)
        repo = payload["repository"]
        fields = {
            "repository": str(repo["full_name"]),
            "ref": str(payload["ref"]),
            "before_sha": str(payload.get("before") or "") or None,
            "after_sha": str(payload["after"]),
            "clone_url": str(repo.get("clone_url") or ""),
        }
    except (ValueError, KeyError, TypeError) as e:
        raise Refused(400, f"not a push payload: {type(e).__name__} {e}") from e
    if str(fields["repository"]).count("/") != 1:
        raise Refused(400, "repository.full_name must be owner/name")
    return fields


async def take_push(request: Request, config: RelayConfig, body: bytes) -> JSONResponse:
    """Record a push and queue its routing job, once per delivery id."""
    fields = push_fields(body)
    repository, ref = fields.pop("repository"), fields.pop("ref")
    if not config.allows(repository):
        raise Refused(403, f"{repository} is not in BOJDEPLOY_RELAY_REPOS")
    delivery = request.headers.get("x-gitea-delivery") or None
    logs.bind(repository=repository)
    base = config.public_url or str(request.base_url).rstrip("/")
    ignored = None
    if not ref.startswith("refs/heads/"):
        ignored = f"{ref} is not a branch"
    elif fields["after_sha"] == ZERO_SHA:
        ignored = f"branch {ref.removeprefix('refs/heads/')} was deleted"
    row = dict(
        delivery=delivery, repository=repository, branch=ref.removeprefix("refs/heads/"), **fields
    )
    queue = request.app.state.queue
    async with queue.connector.pool.connection() as conn:
        async with conn.transaction():  # the delivery and its job, or neither
            status = "ignored" if ignored else "queued"
            row_id = await deliveries.insert(conn, status, relay_url=base, reason=ignored, **row)
            if row_id is not None and not ignored:
                job_id = await queue.configure_task(
                    "bojdeploy:route_push", connection=conn
                ).defer_async(delivery_id=row_id)
                await deliveries.update(conn, row_id, job_id=job_id)
        if row_id is not None:
            if ignored:
                return answer(202, job_id=None, ignored=ignored)
            return answer(202, job_id=job_id, url=f"{base}/jobs/{job_id}")
        first = await deliveries.find(conn, delivery or "")  # a delivery id seen before
    if first is None or first.status == "ignored" or first.job_id is None:
        return answer(202, job_id=None, ignored=ignored or (first.reason if first else None))
    return answer(202, job_id=first.job_id, url=f"{base}/jobs/{first.job_id}", duplicate=True)
