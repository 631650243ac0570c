"""Device slots and the calls that change devices in place: free VBD/VIF positions, hot-plug
of disks, CD insert/eject, disk resize, static IP settings of a VIF (xapi_vm_helpers.ml,
xapi_vbd.ml, xapi_vdi.ml, xapi_vif.ml)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from bojdeploy.testing.xapi.devices import plug_device
from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.registry import api
from bojdeploy.testing.xapi.schema import NULL_REF
from bojdeploy.testing.xapi.store import Store

# xapi_vm_helpers: every guest type may use disk numbers 0..254 and VIF devices 0..6
# (the control domain 0..255).
_VBD_SLOTS = 255
_VIF_SLOTS = 7
_DISK_NAME = re.compile(r"(?:xvd|hd|sd)([a-z]+)")
# The error SMAPI's file-based SRs raise for a smaller size ("VDISize", code 79).
_SHRINK = ("SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=shrinking not allowed]", "")


def _disk_number(name: str) -> int | None:
    """The disk number a VBD's userdevice or device names: "2", "xvdc" and "hdc" are all 2."""
    if name.isdigit():
        return int(name)
    match = _DISK_NAME.fullmatch(name)
    if match is None:
        return None
    number = 0
    for letter in match.group(1):
        number = number * 26 + ord(letter) - ord("a") + 1
    return number - 1


@api("VM.get_allowed_VBD_devices", "vm:VM")
def allowed_vbd_devices(store: Store, ref: str) -> list[str]:
    """The userdevices no VBD of the VM uses (by userdevice or device name), lowest first."""
    vm = store.record("VM", ref)
    used = set()
    for vbd in (store.record("VBD", r) for r in vm["VBDs"]):
        used |= {_disk_number(vbd["userdevice"]), _disk_number(vbd["device"])}
    slots = _VBD_SLOTS + (1 if vm["is_control_domain"] else 0)
    return [str(n) for n in range(slots) if n not in used]


@api("VM.get_allowed_VIF_devices", "vm:VM")
def allowed_vif_devices(store: Store, ref: str) -> list[str]:
    """The VIF devices 0..6 no VIF of the VM uses."""
    used = {store.record("VIF", r)["device"] for r in store.record("VM", ref)["VIFs"]}
    return [str(n) for n in range(_VIF_SLOTS) if str(n) not in used]


@api("VBD.plug", "self:VBD")
def plug_vbd(store: Store, ref: str) -> None:
    """Hot-plug a VBD into its running VM."""
    plug_device(store, "VBD", ref, True)


@api("VBD.unplug", "self:VBD")
def unplug_vbd(store: Store, ref: str) -> None:
    """Hot-unplug a VBD from its running VM; VBD_NOT_UNPLUGGABLE for a system disk."""
    if not store.record("VBD", ref)["unpluggable"]:
        raise XapiError("VBD_NOT_UNPLUGGABLE", ref)
    plug_device(store, "VBD", ref, False)


def _removable(store: Store, ref: str) -> dict[str, Any]:
    vbd = store.record("VBD", ref)
    if vbd["type"] != "CD":
        raise XapiError("VBD_NOT_REMOVABLE_MEDIA", ref)
    return vbd


@api("VBD.insert", "vbd:VBD", "vdi:VDI")
def insert(store: Store, ref: str, vdi: str) -> None:
    """Put an ISO into an empty CD drive: VBD_NOT_REMOVABLE_MEDIA, VBD_NOT_EMPTY."""
    vbd = _removable(store, ref)
    if not vbd["empty"]:
        raise XapiError("VBD_NOT_EMPTY", ref)
    vbd.update(VDI=vdi, empty=False)
    store.link("VDI", vdi, "VBDs", ref)


@api("VBD.eject", "vbd:VBD")
def eject(store: Store, ref: str) -> None:
    """Empty a CD drive: VBD_NOT_REMOVABLE_MEDIA, VBD_IS_EMPTY."""
    vbd = _removable(store, ref)
    if vbd["empty"]:
        raise XapiError("VBD_IS_EMPTY", ref)
    store.unlink("VDI", vbd["VDI"], "VBDs", ref)
    vbd.update(VDI=NULL_REF, empty=True)


@api("VDI.resize", "vdi:VDI", "size:int")
def resize(store: Store, ref: str, size: int) -> None:
    """Grow a disk (the SR's allocation with it); shrinking fails as SMAPI's ext SR does."""
    vdi = store.record("VDI", ref)
    if size < vdi["virtual_size"]:
        raise XapiError(*_SHRINK)
    if store.exists("SR", vdi["SR"]):
        store.record("SR", vdi["SR"])["virtual_allocation"] += size - vdi["virtual_size"]
    vdi["virtual_size"] = size


def _configure_ip(
    store: Store, ref: str, version: int, mode: str, address: str, gateway: str
) -> None:
    """Record a VIF's static IP settings (for guests with the native agent)."""
    vif = store.record("VIF", ref)
    if mode.lower() not in ("none", "static"):
        raise XapiError("FIELD_TYPE_ERROR", "mode")
    for value, param, parse in (
        (address, "address", ipaddress.ip_interface),
        (gateway, "gateway", ipaddress.ip_address),
    ):
        if mode.lower() == "static" and value:
            try:
                if parse(value).version != version:
                    raise ValueError(value)
            except ValueError:
                raise XapiError("INVALID_IP_ADDRESS_SPECIFIED", param) from None
    static = mode.lower() == "static"
    prefix = f"ipv{version}"
    vif[f"{prefix}_configuration_mode"] = "Static" if static else "None"
    vif[f"{prefix}_addresses"] = [address] if static and address else []
    vif[f"{prefix}_gateway"] = gateway if static else ""


@api("VIF.configure_ipv4", "self:VIF", "mode:str", "address:str", "gateway:str")
def configure_ipv4(store: Store, ref: str, mode: str, address: str, gateway: str) -> None:
    """Mode None or Static, an address with prefix (192.0.2.5/24) and a gateway."""
    _configure_ip(store, ref, 4, mode, address, gateway)


@api("VIF.configure_ipv6", "self:VIF", "mode:str", "address:str", "gateway:str")
def configure_ipv6(store: Store, ref: str, mode: str, address: str, gateway: str) -> None:
    """Mode None or Static, an address with prefix (2001:db8::5/64) and a gateway."""
    _configure_ip(store, ref, 6, mode, address, gateway)
