"""The inventory a fresh simulator starts with: a one-host XCP-ng pool, modelled on real records."""

from __future__ import annotations

from bojdeploy.testing.xapi.devices import new_vdi
from bojdeploy.testing.xapi.schema import now
from bojdeploy.testing.xapi.store import Store
from bojdeploy.testing.xapi.vm import MIB, memory_overhead
from bojdeploy.testing.xapi.vm_clone import create_vm

GIB = 1 << 30
HOST_NAME = "xcp-ng-sim"
DEBIAN_DISKS = (
    '<provision><disk device="0" size="10737418240" sr="" bootable="true" type="system"/>'
    "</provision>"
)
SOFTWARE_VERSION = {
    "product_brand": "XCP-ng",
    "product_version": "8.3.0",
    "product_version_text": "8.3",
    "product_version_text_short": "8.3",
    "platform_name": "XCP",
    "platform_version": "3.4.0",
    "build_number": "cloud",
    "hostname": "localhost",
    "xapi": "24.19",
    "xen": "4.17.5-3",
    "linux": "4.19.0+1",
    "network_backend": "openvswitch",
    "db_schema": "5.786",
}
_PLATFORM = {
    "acpi": "1",
    "apic": "true",
    "pae": "true",
    "nx": "true",
    "viridian": "false",
    "timeoffset": "0",
    "device-model": "qemu-upstream-compat",
    "secureboot": "false",
}
_DEBIAN = {"disks": DEBIAN_DISKS, "linux_template": "true", "install-methods": "cdrom,nfs,http"}
_RESTRICTIONS = (
    '<restrictions><restriction field="memory-static-max" max="137438953472"/>'
    '<restriction field="vcpus-max" max="32"/><restriction property="number-of-vbds" max="255"/>'
    '<restriction property="number-of-vifs" max="7"/></restrictions>'
)


def seed(store: Store) -> None:
    """Fill an empty store: pool, host, SR, networks, control domain and templates."""
    metrics = store.create("host_metrics", memory_total=16 * GIB, live=True, last_updated=now())
    host = store.create(
        "host",
        name_label=HOST_NAME,
        hostname=HOST_NAME,
        address="127.0.0.1",
        enabled=True,
        edition="xcp-ng",
        API_version_major=2,
        API_version_minor=21,
        API_version_vendor="XenSource",
        memory_overhead=256 * MIB,
        metrics=metrics,
        software_version=dict(SOFTWARE_VERSION),
        capabilities=["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"],
        allowed_operations=["provision", "vm_start", "vm_resume", "vm_migrate", "evacuate"],
        sched_policy="credit",
        virtual_hardware_platform_versions=["0", "1", "2"],
    )
    sr = store.create(
        "SR",
        name_label="Local storage",
        name_description="Simulated local storage",
        type="ext",
        content_type="user",
        physical_size=512 * GIB,
        other_config={"i18n-key": "local-storage"},
        sm_config={"devserial": "sim-local-storage"},
    )
    store.record("host", host).update(suspend_image_sr=sr, crash_dump_sr=sr)
    _tools_sr(store)
    store.create("pool", master=host, default_SR=sr, suspend_image_SR=sr, crash_dump_SR=sr)
    for index in (0, 1):
        store.create(
            "network",
            name_label=f"Pool-wide network associated with eth{index}",
            bridge=f"xenbr{index}",
            MTU=1500,
            managed=True,
            default_locking_mode="unlocked",
            other_config={"automatic": "true"},
        )
    _control_domain(store, host)
    _template(store, "Debian Bookworm 12", "debian-12", 1, _DEBIAN)
    _template(store, "Other install media", "other-install-media", 1, {"install-methods": "cdrom"})


def _tools_sr(store: Store) -> None:
    """The ISO library every XCP-ng host has, with the guest tools ISO (for CD drives)."""
    sr = store.create(
        "SR",
        name_label="XCP-ng Tools",
        name_description="XCP-ng Tools ISOs",
        type="iso",
        content_type="iso",
        shared=True,
        is_tools_sr=True,
        physical_size=64 * MIB,
        other_config={"xensource_internal": "true", "xenserver_tools_sr": "true"},
    )
    iso = new_vdi(
        store, sr, name_label="guest-tools.iso", virtual_size=62 * MIB, type="user", read_only=True
    )
    store.record("VDI", iso).update(is_tools_iso=True, sharable=True)


def _control_domain(store: Store, host: str) -> None:
    """dom0: a running control-domain VM, resident on the host, as every real pool has."""
    dom0 = create_vm(
        store,
        name_label=f"Control domain on host: {HOST_NAME}",
        name_description="The domain which manages physical devices and manages other domains",
        power_state="Running",
        is_control_domain=True,
        domid=0,
        resident_on=host,
        VCPUs_max=4,
        VCPUs_at_startup=4,
        **_memory(GIB, GIB),
        memory_overhead=0,
        other_config={"storage_driver_domain": "true"},
    )
    store.link("host", host, "resident_VMs", dom0)
    store.record("host", host)["control_domain"] = dom0


def _memory(static_min: int, size: int) -> dict[str, int]:
    return {
        "memory_static_min": static_min,
        "memory_dynamic_min": size,
        "memory_dynamic_max": size,
        "memory_static_max": size,
        "memory_target": size,
    }


def _template(store: Store, name: str, label: str, vcpus: int, other: dict[str, str]) -> None:
    """A default, halted XCP-ng template (a clone of it is a template too, until provisioned)."""
    vm = create_vm(
        store,
        name_label=name,
        name_description=f"Template for {name}",
        power_state="Halted",
        domid=-1,
        is_a_template=True,
        is_default_template=True,
        reference_label=label,
        VCPUs_max=vcpus,
        VCPUs_at_startup=vcpus,
        **_memory(512 * MIB, 2 * GIB),
        HVM_boot_policy="BIOS order",
        HVM_boot_params={"order": "cdn", "firmware": "bios"},
        HVM_shadow_multiplier=1.0,
        platform=dict(_PLATFORM),
        actions_after_shutdown="destroy",
        actions_after_reboot="restart",
        actions_after_crash="restart",
        recommendations=_RESTRICTIONS,
        user_version=1,
        xenstore_data={"vm-data": "", "vm-data/mmio-hole-size": "268435456"},
        other_config={"default_template": "true", **other},
    )
    record = store.record("VM", vm)
    record["memory_overhead"] = memory_overhead(record)
