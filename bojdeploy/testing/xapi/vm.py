"""VM power states, the operations they allow (xapi_vm_lifecycle.ml), guest metrics."""

from __future__ import annotations

import time
from typing import Any

from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.registry import api
from bojdeploy.testing.xapi.schema import NULL_REF, now
from bojdeploy.testing.xapi.store import Store

MIB = 1 << 20
# xapi_vm_lifecycle.allowed_power_states, in xapi's order (errors list them in this order)
POWER_STATES: dict[str, tuple[str, ...]] = {
    "start": ("Halted",),
    "clean_shutdown": ("Running",),
    "hard_shutdown": ("Paused", "Suspended", "Running"),
    "clean_reboot": ("Running",),
    "hard_reboot": ("Paused", "Running"),
    "pause": ("Running",),
    "unpause": ("Paused",),
    "suspend": ("Running",),
    "resume": ("Suspended",),
    "clone": ("Halted",),
    "copy": ("Halted",),
    "provision": ("Halted",),
    "destroy": ("Halted", "Suspended"),
    "make_into_template": ("Halted",),
    "changing_VCPUs": ("Halted",),
    "changing_VCPUs_live": ("Running",),
    "changing_memory_limits": ("Halted",),
    "changing_static_range": ("Halted",),
    "changing_dynamic_range": ("Halted", "Running"),
}
TEMPLATE_OPS = frozenset(
    (
        "changing_VCPUs",
        "changing_memory_limits",
        "changing_static_range",
        "changing_dynamic_range",
        "clone",
        "copy",
        "provision",
        "destroy",
    )
)
_LIVE_ON_CONTROL_DOMAIN = ("changing_VCPUs", "changing_memory_limits", "changing_static_range")
# Calls that hold the VM while they run (its current_operations); another such call on the
# same VM meanwhile fails with OTHER_OPERATION_IN_PROGRESS, as in xapi_vm_lifecycle, except
# that long copies (clones and copies of one template) may run side by side.
LONG_COPIES = ("clone", "copy")
EXCLUSIVE_OPS = {
    f"VM.{op}": op
    for op in (
        *LONG_COPIES,
        "start",
        "clean_shutdown",
        "hard_shutdown",
        "clean_reboot",
        "hard_reboot",
        "suspend",
        "resume",
        "provision",
        "destroy",
    )
}
MEMORY_ORDER = (
    "memory_static_min",
    "memory_dynamic_min",
    "memory_dynamic_max",
    "memory_static_max",
)


def _allowed_states(vm: dict[str, Any], op: str) -> tuple[str, ...]:
    live = vm["is_control_domain"] and op in _LIVE_ON_CONTROL_DOMAIN
    return POWER_STATES[op] + (("Running",) if live else ())


def _permits(vm: dict[str, Any], op: str) -> bool:
    in_state = vm["power_state"] in _allowed_states(vm, op)
    return in_state and (not vm["is_a_template"] or op in TEMPLATE_OPS)


def _check_power(vm: dict[str, Any], ref: str, op: str) -> None:
    states = _allowed_states(vm, op)
    if vm["power_state"] not in states:
        expected = ", ".join(s.lower() for s in states)
        raise XapiError("VM_BAD_POWER_STATE", ref, expected, vm["power_state"].lower())


def check_op(store: Store, ref: str, op: str) -> dict[str, Any]:
    """The VM record if `op` is allowed now; VM_BAD_POWER_STATE or VM_IS_TEMPLATE otherwise."""
    vm = store.record("VM", ref)
    _check_power(vm, ref, op)
    if vm["is_a_template"] and op not in TEMPLATE_OPS:
        raise XapiError("VM_IS_TEMPLATE", ref, op)
    return vm


def memory_overhead(vm: dict[str, Any]) -> int:
    """Xen's per-domain overhead, approximated as static_max / 128 + 4 MiB."""
    return int(vm["memory_static_max"] // 128 + 4 * MIB)


def free_memory(store: Store) -> int:
    """Host memory not used by the host or its resident VMs (each counts dynamic_min + overhead)."""
    host = store.record("host", store.only("host"))
    total = store.record("host_metrics", host["metrics"])["memory_total"]
    used = host["memory_overhead"] + sum(
        vm["memory_dynamic_min"] + vm["memory_overhead"]
        for vm in (store.record("VM", ref) for ref in host["resident_VMs"])
    )
    return int(total - used)


def tick(store: Store) -> None:
    """Report guest metrics that are due and refresh every VM's allowed_operations."""
    clock = time.monotonic()
    for ref, due in list(store.guest_due.items()):
        if due <= clock:
            del store.guest_due[ref]
            _report_guest(store, ref)
    for vm in store.objects["VM"].values():
        running = set(vm["current_operations"].values())
        vm["allowed_operations"] = [
            op for op in POWER_STATES if _permits(vm, op) and _concurrent(op, running)
        ]


def _concurrent(op: str, running: set[str]) -> bool:
    """Whether `op` may start while `running` operations are in progress."""
    return not running or (op in LONG_COPIES and running <= set(LONG_COPIES))


def hold(store: Store, ref: str, op: str, holder: str) -> None:
    """Register `op` (run by task `holder`) on the VM; OTHER_OPERATION_IN_PROGRESS if busy.

    As in xapi, the power state is checked first, then the operations in progress.
    """
    vm = store.record("VM", ref)
    _check_power(vm, ref, op)
    operations = vm["current_operations"]
    if not _concurrent(op, set(operations.values())):
        task, running = next(iter(operations.items()))
        raise XapiError("OTHER_OPERATION_IN_PROGRESS", "VM", ref, running, task)
    operations[holder] = op


def release(store: Store, ref: str, holder: str) -> None:
    """Forget the operation of `holder` on the VM (if the VM is still there)."""
    if store.exists("VM", ref):
        store.record("VM", ref)["current_operations"].pop(holder, None)


def _report_guest(store: Store, ref: str) -> None:
    """What the guest agent reports once the guest got an address for each VIF."""
    vm = store.record("VM", ref)
    networks: dict[str, str] = {}
    for vif in (store.record("VIF", r) for r in vm["VIFs"]):
        address = store.leases.setdefault(vif["MAC"], f"192.0.2.{10 + len(store.leases) % 240}")
        networks.update({f"{vif['device']}/ip": address, f"{vif['device']}/ipv4/0": address})
    vm["guest_metrics"] = store.create(
        "VM_guest_metrics",
        PV_drivers_detected=True,
        PV_drivers_up_to_date=True,
        PV_drivers_version={"major": "8", "minor": "3", "micro": "0", "build": "1"},
        can_use_hotplug_vbd="yes",
        can_use_hotplug_vif="yes",
        live=True,
        last_updated=now(),
        networks=networks,
        os_version={"name": "Simulated guest", "distro": "simulated"},
        other={"feature-balloon": "1", "has-vendor-device": "0"},
    )


def _forget_guest(store: Store, ref: str, vm: dict[str, Any]) -> None:
    store.guest_due.pop(ref, None)
    if store.exists("VM_guest_metrics", vm["guest_metrics"]):
        store.delete("VM_guest_metrics", vm["guest_metrics"])
    vm["guest_metrics"] = NULL_REF


def _attach(store: Store, vm: dict[str, Any], attached: bool) -> None:
    for vif in vm["VIFs"]:
        store.record("VIF", vif)["currently_attached"] = attached
    for vbd_ref in vm["VBDs"]:
        vbd = store.record("VBD", vbd_ref)
        vbd["currently_attached"] = attached
        if attached and vbd["userdevice"].isdigit() and int(vbd["userdevice"]) < 26:
            vbd["device"] = "xvd" + chr(ord("a") + int(vbd["userdevice"]))


def _boot(store: Store, ref: str, vm: dict[str, Any], paused: bool) -> None:
    """Create the domain: new domid, resident on the host, devices attached."""
    host = store.only("host")
    if ref not in store.record("host", host)["resident_VMs"]:
        needed, available = vm["memory_dynamic_min"] + vm["memory_overhead"], free_memory(store)
        if needed > available:
            raise XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", needed, available)
        store.link("host", host, "resident_VMs", ref)
    _forget_guest(store, ref, vm)
    vm.update(power_state="Paused" if paused else "Running", domid=store.next_domid)
    vm["resident_on"] = host
    store.next_domid += 1
    metrics = store.record("VM_metrics", vm["metrics"])
    metrics.update(start_time=now(), last_updated=now(), VCPUs_number=vm["VCPUs_at_startup"])
    metrics["memory_actual"] = vm["memory_target"]
    _attach(store, vm, True)
    if not paused:
        store.guest_due[ref] = time.monotonic() + store.ip_delay


def _halt(store: Store, ref: str, vm: dict[str, Any], state: str = "Halted") -> None:
    """Destroy the domain; stale guest metrics go with it."""
    store.unlink("host", store.only("host"), "resident_VMs", ref)
    _forget_guest(store, ref, vm)
    vm.update(power_state=state, domid=-1, resident_on=NULL_REF)
    _attach(store, vm, False)


def _validate_for_boot(vm: dict[str, Any]) -> None:
    """xapi_vm_helpers.validate_vcpus and validate_memory, run by start."""
    vcpus_max, at_startup = vm["VCPUs_max"], vm["VCPUs_at_startup"]
    if vcpus_max < 1:
        raise XapiError("INVALID_VALUE", "VCPUs_max", vcpus_max)
    if at_startup < 1:
        raise XapiError("INVALID_VALUE", "VCPUs-at-startup", at_startup)
    if at_startup > vcpus_max:
        reason = "value greater than VCPUs-max"
        raise XapiError("VALUE_NOT_SUPPORTED", "VCPUs-at-startup", at_startup, reason)
    limits = [vm[key] for key in MEMORY_ORDER]
    if limits != sorted(limits) or limits[0] < 0:
        raise XapiError("MEMORY_CONSTRAINT_VIOLATION")


@api("VM.start", "vm:VM", "start_paused:bool", "force:bool")
def start(store: Store, ref: str, start_paused: bool, force: bool) -> None:
    """Halted -> Running (or Paused): checks VCPUs, memory limits and host free memory."""
    vm = check_op(store, ref, "start")
    _validate_for_boot(vm)
    vm["memory_overhead"] = memory_overhead(vm)
    _boot(store, ref, vm, start_paused)


@api("VM.resume", "vm:VM", "start_paused:bool", "force:bool")
def resume(store: Store, ref: str, start_paused: bool, force: bool) -> None:
    """Suspended -> Running (or Paused)."""
    _boot(store, ref, check_op(store, ref, "resume"), start_paused)


@api("VM.clean_reboot", "vm:VM")
def clean_reboot(store: Store, ref: str) -> None:
    """Running: a new domain (new domid, guest metrics reported again after ip_delay)."""
    _boot(store, ref, check_op(store, ref, "clean_reboot"), paused=False)


@api("VM.hard_reboot", "vm:VM")
def hard_reboot(store: Store, ref: str) -> None:
    """Running or Paused: a new, running domain."""
    _boot(store, ref, check_op(store, ref, "hard_reboot"), paused=False)


@api("VM.clean_shutdown", "vm:VM")
def clean_shutdown(store: Store, ref: str) -> None:
    """Running -> Halted."""
    _halt(store, ref, check_op(store, ref, "clean_shutdown"))


@api("VM.hard_shutdown", "vm:VM")
def hard_shutdown(store: Store, ref: str) -> None:
    """Running, Paused or Suspended -> Halted."""
    _halt(store, ref, check_op(store, ref, "hard_shutdown"))


@api("VM.suspend", "vm:VM")
def suspend(store: Store, ref: str) -> None:
    """Running -> Suspended."""
    _halt(store, ref, check_op(store, ref, "suspend"), state="Suspended")


@api("VM.pause", "vm:VM")
def pause(store: Store, ref: str) -> None:
    """Running -> Paused."""
    check_op(store, ref, "pause")["power_state"] = "Paused"


@api("VM.unpause", "vm:VM")
def unpause(store: Store, ref: str) -> None:
    """Paused -> Running."""
    check_op(store, ref, "unpause")["power_state"] = "Running"
    if store.record("VM", ref)["guest_metrics"] == NULL_REF:
        store.guest_due.setdefault(ref, time.monotonic() + store.ip_delay)
