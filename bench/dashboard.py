"""Dashboard pages over a long history: 100,000 deployment rows, in SQLite and PostgreSQL.

Fills a fresh database of each backend with --rows deployments (4 environments x 50 manifests,
statuses mostly completed, some failed and unchanged, spread over 100 days), then renders the
pages in-process through the dashboard's ASGI app (routing, store reads in a thread, templates:
everything but the socket) and reports the median of --runs renders of each page against its
floor, the raw store query the page cannot avoid, measured in the same run. Then it drops the
indexes of migration 006 and measures again, to show what they buy. The target: overview and
history of an environment in < 200 ms. A report, not a test: it always exits 0.

    .venv/bin/python bench/dashboard.py [--rows 100000] [--runs 15] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bojdeploy.frontends.dashboard.serve import create_app  # noqa: E402
from bojdeploy.settings import Settings  # noqa: E402
from bojdeploy.store import open_store  # noqa: E402
from bojdeploy.store.reads import HistoryFilter  # noqa: E402

POSTGRES = os.environ.get(
    "BOJDEPLOY_TEST_POSTGRES_URL", "postgresql://bojdeploy:bojdeploy@127.0.0.1:5432/bojdeploy_test"
)
ENVIRONMENTS = [f"env-{i}" for i in range(4)]
MANIFESTS = [f"app-{i:03d}" for i in range(50)]
INDEXES = [
    "deployments_target_id",
    "deployments_environment_id",
    "deployments_name_id",
    "deployments_status_id",
    "deployments_rollback_from",
]
TARGET_MS = 200.0
COLUMNS = (
    "deployment_type, name, environment, status, git_commit, git_branch, git_repository, config, "
    "created_at, updated_at, completed_at, error_message, reason, config_hash, manifest"
)


def rows(count: int) -> Iterator[tuple[Any, ...]]:
    """`count` plausible deployments, oldest first."""
    rng = random.Random(7)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=100)
    step = timedelta(days=100) / count
    for i in range(count):
        name, environment = rng.choice(MANIFESTS), rng.choice(ENVIRONMENTS)
        status = rng.choices(["completed", "failed", "unchanged"], [85, 5, 10])[0]
        created = start + i * step
        done = created + timedelta(seconds=rng.uniform(0.5, 60))
        config = {"kind": "Container", "spec": {"image": f"registry/{name}:{i}", "env": {"A": "1"}}}
        yield (
            "container", name, environment, status, f"{i:040x}", "main", "infra/deployments",
            json.dumps(config), created, done, done,
            "container unhealthy" if status == "failed" else None,
            "modified in abc..def; config changed", f"{i:064x}", f"deploy/{name}.yml",
        )  # fmt: skip


def fill_sqlite(url: str, count: int) -> None:
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    marks = ", ".join("?" * 15)
    with conn:
        conn.executemany(
            f"INSERT INTO deployments ({COLUMNS}) VALUES ({marks})",
            ((*r[:8], *(str(t) for t in r[8:11]), *r[11:]) for r in rows(count)),
        )
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(url: str, count: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor().copy(f"COPY deployments ({COLUMNS}) FROM STDIN") as copy:
            for row in rows(count):
                copy.write_row(row)
        conn.execute("ANALYZE deployments")


def drop_indexes(url: str) -> None:
    statements = [f"DROP INDEX {name}" for name in INDEXES]
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for sql in [*statements, "ANALYZE"]:
            conn.execute(sql)
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for sql in [*statements, "ANALYZE deployments"]:
                conn.execute(sql)


async def get(app: Any, path: str, query: str = "") -> tuple[int, bytes]:
    """One GET through the ASGI app, in-process; the status and body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "root_path": "", "headers": [(b"accept", b"text/html"), (b"host", b"bench")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


def median_ms(action: Callable[[], Any], runs: int) -> float:
    action()  # warm-up: caches, templates, the pool
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(url: str, runs: int) -> list[tuple[str, float, float]]:
    """(page, median ms, floor ms) for each page."""
    app = create_app(url, Settings())
    store = open_store(url)
    app.state.store = store
    loop = asyncio.new_event_loop()
    env, name = ENVIRONMENTS[1], MANIFESTS[7]
    middle = store.history(HistoryFilter(environment=env), limit=1)[0].id // 2
    one = store.history(HistoryFilter(environment=env, name=name), limit=1)[0].id

    def page(path: str, query: str = "") -> Callable[[], None]:
        def run() -> None:
            status, body = loop.run_until_complete(get(app, path, query))
            assert status == 200 and body, (path, query, status)

        return run

    only = HistoryFilter(environment=env)
    failed = HistoryFilter(environment=env, name=name, status="failed")
    pages = [
        ("overview, all environments", page("/"), lambda: store.current_deployments()),
        (
            f"overview of {env}",
            page("/", f"environment={env}"),
            lambda: store.current_deployments(env),
        ),
        (
            f"history of {env}",
            page("/history", f"environment={env}"),
            lambda: (store.history(only, limit=51), store.durations(only)),
        ),
        (
            f"history of {env}, page at id {middle}",
            page("/history", f"environment={env}&before={middle}"),
            lambda: (store.history(only, limit=51, before_id=middle), store.durations(only)),
        ),
        (
            f"history of {env}/{name}, failed",
            page("/history", f"environment={env}&name={name}&status=failed"),
            lambda: store.history(failed, limit=51),
        ),
        ("history, all", page("/history"), lambda: store.history(HistoryFilter(), limit=51)),
        (f"deployment #{one}", page(f"/deployments/{one}"), lambda: store.get_deployment(one)),
    ]
    found = [
        (label, median_ms(render, runs), median_ms(floor, runs)) for label, render, floor in pages
    ]
    store.close()
    loop.close()
    return found


def report(title: str, results: list[tuple[str, float, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'page':<52} {'render':>9} {'floor':>9} {'ratio':>6}  < {TARGET_MS:.0f} ms")
    for label, took, floor in results:
        verdict = "yes" if took < TARGET_MS else "NO"
        ratio = took / max(floor, 0.01)
        print(f"  {label:<52} {took:>7.1f}ms {floor:>7.1f}ms {ratio:>6.1f}  {verdict}")
    target = [r for r in results if r[0].startswith(("overview of", "history of"))]
    met = all(took < TARGET_MS for _, took, _ in target)
    print(f"  overview and history of an environment < {TARGET_MS:.0f} ms: "
          f"{'target met' if met else 'target MISSED'}")  # fmt: skip


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, migrated database of the backend; its URL."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            open_store(url).close()
            yield url
        return
    import psycopg

    name = f"bojdeploy_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = urlsplit(POSTGRES)._replace(path=f"/{name}").geturl()
    try:
        open_store(url).close()
        yield url
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgres"]:
        with database(backend) as url:
            started = time.perf_counter()
            (fill_sqlite if backend == "sqlite" else fill_postgres)(url, args.rows)
            print(f"\n{backend}: {args.rows} rows written in {time.perf_counter() - started:.1f}s")
            report(f"{backend}, with migration 006's indexes", measure(url, args.runs))
            drop_indexes(url)
            report(f"{backend}, without them", measure(url, args.runs))


if __name__ == "__main__":
    main()
