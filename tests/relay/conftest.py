"""Fixtures of the relay's tests: a throwaway database, the fake Gitea, relays to stop."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.action import DeployRepo
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


@pytest.fixture
def start_relay(
    tmp_path: Path, postgres_database: str, gitea: FakeGitea, relays: list[Relay]
) -> Callable[..., Relay]:
    """Start a relay that reports to the fake Gitea, on the test's database unless told another."""

    def start(workers: int = 2, database_url: str | None = None, **env: str) -> Relay:
        relay = Relay(tmp_path, database_url or postgres_database, gitea, **env)
        relays.append(relay.start(workers=workers))
        return relay

    return start


@pytest.fixture
def repo(
    tmp_path: Path, test_images: dict[str, str], docker_cleanup: None, relays: list[Relay]
) -> Iterator[DeployRepo]:
    """The deployment repository the pushes come from (cloned by the relay over file://).

    The test's relays are stopped before its containers are removed: a worker still running a
    job (a rollback the test did not wait for) would otherwise leave a container behind.
    """
    yield DeployRepo(tmp_path / "origin", uuid.uuid4().hex[:8])
    for relay in relays:
        relay.stop()
