"""PostgreSQL that goes away: one-line errors with exit code 3, no pool noise, recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from bojdeploy.errors import EXIT_UNREACHABLE, DatabaseUnreachable, StoreError
from bojdeploy.store import open_store
from tests.faults.proxy import Proxy, proxied

pytestmark = pytest.mark.postgres


@pytest.fixture
def cut_able(postgres_database: str) -> Iterator[tuple[Proxy, str]]:
    """A proxy in front of a fresh database, and the URL through it."""
    parts = urlsplit(postgres_database)
    with proxied((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        netloc = f"{parts.username}:{parts.password}@{proxy.address}"
        yield proxy, parts._replace(netloc=netloc).geturl()


def test_opening_a_database_that_is_down_is_one_line_and_exit_3(
    cut_able: tuple[Proxy, str], capfd: pytest.CaptureFixture[str]
) -> None:
    proxy, url = cut_able
    proxy.cut()
    with pytest.raises(DatabaseUnreachable) as caught:
        open_store(url)
    shown = url.replace(":bojdeploy@", ":***@")
    assert str(caught.value).startswith(f"cannot reach the database at {shown}: ")
    assert "\n" not in str(caught.value) and "Connection refused" in str(caught.value)
    assert caught.value.exit_code == EXIT_UNREACHABLE
    assert capfd.readouterr().err == ""


def test_a_lost_connection_is_unreachable_and_the_store_recovers(
    cut_able: tuple[Proxy, str], capfd: pytest.CaptureFixture[str]
) -> None:
    proxy, url = cut_able
    with open_store(url) as store:
        dep = store.create_deployment(deployment_type="container", name="web", environment="t")
        proxy.cut()
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(DatabaseUnreachable, match="cannot reach the database at "):
                store.add_log(dep, "info", "lost")
        assert time.monotonic() - started < 10  # each attempt gives up quickly
        with pytest.raises(DatabaseUnreachable), store.lock("t", "container", "web", timeout=1):
            pass
        proxy.restore()
        store.add_log(dep, "info", "back")
        assert [e.message for e in store.get_logs(dep)] == ["back"]
    time.sleep(0.5)  # the pool's own reconnection attempts would log now
    assert capfd.readouterr().err == ""


def test_sql_refusals_are_not_mistaken_for_an_outage(postgres_database: str) -> None:
    with open_store(postgres_database) as store, pytest.raises(StoreError) as caught:
        store.add_log(999_999, "info", "no such deployment")  # a foreign key refusal
    assert not isinstance(caught.value, DatabaseUnreachable)


def test_a_late_write_keeps_the_time_it_happened(postgres_database: str) -> None:
    then = datetime.now(UTC) - timedelta(minutes=5)
    with open_store(postgres_database) as store:
        dep = store.create_deployment(deployment_type="container", name="web", environment="t")
        store.add_log(dep, "info", "said earlier", at=then)
        store.update_deployment(dep, status="completed", completed=True, at=then)
        [entry] = store.get_logs(dep)
        record = store.get_deployment(dep)
    assert abs(entry.timestamp - then) < timedelta(seconds=1)
    assert record is not None and record.completed_at is not None
    assert abs(record.completed_at - then) < timedelta(seconds=1)
