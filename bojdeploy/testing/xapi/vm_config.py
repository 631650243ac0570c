"""VCPU and memory settings of a VM, with xapi's ordering rules (xapi_vm.ml)."""

from __future__ import annotations

from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.registry import api
from bojdeploy.testing.xapi.store import Store
from bojdeploy.testing.xapi.vm import MEMORY_ORDER, check_op, memory_overhead

_VCPU_RULE = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"


def _check_vcpus(value: int, vcpus_max: int) -> None:
    if not 0 < value <= vcpus_max:
        raise XapiError("INVALID_VALUE", _VCPU_RULE, value)


@api("VM.set_VCPUs_max", "self:VM", "value:int", asyncable=False)
def set_vcpus_max(store: Store, ref: str, value: int) -> None:
    """Halted only; value must stay >= VCPUs_at_startup."""
    vm = check_op(store, ref, "changing_VCPUs")
    if value < 1 or value < vm["VCPUs_at_startup"]:
        raise XapiError("INVALID_VALUE", _VCPU_RULE, value)
    vm["VCPUs_max"] = value


@api("VM.set_VCPUs_at_startup", "self:VM", "value:int", asyncable=False)
def set_vcpus_at_startup(store: Store, ref: str, value: int) -> None:
    """Any power state (xapi has no guard); value must stay within 1..VCPUs_max."""
    vm = store.record("VM", ref)
    _check_vcpus(value, vm["VCPUs_max"])
    vm["VCPUs_at_startup"] = value


@api("VM.set_VCPUs_number_live", "self:VM", "nvcpu:int")
def set_vcpus_number_live(store: Store, ref: str, nvcpu: int) -> None:
    """Running only: hot-plug VCPUs up to VCPUs_max."""
    vm = check_op(store, ref, "changing_VCPUs_live")
    _check_vcpus(nvcpu, vm["VCPUs_max"])
    vm["VCPUs_at_startup"] = nvcpu
    store.record("VM_metrics", vm["metrics"])["VCPUs_number"] = nvcpu


def _set_memory(store: Store, ref: str, op: str, **limits: int) -> None:
    """Change memory limits under `op`; they must satisfy s_min <= d_min <= d_max <= s_max."""
    vm = check_op(store, ref, op)
    merged = {key: limits.get(key.removeprefix("memory_"), vm[key]) for key in MEMORY_ORDER}
    values = list(merged.values())
    if values != sorted(values):
        raise XapiError("MEMORY_CONSTRAINT_VIOLATION_ORDER")
    vm.update(merged, memory_target=merged["memory_dynamic_min"])
    vm["memory_overhead"] = memory_overhead(vm)


@api(
    "VM.set_memory_limits",
    "self:VM",
    "static_min:int",
    "static_max:int",
    "dynamic_min:int",
    "dynamic_max:int",
)
def set_memory_limits(store: Store, ref: str, smin: int, smax: int, dmin: int, dmax: int) -> None:
    """Halted only: all four limits at once."""
    limits = {"static_min": smin, "static_max": smax, "dynamic_min": dmin, "dynamic_max": dmax}
    _set_memory(store, ref, "changing_memory_limits", **limits)


@api("VM.set_memory", "self:VM", "value:int")
def set_memory(store: Store, ref: str, value: int) -> None:
    """Halted only: static_max = dynamic_min = dynamic_max = value."""
    limits = {"static_max": value, "dynamic_min": value, "dynamic_max": value}
    _set_memory(store, ref, "changing_memory_limits", **limits)


@api("VM.set_memory_static_range", "self:VM", "min:int", "max:int")
def set_memory_static_range(store: Store, ref: str, low: int, high: int) -> None:
    """Halted only."""
    _set_memory(store, ref, "changing_static_range", static_min=low, static_max=high)


@api("VM.set_memory_dynamic_range", "self:VM", "min:int", "max:int")
def set_memory_dynamic_range(store: Store, ref: str, low: int, high: int) -> None:
    """Halted or Running."""
    _set_memory(store, ref, "changing_dynamic_range", dynamic_min=low, dynamic_max=high)


def _one_limit(name: str, op: str) -> None:
    """Register VM.set_memory_<name>, which changes one limit under `op`."""

    def setter(store: Store, ref: str, value: int) -> None:
        _set_memory(store, ref, op, **{name: value})

    api(f"VM.set_memory_{name}", "self:VM", "value:int", asyncable=False)(setter)


for _limit in ("static_min", "static_max"):
    _one_limit(_limit, "changing_static_range")
for _limit in ("dynamic_min", "dynamic_max"):
    _one_limit(_limit, "changing_dynamic_range")
