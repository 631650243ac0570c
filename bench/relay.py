"""Webhook intake of the relay against its floors, measured in the same run.

Three measurements with the same client (asyncio, --concurrency keep-alive connections, every
request timed from its first byte sent to its answer read):

- the relay: correctly signed push deliveries, each with its own X-Gitea-Delivery id, to
  `bojdeploy relay --workers 0` (HTTP only: the jobs stay queued); afterwards every delivery
  must be in relay_deliveries with its job in procrastinate_jobs (accepted = durably queued);
- a bare uvicorn endpoint: an ASGI app that reads the body and answers 202, same uvicorn;
- a bare INSERT loop: --concurrency connections each committing one INSERT at a time.

Prints requests per second and p50/p99 latency for each, the ratios, and the targets
(>= 500/s, p99 < 100 ms). A report, not a test: it exits 0 unless something could not run.

    .venv/bin/python bench/relay.py [--requests 3000] [--concurrency 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake Gitea lives with the tests
DEFAULT_URL = "postgresql://bojdeploy:bojdeploy@127.0.0.1:5432/bojdeploy_test"
SECRET = "bench-secret"
TARGET_RATE, TARGET_P99 = 500.0, 0.100


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push_body() -> bytes:
    """A push payload of Gitea's shape (the fake Gitea's sample)."""
    from tests.fakes.fake_gitea import default_swagger

    event = json.loads((default_swagger().parent / "push.json").read_text())
    event["repository"].update(full_name="bench/repo", clone_url="file:///nonexistent")
    return json.dumps(event).encode()


def request_bytes(port: int, body: bytes) -> Callable[[], bytes]:
    """A maker of signed push requests, each with a new delivery id."""
    from bojdeploy.frontends.relay.signature import sign

    head = (
        "POST /webhook/gitea HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nX-Gitea-Event: push\r\n"
        f"X-Gitea-Signature: {sign(SECRET.encode(), body)}\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).replace("{port}", str(port))
    return lambda: f"{head}X-Gitea-Delivery: {uuid.uuid4()}\r\n\r\n".encode() + body


async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    """Send one request on a keep-alive connection; the answer's status."""
    writer.write(data)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def load(port: int, make: Callable[[], bytes], total: int, concurrency: int) -> Result:
    """`total` requests over `concurrency` connections; throughput and latencies."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    left = iter(range(total))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in left:
            data = make()
            start = time.perf_counter()
            status = await one(reader, writer, data)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Result(total / (time.perf_counter() - start), latencies, statuses)


async def insert_loop(url: str, total: int, concurrency: int) -> Result:
    """`total` single-row INSERT transactions over `concurrency` connections."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id BIGSERIAL PRIMARY KEY, delivery TEXT "
            "UNIQUE, body JSONB, at TIMESTAMP NOT NULL DEFAULT now())"
        )
    latencies: list[float] = []
    left = iter(range(total))
    body = push_body().decode()

    async def connection() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for _ in left:
                start = time.perf_counter()
                await conn.execute(
                    "INSERT INTO bench_floor (delivery, body) VALUES (%s, %s)",
                    (str(uuid.uuid4()), body),
                )
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Result(total / (time.perf_counter() - start), latencies, {200: total})


class Result:
    """Requests per second and latencies of one measurement."""

    def __init__(self, rate: float, latencies: list[float], statuses: dict[int, int]):
        self.rate = rate
        self.latencies = sorted(latencies)
        self.statuses = statuses

    def quantile(self, q: float) -> float:
        """The q-quantile latency in seconds."""
        return self.latencies[min(len(self.latencies) - 1, int(q * len(self.latencies)))]

    def line(self, label: str, relay_rate: float) -> str:
        """One row of the report."""
        p50, p99 = self.quantile(0.5) * 1000, self.quantile(0.99) * 1000
        ratio = self.rate / relay_rate if relay_rate else 0
        return f"{label:<34} {self.rate:>9.0f} {p50:>9.1f} {p99:>9.1f} {ratio:>9.2f}x"


@contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A new database for the run, dropped afterwards."""
    import psycopg

    name = f"bojdeploy_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def server(argv: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    """A server process, answering on `port`, stopped afterwards."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        sys.exit(f"{argv[2:4]} did not start:\n{log.read().decode()[-2000:]}")
                    time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=30)


async def bare_app(scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
    """The floor: read the body, answer 202 with a small JSON body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"job_id":1,"url":"http://127.0.0.1/jobs/1"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve_bare(port: int) -> None:
    """Run the bare endpoint with uvicorn (the relay's server, its default settings)."""
    import uvicorn

    uvicorn.run(bare_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def queued(url: str) -> tuple[int, int]:
    """How many deliveries are recorded, and how many routing jobs wait."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT count(*) FROM relay_deliveries").fetchone()
        jobs = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
        ).fetchone()
    return int(rows[0]) if rows else 0, int(jobs[0]) if jobs else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default=os.environ.get("BOJDEPLOY_TEST_POSTGRES_URL"))
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare(args.serve_bare)
    n, c = args.requests, args.concurrency
    warm = min(200, n)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOJDEPLOY_WEBHOOK_SECRET": SECRET}
    body = push_body()
    with database(args.database_url or DEFAULT_URL) as url, tempfile.TemporaryDirectory() as tmp:
        env.update(BOJDEPLOY_DATABASE_URL=url, XDG_STATE_HOME=tmp)
        port = free_port()
        relay = [sys.executable, "-m", "bojdeploy", "relay", "--port", str(port), "--workers", "0"]
        with server(relay, port, env):
            make = request_bytes(port, body)
            asyncio.run(load(port, make, warm, c))
            measured = asyncio.run(load(port, make, n, c))
        stored, jobs = queued(url)
        port = free_port()
        with server([sys.executable, __file__, "--serve-bare", str(port)], port, env):
            make = request_bytes(port, body)
            asyncio.run(load(port, make, warm, c))
            bare = asyncio.run(load(port, make, n, c))
        inserts = asyncio.run(insert_loop(url, n, c))

    print(f"{n} requests, {c} connections, {os.cpu_count()} CPUs")
    print(f"{'':<34} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'vs relay':>10}")
    print(measured.line("relay: signed push, queued", measured.rate))
    print(bare.line("floor: bare uvicorn endpoint", measured.rate))
    print(inserts.line("floor: INSERT loop (one per commit)", measured.rate))
    print(f"relay answers: {measured.statuses}; stored {stored} deliveries, {jobs} jobs queued")
    if stored != n + warm or jobs != n + warm or measured.statuses != {202: n}:
        print(f"NOT every delivery was queued: expected {n + warm} of each and {n} answers 202")
    met = measured.rate >= TARGET_RATE and measured.quantile(0.99) < TARGET_P99
    print(
        f"target (>= {TARGET_RATE:.0f}/s, p99 < {TARGET_P99 * 1000:.0f} ms): "
        + ("met" if met else "MISSED")
    )


if __name__ == "__main__":
    main()
