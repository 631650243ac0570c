"""GET /metrics: the DESIGN §9 names in Prometheus' text format.

Two sources, so that every number is right with several relay processes:
- what only a process sees (webhooks received, API request durations, its connection pool) is
  counted by prometheus_client in the process; with PROMETHEUS_MULTIPROC_DIR set (required for
  several worker processes of one uvicorn or gunicorn) the processes' files are summed at scrape;
- what the database holds (deployments, their durations, the queue) is read from it at scrape,
  so every relay answers the same totals and Prometheus should take `max`, not `sum`, across
  relays for those.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bojdeploy.frontends.metrics import DURATION_BUCKETS, deployment_families

log = logging.getLogger("bojdeploy.relay")
router = APIRouter()
LOCAL = CollectorRegistry()
WEBHOOKS = Counter(
    "webhook_received", "Gitea deliveries received, by event and result", ["event", "result"],
    registry=LOCAL,
)  # fmt: skip
REQUESTS = Histogram(
    "api_request_duration_seconds",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=LOCAL,
)
POOL = Gauge(
    "database_connection_pool_size",
    "Connections open in the relay's database pool (summed over live processes)",
    registry=LOCAL,
    multiprocess_mode="livesum",
)
JOB_STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
EVENTS = {"push", "ping", "create", "delete", "release", "pull_request", "issues", "fork"}
RESULTS = {200: "ok", 202: "accepted", 400: "invalid", 401: "unauthorized", 403: "forbidden"}
RESULTS |= {413: "too_large", 415: "unsupported_media_type", 503: "unavailable"}

Snapshot = dict[str, list[tuple[Any, ...]]]


def count_webhook(event: str, status: int, ignored: bool) -> None:
    """Count one delivery (event names outside Gitea's usual ones are counted as `other`)."""
    result = "ignored" if status == 202 and ignored else RESULTS.get(status, "error")
    WEBHOOKS.labels(event if event in EVENTS else "other", result).inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one answered request under its route template."""
    REQUESTS.labels(method, route, str(status)).observe(seconds)


def observe_pool(size: int) -> None:
    """The current size of this process's pool."""
    POOL.set(size)


async def snapshot(pool: Any) -> Snapshot:
    """What the database says now: deployments by type and status, durations, the queue."""
    cases = ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in DURATION_BUCKETS)
    queries = {
        "deployments": "SELECT deployment_type, status, count(*) FROM deployments GROUP BY 1, 2",
        "durations": (
            f"SELECT deployment_type, count(*), coalesce(sum(d), 0), {cases} FROM ("
            "SELECT deployment_type, extract(epoch FROM completed_at - created_at)::float AS d "
            "FROM deployments WHERE completed_at IS NOT NULL) AS t GROUP BY 1"
        ),
        "jobs": "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1",
        "oldest": (
            "SELECT extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at)))::float "
            "FROM procrastinate_jobs j LEFT JOIN procrastinate_events e "
            "ON e.job_id = j.id AND e.type = 'deferred' "
            "WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())"
        ),
        "drift": (  # one series per resource, even when two repositories record the same name
            "SELECT environment, kind, name, max(CASE WHEN drifted THEN 1 ELSE 0 END) "
            "FROM drift_states GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
    }
    found: Snapshot = {}
    async with pool.connection() as conn:
        for key, sql in queries.items():
            cur = await conn.execute(sql)
            found[key] = list(await cur.fetchall())
    return found


class Stored(Collector):
    """The metrics read from the database at this scrape."""

    def __init__(self, found: Snapshot):
        self.found = found

    def collect(self) -> Iterator[Any]:
        """Yield the metric families of the snapshot."""
        yield from deployment_families(self.found["deployments"], self.found["durations"])
        jobs = GaugeMetricFamily("bojdeploy_queue_jobs", "Queue jobs by status", labels=["status"])
        counts = {status: n for status, n in self.found["jobs"]}
        for status in sorted(set(JOB_STATUSES) | set(counts)):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        oldest = self.found["oldest"][0][0] if self.found["oldest"] else None
        yield GaugeMetricFamily(
            "bojdeploy_queue_oldest_job_age_seconds",
            "Age of the oldest job waiting for a worker (0: none waits)",
            value=max(float(oldest or 0.0), 0.0),
        )
        drift = GaugeMetricFamily(
            "bojdeploy_drift",
            "Whether a recorded resource differs from what runs (1 drifted, 0 in sync), "
            "as the drift watch last saw it",
            labels=["environment", "kind", "name"],
        )
        for environment, kind, name, drifted in self.found["drift"]:
            drift.add_metric([environment, kind, name], drifted)
        yield drift


def exposition(found: Snapshot | None) -> bytes:
    """The text format of this process's (or every process's) metrics and the snapshot."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(Local())
    if found is not None:
        registry.register(Stored(found))
    return generate_latest(registry)


class Local(Collector):
    """This process's own metrics."""

    def collect(self) -> Iterable[Any]:
        """Yield the process-local families."""
        return LOCAL.collect()


def process_exited() -> None:
    """Drop this process's live gauges from the shared directory (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())


@router.get("/metrics", response_class=Response, tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text format 0.0.4)."""
    pool = request.app.state.queue.connector.pool
    observe_pool(pool.get_stats().get("pool_size", 0))
    try:
        found: Snapshot | None = await snapshot(pool)
    except Exception as e:  # noqa: BLE001 - the process's own metrics are still worth a scrape
        log.warning("metrics: the database could not be read: %s", type(e).__name__)
        found = None
    return Response(exposition(found), media_type=CONTENT_TYPE_PLAIN_0_0_4)


class Timed:
    """ASGI middleware: time every request under its route template; count webhook deliveries."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting the answer's status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            observe_request(scope["method"], route, status, time.perf_counter() - started)
            if route == "/webhook/gitea":
                event = dict(scope["headers"]).get(b"x-gitea-event", b"").decode("latin-1")
                count_webhook(event, status, event not in ("push", "ping"))
