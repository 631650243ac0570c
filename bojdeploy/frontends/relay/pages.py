"""The page a push's overall status links to: one job and the pushes it covers (JSON); the
deployments' own pages are the dashboard's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from psycopg.rows import dict_row

router = APIRouter()


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
