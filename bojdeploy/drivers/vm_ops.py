"""XenAPI operations of the VM driver: hardware, power, the clone's marks, teardown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.vm_resume import (
    DESTROYING,
    TRANSIENT_KEYS,
    UNFINISHED_KEY,
)
from bojdeploy.drivers.vm_spec import (
    Hardware,
    disks_without_sr,
    hardware_of,
    is_owned,
    memory_args,
    updated_xenstore,
    vcpu_calls,
    vif_record,
    vifs_match,
    with_sr,
)
from bojdeploy.drivers.vm_wait import NULL_REF, run_async
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import DriverError

SHUTDOWN_SECONDS = 120.0


def read_hardware(api: Any, vm: str, record: Mapping[str, Any]) -> Hardware:
    """The VM's VCPUs, memory limits and VIFs."""
    with xen_errors("cannot read the VM's VIFs"):
        vifs = [api.VIF.get_record(vif) for vif in record["VIFs"]]
    return hardware_of(record, vifs)


def apply_hardware(
    api: Any,
    vm: str,
    current: Hardware,
    wanted: Hardware,
    log: StepLog,
    vif_refs: Sequence[str] | None = None,
    mtus: Mapping[str, str] | None = None,
) -> None:
    """Set VCPUs (in a valid order), memory limits and VIFs where they differ (VM halted);
    `vif_refs` are the VM's VIFs when just read, `mtus` the MTUs of the networks looked up."""
    with xen_errors("cannot set the VCPUs"):
        for method, value in vcpu_calls(current, wanted):
            getattr(api.VM, method)(vm, value)
    if (current.vcpus_max, current.vcpus_at_startup) != (wanted.vcpus_max, wanted.vcpus_at_startup):
        log("info", f"VCPUs set to {wanted.vcpus_at_startup} (max {wanted.vcpus_max})")
    if current.memory != wanted.memory:
        with xen_errors("cannot set the memory limits"):
            api.VM.set_memory_limits(vm, *memory_args(wanted.memory))
        log("info", f"memory limits set to {_gib(wanted.memory[1])}")
    if not vifs_match(current.vifs, wanted.vifs):
        _replace_vifs(api, vm, wanted.vifs, log, vif_refs, mtus or {})


def _replace_vifs(
    api: Any,
    vm: str,
    vifs: Sequence[tuple[str, str]],
    log: StepLog,
    refs: Sequence[str] | None,
    mtus: Mapping[str, str],
) -> None:
    """Destroy the VM's VIFs and create `vifs` as devices 0, 1, ..."""
    with xen_errors("cannot replace the VIFs"):
        for vif in api.VM.get_VIFs(vm) if refs is None else refs:
            api.VIF.destroy(vif)
        for device, (network, mac) in enumerate(vifs):
            mtu = mtus[network] if network in mtus else api.network.get_MTU(network)
            api.VIF.create(vif_record(vm, network, mtu, device, mac))
    log("info", f"{len(vifs)} VIF(s) created")


def write_xenstore(api: Any, vm: str, record: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    """Set the VM's xenstore_data (pushed live to a running VM); whether it changed."""
    current = record["xenstore_data"]
    new = updated_xenstore(current, record["other_config"], wanted)
    if new == current:
        return False
    with xen_errors("cannot set xenstore_data"):
        api.VM.set_xenstore_data(vm, new)
    return True


def prepare_clone(api: Any, vm: str, keys: Mapping[str, str]) -> dict[str, Any]:
    """Mark a fresh clone as ours; disks without an SR go on the default SR (for provision).
    Its record, as marked."""
    with xen_errors("cannot prepare the clone"):
        record: dict[str, Any] = api.VM.get_record(vm)
        other = record["other_config"]
        new = {**other, **keys}
        if disks_without_sr(other.get("disks") or "<provision/>"):
            new["disks"] = with_sr(other["disks"], _default_sr(api))
        api.VM.set_other_config(vm, new)
    return {**record, "other_config": new}


def _default_sr(api: Any) -> str:
    """The uuid of the pool's default SR."""
    pool = next(iter(api.pool.get_all_records().values()))  # a host is in one pool
    sr = pool["default_SR"]
    if sr == NULL_REF:
        raise DriverError("the template's disks name no SR and the pool has no default SR")
    return str(api.SR.get_uuid(sr))


def write_other_config(
    api: Any, vm: str, keys: Mapping[str, str], current: Mapping[str, str] | None = None
) -> None:
    """Confirm: set the ownership `keys` in other_config and drop the unfinished marker;
    `current` is the other_config just read."""
    with xen_errors("cannot set the ownership keys in other_config"):
        if current is None:
            current = api.VM.get_other_config(vm)
        new = {k: v for k, v in {**current, **keys}.items() if k not in TRANSIENT_KEYS}
        if new != current:
            api.VM.set_other_config(vm, new)


def start(api: Any, vm: str, name: str, timeout: float, log: StepLog) -> None:
    """Start a halted VM (not paused, not forced); one already running (started by an
    interrupted run that is still being finished) is fine."""
    try:
        run_async(api, f"starting VM {name}", timeout, log, api.Async.VM.start, vm, False, False)
    except DriverError:
        if power_state(api, vm, name) != "Running":
            raise
        log("info", f"VM {name} is running (it was started meanwhile)")


def shutdown(api: Any, vm: str, name: str, log: StepLog) -> None:
    """Clean shutdown; a guest that does not comply is hard shut down."""
    try:
        run_async(
            api, f"shutting down VM {name}", SHUTDOWN_SECONDS, log, api.Async.VM.clean_shutdown, vm
        )
    except DriverError as e:
        if power_state(api, vm, name) == "Halted":
            return
        log("warn", f"{e}; forcing a hard shutdown")
        hard_shutdown(api, vm, name, log)


def hard_shutdown(api: Any, vm: str, name: str, log: StepLog) -> None:
    """Power the VM off at once (one already halted meanwhile is fine)."""
    what = f"powering off VM {name}"
    try:
        run_async(api, what, SHUTDOWN_SECONDS, log, api.Async.VM.hard_shutdown, vm)
    except DriverError:
        if power_state(api, vm, name) != "Halted":
            raise


def power_state(api: Any, vm: str, name: str) -> str:
    """The VM's power state now."""
    with xen_errors(f"cannot read the power state of VM {name}"):
        return str(api.VM.get_power_state(vm))


def destroy_vm(api: Any, vm: str, name: str, log: StepLog) -> None:
    """Power off and destroy the VM and its disks (VDIs of Disk VBDs; CD images stay).

    An owned VM is marked first and its disks go before it: a run killed meanwhile leaves a
    marked VM the next run destroys, never disks nothing points to.
    """
    with xen_errors(f"cannot read VM {name} before destroying it"):
        power = api.VM.get_power_state(vm)
        other = api.VM.get_other_config(vm)
        vbds = [api.VBD.get_record(vbd) for vbd in api.VM.get_VBDs(vm)]
        if is_owned(other) and other.get(UNFINISHED_KEY) != DESTROYING:
            api.VM.set_other_config(vm, {**other, UNFINISHED_KEY: DESTROYING})
    if power != "Halted":
        hard_shutdown(api, vm, name, log)
    disks = [vbd["VDI"] for vbd in vbds if vbd["type"] == "Disk" and vbd["VDI"] != NULL_REF]
    with xen_errors(f"cannot destroy VM {name}"):
        for vdi in disks:
            api.VDI.destroy(vdi)
        api.VM.destroy(vm)
    log("info", f"destroyed VM {name} and its {len(disks)} disk(s)")


def _gib(size: int) -> str:
    return f"{size / 2**30:g} GiB"
