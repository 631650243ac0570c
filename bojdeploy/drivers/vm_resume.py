"""Interrupted VM work: the unfinished marker, leftovers of killed runs, operations in progress.

While the driver works on a VM, other_config["bojdeploy.unfinished"] says what it is doing
("create #12", "update #13"); the confirmation that writes the ownership keys removes it. A
create clones the template as `<name>.creating` (a name only bojdeploy uses while creating),
marks the clone as ours, then renames it: a run killed at any point leaves either an object
named `<name>.creating` or a marked VM (or still a template) named `<name>`, both provably ours.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bojdeploy.core.plan import Observed
from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.vm_spec import OWNER_PREFIX, Hardware, is_owned, observed_vm
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import DriverError

UNFINISHED_KEY = OWNER_PREFIX + "unfinished"
# What a reboot changes from (hardware, ownership keys): put back if finishing it fails.
PREVIOUS_KEY = OWNER_PREFIX + "previous"
TRANSIENT_KEYS = (UNFINISHED_KEY, PREVIOUS_KEY)  # removed by the confirmation
DESTROYING = "destroy"  # the marker of a VM being destroyed (its disks may be gone already)
CREATING_SUFFIX = ".creating"
PREVIOUS_SUFFIX = ".previous"
IDLE_SECONDS = 900.0  # an operation of a killed run (a disk copy) may take this long
IDLE_POLL_SECONDS = 0.2
PROGRESS_SECONDS = 5.0


def marker(action: str, other_config: Mapping[str, str]) -> dict[str, str]:
    """The marker key for `action` ("create", "update") of the deployment in `other_config`."""
    deployment = other_config.get(OWNER_PREFIX + "deployment-id", "?")
    return {UNFINISHED_KEY: f"{action} #{deployment}"}


def owner_keys_of(other_config: Mapping[str, str]) -> dict[str, str]:
    """The bojdeploy.* keys of an other_config, without the transient ones."""
    return {
        k: v
        for k, v in other_config.items()
        if k.startswith(OWNER_PREFIX) and k not in TRANSIENT_KEYS
    }


def with_owner_keys(other_config: Mapping[str, str], keys: Mapping[str, str]) -> dict[str, str]:
    """`other_config` with its bojdeploy.* keys replaced by `keys` (Xen's own keys kept)."""
    kept = {k: v for k, v in other_config.items() if not k.startswith(OWNER_PREFIX)}
    return {**kept, **keys}


def saved(hardware: Hardware, other_config: Mapping[str, str]) -> dict[str, str]:
    """The PREVIOUS_KEY entry recording what a reboot changes from."""
    data = {"hardware": dataclasses.asdict(hardware), "keys": owner_keys_of(other_config)}
    return {PREVIOUS_KEY: json.dumps(data, sort_keys=True)}


def previous_of(record: Mapping[str, Any]) -> tuple[Hardware, dict[str, str]] | None:
    """What an interrupted reboot changed from, as `saved` recorded it; None if nothing is."""
    text = (record.get("other_config") or {}).get(PREVIOUS_KEY)
    try:
        data = json.loads(text) if text else None
        if not isinstance(data, dict):
            return None
        hw, keys = data["hardware"], data["keys"]
        hardware = Hardware(
            vcpus_max=int(hw["vcpus_max"]),
            vcpus_at_startup=int(hw["vcpus_at_startup"]),
            memory=tuple(int(m) for m in hw["memory"]),  # type: ignore[arg-type]
            vifs=tuple((str(net), str(mac)) for net, mac in hw["vifs"]),
        )
        return hardware, {str(k): str(v) for k, v in keys.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # written by hand or by another version: finish without an undo


def interrupted_destroy(record: Mapping[str, Any]) -> bool:
    """Whether an owned VM was being destroyed (it may have lost its disks): finish that."""
    return (record.get("other_config") or {}).get(UNFINISHED_KEY) == DESTROYING


def interrupted_create(record: Mapping[str, Any]) -> bool:
    """Whether an owned VM is a create that never finished (still a template, or so marked)."""
    other = record.get("other_config") or {}
    return bool(record.get("is_a_template")) or other.get(UNFINISHED_KEY, "").startswith("create")


def why_unfinished(record: Mapping[str, Any]) -> str | None:
    """Why an owned VM's deployment is not confirmed, from its own record; None if it is."""
    other = record.get("other_config") or {}
    if not is_owned(other):
        return None
    doing = other.get(UNFINISHED_KEY)
    if record.get("is_a_template"):
        return f"{doing or 'a create'} did not finish: the VM was never provisioned"
    return f"{doing} did not finish" if doing else None


def leftover_of(record: Mapping[str, Any]) -> str | None:
    """The VM name a halted `<name>.creating` or owned `<name>.previous` was left for, else None.

    An owned one must say so (bojdeploy.name is `<name>`: a VM whose own manifest name ends so
    is no leftover). A `.creating` one without any bojdeploy key is ours when it is a clone of a
    template (killed before it was marked); a default template or a snapshot never is.
    """
    name = str(record.get("name_label", ""))
    other = record.get("other_config") or {}
    plain = (
        record.get("power_state") == "Halted"
        and not record.get("is_default_template")
        and not record.get("is_a_snapshot")
        and not record.get("is_control_domain")
    )
    base, suffix = _split(name)
    if not plain or base is None:
        return None
    if is_owned(other):
        ours = other.get(OWNER_PREFIX + "name") == base
        return (
            base
            if ours and (suffix == CREATING_SUFFIX or not record.get("is_a_template"))
            else None
        )
    unkeyed_clone = (
        bool(record.get("is_a_template"))
        and "base_template_name" in other
        and not any(k.startswith(OWNER_PREFIX) for k in other)
    )
    return base if suffix == CREATING_SUFFIX and unkeyed_clone else None


def _split(name: str) -> tuple[str | None, str]:
    """(`<name>`, suffix) of a `<name>.creating` or `<name>.previous`; (None, "") otherwise."""
    for suffix in (CREATING_SUFFIX, PREVIOUS_SUFFIX):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix), suffix
    return None, ""


def observed_vms(records: Iterable[Mapping[str, Any]]) -> list[Observed]:
    """Observed VMs: VMs and owned templates (interrupted creates), each with why it is unfinished.

    A leftover (`<name>.creating`, `<name>.previous`) is not a resource of its own: it never
    blocks a plan nor shows as an orphan; it makes `<name>` unfinished, so the next run of
    `<name>` removes it.
    """
    leftovers: dict[str, list[str]] = {}
    kept = []
    for record in records:
        base = leftover_of(record)
        if base is not None:
            leftovers.setdefault(base, []).append(str(record["name_label"]))
        elif not record.get("is_a_template") or is_owned(record.get("other_config") or {}):
            kept.append(record)
    observed = []
    for record in kept:
        obs = observed_vm(record)
        why = why_unfinished(record)
        left = leftovers.get(obs.resource_name) if obs.managed else None
        if why is None and left:
            why = f"{', '.join(sorted(left))} left by an interrupted deployment"
        observed.append(dataclasses.replace(obs, unfinished=why))
    return observed


def mark(api: Any, vm: str, keys: Mapping[str, str]) -> None:
    """Add `keys` (the marker, ownership keys) to the VM's other_config."""
    with xen_errors("cannot mark the VM as being changed in other_config"):
        current = api.VM.get_other_config(vm)
        if {**current, **keys} != current:
            api.VM.set_other_config(vm, {**current, **keys})


def wait_idle(
    api: Any,
    vm: str,
    what: str,
    log: StepLog,
    timeout: float = IDLE_SECONDS,
    operations: Mapping[str, str] | None = None,
) -> None:
    """Wait until no operation runs on `vm` ("VM web", "template T"): a killed run's may.
    `operations` are its current_operations when just read (not read again if none run)."""
    started = last = time.monotonic()
    while True:
        if operations is None:
            with xen_errors(f"cannot read the operations in progress on {what}"):
                operations = api.VM.get_current_operations(vm)
        running = sorted(set(operations.values()))
        operations = None
        if not running:
            return
        elapsed = time.monotonic() - started
        if elapsed >= timeout:
            raise DriverError(f"{what} is still busy ({', '.join(running)}) after {timeout:g}s")
        if last == started or time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            log("info", f"waiting for {', '.join(running)} of {what} to end ...")
        time.sleep(IDLE_POLL_SECONDS)


def leftovers(
    api: Any,
    name: str,
    environment: str,
    suffix: str,
    known: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Refs of the leftovers `<name><suffix>` of this environment (or unkeyed `.creating`);
    `known` holds the records of every VM named so, when just looked up."""
    if known is None:
        with xen_errors(f"cannot look up leftovers of VM {name}"):
            refs = api.VM.get_by_name_label(name + suffix)
            known = {ref: api.VM.get_record(ref) for ref in refs}
    records = {r: rec for r, rec in known.items() if rec["name_label"] == name + suffix}
    return [
        ref
        for ref, record in records.items()
        if leftover_of(record) == name
        and (record["other_config"].get(OWNER_PREFIX + "environment") or environment) == environment
    ]
