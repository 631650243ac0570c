"""The fleet test set-up: three separate Docker engines (one over ssh://) and two Xen pools."""

from __future__ import annotations

from typing import Any

import XenAPI


def test_three_engines_are_separate(docker_client: Any, fleet_engines: dict[str, Any]) -> None:
    roots = {docker_client.info()["DockerRootDir"]}
    roots |= {client.info()["DockerRootDir"] for client in fleet_engines.values()}
    assert len(roots) == 3
    assert set(fleet_engines) == {"engine-1", "engine-2"}


def test_two_pools_on_two_ports(xapi_pools: dict[str, Any]) -> None:
    urls = {sim.url for sim in xapi_pools.values()}
    assert len(urls) == 2
    for name, sim in xapi_pools.items():
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password("root", f"secret-{name[-1]}")
        assert session.xenapi.pool.get_all()
        session.xenapi.session.logout()
