"""Fixtures of the dashboard's tests: Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require
from tests.dashboard import CHROMIUM
from tests.relay.conftest import gitea, relays  # noqa: F401 - the relay tests' fixtures


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless chromium (Debian's, not Playwright's download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        require("playwright", False, f"{e} (pip install -e '.[dev]')")
    require("chromium", os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()
