"""Helpers for the relay's tests: the relay as a real process, signed deliveries, the fake Gitea."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from bojdeploy.frontends.relay.signature import sign
from tests.fakes.fake_gitea import FakeGitea, default_swagger  # the one import of the fake
from tests.repos import free_port

__all__ = ["FakeGitea", "Relay", "push_payload", "rows", "wait_for"]
ROOT = Path(__file__).resolve().parents[2]
SECRET = "webhook-secret-3c91f0a2"
TOKEN = "gitea-token-relay-71d2"
REPO = "infra/deployments"  # the repository the pushes name
ZERO = "0" * 40  # the `before` of a branch's first push
FINAL = ("deployed", "failed", "ignored", "superseded")
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of one query (a fresh connection, so every commit is seen)."""
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def push_payload(
    repository: str, clone_url: str, before: str, after: str, branch: str = "main"
) -> dict[str, Any]:
    """A webhook push payload of Gitea 1.25.4's shape for this repository and commits."""
    event: dict[str, Any] = json.loads((default_swagger().parent / "push.json").read_text())
    owner, _, name = repository.partition("/")
    event["repository"].update(full_name=repository, name=name, clone_url=clone_url)
    event["repository"]["owner"]["login"] = owner
    event.update(ref=f"refs/heads/{branch}", before=before, after=after)
    event["commits"] = event["commits"][:1]
    event["commits"][0]["id"] = after
    event["head_commit"]["id"] = after
    return event


def settled(db: str, value: str, column: str = "after_sha") -> str | None:
    """The final status of the push whose `column` is `value` (its commit), once it has one."""
    found = rows(db, f"SELECT status FROM relay_deliveries WHERE {column} = %s", (value,))
    final = [s for (s,) in found if s in FINAL]
    return final[0] if final else None


def deployed(relay: Relay, root: Path, before: str, after: str) -> dict[str, Any]:
    """Push `after` of the repository at `root` and wait until it is deployed; the 202 answer."""
    answer = relay.push_commits(root, before, after)
    done = wait_for(f"{after[:7]} to deploy", lambda: settled(relay.database_url, after))
    assert done == "deployed", f"the push of {after[:7]} was {done}"
    return answer


class Relay:
    """`bojdeploy relay` (or `worker`) started as a process on 127.0.0.1."""

    def __init__(self, tmp: Path, database_url: str, gitea: FakeGitea | None = None, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log = tmp / f"relay-{self.port}.log"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp),
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": str(tmp / "state"),
            "BOJDEPLOY_DATABASE_URL": database_url,
            "BOJDEPLOY_WEBHOOK_SECRET": SECRET,
            **({"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}),
            **(
                {"BOJDEPLOY_GITEA_URL": gitea.url, "BOJDEPLOY_GITEA_TOKEN": TOKEN}
                if gitea is not None
                else {}
            ),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str, env: Mapping[str, str | None] = {}) -> subprocess.Popen[bytes]:
        """Start `bojdeploy ARGS` with the relay's environment (None removes a variable)."""
        full = {**self.env, **env}
        clean = {k: v for k, v in full.items() if v is not None}
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "bojdeploy", *args], env=clean, stdout=out, stderr=out
            )

    @contextlib.contextmanager
    def running(
        self, *args: str, env: Mapping[str, str | None] = {}
    ) -> Iterator[subprocess.Popen[bytes]]:
        """`bojdeploy ARGS` (a worker, say) for the length of a with block, then stopped."""
        process = self.command(*args, env=env)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)

    def start(self, workers: int = 2) -> Relay:
        """Start the relay and wait until it answers."""
        self.process = self.command(
            "relay", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)
        )
        wait_for("the relay to answer", self._answers, timeout=60)
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the relay exited: {self.log.read_text()}")
        try:
            urllib.request.urlopen(f"{self.url}/jobs/0", timeout=2)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Stop the relay (SIGTERM, then SIGKILL)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def post(
        self,
        body: bytes,
        *,
        event: str = "push",
        signature: str | None = None,
        content_type: str = "application/json",
        delivery: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST a delivery as Gitea does; the answer's status and JSON."""
        headers = {
            "Content-Type": content_type,
            "X-Gitea-Event": event,
            "X-Gitea-Delivery": delivery or str(uuid.uuid4()),
        }
        if signature is not None:
            headers["X-Gitea-Signature"] = signature
        request = urllib.request.Request(
            f"{self.url}/webhook/gitea", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def post_raw(self, headers: Mapping[str, str], chunks: list[bytes]) -> int:
        """Send headers, then these raw pieces of body, and read the answer's status (the
        relay may answer before the body ends)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest("POST", "/webhook/gitea")
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            for chunk in chunks:
                conn.send(chunk)
            return conn.getresponse().status
        finally:
            conn.close()

    def push(self, payload: dict[str, Any], delivery: str | None = None) -> dict[str, Any]:
        """Deliver a correctly signed push; its 202 answer."""
        body = json.dumps(payload).encode()
        status, answer = self.post(body, signature=sign(SECRET.encode(), body), delivery=delivery)
        assert status == 202, (status, answer)
        return answer

    def push_commits(
        self, root: Path, before: str, after: str, delivery: str | None = None
    ) -> dict[str, Any]:
        """Deliver a signed push of REPO, cloned from `root` over file://; its 202 answer."""
        return self.push(push_payload(REPO, f"file://{root}", before, after), delivery)

    def get(self, path: str) -> Any:
        """GET a JSON page of the relay."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as r:
            return json.loads(r.read())
