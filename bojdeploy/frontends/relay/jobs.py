"""A queue job as the API shows it: its state and the pushes or requests it covers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from pydantic import BaseModel


class PushOut(BaseModel):
    """A push (or an API request) a job routed or deployed."""

    id: int
    delivery: str | None
    repository: str
    branch: str
    after_sha: str
    environment: str | None
    status: str
    reason: str | None
    deployments: list[int] | None


class JobOut(BaseModel):
    """One job of the queue."""

    id: int
    task: str
    status: str
    attempts: int
    scheduled_at: datetime | None
    pushes: list[PushOut]


async def read_job(pool: Any, job_id: int) -> JobOut | None:
    """The job `job_id` and its pushes, or None."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT id, task_name AS task, status::text AS status, attempts, scheduled_at "
            "FROM procrastinate_jobs WHERE id = %s",
            (job_id,),
        )
        job = await cur.fetchone()
        if job is None:
            return None
        await cur.execute(
            "SELECT id, delivery, repository, branch, after_sha, environment, status, reason, "
            "deployments FROM relay_deliveries WHERE job_id = %s OR deploy_job_id = %s "
            "ORDER BY id",
            (job_id, job_id),
        )
        pushes = [PushOut(**row) for row in await cur.fetchall()]
    return JobOut(**job, pushes=pushes)
