"""Sign-in and the Redeploy / Roll back buttons, CSRF-safe.

Only a dashboard given `Writes` (the relay with an API token) has them. Signing in with the API
token sets a signed, HttpOnly, SameSite=Strict session cookie; every form carries the session's
CSRF token. A POST without a valid session and its CSRF token is refused with 403, as is every
POST to a read-only dashboard. What the buttons do is the relay's REST API's own code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from bojdeploy.frontends.dashboard import session, views
from bojdeploy.frontends.dashboard.web import (
    config_of,
    deployment_page,
    page,
    problem,
    store_of,
)
from bojdeploy.store.base import Deployment

MAX_FORM = 4096  # bytes
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Writes:
    """The API token (it keys the sessions) and how to queue a rollback or a redeploy: each
    returns the job's id or raises HTTPException with the refusal."""

    token: str
    rollback: Callable[[Request, int], Awaitable[int]]
    redeploy: Callable[[Request, Deployment], Awaitable[int]]


class Refused(Exception):
    """A write the dashboard does not accept (403)."""


async def form(request: Request) -> dict[str, str]:
    """The urlencoded fields of a small form."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise Refused("the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {key: values[0] for key, values in fields.items()}


def writes_of(request: Request) -> Writes:
    """The dashboard's writes; Refused when it is read-only."""
    writes: Writes | None = config_of(request).writes
    if writes is None:
        raise Refused("this dashboard is read-only: the relay has no API token")
    return writes


async def checked(request: Request) -> tuple[Writes, dict[str, str]]:
    """The writes and the form of a POST from a signed-in session with its CSRF token."""
    writes = writes_of(request)
    fields = await form(request)
    nonce = session.session_nonce(writes.token, request.cookies.get(session.COOKIE))
    if nonce is None:
        raise Refused("sign in first (or again: the session expired)")
    if not session.csrf_matches(writes.token, nonce, fields.get("csrf_token", "")):
        raise Refused("the form's CSRF token is missing or wrong: reload the page and retry")
    return writes, fields


def refused(request: Request, error: Refused) -> Response:
    """The 403 page."""
    return problem(request, 403, "Refused", str(error))


def local(target: str) -> str:
    """`target` when it is a path of this site, else `/` (no open redirect)."""
    ok = target.startswith("/") and not target.startswith(("//", "/\\"))
    return target if ok else "/"


@router.get("/login", response_model=None)
async def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in form."""
    try:
        writes_of(request)
    except Refused as e:
        return refused(request, e)
    return page(request, "login.html", next=local(next), error="")


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    """Sign in with the API token: a session cookie, then back where the user was."""
    try:
        writes = writes_of(request)
        fields = await form(request)
    except Refused as e:
        return refused(request, e)
    target = local(fields.get("next", "/"))
    if not session.token_matches(writes.token, fields.get("token", "")):
        return page(request, "login.html", 401, next=target, error="That is not the API token.")
    answer = RedirectResponse(target, 303)
    answer.set_cookie(
        session.COOKIE,
        session.new_session(writes.token),
        max_age=session.LIFETIME,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return answer


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    """Sign out."""
    try:
        await checked(request)
    except Refused as e:
        return refused(request, e)
    answer = RedirectResponse("/", 303)
    answer.delete_cookie(session.COOKIE, path="/", httponly=True, samesite="strict")
    return answer


@router.post("/deployments/{deployment_id}/rollback", response_model=None)
async def rollback(request: Request, deployment_id: int) -> Response:
    """Roll the deployment's target back to the deployment before it."""
    return await _act(request, deployment_id, "rollback")


@router.post("/deployments/{deployment_id}/redeploy", response_model=None)
async def redeploy(request: Request, deployment_id: int) -> Response:
    """Apply the deployment's manifest again."""
    return await _act(request, deployment_id, "redeploy")


async def _act(request: Request, deployment_id: int, what: str) -> Response:
    try:
        writes, _ = await checked(request)
    except Refused as e:
        return refused(request, e)
    view = await asyncio.to_thread(
        views.deployment, store_of(request), deployment_id, config_of(request).gitea_url
    )
    if view is None:
        return problem(request, 404, "Not found", f"no deployment {deployment_id}")
    try:
        if what == "redeploy":
            job = await writes.redeploy(request, view.record)
        elif view.rollback_target is None:
            raise HTTPException(409, "no earlier successful deployment of it to roll back to")
        else:
            job = await writes.rollback(request, view.rollback_target.id)
    except HTTPException as e:
        return await deployment_page(request, deployment_id, e.status_code, str(e.detail))
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/deployments/{deployment_id}?queued={job}", 303)
