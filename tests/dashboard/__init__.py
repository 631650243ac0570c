"""Helpers for the dashboard's tests: pages fetched as a browser without JavaScript would."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def artifacts() -> Path:
    """Where browser tests write screenshots: $BOJDEPLOY_TEST_ARTIFACTS or build/test-artifacts."""
    where = Path(os.environ.get("BOJDEPLOY_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


def fetch(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, str]]:
    """One request as a browser sends it (Accept: text/html); status, body, headers."""
    sent = {"Accept": "text/html", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), {k.lower(): v for k, v in e.headers.items()}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller (to read their cookies)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Audit(HTMLParser):
    """What a page's HTML says about its accessibility: the lang, the viewport, unlabelled
    controls, POST forms and buttons."""

    def __init__(self, html: str):
        super().__init__()
        self.lang = ""
        self.viewport = False
        self.labels: set[str] = set()
        self.controls: list[str] = []
        self.post_forms: list[str] = []
        self.buttons = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "meta" and a.get("name") == "viewport":
            self.viewport = "width=device-width" in a.get("content", "")
        elif tag == "label":
            self.labels.add(a.get("for", ""))
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a.get("id", ""))
        elif tag == "form" and a.get("method", "get").lower() == "post":
            self.post_forms.append(a.get("action", ""))
        elif tag == "button":
            self.buttons += 1

    @property
    def unlabelled(self) -> list[str]:
        """Controls without a <label for=their id>."""
        return [c for c in self.controls if not c or c not in self.labels]
