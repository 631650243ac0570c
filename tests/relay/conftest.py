"""Fixtures of the relay's tests: a throwaway database, the fake Gitea, relays to stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.relay import TOKEN, FakeGitea, Relay


@pytest.fixture
def gitea() -> Iterator[FakeGitea]:
    """The fake Gitea, answering on 127.0.0.1."""
    fake = FakeGitea(token=TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[Relay]]:
    """Relays a test starts; stopped at the end."""
    started: list[Relay] = []
    yield started
    for relay in started:
        relay.stop()
