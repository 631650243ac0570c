"""Calls to a relay's REST API, and deployments recorded for it to show."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from bojdeploy.store.postgres import PostgresStore
from tests.relay import Relay, wait_for

API_TOKEN = "api-token-5e0b77c1"


def call(
    relay: Relay,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request; the answer's status and JSON (or text when it is not JSON)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{relay.url}{path}", data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def record(url: str, name: str, status: str = "completed", **fields: Any) -> int:
    """Record one finished deployment straight in the store; its id."""
    fields.setdefault("git_repository", "infra/deployments")
    with PostgresStore(url) as store:
        found = store.create_deployment(
            deployment_type=fields.pop("deployment_type", "container"),
            name=name,
            environment=fields.pop("environment", "production"),
            status=status,
            **fields,
        )
        store.update_deployment(found, status=status, completed=True)
        store.add_log(found, "info", f"{name}: {status}")
    return found


def settled_job(relay: Relay, job_id: int) -> dict[str, Any]:
    """The job once it has finished."""

    def done() -> dict[str, Any] | None:
        status, job = call(relay, "GET", f"/api/v1/jobs/{job_id}")
        assert status == 200, job
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_for(f"job {job_id} to finish", done)
