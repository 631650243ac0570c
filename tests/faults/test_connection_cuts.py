"""PostgreSQL and Docker cut off mid-run (through a proxy): target work is finished or undone,
the exit code and one line say what happened, and the next run converges with honest rows."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bojdeploy.store import open_store
from tests.faults.harness import Killed, bojdeploy_command, child_env, kill_when
from tests.faults.proxy import Proxy, proxied
from tests.helpers import run_cli
from tests.repos import free_port, http_get

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
UNWRITTEN = "could not be written (database unreachable); the next run reconciles it"
POOL_NOISE = ("error connecting in", "discarding", "WARNING", "Traceback")

pytestmark = pytest.mark.usefixtures("docker_cleanup", "test_images")


class Site:
    """A one-container repository, the database it records into and the Docker it deploys to."""

    def __init__(self, root: Path, db_url: str, docker: Any):
        self.root = root
        self.db_url = db_url
        self.docker = docker
        self.name = f"bdcut-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")
        self.write("web:1")

    def write(self, image: str) -> None:
        (self.root / "deploy" / "app.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}}}\n"
            f"spec:\n  image: {REGISTRY}/{image}\n"
            f"  ports: ['127.0.0.1:{self.port}:80']\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  timeout: 20s\n  stop_timeout: 1s\n"
            "  healthcheck: {test: [CMD, wget, -qO-, 'http://127.0.0.1/'], interval: 500ms, "
            "timeout: 1s, retries: 2, start_period: 500ms}\n"
        )

    def args(self, db_url: str | None = None) -> list[str]:
        return ["--database-url", db_url or self.db_url, "apply", "--env", "test", str(self.root)]

    def apply(self, db_url: str | None = None) -> Any:
        """An apply in this process (setup and the runs after a fault)."""
        return run_cli(*self.args(db_url))

    def containers(self) -> dict[str, Any]:
        found = self.docker.containers.list(all=True, filters={"name": self.name})
        return {c.name: c for c in found}

    def rows(self) -> list[Any]:
        with open_store(self.db_url) as store:
            return store.list_deployments(name=self.name, limit=100)


@pytest.fixture
def site(tmp_path: Path, docker_client: Any, postgres_database: str) -> Iterator[Site]:
    made = Site(tmp_path / "repo", postgres_database, docker_client)
    yield made
    for container in made.containers().values():
        container.remove(force=True)


@pytest.fixture
def db_proxy(site: Site) -> Iterator[tuple[Proxy, str]]:
    """A proxy in front of the site's PostgreSQL, and the database URL that goes through it."""
    parts = urlsplit(site.db_url)
    with proxied((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        netloc = f"{parts.username}:{parts.password}@{proxy.address}"
        yield proxy, parts._replace(netloc=netloc).geturl()


def cut_run(site: Site, proxy: Proxy, pattern: str, db_url: str, **env: str) -> Killed:
    """Run apply in a child and cut the proxy when its output reaches `pattern`."""
    result = kill_when(
        site.args(db_url), pattern, cwd=site.root, env=env, on_match=proxy.cut, timeout=90
    )
    assert result.matched and proxy.cuts == 1, result.text
    assert not any(noise in result.text for noise in POOL_NOISE), result.text
    return result


def assert_converged(site: Site, version: str) -> None:
    """One container, running `version`, no `.previous`, no row left running."""
    assert list(site.containers()) == [site.name]
    assert http_get(site.port) == version
    assert "running" not in [r.status for r in site.rows()]


@pytest.mark.parametrize("pattern", [r"renamed .* to .*\.previous", r"started container"])
def test_database_cut_during_a_replace_to_an_unhealthy_version(
    site: Site, db_proxy: tuple[Proxy, str], pattern: str
) -> None:
    proxy, url = db_proxy
    assert site.apply().code == 0
    site.write("unhealthy:1")
    cut = cut_run(site, proxy, pattern, url)
    assert cut.code == 1, cut.text
    assert http_get(site.port) == "version 1"  # the rollback ran without the database
    assert f"container {site.name}: failed, but the record of deployment #2 {UNWRITTEN}" in cut.text
    assert "database unreachable; " in cut.text
    assert site.containers()[site.name].status == "running"

    proxy.restore()
    again = site.apply(url)
    assert again.code == 1, again.err  # the version is still unhealthy: refused again, undone
    assert_converged(site, "version 1")
    newest, cut_row, first = site.rows()
    assert (first.status, cut_row.status, newest.status) == ("completed", "failed", "failed")
    assert cut_row.error_message and "interrupted" in cut_row.error_message
    assert newest.error_message and "restored" in newest.error_message


@pytest.mark.parametrize("pattern", [r"renamed .* to .*\.previous", r"started container"])
def test_database_cut_during_a_replace_to_a_healthy_version(
    site: Site, db_proxy: tuple[Proxy, str], pattern: str
) -> None:
    proxy, url = db_proxy
    assert site.apply().code == 0
    site.write("web:2")
    cut = cut_run(site, proxy, pattern, url)
    assert cut.code == 1, cut.text
    assert f"container {site.name}: deployed, but the record of deployment #2 {UNWRITTEN}" in (
        cut.text
    )
    assert list(site.containers()) == [site.name]  # the change took effect; no .previous left
    assert http_get(site.port) == "version 2"

    proxy.restore()
    again = site.apply(url)
    assert again.code == 0, again.err
    assert_converged(site, "version 2")
    rows = site.rows()
    assert rows[0].status == "completed"
    assert rows[1].status == "failed" and "interrupted" in (rows[1].error_message or "")


def test_database_back_within_the_run_gets_every_record(
    site: Site, db_proxy: tuple[Proxy, str]
) -> None:
    proxy, url = db_proxy
    assert site.apply().code == 0
    site.write("web:2")

    def cut_for_a_while() -> None:
        proxy.cut()
        threading.Timer(1.5, proxy.restore).start()

    result = kill_when(
        site.args(url), r"renamed .* to", cwd=site.root, env={}, on_match=cut_for_a_while
    )
    assert result.code == 0, result.text
    assert "database unreachable; " in result.text and "reachable again" in result.text
    assert_converged(site, "version 2")
    newest = site.rows()[0]
    assert newest.status == "completed" and newest.completed_at is not None
    with open_store(site.db_url) as store:
        logged = [e.message for e in store.get_logs(newest.id)]
    printed = [line.split("] ", 1)[1] for line in result.lines if line.startswith("[container/")]
    assert logged == printed  # every line, in order, although the database was away


def run_child(site: Site, db_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        bojdeploy_command(*site.args(db_url)),
        cwd=site.root,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_database_down_before_the_run(site: Site, db_proxy: tuple[Proxy, str]) -> None:
    proxy, url = db_proxy
    assert site.apply().code == 0
    before = site.containers()[site.name].id
    site.write("web:2")
    proxy.cut()
    done = run_child(site, url)
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    shown = url.replace(":bojdeploy@", ":***@")
    assert line.startswith(f"error: cannot reach the database at {shown}: "), line
    assert "refused" in line
    assert {n: c.id for n, c in site.containers().items()} == {site.name: before}


def test_docker_down_before_the_run(site: Site) -> None:
    assert site.apply().code == 0
    before = site.containers()[site.name].id
    site.write("web:2")
    with proxied("/var/run/docker.sock") as proxy:
        proxy.cut()
        done = run_child(site, site.db_url, DOCKER_HOST=f"tcp://{proxy.address}")
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert line == f"error: cannot reach Docker at tcp://{proxy.address}: Connection refused"
    assert {n: c.id for n, c in site.containers().items()} == {site.name: before}


class CutOnLock:
    """The site's store; a proxy is cut when a step asks for its first lock (after the plan)."""

    def __init__(self, store: Any, proxy: Proxy):
        self.store = store
        self.proxy = proxy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def lock(self, *args: Any, **kwargs: Any) -> Any:
        self.proxy.cut()
        return self.store.lock(*args, **kwargs)


@pytest.mark.parametrize("lost", ["database", "Docker"])
def test_a_system_lost_after_the_plan_changes_nothing(
    site: Site, db_proxy: tuple[Proxy, str], lost: str
) -> None:
    from bojdeploy import engine
    from bojdeploy.engine.workspace import open_workspace
    from bojdeploy.settings import Settings

    db, url = db_proxy
    assert site.apply().code == 0
    before = site.containers()[site.name].id
    site.write("web:2")
    prepared = engine.prepare(open_workspace([site.root]), "test", {}, require_secrets=True)
    lines: list[str] = []
    with proxied("/var/run/docker.sock") as docker, open_store(url) as store:
        settings = Settings.from_env({"DOCKER_HOST": f"tcp://{docker.address}"})
        _, run = engine.apply(
            prepared,
            CutOnLock(store, db if lost == "database" else docker),  # type: ignore[arg-type]
            settings,
            lambda resource, level, message: lines.append(f"{level} {message}"),
        )
    assert run.exit_code == 3, lines
    assert [o.status for o in run.outcomes] == ["failed"]
    assert f"cannot reach {'the database' if lost == 'database' else 'Docker'}" in (
        run.outcomes[0].error or ""
    )
    assert {n: c.id for n, c in site.containers().items()} == {site.name: before}
    assert [r.status for r in site.rows()] == ["completed"]


@pytest.mark.parametrize("pattern", [r"stopping .*\.previous", r"started container"])
def test_docker_cut_during_a_replace(site: Site, pattern: str) -> None:
    assert site.apply().code == 0
    site.write("web:2")
    with proxied("/var/run/docker.sock") as proxy:
        docker_host = f"tcp://{proxy.address}"
        cut = cut_run(site, proxy, pattern, site.db_url, DOCKER_HOST=docker_host)
        assert cut.code == 1, cut.text
        assert "cannot reach Docker" in cut.text
        proxy.restore()
        again = run_cli(*site.args(), env={"DOCKER_HOST": docker_host})
    assert again.code == 0, again.err
    assert_converged(site, "version 2")
    assert site.rows()[0].status == "completed"


def test_the_proxy_cuts_and_restores(postgres_url: str) -> None:
    import psycopg

    parts = urlsplit(postgres_url)
    with proxied((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        url = parts._replace(netloc=f"{parts.username}:{parts.password}@{proxy.address}").geturl()
        with psycopg.connect(url, connect_timeout=3) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            proxy.cut()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError, match="refused"):
            psycopg.connect(url, connect_timeout=3)
        proxy.restore()
        with psycopg.connect(url, connect_timeout=3) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
