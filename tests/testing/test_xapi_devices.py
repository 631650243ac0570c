"""Device slots, CD drives, disk hot-plug and resize, VIF IP settings and event.from through the
SDK, with xapi's error codes and parameters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import XenAPI

from bojdeploy.testing.xapi import XapiSimulator
from tests.testing.test_xapi_vm import GIB, failure, install


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(ip_delay=0.05) as simulator:
        yield simulator


@pytest.fixture
def xapi(sim: XapiSimulator) -> Any:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "", "1.0", "tests")
    return session.xenapi


def event_from(xapi: Any, classes: list[str], token: str, timeout: float) -> dict[str, Any]:
    """event.from (`from` is a Python keyword, hence getattr)."""
    result: dict[str, Any] = getattr(xapi.event, "from")(classes, token, timeout)
    return result


def vbd_record(vm: str, vdi: str, userdevice: str, kind: str = "Disk") -> dict[str, Any]:
    """A VBD.create record as Ansible and XenCenter send it (no `unpluggable`)."""
    return {
        "VM": vm,
        "VDI": vdi,
        "userdevice": userdevice,
        "bootable": False,
        "mode": "RO" if kind == "CD" else "RW",
        "type": kind,
        "empty": vdi == "OpaqueRef:NULL",
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


def new_disk(xapi: Any, size: int = GIB) -> str:
    sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
    record = {
        "name_label": "data",
        "name_description": "",
        "SR": sr,
        "virtual_size": str(size),
        "type": "user",
        "sharable": False,
        "read_only": False,
        "other_config": {},
    }
    return str(xapi.VDI.create(record))


def iso(xapi: Any) -> str:
    (ref,) = xapi.VDI.get_by_name_label("guest-tools.iso")
    return str(ref)


def test_allowed_devices_skip_used_ones(xapi: Any) -> None:
    vm = install(xapi)  # disk 0 and VIF 0
    assert xapi.VM.get_allowed_VIF_devices(vm) == ["1", "2", "3", "4", "5", "6"]
    vbd_devices = xapi.VM.get_allowed_VBD_devices(vm)
    assert vbd_devices[:3] == ["1", "2", "3"] and vbd_devices[-1] == "254"
    xapi.VBD.create(vbd_record(vm, "OpaqueRef:NULL", "3", "CD"))
    assert "3" not in xapi.VM.get_allowed_VBD_devices(vm)


def test_vbd_create_defaults_to_unpluggable_and_hot_plugs(xapi: Any) -> None:
    vm = install(xapi)
    vbd = xapi.VBD.create(vbd_record(vm, new_disk(xapi), "1"))
    assert xapi.VBD.get_unpluggable(vbd) is True
    assert failure(xapi.VBD.plug, vbd) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    xapi.VM.start(vm, False, False)
    xapi.VBD.unplug(vbd)
    assert xapi.VBD.get_currently_attached(vbd) is False
    xapi.VBD.plug(vbd)
    assert failure(xapi.VBD.plug, vbd) == ["DEVICE_ALREADY_ATTACHED", vbd]
    (system,) = [v for v in xapi.VM.get_VBDs(vm) if xapi.VBD.get_userdevice(v) == "0"]
    assert failure(xapi.VBD.unplug, system) == ["VBD_NOT_UNPLUGGABLE", system]


def test_cd_insert_and_eject(xapi: Any) -> None:
    vm = install(xapi)
    cd = xapi.VBD.create(vbd_record(vm, "OpaqueRef:NULL", "3", "CD"))
    assert failure(xapi.VBD.eject, cd) == ["VBD_IS_EMPTY", cd]
    xapi.VBD.insert(cd, iso(xapi))
    assert (xapi.VBD.get_empty(cd), xapi.VBD.get_VDI(cd)) == (False, iso(xapi))
    assert cd in xapi.VDI.get_VBDs(iso(xapi))
    assert failure(xapi.VBD.insert, cd, iso(xapi)) == ["VBD_NOT_EMPTY", cd]
    xapi.VBD.eject(cd)
    assert (xapi.VBD.get_empty(cd), xapi.VBD.get_VDI(cd)) == (True, "OpaqueRef:NULL")
    (disk,) = [v for v in xapi.VM.get_VBDs(vm) if xapi.VBD.get_type(v) == "Disk"]
    assert failure(xapi.VBD.eject, disk) == ["VBD_NOT_REMOVABLE_MEDIA", disk]


def test_vdi_resize_grows_only(xapi: Any) -> None:
    vdi = new_disk(xapi)
    xapi.VDI.resize(vdi, str(2 * GIB))
    assert xapi.VDI.get_virtual_size(vdi) == str(2 * GIB)
    assert failure(xapi.VDI.resize, vdi, str(GIB)) == [
        "SR_BACKEND_FAILURE_79",
        "",
        "VDI Invalid size [opterr=shrinking not allowed]",
        "",
    ]


def test_vif_static_ip_settings(xapi: Any) -> None:
    vm = install(xapi)
    (vif,) = xapi.VM.get_VIFs(vm)
    assert xapi.VIF.get_ipv4_configuration_mode(vif) == "None"
    xapi.VIF.configure_ipv4(vif, "Static", "192.0.2.5/24", "192.0.2.1")
    record = xapi.VIF.get_record(vif)
    assert (record["ipv4_configuration_mode"], record["ipv4_addresses"]) == (
        "Static",
        ["192.0.2.5/24"],
    )
    assert record["ipv4_gateway"] == "192.0.2.1"
    bad = failure(xapi.VIF.configure_ipv4, vif, "Static", "not-an-ip/24", "")
    assert bad == ["INVALID_IP_ADDRESS_SPECIFIED", "address"]
    xapi.VIF.configure_ipv6(vif, "Static", "2001:db8::5/64", "2001:db8::1")
    assert xapi.VIF.get_ipv6_addresses(vif) == ["2001:db8::5/64"]
    xapi.VIF.configure_ipv4(vif, "None", "", "")
    assert (xapi.VIF.get_ipv4_addresses(vif), xapi.VIF.get_ipv4_gateway(vif)) == ([], "")


def test_event_from_reports_adds_changes_and_deletions(xapi: Any) -> None:
    everything = event_from(xapi, ["vm"], "", 0.0)
    templates = {e["ref"] for e in everything["events"] if e["operation"] == "add"}
    assert set(xapi.VM.get_all()) == templates
    assert everything["valid_ref_counts"] == {"vm": str(len(templates))}
    token = everything["token"]

    quiet = event_from(xapi, ["vm"], token, 0.1)
    assert (quiet["events"], quiet["token"]) == ([], token)

    vm = install(xapi)
    added = event_from(xapi, ["VM"], token, 5.0)
    assert [(e["class"], e["operation"], e["ref"]) for e in added["events"]] == [("vm", "add", vm)]
    assert added["events"][0]["snapshot"]["name_label"] == "web"
    xapi.VM.set_name_label(vm, "db")
    changed = event_from(xapi, [f"vm/{vm}"], added["token"], 5.0)
    assert [(e["operation"], e["snapshot"]["name_label"]) for e in changed["events"]] == [
        ("mod", "db")
    ]
    for vdi in [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)]:
        xapi.VDI.destroy(vdi)
    xapi.VM.destroy(vm)
    gone = event_from(xapi, ["vm"], changed["token"], 5.0)
    assert [(e["operation"], e["ref"], "snapshot" in e) for e in gone["events"]] == [
        ("del", vm, False)
    ]


def test_event_from_waits_for_a_task(xapi: Any, sim: XapiSimulator) -> None:
    vm = install(xapi)
    token = event_from(xapi, ["task"], "", 0.0)["token"]
    sim.slow("VM.start", 0.3)
    task = xapi.Async.VM.start(vm, False, False)
    statuses = []
    deadline = time.monotonic() + 30
    while "success" not in statuses and time.monotonic() < deadline:
        result = event_from(xapi, ["task"], token, 10.0)
        token = result["token"]
        statuses += [e["snapshot"]["status"] for e in result["events"] if e["ref"] == task]
    assert statuses[0] == "pending" and statuses[-1] == "success"
    assert int(xapi.event.get_current_id()) >= int(token.split(",")[0])


def test_event_from_errors(xapi: Any) -> None:
    assert failure(getattr(xapi.event, "from"), ["nosuchclass"], "", 0.0) == [
        "EVENT_SUBSCRIPTION_PARSE_FAILURE",
        "nosuchclass",
    ]
    assert failure(getattr(xapi.event, "from"), ["vm"], "garbage", 0.0) == [
        "EVENT_FROM_TOKEN_PARSE_FAILURE",
        "garbage",
    ]


def test_unknown_method_still_fails_as_xapi_does(xapi: Any) -> None:
    with pytest.raises(XenAPI.Failure) as raised:
        xapi.VM.get_allowed_PCI_devices("OpaqueRef:NULL")
    assert raised.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.get_allowed_PCI_devices"]
