"""XenAPI operations of the VM driver: observation, lookups, hardware, power, teardown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any, NamedTuple

import XenAPI

from bojdeploy.core.plan import Observed
from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.vm_resume import (
    CREATING_SUFFIX,
    DESTROYING,
    PREVIOUS_SUFFIX,
    TRANSIENT_KEYS,
    UNFINISHED_KEY,
    observed_vms,
)
from bojdeploy.drivers.vm_spec import (
    Hardware,
    VIFWant,
    describe_vm,
    disks_without_sr,
    hardware_of,
    is_owned,
    is_uuid,
    memory_args,
    pick_one,
    pick_template,
    updated_xenstore,
    vcpu_calls,
    vif_record,
    vifs_match,
    with_sr,
)
from bojdeploy.drivers.vm_wait import NULL_REF, run_async
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import ConnectError, DriverError

SHUTDOWN_SECONDS = 120.0
# Templates too (an owned one is an interrupted create, a `<name>.creating` one a leftover),
# but not the pool's many default templates: no clone is one.
OBSERVE_WHERE = (
    'field "is_a_snapshot" = "false" and field "is_control_domain" = "false" '
    'and field "is_default_template" = "false"'
)


class Networks(NamedTuple):
    """The network ref of each wanted VIF, and the MTU of each network (a VIF's MTU is its)."""

    refs: list[str]
    mtus: dict[str, str]


def observe_vms(session: Any) -> list[Observed]:
    """Every VM of the pool, and owned templates (interrupted creates), in one call."""
    with xen_errors("cannot list the VMs on Xen", refused=ConnectError):  # nothing changed yet
        records = session.xenapi.VM.get_all_records_where(OBSERVE_WHERE)
    return observed_vms(records.values())


def observe_vm(session: Any, name: str) -> list[Observed]:
    """The VM (or owned template) named `name`, as observe_vms sees it, without listing the pool.

    One filtered call finds `name` and the leftovers that would make it unfinished
    (`<name>.creating`, `<name>.previous`) with their records.
    """
    labels = (name, name + CREATING_SUFFIX, name + PREVIOUS_SUFFIX)
    with xen_errors(f"cannot look up VM {name} on Xen", refused=ConnectError):  # nothing changed
        records = _records_where(session.xenapi.VM, labels, OBSERVE_WHERE)
    return [o for o in observed_vms(records.values()) if o.resource_name == name]


def _records_where(cls: Any, labels: Sequence[str], where: str = "") -> dict[str, dict[str, Any]]:
    """Records of the `cls` objects named one of `labels` (and matching `where`), in one call;
    a name the filter language cannot quote is looked up by name, then by record."""
    if any('"' in label for label in labels):
        records = {}
        for label in labels:
            for ref in cls.get_by_name_label(label):
                with suppress(XenAPI.Failure):  # destroyed since the lookup
                    records[ref] = cls.get_record(ref)
        return records
    named = " or ".join(f'field "name__label" = "{label}"' for label in labels)
    return dict(cls.get_all_records_where(f"({where}) and ({named})" if where else named))


def find_template(
    api: Any, wanted: str, also: Sequence[str] = ()
) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
    """The one halted template named (or with uuid) `wanted`, its record, and the records of
    the VMs named one of `also`, in one call where it can; DriverError naming candidates."""
    with xen_errors(f"cannot look up template {wanted!r}"):
        by_uuid = _by_uuid(api.VM, wanted, "VM")
        labels = list(also) if by_uuid else [wanted, *also]
        found = _records_where(api.VM, labels) if labels else {}
    if not by_uuid:
        by_uuid = {ref: rec for ref, rec in found.items() if rec["name_label"] == wanted}
    ref = pick_template(wanted, by_uuid)
    named = {ref: rec for ref, rec in found.items() if rec["name_label"] in also}
    return ref, by_uuid[ref], named


def _by_uuid(cls: Any, wanted: str, class_name: str) -> dict[str, dict[str, Any]]:
    """The record of the object with uuid `wanted` (when it looks like one and exists)."""
    if not is_uuid(wanted):
        return {}
    try:
        ref = cls.get_by_uuid(wanted)
    except XenAPI.Failure as e:
        if e.details[:2] != ["UUID_INVALID", class_name]:
            raise
        return {}
    return {ref: cls.get_record(ref)}


def find_networks(api: Any, wants: Sequence[VIFWant]) -> Networks:
    """The network of each wanted VIF, by name_label or uuid (exactly one match each), with the
    MTU of each network found."""
    found: dict[str, str] = {}
    mtus: dict[str, str] = {}
    for want in wants:
        if want.network not in found:
            with xen_errors(f"cannot look up network {want.network!r}"):
                records = _by_uuid(api.network, want.network, "network") or _records_where(
                    api.network, [want.network]
                )
            found[want.network] = pick_one("network", want.network, list(records))
            mtus.update({ref: str(rec["MTU"]) for ref, rec in records.items()})
    return Networks([found[want.network] for want in wants], mtus)


def vm_by_uuid(api: Any, uuid: str) -> str | None:
    """The VM with `uuid`, or None when it is gone."""
    with xen_errors(f"cannot look up VM {uuid}"):
        try:
            return str(api.VM.get_by_uuid(uuid))
        except XenAPI.Failure as e:
            if e.details and e.details[0] == "UUID_INVALID":
                return None
            raise


def vms_labelled(api: Any, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Records of every VM, template and snapshot named one of `labels`, in one call."""
    with xen_errors(f"cannot look up VM {labels[0]}"):
        return _records_where(api.VM, labels)


def vms_named(
    api: Any, name: str, known: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Records of the VMs (and owned templates, not snapshots) whose name_label is `name`;
    `known` as vms_labelled returned it for labels that include `name`."""
    records = vms_labelled(api, [name]) if known is None else known
    return {
        ref: rec
        for ref, rec in records.items()
        if rec["name_label"] == name
        and (not rec["is_a_template"] or is_owned(rec["other_config"]))
        and not rec["is_a_snapshot"]
    }


def check_absent(api: Any, name: str, known: Mapping[str, dict[str, Any]] | None = None) -> None:
    """Refuse to create a VM whose name is taken (owned by us or not: never touch it here)."""
    taken = vms_named(api, name, known)
    if taken:
        found = ", ".join(describe_vm(rec) for rec in taken.values())
        raise DriverError(
            f"a VM named {name} already exists ({found}); refusing to create another "
            "(a VM without bojdeploy ownership keys in other_config is never touched)"
        )


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
