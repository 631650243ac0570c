"""Sign-in and the buttons' CSRF defence on a real relay process (PostgreSQL, no deploys)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bojdeploy.frontends.dashboard.session import csrf_token, new_session, session_nonce
from tests.dashboard import Audit, fetch
from tests.relay import Relay
from tests.relay.api import API_TOKEN, record

pytestmark = pytest.mark.postgres
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post(relay: Relay, path: str, fields: dict[str, str], cookie: str = "") -> tuple[int, str]:
    headers = {**FORM, **({"Cookie": cookie} if cookie else {})}
    status, body, _ = fetch(
        f"{relay.url}{path}", method="POST", data=urlencode(fields).encode(), headers=headers
    )
    return status, body


def sign_in(relay: Relay, token: str) -> tuple[int, str]:
    """POST the sign-in form; the status and the cookie it set ('' for none)."""
    status, _, headers = fetch(
        f"{relay.url}/login",
        method="POST",
        data=urlencode({"token": token, "next": "/history"}).encode(),
        headers=FORM,
    )
    return status, headers.get("set-cookie", "")


def test_buttons_need_a_session_and_its_csrf_token(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    relay = Relay(tmp_path, postgres_database, BOJDEPLOY_API_TOKEN=API_TOKEN).start(workers=0)
    relays.append(relay)
    old = record(postgres_database, "web", config={"kind": "Container", "spec": {"image": "w:1"}})
    new = record(postgres_database, "web", config={"kind": "Container", "spec": {"image": "w:2"}})
    page = f"/deployments/{new}"

    html = fetch(f"{relay.url}{page}")[1]
    assert Audit(html).post_forms == [] and f'href="/login?next=/deployments/{new}"' in html
    assert post(relay, f"{page}/rollback", {"csrf_token": "x"})[0] == 403
    assert sign_in(relay, "guessed") == (401, "")

    status, cookie = sign_in(relay, API_TOKEN)
    assert status == 303
    assert {"httponly", "samesite=strict", "path=/"} <= {
        part.strip().lower() for part in cookie.split(";")
    }, cookie
    session = cookie.split(";")[0]
    html = fetch(f"{relay.url}{page}", headers={"Cookie": session})[1]
    assert Audit(html).post_forms == ["/logout", f"{page}/redeploy", f"{page}/rollback"]
    assert f"Roll back to #{old}" in html and API_TOKEN not in html
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found is not None
    csrf = found.group(1)

    forged = f"bojdeploy_session={new_session('another-token')}"
    other = session_nonce("another-token", forged.partition("=")[2]) or ""
    refused = {
        "no session": post(relay, f"{page}/rollback", {"csrf_token": csrf}),
        "no csrf token": post(relay, f"{page}/rollback", {}, session),
        "wrong csrf token": post(relay, f"{page}/rollback", {"csrf_token": "0" * 64}, session),
        "session of another token": post(
            relay, f"{page}/rollback", {"csrf_token": csrf_token("another-token", other)}, forged
        ),
        "sign out without csrf": post(relay, "/logout", {}, session),
    }
    assert {k: v[0] for k, v in refused.items()} == dict.fromkeys(refused, 403)

    # A good request reaches the REST API's own rollback, which refuses what it never deployed.
    status, body = post(relay, f"{page}/rollback", {"csrf_token": csrf}, session)
    assert status == 409 and "was never deployed to production through this relay" in body
    status, body = post(relay, f"{page}/redeploy", {"csrf_token": csrf}, session)
    assert status == 409 and "was never deployed to production through this relay" in body
    assert relay.get(page)["id"] == new  # API clients still get JSON


def test_without_an_api_token_there_is_no_sign_in_and_posts_are_refused(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    relay = Relay(tmp_path, postgres_database).start(workers=0)
    relays.append(relay)
    found = record(postgres_database, "web", config={"kind": "Container", "spec": {}})
    html = fetch(f"{relay.url}/deployments/{found}")[1]
    assert Audit(html).post_forms == [] and Audit(html).buttons == 0
    assert "Sign in" not in html
    cookie = f"bojdeploy_session={new_session(API_TOKEN)}"
    for path in (f"/deployments/{found}/rollback", f"/deployments/{found}/redeploy", "/login"):
        status, body = post(relay, path, {"csrf_token": "x", "token": API_TOKEN}, cookie)
        assert status == 403 and "read-only" in body, path
