"""The dashboard's pages: overview, history, one deployment (JSON for API clients), static files."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from bojdeploy.frontends.dashboard import views
from bojdeploy.frontends.dashboard.chart import durations_chart
from bojdeploy.frontends.dashboard.render import render, static_file
from bojdeploy.frontends.dashboard.session import COOKIE, csrf_token, session_nonce
from bojdeploy.store.base import STATUSES, StateStore
from bojdeploy.store.reads import HistoryFilter

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
KINDS = ("container", "service", "vm")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
REFRESH_RUNNING = 1000  # ms between polls of a page while a deployment runs
REFRESH = 3000

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class DashboardConfig:
    """What the pages need besides the store: Gitea's URL (commit links) and, when the relay has
    an API token, the buttons' actions (`buttons.Writes`)."""

    gitea_url: str | None
    writes: Any = None


def config_of(request: Request) -> DashboardConfig:
    """The app's dashboard settings."""
    return request.app.state.dashboard  # type: ignore[no-any-return]


def store_of(request: Request) -> StateStore:
    """The app's store."""
    return request.app.state.store  # type: ignore[no-any-return]


def signed_in(request: Request) -> str | None:
    """The nonce of the request's valid session, if the dashboard has writes and one."""
    writes = config_of(request).writes
    return None if writes is None else session_nonce(writes.token, request.cookies.get(COOKIE))


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page with the dashboard's security headers."""
    writes = config_of(request).writes
    nonce = signed_in(request)
    html = render(
        template,
        root=request.scope.get("root_path", ""),
        path=request.url.path,
        writable=writes is not None,
        signed_in=nonce is not None,
        csrf=csrf_token(writes.token, nonce) if writes is not None and nonce else "",
        now=datetime.now(UTC),
        **context,
    )
    return HTMLResponse(html, status, headers=HEADERS)


def problem(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An error page."""
    return page(request, "error.html", status, title=title, detail=detail)


def wants_html(request: Request) -> bool:
    """Whether the client asked for a page (browsers do) rather than JSON."""
    return "text/html" in request.headers.get("accept", "")


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, environment: str | None = None) -> HTMLResponse:
    """Every manifest by environment."""
    if environment is not None and not NAME.fullmatch(environment):
        return problem(request, 400, "Bad request", "environment: letters, digits, . _ - only")
    found = await asyncio.to_thread(
        views.overview, store_of(request), environment or None, config_of(request).gitea_url
    )
    return page(
        request,
        "overview.html",
        environments=found,
        environment=environment,
        refresh=REFRESH,
        nav="overview",
    )


@router.get("/deployments/{deployment_id}", response_model=None)
async def deployment(request: Request, deployment_id: int) -> Response:
    """One deployment: a page for browsers, its record and log as JSON for anything else."""
    if not wants_html(request):
        return await _deployment_json(request, deployment_id)
    return await deployment_page(request, deployment_id)


async def deployment_page(
    request: Request, deployment_id: int, status: int = 200, notice: str = ""
) -> HTMLResponse:
    """The page of one deployment (with a notice after a button, or its refusal)."""
    view = await asyncio.to_thread(
        views.deployment, store_of(request), deployment_id, config_of(request).gitea_url
    )
    if view is None:
        return problem(request, 404, "Not found", f"no deployment {deployment_id}")
    queued = request.query_params.get("queued", "")
    if not notice and queued.isdigit():
        notice = f"Queued as job {int(queued)}: the deployment it makes appears below."
    return page(
        request,
        "deployment.html",
        status,
        view=view,
        notice=notice,
        refused=status >= 400,
        refresh=REFRESH_RUNNING if view.running else REFRESH,
    )


async def _deployment_json(request: Request, deployment_id: int) -> Response:
    store = store_of(request)
    record = await asyncio.to_thread(store.get_deployment, deployment_id)
    if record is None:
        return JSONResponse({"detail": f"no deployment {deployment_id}"}, 404)
    logs = await asyncio.to_thread(store.get_logs, deployment_id)
    return JSONResponse({**record.to_dict(), "logs": [entry.to_dict() for entry in logs]})


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: a date as YYYY-MM-DD, not {value!r}") from None


def history_filter(params: dict[str, str]) -> HistoryFilter:
    """The history's filters from its query; ValueError naming the bad one."""
    for key in ("environment", "name"):
        if params.get(key) and not NAME.fullmatch(params[key]):
            raise ValueError(f"{key}: letters, digits, . _ - only")
    if params.get("status") and params["status"] not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    if params.get("kind") and params["kind"] not in KINDS:
        raise ValueError(f"kind: one of {', '.join(KINDS)}")
    since = _day(params["from"], "from") if params.get("from") else None
    until = _day(params["to"], "to") if params.get("to") else None
    return HistoryFilter(
        environment=params.get("environment") or None,
        name=params.get("name") or None,
        deployment_type=params.get("kind") or None,
        status=params.get("status") or None,
        since=datetime.combine(since, datetime.min.time(), UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
        if until
        else None,
    )


@router.get("/history", response_class=HTMLResponse)
async def history(request: Request) -> HTMLResponse:
    """Deployments newest first, filtered, paged by id; durations per manifest as a chart."""
    params = {k: v.strip() for k, v in request.query_params.items()}
    before = params.pop("before", "")
    try:
        only = history_filter(params)
        if before and not before.isdigit():
            raise ValueError("before: a deployment id")
    except ValueError as e:
        return problem(request, 400, "Bad filter", str(e))
    store = store_of(request)
    rows, next_before = await asyncio.to_thread(
        views.history, store, only, int(before) if before else None
    )
    chart = durations_chart(await asyncio.to_thread(store.durations, only))
    shown = {
        k: v
        for k, v in params.items()
        if k in ("environment", "name", "kind", "status", "from", "to") and v
    }
    return page(
        request,
        "history.html",
        rows=rows,
        next_before=next_before,
        chart=chart,
        filters=shown,
        before=before,
        statuses=STATUSES,
        kinds=KINDS,
        refresh=0 if before else REFRESH,
        nav="history",
    )


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The dashboard's stylesheet and script."""
    body = static_file(name)
    if body is None:
        return Response("not found", 404, media_type="text/plain")
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=f"{kind}; charset=utf-8", headers=headers)
