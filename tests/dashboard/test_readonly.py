"""`bojdeploy dashboard` against SQLite: every page holds its data in HTML (no JavaScript needed),
is labelled and readable on a phone, and nothing can be written through it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest

from bojdeploy.store import open_store
from bojdeploy.store.base import DriftState
from tests.dashboard import ROOT, Audit, fetch
from tests.relay import wait_for
from tests.repos import free_port

GITEA = "http://gitea.example.test:3000"
SHA = "1f2e3d4c" + "0" * 32


@pytest.fixture
def history(tmp_path: Path) -> dict[str, int]:
    """A SQLite history: web deployed, changed and failed, rolled back; api; a running job."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ids: dict[str, int] = {}
    with open_store(url) as store:

        def deploy(name: str, status: str, image: str, **fields: object) -> int:
            found = store.create_deployment(
                deployment_type=str(fields.pop("kind", "container")),
                name=name,
                environment=str(fields.pop("environment", "production")),
                status="running",
                git_commit=SHA,
                git_repository="infra/deployments",
                config={"kind": "Container", "spec": {"image": image, "env": {"SESSION": "***"}}},
                **fields,  # type: ignore[arg-type]
            )
            store.add_log(found, "info", f"{name}: started <{image}>")
            if status != "running":
                error = "container web is unhealthy" if status == "failed" else None
                store.update_deployment(found, status=status, error_message=error, completed=True)
            return found

        ids["first"] = deploy("web", "completed", "web:1", reason="web.yml changed")
        ids["broken"] = deploy("web", "failed", "web:2", reason="image changed")
        ids["rollback"] = deploy(
            "web", "completed", "web:1", rollback_from=ids["first"], reason="rollback"
        )
        for i in range(55):
            deploy("api", "completed", f"api:{i}", kind="service", environment="staging")
        ids["running"] = deploy("worker", "running", "worker:1")
        seen = datetime.now(UTC)
        store.save_drift(
            [
                DriftState("production", "container", "web", True, "stopped", "exited (0)", seen),
                DriftState("staging", "service", "api", False, "in sync", "", seen),
            ]
        )
    (tmp_path / "url").write_text(url)
    return ids


@pytest.fixture
def dashboard(tmp_path: Path, history: dict[str, int]) -> Iterator[str]:
    """`bojdeploy dashboard` on the SQLite history; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BOJDEPLOY_GITEA_URL": GITEA,
        "XDG_STATE_HOME": str(tmp_path / "xdg"),
    }
    env.pop("BOJDEPLOY_API_TOKEN", None)
    url = (tmp_path / "url").read_text()
    log = (tmp_path / "dashboard.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bojdeploy",
            "--database-url",
            url,
            "dashboard",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError((tmp_path / "dashboard.log").read_text())
        try:
            return fetch(f"{base}/static/dashboard.css")[0] == 200
        except OSError:
            return False

    wait_for("the dashboard to answer", answers, timeout=30)
    yield base
    process.terminate()
    process.wait(timeout=15)
    log.close()


def text(html: str) -> str:
    """The page's text without tags, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_overview_shows_every_manifest_by_environment_in_html(
    dashboard: str, history: dict[str, int]
) -> None:
    status, html, headers = fetch(f"{dashboard}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    words = text(html)
    assert "production" in words and "staging" in words
    web = re.search(r'<tr data-manifest="web">.*?</tr>', html, re.S)
    assert web is not None
    row = text(web.group(0))
    assert "container" in row and "completed" in row and "drifted" in row
    assert 'title="stopped; exited (0)"' in web.group(0)
    assert f'href="/deployments/{history["rollback"]}"' in web.group(0)
    assert f'href="{GITEA}/infra/deployments/commit/{SHA}"' in web.group(0)
    worker = re.search(r'<tr data-manifest="worker">.*?</tr>', html, re.S)
    assert worker is not None and "deploying now" in text(worker.group(0))
    assert "unknown" in text(worker.group(0))  # the drift watch never looked at it
    assert 'class="status status-failed"' not in web.group(0)

    _, staging, _ = fetch(f"{dashboard}/?environment=staging")
    assert "api" in text(staging) and 'data-manifest="web"' not in staging
    assert "in sync" in text(staging)


def test_deployment_page_has_reason_changes_log_error_and_chain(
    dashboard: str, history: dict[str, int]
) -> None:
    _, html, _ = fetch(f"{dashboard}/deployments/{history['broken']}")
    words = text(html)
    assert "image changed" in words
    assert "container web is unhealthy" in words
    assert "web: started <web:2>" in words and "&lt;web:2&gt;" in html  # escaped
    assert re.search(r"spec\.image\s+web:1\s+web:2", words), words
    assert f"rolled back by #{history['rollback']}" in words
    _, html, _ = fetch(f"{dashboard}/deployments/{history['rollback']}")
    words = text(html)
    assert f"rolled back from #{history['broken']}" in words
    assert f"rolled back to #{history['first']}" in words

    status, body, _ = fetch(
        f"{dashboard}/deployments/{history['first']}", headers={"Accept": "application/json"}
    )
    found = json.loads(body)
    assert status == 200 and found["id"] == history["first"]
    assert [line["message"] for line in found["logs"]] == ["web: started <web:1>"]
    assert fetch(f"{dashboard}/deployments/99999")[0] == 404


def test_history_filters_pages_and_charts_durations(
    dashboard: str, history: dict[str, int]
) -> None:
    _, html, _ = fetch(f"{dashboard}/history?name=web&status=failed")
    rows = re.findall(r'<a href="/deployments/(\d+)">#', html)
    assert rows == [str(history["broken"])]
    assert "<svg" in html and 'role="img"' in html and "web (container)" in html

    _, first, _ = fetch(f"{dashboard}/history?environment=staging")
    page_one = re.findall(r'<a href="/deployments/(\d+)">#', first)
    assert len(page_one) == 50
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older is not None
    _, second, _ = fetch(f"{dashboard}{older.group(1).replace('&amp;', '&')}")
    page_two = re.findall(r'<a href="/deployments/(\d+)">#', second)
    assert len(page_two) == 5 and not set(page_one) & set(page_two)
    assert 'rel="next"' not in second

    _, none, _ = fetch(f"{dashboard}/history?from=2000-01-01&to=2000-01-02")
    assert "No deployment matches." in none
    status, bad, _ = fetch(f"{dashboard}/history?from=yesterday")
    assert status == 400 and "from: a date as YYYY-MM-DD" in text(bad)


def test_pages_are_accessible_and_fit_a_phone(dashboard: str, history: dict[str, int]) -> None:
    for path in ("/", "/history", f"/deployments/{history['broken']}"):
        audit = Audit(fetch(f"{dashboard}{path}")[1])
        assert audit.lang == "en" and audit.viewport, path
        assert audit.unlabelled == [], path
    css = fetch(f"{dashboard}/static/dashboard.css")[1]
    assert "@media (max-width" in css and ":focus-visible" in css
    assert fetch(f"{dashboard}/static/../../etc/passwd")[0] == 404


def test_read_only_has_no_buttons_and_refuses_every_write(
    dashboard: str, history: dict[str, int]
) -> None:
    for path in ("/", "/history", f"/deployments/{history['first']}"):
        html = fetch(f"{dashboard}{path}")[1]
        audit = Audit(html)
        assert audit.post_forms == [] and "Sign in" not in html, path
        assert "read-only" in text(html)
    form = b"csrf_token=x"
    for path in (
        f"/deployments/{history['first']}/rollback",
        f"/deployments/{history['first']}/redeploy",
        "/login",
        "/logout",
    ):
        status, body, _ = fetch(f"{dashboard}{path}", method="POST", data=form)
        assert status == 403 and "read-only" in text(body), path
    assert fetch(f"{dashboard}/login")[0] == 403
