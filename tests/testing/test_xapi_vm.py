"""VM semantics through the SDK: power states, templates, clone/provision/destroy, VCPUs, memory,
VIFs and guest metrics, with xapi's error codes and parameters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import XenAPI

from bojdeploy.testing.xapi import XapiSimulator

GIB = 2**30
DEBIAN = "Debian Bookworm 12"
ETH0 = "Pool-wide network associated with eth0"
VCPU_RULE = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(ip_delay=0.05) as simulator:
        yield simulator


@pytest.fixture
def xapi(sim: XapiSimulator) -> Any:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "", "1.0", "tests")
    return session.xenapi


def failure(call: Callable[..., Any], *args: Any) -> list[str]:
    """The ErrorDescription a call fails with."""
    with pytest.raises(XenAPI.Failure) as raised:
        call(*args)
    return list(raised.value.details)


def template(xapi: Any, name: str = DEBIAN) -> str:
    (ref,) = xapi.VM.get_by_name_label(name)
    return str(ref)


def vif_record(vm: str, network: str, device: str = "0", mac: str = "") -> dict[str, Any]:
    return {
        "device": device,
        "network": network,
        "VM": vm,
        "MAC": mac,
        "MTU": "1500",
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


def install(xapi: Any, name: str = "web") -> str:
    """Clone Debian, point its disks at the default SR (as xe vm-install does), provision, add
    a VIF: a halted VM."""
    vm = xapi.VM.clone(template(xapi), name)
    sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
    disks = xapi.VM.get_other_config(vm)["disks"].replace('sr=""', f'sr="{xapi.SR.get_uuid(sr)}"')
    xapi.VM.remove_from_other_config(vm, "disks")
    xapi.VM.add_to_other_config(vm, "disks", disks)
    xapi.VM.provision(vm)
    xapi.VIF.create(vif_record(vm, xapi.network.get_by_name_label(ETH0)[0]))
    return str(vm)


def in_state(xapi: Any, state: str) -> str:
    """An installed VM brought into power state `state`."""
    vm = install(xapi)
    if state != "Halted":
        xapi.VM.start(vm, state == "Paused", False)
    if state == "Suspended":
        xapi.VM.suspend(vm)
    assert xapi.VM.get_power_state(vm) == state
    return vm


OPS: dict[str, Callable[[Any, str], Any]] = {
    "start": lambda x, vm: x.VM.start(vm, False, False),
    "resume": lambda x, vm: x.VM.resume(vm, False, False),
    "clean_shutdown": lambda x, vm: x.VM.clean_shutdown(vm),
    "hard_shutdown": lambda x, vm: x.VM.hard_shutdown(vm),
    "clean_reboot": lambda x, vm: x.VM.clean_reboot(vm),
    "hard_reboot": lambda x, vm: x.VM.hard_reboot(vm),
    "pause": lambda x, vm: x.VM.pause(vm),
    "unpause": lambda x, vm: x.VM.unpause(vm),
    "suspend": lambda x, vm: x.VM.suspend(vm),
    "clone": lambda x, vm: x.VM.clone(vm, "copy"),
    "provision": lambda x, vm: x.VM.provision(vm),
    "destroy": lambda x, vm: x.VM.destroy(vm),
    "set_VCPUs_max": lambda x, vm: x.VM.set_VCPUs_max(vm, 2),
    "set_memory_limits": lambda x, vm: x.VM.set_memory_limits(vm, *[str(GIB)] * 4),
    "set_memory_static_range": lambda x, vm: x.VM.set_memory_static_range(vm, str(GIB), str(GIB)),
}


@pytest.mark.parametrize(
    "state, op, expected",
    [
        ("Halted", "clean_shutdown", "running"),
        ("Halted", "hard_shutdown", "paused, suspended, running"),
        ("Halted", "clean_reboot", "running"),
        ("Halted", "hard_reboot", "paused, running"),
        ("Halted", "pause", "running"),
        ("Halted", "resume", "suspended"),
        ("Running", "start", "halted"),
        ("Running", "destroy", "halted, suspended"),
        ("Running", "clone", "halted"),
        ("Running", "provision", "halted"),
        ("Running", "set_VCPUs_max", "halted"),
        ("Running", "set_memory_limits", "halted"),
        ("Running", "set_memory_static_range", "halted"),
        ("Paused", "clean_shutdown", "running"),
        ("Paused", "unpause", None),
        ("Suspended", "start", "halted"),
        ("Suspended", "unpause", "paused"),
    ],
)
def test_bad_power_state(xapi: Any, state: str, op: str, expected: str | None) -> None:
    vm = in_state(xapi, state)
    if expected is None:
        OPS[op](xapi, vm)
        return
    assert failure(OPS[op], xapi, vm) == ["VM_BAD_POWER_STATE", vm, expected, state.lower()]


@pytest.mark.parametrize(
    "state, op, result",
    [
        ("Halted", "start", "Running"),
        ("Running", "clean_shutdown", "Halted"),
        ("Running", "hard_shutdown", "Halted"),
        ("Paused", "hard_shutdown", "Halted"),
        ("Suspended", "hard_shutdown", "Halted"),
        ("Running", "pause", "Paused"),
        ("Paused", "unpause", "Running"),
        ("Running", "suspend", "Suspended"),
        ("Suspended", "resume", "Running"),
        ("Running", "clean_reboot", "Running"),
        ("Paused", "hard_reboot", "Running"),
    ],
)
def test_power_transitions(xapi: Any, state: str, op: str, result: str) -> None:
    vm = in_state(xapi, state)
    OPS[op](xapi, vm)
    record = xapi.VM.get_record(vm)
    assert record["power_state"] == result
    running = result in ("Running", "Paused")
    assert (int(record["domid"]) > 0) is running
    assert (record["resident_on"] != "OpaqueRef:NULL") is running


def test_reboot_creates_a_new_domain(xapi: Any) -> None:
    vm = in_state(xapi, "Running")
    domid = xapi.VM.get_domid(vm)
    xapi.VM.clean_reboot(vm)
    assert xapi.VM.get_domid(vm) != domid


def test_templates_only_allow_template_operations(xapi: Any) -> None:
    debian = template(xapi)
    assert failure(xapi.VM.start, debian, False, False) == ["VM_IS_TEMPLATE", debian, "start"]
    bad_state = ["VM_BAD_POWER_STATE", debian, "running", "halted"]
    assert failure(xapi.VM.clean_shutdown, debian) == bad_state
    is_template = ["VM_IS_TEMPLATE", debian, "make_into_template"]
    assert failure(xapi.VM.set_is_a_template, debian, True) == is_template
    assert failure(xapi.VM.destroy, debian) == ["VM_CANNOT_DELETE_DEFAULT_TEMPLATE"]
    assert "start" not in xapi.VM.get_allowed_operations(debian)
    assert "clone" in xapi.VM.get_allowed_operations(debian)


def test_clone_of_a_template_is_a_template(xapi: Any) -> None:
    debian = template(xapi)
    first, second = xapi.VM.clone(debian, "a"), xapi.VM.clone(debian, "b")
    source, clone = xapi.VM.get_record(debian), xapi.VM.get_record(first)
    assert clone["is_a_template"] is True and clone["is_default_template"] is False
    assert clone["name_label"] == "a" and clone["uuid"] != source["uuid"]
    assert "default_template" not in clone["other_config"]
    assert clone["other_config"]["base_template_name"] == DEBIAN
    assert clone["other_config"]["mac_seed"] != xapi.VM.get_other_config(second)["mac_seed"]
    for field in ("VCPUs_max", "memory_static_max", "platform", "xenstore_data", "HVM_boot_params"):
        assert clone[field] == source[field]
    assert clone["metrics"] != source["metrics"]
    xapi.VM.destroy(first)  # a clone is not a default template


def test_clone_copies_vifs_with_new_macs_and_disks(xapi: Any) -> None:
    vm = install(xapi)
    clone = xapi.VM.clone(vm, "web-2")
    (vif,), (clone_vif,) = xapi.VM.get_VIFs(vm), xapi.VM.get_VIFs(clone)
    assert xapi.VIF.get_MAC(vif) != xapi.VIF.get_MAC(clone_vif)
    assert xapi.VIF.get_network(vif) == xapi.VIF.get_network(clone_vif)
    (vbd,), (clone_vbd,) = xapi.VM.get_VBDs(vm), xapi.VM.get_VBDs(clone)
    vdi, clone_vdi = xapi.VBD.get_VDI(vbd), xapi.VBD.get_VDI(clone_vbd)
    assert vdi != clone_vdi
    assert xapi.VDI.get_virtual_size(vdi) == xapi.VDI.get_virtual_size(clone_vdi)
    assert xapi.VM.get_other_config(clone)["base_template_name"] == DEBIAN


def test_copy_puts_disk_copies_on_the_given_sr(xapi: Any) -> None:
    vm = install(xapi)
    sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
    for target in (sr, "OpaqueRef:NULL"):  # NULL (or no SR) keeps each disk's SR
        copy = xapi.VM.copy(vm, "copy", target)
        (vbd,) = xapi.VM.get_VBDs(copy)
        assert xapi.VDI.get_SR(xapi.VBD.get_VDI(vbd)) == sr
        assert xapi.VBD.get_VDI(vbd) != xapi.VBD.get_VDI(xapi.VM.get_VBDs(vm)[0])
    assert len(xapi.SR.get_VDIs(sr)) == 3


def test_provision_creates_disks_and_clears_is_a_template(xapi: Any) -> None:
    vm = install(xapi)
    record = xapi.VM.get_record(vm)
    assert record["is_a_template"] is False and "disks" not in record["other_config"]
    (vbd,) = record["VBDs"]
    disk = xapi.VBD.get_record(vbd)
    assert [disk[k] for k in ("userdevice", "bootable", "type", "mode")] == [
        "0",
        True,
        "Disk",
        "RW",
    ]
    vdi = xapi.VDI.get_record(disk["VDI"])
    assert vdi["virtual_size"] == "10737418240" and vdi["name_label"] == "0"
    assert vdi["SR"] == xapi.pool.get_default_SR(xapi.pool.get_all()[0])
    assert str(xapi.VM_metrics.get_install_time(record["metrics"])) != "19700101T00:00:00Z"


def test_provision_errors(xapi: Any) -> None:
    clone = xapi.VM.clone(template(xapi), "raw")
    assert failure(xapi.VM.provision, clone) == ["UUID_INVALID", "sr", ""]
    assert xapi.VM.get_is_a_template(clone) is False  # xapi clears the flag before the disks
    assert failure(xapi.VM.provision, clone) == ["PROVISION_ONLY_ALLOWED_ON_TEMPLATE"]
    other = xapi.VM.clone(template(xapi, "Other install media"), "other")
    xapi.VM.provision(other)
    assert xapi.VM.get_VBDs(other) == []


def test_destroy_leaves_vdis(xapi: Any) -> None:
    vm = install(xapi)
    record = xapi.VM.get_record(vm)
    (vbd,), (vif,) = record["VBDs"], record["VIFs"]
    vdi = xapi.VBD.get_VDI(vbd)
    xapi.VM.destroy(vm)
    assert failure(xapi.VM.get_record, vm) == ["HANDLE_INVALID", "VM", vm]
    assert failure(xapi.VBD.get_record, vbd) == ["HANDLE_INVALID", "VBD", vbd]
    assert failure(xapi.VIF.get_record, vif) == ["HANDLE_INVALID", "VIF", vif]
    assert failure(xapi.VM_metrics.get_record, record["metrics"])[0] == "HANDLE_INVALID"
    assert xapi.VDI.get_VBDs(vdi) == []
    xapi.VDI.destroy(vdi)
    assert vdi not in xapi.VDI.get_all()


def test_vdi_destroy_refuses_attached_disks(xapi: Any) -> None:
    vm = in_state(xapi, "Running")
    vdi = xapi.VBD.get_VDI(xapi.VM.get_VBDs(vm)[0])
    assert failure(xapi.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]


def test_vcpu_rules(xapi: Any) -> None:
    vm = install(xapi)
    assert failure(xapi.VM.set_VCPUs_at_startup, vm, 2) == ["INVALID_VALUE", VCPU_RULE, "2"]
    assert failure(xapi.VM.set_VCPUs_max, vm, 0) == ["INVALID_VALUE", VCPU_RULE, "0"]
    xapi.VM.set_VCPUs_max(vm, 4)
    xapi.VM.set_VCPUs_at_startup(vm, 4)
    assert failure(xapi.VM.set_VCPUs_max, vm, 2) == ["INVALID_VALUE", VCPU_RULE, "2"]
    xapi.VM.start(vm, False, False)
    xapi.VM.set_VCPUs_at_startup(vm, 3)  # no power-state guard
    assert xapi.VM.get_VCPUs_at_startup(vm) == "3"


def test_memory_rules(xapi: Any) -> None:
    vm = install(xapi)
    unordered = (str(GIB), str(GIB), str(2 * GIB), str(GIB))  # dynamic_min > static_max
    order = ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert failure(xapi.VM.set_memory_limits, vm, *unordered) == order
    xapi.VM.set_memory_limits(vm, str(GIB // 2), str(4 * GIB), str(GIB), str(2 * GIB))
    record = xapi.VM.get_record(vm)
    assert record["memory_static_max"] == str(4 * GIB)
    assert record["memory_dynamic_max"] == str(2 * GIB)
    assert record["memory_target"] == str(GIB)
    xapi.VM.set_memory(vm, str(3 * GIB))
    record = xapi.VM.get_record(vm)
    assert {record[f"memory_{k}"] for k in ("static_max", "dynamic_max", "dynamic_min")} == {
        str(3 * GIB)
    }
    xapi.VM.start(vm, False, False)
    xapi.VM.set_memory_dynamic_range(vm, str(GIB), str(2 * GIB))
    assert xapi.VM.get_memory_dynamic_max(vm) == str(2 * GIB)


def test_start_needs_free_host_memory(xapi: Any) -> None:
    vm = install(xapi)
    xapi.VM.set_memory(vm, str(64 * GIB))
    free = xapi.host.compute_free_memory(xapi.pool.get_master(xapi.pool.get_all()[0]))
    code, needed, available = failure(xapi.VM.start, vm, False, False)
    assert code == "HOST_NOT_ENOUGH_FREE_MEMORY" and available == free
    assert int(needed) > 64 * GIB
    assert xapi.VM.get_power_state(vm) == "Halted"


def test_guest_metrics_appear_after_ip_delay_and_go_on_shutdown(xapi: Any) -> None:
    vm = install(xapi)
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_guest_metrics(vm) == "OpaqueRef:NULL"
    deadline = time.monotonic() + 5
    while xapi.VM.get_guest_metrics(vm) == "OpaqueRef:NULL" and time.monotonic() < deadline:
        time.sleep(0.02)
    metrics = xapi.VM.get_guest_metrics(vm)
    networks = xapi.VM_guest_metrics.get_networks(metrics)
    assert networks["0/ip"] == networks["0/ipv4/0"] and networks["0/ip"].startswith("192.0.2.")
    xapi.VM.clean_shutdown(vm)
    assert xapi.VM.get_guest_metrics(vm) == "OpaqueRef:NULL"
    assert failure(xapi.VM_guest_metrics.get_record, metrics)[0] == "HANDLE_INVALID"


def test_vif_create_errors_and_mac_generation(xapi: Any) -> None:
    vm = xapi.VM.clone(template(xapi, "Other install media"), "net")
    network = xapi.network.get_by_name_label(ETH0)[0]
    record = vif_record(vm, network)
    del record["MTU"]
    assert failure(xapi.VIF.create, record) == ["FIELD_TYPE_ERROR", "MTU"]
    assert failure(xapi.VIF.create, vif_record(vm, network, "eth0")) == ["INVALID_DEVICE", "eth0"]
    assert failure(xapi.VIF.create, vif_record(vm, network, mac="zz")) == ["MAC_INVALID", "zz"]
    no_network = ["HANDLE_INVALID", "network", "OpaqueRef:NULL"]
    assert failure(xapi.VIF.create, vif_record(vm, "OpaqueRef:NULL")) == no_network
    vif = xapi.VIF.create(vif_record(vm, network))
    assert xapi.VIF.get_MAC_autogenerated(vif) is True and len(xapi.VIF.get_MAC(vif)) == 17
    assert vif in xapi.network.get_VIFs(network)
    assert failure(xapi.VIF.create, vif_record(vm, network)) == ["DEVICE_ALREADY_EXISTS", "0"]
    fixed = xapi.VIF.create(vif_record(vm, network, "1", "02:00:00:00:00:01"))
    assert xapi.VIF.get_MAC(fixed) == "02:00:00:00:00:01"
    xapi.VIF.destroy(fixed)
    assert xapi.VM.get_VIFs(vm) == [vif]


def test_vif_destroy_refuses_an_attached_vif_of_a_running_vm(xapi: Any) -> None:
    vm = in_state(xapi, "Running")
    (vif,) = xapi.VM.get_VIFs(vm)
    assert xapi.VIF.get_currently_attached(vif) is True
    attached = ["OPERATION_NOT_ALLOWED", "VIF currently attached to a running VM"]
    assert failure(xapi.VIF.destroy, vif) == attached
    xapi.VIF.unplug(vif)
    xapi.VIF.destroy(vif)
