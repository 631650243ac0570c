"""The dashboard in Debian's chromium against a real relay, PostgreSQL and Docker: a deploy shows
up without a reload, a running deployment's log streams in, Roll back restores the container."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.action import REGISTRY, DeployRepo
from tests.dashboard import artifacts, fetch
from tests.relay import FakeGitea, Relay, push_payload, rows, wait_for
from tests.relay.api import API_TOKEN

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
REPO = "infra/deployments"
ZERO = "0" * 40
SESSION = "dashboard-secret-6d1f0b39"  # the manifest's secret: never on any page
WAIT = 120_000  # ms


def gated(repo: DeployRepo, key: str, image: str) -> None:
    """deploy/<key>.yml whose container turns healthy only once /tmp/ready exists."""
    (repo.root / "deploy" / f"{key}.yml").write_text(
        "apiVersion: bojdeploy/v1\nkind: Container\n"
        f"metadata: {{name: {repo.name(key)}}}\n"
        "spec:\n"
        f"  image: {REGISTRY}/{image}\n"
        "  env: {MODE: gated, SESSION: \"{{ secret('APP_SESSION') }}\"}\n"
        f"  ports: ['127.0.0.1:{repo.ports[key]}:80']\n"
        "  labels: {io.bojdeploy.test: 'true'}\n"
        "  stop_timeout: 1s\n"
        "  timeout: 90s\n"
        "  healthcheck: {test: [CMD-SHELL, 'test -f /tmp/ready'], interval: 1s, timeout: 1s, "
        "retries: 2, start_period: 1s}\n"
    )


def running_row(url: str, sha: str) -> int | None:
    """The id of the deployment of `sha` once it runs and is waiting for health."""
    found = rows(
        url,
        "SELECT d.id FROM deployments d JOIN deployment_logs l ON l.deployment_id = d.id "
        "WHERE d.git_commit = %s AND d.status = 'running' AND l.message LIKE 'waiting up to%%'",
        (sha,),
    )
    return int(found[0][0]) if found else None


def test_deploys_stream_into_the_open_pages_and_roll_back_restores_the_container(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    docker_cleanup: None,  # first: the relays are stopped before the containers go
    relays: list[Relay],
    test_images: dict[str, str],
    docker_client: Any,
    chromium: Any,
) -> None:
    shots = artifacts()
    repo = DeployRepo(tmp_path / "origin", uuid.uuid4().hex[:8])
    relay = Relay(
        tmp_path, postgres_database, gitea, BOJDEPLOY_API_TOKEN=API_TOKEN, APP_SESSION=SESSION
    )
    relays.append(relay.start(workers=2))
    web = repo.name("web")
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{relay.url}/")
    page.evaluate("window.stillTheSamePage = true")

    # A deploy happens: the open overview shows it without a reload.
    repo.write("web", secret=True)
    first = repo.commit("web:1")
    relay.push(push_payload(REPO, f"file://{repo.root}", ZERO, first))
    row = f'tr[data-manifest="{web}"]'
    page.wait_for_selector(f"{row} .status-completed", timeout=WAIT)
    assert page.evaluate("window.stillTheSamePage") is True
    assert first[:8] in page.inner_text(row)
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # The next deploy waits for health: its page streams the log lines as they are written.
    gated(repo, "web", "web:2")
    second = repo.commit("web:2, gated")
    relay.push(push_payload(REPO, f"file://{repo.root}", first, second))
    running = wait_for("the gated deploy to run", lambda: running_row(postgres_database, second))
    page.wait_for_selector(f"{row} .now", timeout=WAIT)  # the overview: deploying now
    page.goto(f"{relay.url}/deployments/{running}")
    page.evaluate("window.stillTheSamePage = true")
    assert "running" in page.inner_text("#summary")
    assert f"container {web} is up" not in page.inner_text("#log-lines")
    page.screenshot(path=str(shots / "deployment-running.png"), full_page=True)
    new = next(
        c
        for c in docker_client.containers.list(filters={"name": web})
        if c.image.tags and c.image.tags[0].endswith("web:2")
    )
    new.exec_run(["sh", "-c", "touch /tmp/ready"])
    page.wait_for_selector(f'#log-lines li:has-text("container {web} is up")', timeout=WAIT)
    page.wait_for_selector("#summary .status-completed", timeout=WAIT)
    assert page.evaluate("window.stillTheSamePage") is True
    page.screenshot(path=str(shots / "deployment-done.png"), full_page=True)

    # Without a session there are no buttons; signing in brings them; Roll back restores web:1.
    assert page.locator("form button").count() == 0 or "Sign in" in page.inner_text("main")
    assert page.get_by_role("button", name=re.compile("Roll back")).count() == 0
    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    page.get_by_label("API token").fill(API_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{relay.url}/deployments/{running}")
    page.get_by_role("button", name=re.compile("Roll back to #")).click()
    page.wait_for_selector("text=Queued as job", timeout=WAIT)
    chain = '#rollbacks li:has-text("rolled back by")'
    page.wait_for_selector(f"{chain} .status-completed", timeout=WAIT)
    assert docker_client.containers.get(web).image.tags[0].endswith("web:1")
    page.screenshot(path=str(shots / "rolled-back.png"), full_page=True)
    page.locator(f"{chain} a").click()
    [(origin,)] = rows(
        postgres_database, "SELECT MIN(id) FROM deployments WHERE git_commit = %s", (first,)
    )
    assert f"rolled back to #{origin}" in page.inner_text("#rollbacks")
    assert f"rolled back from #{running}" in page.inner_text("#rollbacks")

    # Keyboard first: the skip link; a phone-sized screen does not scroll sideways.
    page.goto(f"{relay.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    phone = chromium.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    small = phone.new_page()
    for path in ("/", "/history", f"/deployments/{running}"):
        small.goto(f"{relay.url}{path}")
        assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    small.goto(f"{relay.url}/history")
    small.screenshot(path=str(shots / "history-phone.png"), full_page=True)
    phone.close()

    # No secret on any page, as HTML or JSON.
    ids = [r[0] for r in rows(postgres_database, "SELECT id FROM deployments ORDER BY id")]
    assert len(ids) >= 3
    paths = ["/", "/history", f"/history?name={web}", *[f"/deployments/{i}" for i in ids]]
    for path in paths:
        for accept in ("text/html", "application/json"):
            status, body, _ = fetch(f"{relay.url}{path}", headers={"Accept": accept})
            assert status == 200, (path, accept)
            assert SESSION not in body and API_TOKEN not in body, path
    assert SESSION not in page.content()
    context.close()
