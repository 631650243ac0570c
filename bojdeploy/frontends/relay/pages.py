"""The pages statuses link to: a deployment and a job (JSON until the dashboard comes)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from psycopg.rows import dict_row

router = APIRouter()


@router.get("/deployments/{deployment_id}")
async def deployment_page(request: Request, deployment_id: int) -> dict[str, Any]:
    """One deployment and its log."""
    store = request.app.state.store
    record = await asyncio.to_thread(store.get_deployment, deployment_id)
    if record is None:
        raise HTTPException(404, f"no deployment {deployment_id}")
    logs = await asyncio.to_thread(store.get_logs, deployment_id)
    return {**record.to_dict(), "logs": [entry.to_dict() for entry in logs]}


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: int) -> dict[str, Any]:
    """One queued job: its status and the pushes it took in or deployed."""
    pool = request.app.state.queue.connector.pool
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT id, status, task_name, attempts, scheduled_at FROM procrastinate_jobs "
            "WHERE id = %s",
            (job_id,),
        )
        job = await cur.fetchone()
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        await cur.execute(
            "SELECT id, delivery, repository, branch, after_sha, environment, status, reason, "
            "deployments FROM relay_deliveries WHERE job_id = %s OR deploy_job_id = %s "
            "ORDER BY id",
            (job_id, job_id),
        )
        pushes = await cur.fetchall()
    return {**job, "scheduled_at": str(job["scheduled_at"] or "") or None, "pushes": pushes}
