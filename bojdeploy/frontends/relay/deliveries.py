"""The relay_deliveries table: pushes taken in, ignored, routed to an environment, deployed.

Statuses: `queued` (a routing job will read the branch's environment), `ignored` (with the
reason), `routed` (waiting for a deploy of its repository+environment), `deploying` (claimed by
a deploy job), `deployed` or `failed` (that job's result; a push coalesced into a later one's
deploy gets that deploy's result; `failed` with no deploy job: its routing gave up or its
bojdeploy.yaml is invalid, the reason says why), `superseded` (taken by a deploy but not
deployed: its commit was already deployed, or a diverged history replaced it; order.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

NOW = "(now() AT TIME ZONE 'utc')"
COVERED = "covered by "  # the reason of a push deployed through a newer commit
# of the pushes of the newest deploy that succeeded, the one whose commit it deployed
DEPLOYED_FIRST = f"deploy_job_id DESC, coalesce(reason, '') LIKE '{COVERED}%%', id DESC"


@dataclass(frozen=True)
class Delivery:
    """One push as the relay recorded it."""

    id: int
    delivery: str | None
    repository: str
    branch: str
    before_sha: str | None
    after_sha: str
    clone_url: str | None
    relay_url: str | None
    environment: str | None
    status: str
    reason: str | None
    job_id: int | None
    deploy_job_id: int | None


COLUMNS = ", ".join(Delivery.__dataclass_fields__)


async def find(conn: AsyncConnection[Any], delivery: str) -> Delivery | None:
    """The push recorded under this X-Gitea-Delivery id."""
    cur = conn.cursor(row_factory=class_row(Delivery))
    await cur.execute(f"SELECT {COLUMNS} FROM relay_deliveries WHERE delivery = %s", (delivery,))
    return await cur.fetchone()


async def get(conn: AsyncConnection[Any], row_id: int) -> Delivery | None:
    """One recorded push by its row id."""
    cur = conn.cursor(row_factory=class_row(Delivery))
    await cur.execute(f"SELECT {COLUMNS} FROM relay_deliveries WHERE id = %s", (row_id,))
    return await cur.fetchone()


async def insert(conn: AsyncConnection[Any], status: str, **fields: Any) -> int | None:
    """Record a push; None when its delivery id is already recorded."""
    names = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    cur = await conn.execute(
        f"INSERT INTO relay_deliveries ({names}, status, received_at, updated_at) "
        f"VALUES ({marks}, %s, {NOW}, {NOW}) ON CONFLICT (delivery) DO NOTHING RETURNING id",
        (*fields.values(), status),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def update(conn: AsyncConnection[Any], row_id: int, **fields: Any) -> None:
    """Change some fields of one recorded push."""
    sets = ", ".join(f"{k} = %s" for k in fields)
    await conn.execute(
        f"UPDATE relay_deliveries SET {sets}, updated_at = {NOW} WHERE id = %s",
        (*fields.values(), row_id),
    )


async def claim(
    conn: AsyncConnection[Any], repository: str, environment: str, job_id: int
) -> list[Delivery]:
    """Mark every push of the pair waiting for a deploy, or left `deploying` by an attempt that
    never finished (this job's, interrupted, or one that failed without recording it), as taken
    by `job_id`; oldest first. The pair's lock makes this job the only one deploying it."""
    cur = conn.cursor(row_factory=class_row(Delivery))
    await cur.execute(
        f"UPDATE relay_deliveries SET status = 'deploying', deploy_job_id = %s, updated_at = {NOW} "
        "WHERE repository = %s AND environment = %s "
        "AND status IN ('routed', 'deploying') "
        f"RETURNING {COLUMNS}",
        (job_id, repository, environment),
    )
    return sorted(await cur.fetchall(), key=lambda d: d.id)


async def finish(
    conn: AsyncConnection[Any],
    job_id: int,
    status: str,
    reason: str,
    deployments: list[int],
    sha: str | None = None,
) -> None:
    """Record the result of a deploy job on every push it covered; the pushes of other commits
    than the one deployed (`sha`) get the reason prefixed with COVERED and that commit."""
    covered = f"{COVERED}{(sha or '')[:7]}: {reason}"
    await conn.execute(
        f"UPDATE relay_deliveries SET status = %s, deployments = %s, updated_at = {NOW}, "
        "reason = CASE WHEN %s::text IS NULL OR after_sha = %s THEN %s ELSE %s END "
        "WHERE deploy_job_id = %s AND status = 'deploying'",
        (status, Jsonb(deployments), sha, sha, reason, covered, job_id),
    )


async def last_deployed(
    conn: AsyncConnection[Any], repository: str, environment: str
) -> str | None:
    """The commit up to which every change of the pair is deployed: the newest push whose deploy
    succeeded, else the newest commit the deployments table records as deployed (by any front
    end); None when nothing was ever deployed (then every manifest is considered)."""
    cur = await conn.execute(
        "SELECT after_sha FROM relay_deliveries WHERE repository = %s AND environment = %s "
        f"AND status = 'deployed' ORDER BY {DEPLOYED_FIRST} LIMIT 1",
        (repository, environment),
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            "SELECT git_commit FROM deployments WHERE git_repository = %s AND environment = %s "
            "AND status IN ('completed', 'unchanged') AND git_commit IS NOT NULL "
            "ORDER BY id DESC LIMIT 1",
            (repository, environment),
        )
        row = await cur.fetchone()
    return None if row is None else str(row[0])
