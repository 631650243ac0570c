"""Housekeeping: procrastinate keeps every finished job, so once an hour the relay removes jobs
that finished more than BOJDEPLOY_RELAY_KEEP_JOBS hours ago (default 168, a week; `0` keeps them
all). Deployments and their logs stay in the deployments tables; only the queue's own rows go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import procrastinate
from procrastinate import JobContext, builtin_tasks

from bojdeploy.errors import UsageError

KEEP_VAR = "BOJDEPLOY_RELAY_KEEP_JOBS"
KEEP_HOURS = 168
LOCK = "bojdeploy:remove_old_jobs"
housekeeping = procrastinate.Blueprint()


def keep_hours(environ: Mapping[str, str] | None = None) -> int:
    """Hours a finished job is kept (0: forever); UsageError naming the variable."""
    raw = (os.environ if environ is None else environ).get(KEEP_VAR, "").strip()
    if not raw:
        return KEEP_HOURS
    if not raw.isdigit():
        raise UsageError(f"{KEEP_VAR} must be a whole number of hours, not {raw!r}")
    return int(raw)


@housekeeping.periodic(cron="17 * * * *", periodic_id="remove_old_jobs")
@housekeeping.task(name="remove_old_jobs", pass_context=True, lock=LOCK, queueing_lock=LOCK)
async def remove_old_jobs(context: JobContext, timestamp: int) -> None:
    """Remove the jobs (and their events) that finished longer ago than the retention."""
    hours = keep_hours()
    if hours == 0:
        return
    await builtin_tasks.remove_old_jobs(
        context,
        max_hours=hours,
        remove_failed=True,
        remove_cancelled=True,
        remove_aborted=True,
    )
