"""Targets find each kind's driver in one table; a driver is made, and connects, only when used."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.kinds import KINDS
from bojdeploy.drivers import DRIVERS, Targets
from bojdeploy.errors import DriverError
from bojdeploy.settings import Settings
from bojdeploy.testing.xapi import XapiSimulator


def closed_port_url() -> str:
    """A tcp:// Docker host nothing listens on: using it would fail."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator() as simulator:
        yield simulator


def test_every_kind_the_plan_knows_has_a_driver() -> None:
    assert list(DRIVERS) == list(KINDS)


def test_an_unknown_kind_is_a_driver_error_and_connects_nothing() -> None:
    targets = Targets("prod", Settings(docker_host=closed_port_url()), RepoConfig())
    for attempt in (
        lambda: targets.driver("widget"),
        lambda: targets.observe({"widget"}),
        lambda: targets.observe_one("widget", "web"),
    ):
        with pytest.raises(DriverError, match="no driver for 'widget'.*container, service, vm"):
            attempt()


def test_a_kind_not_in_the_run_needs_no_connection(sim: XapiSimulator) -> None:
    settings = Settings(docker_host=closed_port_url(), xen_url=sim.url, xen_password="pw")
    targets = Targets("prod", settings, RepoConfig())
    try:
        assert targets.observe({"vm"}) == []  # the pool has templates only; Docker unused
        assert targets.observe_one("vm", "web") == []
        assert targets.driver("vm") is targets.driver("vm")  # one driver, one login
    finally:
        targets.close()
    logins = [name for name, _ in sim.calls if name.startswith("session.login")]
    assert len(logins) == 1
