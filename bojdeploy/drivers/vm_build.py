"""Making a VM: clone under a creating name, mark, provision, configure, start, confirm; and
finishing (or discarding) a create a killed run left behind."""

from __future__ import annotations

from typing import Any, NoReturn

from bojdeploy.drivers import vm_lookup as lookup
from bojdeploy.drivers import vm_ops as ops
from bojdeploy.drivers import vm_resume as resume
from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.vm_spec import (
    Hardware,
    VMConfig,
    hardware_changes,
    verify,
    wanted_hardware,
)
from bojdeploy.drivers.vm_wait import run_async, wait_for_ip
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import BojdeployError, DriverError

CLONE_SECONDS = 900.0  # clone and provision copy disks on SRs without copy-on-write
# A task that timed out may still run after its cancel; if it outlasts this, the marked VM is
# left for the next run to finish or remove.
DISCARD_WAIT_SECONDS = 120.0


def create(
    api: Any,
    config: VMConfig,
    environment: str,
    log: StepLog,
    facts: dict[str, Any],
    *,
    clear_previous: bool = False,
) -> str:
    """Clone the template, then build; a failure destroys the clone and its disks.
    `clear_previous`: then remove a `<name>.previous` a killed replace left."""
    # The template, the name and both leftover names, looked up at once.
    labels = [config.name + s for s in ("", resume.CREATING_SUFFIX, resume.PREVIOUS_SUFFIX)]
    template, record, known = lookup.find_template(api, config.template, labels)
    # A clone a killed run started may still be copying: let it end, then remove what it made.
    operations = record["current_operations"]
    resume.wait_idle(api, template, f"template {config.template}", log, operations=operations)
    if operations:  # what that clone made was not there yet
        known = lookup.vms_labelled(api, labels)
    clear_leftovers(api, config.name, environment, resume.CREATING_SUFFIX, log, known)
    lookup.check_absent(api, config.name, known)
    networks = lookup.find_networks(api, config.networks)
    what = f"cloning template {config.template} as VM {config.name}"
    # Cloned under a name only bojdeploy uses while creating: a run killed before the clone is
    # marked leaves a leftover the next run recognises, never a template named like the VM.
    creating = config.name + resume.CREATING_SUFFIX
    vm = run_async(api, what, CLONE_SECONDS, log, api.Async.VM.clone, template, creating)
    try:
        marked = _mark(api, vm, config)
        with xen_errors(f"cannot rename {creating} to {config.name}"):
            api.VM.set_name_label(vm, config.name)
        build(api, vm, config, networks, log, facts, template=True, marked=marked)
    except Exception as e:
        discard(api, vm, config.name, e, log)
    if clear_previous:  # what a killed replace set aside: gone once this one runs
        clear_leftovers(api, config.name, environment, resume.PREVIOUS_SUFFIX, log, known)
    return f"created VM {config.name} ({facts['uuid']}) from template {config.template}"


def adopt(
    api: Any,
    vm: str,
    record: dict[str, Any],
    config: VMConfig,
    environment: str,
    log: StepLog,
    facts: dict[str, Any],
) -> str:
    """Finish the create a killed run left (provision, configure, start, confirm)."""
    name = config.name
    log("info", f"VM {name}: {resume.why_unfinished(record)}; finishing that create")
    if not _same_template(api, record, config):
        log("info", f"VM {name} was cloned from another template: destroying it to start anew")
        ops.destroy_vm(api, vm, name, log)
        return create(api, config, environment, log, facts)
    networks = lookup.find_networks(api, config.networks)
    try:
        _mark(api, vm, config)
        build(api, vm, config, networks, log, facts, template=record["is_a_template"])
    except Exception as e:
        discard(api, vm, name, e, log)
    return f"created VM {name} ({facts['uuid']}) from template {config.template} (finished)"


def _mark(api: Any, vm: str, config: VMConfig) -> dict[str, Any]:
    """Ownership keys and the create marker; disks without an SR go on the default SR.
    The record of the VM as marked."""
    marker = resume.marker("create", config.other_config)
    return ops.prepare_clone(api, vm, {**config.other_config, **marker})


def _same_template(api: Any, record: dict[str, Any], config: VMConfig) -> bool:
    """Whether a half-made VM was cloned from the template the manifest names now."""
    _, template, _ = lookup.find_template(api, config.template)
    return bool(record["other_config"].get("base_template_name") == template["name_label"])


def build(
    api: Any,
    vm: str,
    config: VMConfig,
    networks: lookup.Networks,
    log: StepLog,
    facts: dict[str, Any],
    *,
    template: bool,
    marked: dict[str, Any] | None = None,
) -> None:
    """Provision (if still a `template`), configure, start, wait and verify a marked clone.
    `marked`: its record, read as it was marked and not changed since but by the provision."""
    if template:
        what = f"provisioning VM {config.name}"
        run_async(api, what, CLONE_SECONDS, log, api.Async.VM.provision, vm)
    record = provisioned(marked) if template and marked is not None else None
    with xen_errors(f"cannot configure VM {config.name}"):
        if record is None:
            record = api.VM.get_record(vm)
        if record["is_a_template"]:
            api.VM.set_is_a_template(vm, False)
    facts["uuid"] = record["uuid"]
    current = ops.read_hardware(api, vm, record)
    wanted = wanted_hardware(config, current, networks.refs)
    # The power state just read, unless an operation runs (then converge_power waits and reads).
    state = None if record["current_operations"] else str(record["power_state"])
    if record["power_state"] != "Halted" and hardware_changes(current, wanted):
        # started by a killed run with other settings: it never served as this deployment
        ops.shutdown(api, vm, config.name, log)
        state = None
    ops.apply_hardware(api, vm, current, wanted, log, record["VIFs"], networks.mtus)
    ops.write_xenstore(api, vm, record, config.xenstore)
    finish(api, vm, config, wanted, log, facts, state)


def provisioned(record: dict[str, Any]) -> dict[str, Any]:
    """A template's record as VM.provision leaves it: a VM, its provisioning keys consumed
    (xapi_vm.ml: provision sets is_a_template false, then removes disks and postinstall)."""
    other = {k: v for k, v in record["other_config"].items() if k not in ("disks", "postinstall")}
    return {**record, "is_a_template": False, "other_config": other}


def finish(
    api: Any,
    vm: str,
    config: VMConfig,
    wanted: Hardware,
    log: StepLog,
    facts: dict[str, Any],
    state: str | None = None,
) -> None:
    """Reach the wanted power state, verify, then confirm: ownership keys in, marker out.
    `state` is the power state just read with no operation running (None: read it)."""
    record = converge_power(api, vm, config, log, facts, state)
    if record is None:
        with xen_errors(f"cannot read VM {config.name}"):
            record = api.VM.get_record(vm)
    problems = verify(config.name, record, wanted, config.power)
    if problems:
        raise DriverError("\n".join(problems))
    facts["uuid"] = record["uuid"]
    ops.write_other_config(api, vm, config.other_config, record["other_config"])


def converge_power(
    api: Any,
    vm: str,
    config: VMConfig,
    log: StepLog,
    facts: dict[str, Any],
    state: str | None = None,
) -> dict[str, Any] | None:
    """Start (and wait for Running and a guest IP) or shut down, as spec.power says; the VM's
    record when the wait for its IP read it last (None if nothing read it after the change)."""
    if state is None:
        resume.wait_idle(api, vm, f"VM {config.name}", log)
        state = ops.power_state(api, vm, config.name)
    if config.power == "halted":
        if state != "Halted":
            ops.shutdown(api, vm, config.name, log)
        return None
    if state == "Halted":
        ops.start(api, vm, config.name, config.wait_start, log)
    elif state != "Running":
        raise DriverError(f"VM {config.name} is {state}: resume or unpause it, then apply again")
    if config.wait_ip <= 0:
        return None
    booting = state == "Halted"  # just started: its guest cannot have an IP yet
    facts["ip"], record = wait_for_ip(api, vm, config.name, config.wait_ip, log, booting=booting)
    return record


def discard(api: Any, vm: str, name: str, error: Exception, log: StepLog) -> NoReturn:
    """Destroy a half-built VM and its disks; always raises DriverError."""
    cause = str(error) if isinstance(error, BojdeployError) else f"{type(error).__name__}: {error}"
    log("error", f"{cause.partition(chr(10))[0]}; destroying the half-built VM {name}")
    try:
        resume.wait_idle(api, vm, f"VM {name}", log, timeout=DISCARD_WAIT_SECONDS)
        ops.destroy_vm(api, vm, name, log)
    except BojdeployError as e:
        raise DriverError(
            f"{cause}\nCLEANUP FAILED: {e}\nthe half-built VM {name} may be left on the pool"
        ) from error
    raise DriverError(f"{cause}\nthe half-built VM {name} and its disks were destroyed") from error


def clear_leftovers(
    api: Any,
    name: str,
    environment: str,
    suffix: str,
    log: StepLog,
    known: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Destroy `<name><suffix>` objects a killed run left, with their disks (a failure warns);
    `known`: the records of the VMs named so, when just looked up."""
    for ref in resume.leftovers(api, name, environment, suffix, known):
        label = name + suffix
        log("info", f"removing {label}, left by an interrupted deployment")
        try:
            resume.wait_idle(api, ref, f"VM {label}", log)
            ops.destroy_vm(api, ref, label, log)
        except BojdeployError as e:
            log("warn", f"{label} is left on the pool (the next run retries): {e}")
