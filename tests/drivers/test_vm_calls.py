"""The XenAPI calls of a VM create: each thing looked up or read once, against the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bojdeploy.drivers.vm import VMDriver
from bojdeploy.testing.xapi import XapiSimulator
from tests.drivers.test_vm_driver import NETWORK, Pool, Recorder, vm_spec, work

# A create from a template with one network and a guest that reports its IP at its first look.
CREATE_CALLS = [
    "VM.get_all_records_where",  # the template, the name and its leftover names at once
    "network.get_all_records_where",  # the network with its MTU
    "Async.VM.clone",
    "task.get_record",
    "task.destroy",
    "VM.get_record",  # the clone, kept through the provision
    "pool.get_all_records",  # the default SR of the template's disks
    "SR.get_uuid",
    "VM.set_other_config",  # ownership keys and the create marker
    "VM.set_name_label",  # <name>.creating -> <name>
    "Async.VM.provision",
    "task.get_record",
    "task.destroy",
    "VM.set_VCPUs_max",
    "VM.set_VCPUs_at_startup",
    "VM.set_memory_limits",
    "VIF.create",
    "VM.set_xenstore_data",
    "Async.VM.start",
    "task.get_record",
    "task.destroy",
    "VM.get_record",  # the IP wait's look, which the verification uses
    "VM_guest_metrics.get_networks",
    "VM.set_other_config",  # the confirmation
]


@pytest.fixture
def sim() -> Iterator[Any]:
    """A simulator whose guests report their IP as soon as they start."""
    with XapiSimulator(ip_delay=0.0) as simulator:
        yield simulator


def test_a_create_reads_each_thing_once(sim: Any, session: Any) -> None:
    job = work(session, vm_spec())
    before = len(sim.calls)
    applied = VMDriver(session).apply(job, Recorder())
    assert [name for name, _ in sim.calls[before:]] == CREATE_CALLS
    assert applied.facts["ip"]
    pool = Pool(sim.url)
    try:
        (vm,) = pool.vms("web")
        vif = pool.api.VIF.get_record(vm["VIFs"][0])
        assert vif["MTU"] == pool.api.network.get_MTU(vif["network"])
        assert not vm["is_a_template"] and "disks" not in vm["other_config"]
        assert "bojdeploy.unfinished" not in vm["other_config"]
    finally:
        pool.close()


def test_a_template_named_by_uuid_is_looked_up_apart_from_the_name(sim: Any, session: Any) -> None:
    pool = Pool(sim.url)
    try:
        (template,) = pool.api.VM.get_by_name_label(vm_spec()["template"])
        uuid = pool.api.VM.get_uuid(template)
    finally:
        pool.close()
    job = work(session, vm_spec(template=uuid))
    before = len(sim.calls)
    applied = VMDriver(session).apply(job, Recorder())
    called = [name for name, _ in sim.calls[before:]]
    assert called[:4] == [
        "VM.get_by_uuid",
        "VM.get_record",
        "VM.get_all_records_where",
        "network.get_all_records_where",
    ]
    assert applied.summary.startswith("created VM web")


@pytest.mark.parametrize("by", ["uuid", "quoted name"])
def test_a_network_named_by_uuid_or_a_quoted_name_gets_its_mtu(
    sim: Any, session: Any, by: str
) -> None:
    pool = Pool(sim.url)
    try:
        (network,) = pool.api.network.get_by_name_label(NETWORK)
        pool.api.network.set_MTU(network, "9000")
        wanted = pool.api.network.get_uuid(network)
        if by == "quoted name":
            wanted = 'LAN "a"'
            pool.api.network.set_name_label(network, wanted)
        job = work(session, vm_spec(networks=[{"network": wanted}]))
        before = len(sim.calls)
        VMDriver(session).apply(job, Recorder())
        assert "network.get_MTU" not in [name for name, _ in sim.calls[before:]]
        (vif,) = [pool.api.VIF.get_record(ref) for ref in pool.vm("web")["VIFs"]]
        assert (vif["network"], vif["MTU"]) == (network, "9000")
    finally:
        pool.close()
