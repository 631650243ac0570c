"""Which host ports a new container takes over from one being pruned (pure helpers)."""

from __future__ import annotations

from bojdeploy.drivers.container_spec import port_bindings
from bojdeploy.drivers.handover import clash, held_ports, wanted_ports


def test_ports_clash_on_the_same_address_or_on_every_address() -> None:
    wanted = wanted_ports(port_bindings(["127.0.0.1:8080:80", "9000:90/udp", "70"])[1])
    assert wanted == {("127.0.0.1", "tcp", 8080), ("", "udp", 9000)}  # no fixed port for 70
    held = held_ports(
        {
            "HostConfig": {
                "PortBindings": {
                    "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                    "90/udp": [{"HostIp": "127.0.0.2", "HostPort": "9000"}],
                    "91/tcp": [{"HostIp": "", "HostPort": ""}],
                }
            }
        }
    )
    assert held == {("0.0.0.0", "tcp", 8080), ("127.0.0.2", "udp", 9000)}
    assert sorted(clash(wanted, held)) == [("", "udp", 9000), ("127.0.0.1", "tcp", 8080)]
    assert clash({("127.0.0.1", "tcp", 8080)}, {("127.0.0.2", "tcp", 8080)}) == []
    assert clash({("127.0.0.1", "tcp", 8080)}, {("127.0.0.1", "udp", 8080)}) == []
    assert held_ports({"HostConfig": {"PortBindings": None}}) == set()
