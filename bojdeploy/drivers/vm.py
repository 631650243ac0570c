"""The VM driver (XenServer / XCP-ng): one XenAPI session per run; clone, provision, configure."""

from __future__ import annotations

import time
from typing import Any, NoReturn

from bojdeploy.core.manifest import VMManifest
from bojdeploy.core.plan import Action, Step
from bojdeploy.drivers import vm_ops as ops
from bojdeploy.drivers.base import StepLog, Work
from bojdeploy.drivers.vm_ops import connect_xen, disconnect_xen, observe_vms
from bojdeploy.drivers.vm_spec import (
    HASH_KEY,
    OWNER_PREFIX,
    Hardware,
    VMConfig,
    hardware_changes,
    is_owned,
    verify,
    vm_config,
    wanted_hardware,
)
from bojdeploy.drivers.vm_wait import run_async, wait_for_ip, xen_errors
from bojdeploy.errors import BojdeployError, DriverError

CLONE_SECONDS = 900.0  # clone and provision copy disks on SRs without copy-on-write
PREVIOUS_SUFFIX = ".previous"
__all__ = ["VMDriver", "connect_xen", "disconnect_xen", "observe_vms"]


class VMDriver:
    """Applies VM steps through one XenAPI session; a failed create leaves nothing behind."""

    def __init__(self, session: Any):
        self.api = session.xenapi

    def apply(self, work: Work, log: StepLog) -> str:
        """Apply one create, update, replace, delete or unchanged step."""
        step = work.step
        if step.action is Action.UNCHANGED:
            return "unchanged"
        started = time.monotonic()
        if step.action is Action.DELETE:
            summary = self._delete(step, log)
        else:
            summary = self._deploy(step, _config(work), log, work.facts)
        return f"{summary} in {time.monotonic() - started:.1f}s"

    def _deploy(self, step: Step, config: VMConfig, log: StepLog, facts: dict[str, Any]) -> str:
        if step.action is Action.CREATE:
            return self._create(config, log, facts)
        found = self._owned(step)
        if found is None:
            raise DriverError(
                f"VM {config.name} is no longer on the pool; apply again to create it"
            )
        vm, record = found
        if step.action is Action.REPLACE:
            return self._replace(vm, record, config, log, facts)
        return self._update(vm, record, config, log, facts)

    def _create(self, config: VMConfig, log: StepLog, facts: dict[str, Any]) -> str:
        """Clone the template, then build; a failure destroys the clone and its disks."""
        ops.check_absent(self.api, config.name)
        template = ops.find_template(self.api, config.template)
        networks = ops.find_networks(self.api, config.networks)
        what = f"cloning template {config.template} as VM {config.name}"
        vm = run_async(
            self.api, what, CLONE_SECONDS, log, self.api.Async.VM.clone, template, config.name
        )
        try:
            self._build(vm, config, networks, log, facts)
        except Exception as e:
            self._discard(vm, config.name, e, log)
        return f"created VM {config.name} ({facts['uuid']}) from template {config.template}"

    def _build(
        self, vm: str, config: VMConfig, networks: list[str], log: StepLog, facts: dict[str, Any]
    ) -> None:
        """Provision, configure, start, wait and verify a fresh clone."""
        # Owned from the start (an interrupted run leaves a VM bojdeploy may fix); the config
        # hash is written last, so such a VM never looks unchanged.
        ops.prepare_clone(self.api, vm, {**config.other_config, HASH_KEY: ""})
        what = f"provisioning VM {config.name}"
        run_async(self.api, what, CLONE_SECONDS, log, self.api.Async.VM.provision, vm)
        with xen_errors(f"cannot configure VM {config.name}"):
            if self.api.VM.get_is_a_template(vm):
                self.api.VM.set_is_a_template(vm, False)
            record = self.api.VM.get_record(vm)
        facts["uuid"] = record["uuid"]
        current = ops.read_hardware(self.api, vm, record)
        wanted = wanted_hardware(config, current, networks)
        ops.apply_hardware(self.api, vm, current, wanted, log)
        ops.write_xenstore(self.api, vm, record, config.xenstore)
        self._finish(vm, config, wanted, log, facts)

    def _finish(
        self, vm: str, config: VMConfig, wanted: Hardware, log: StepLog, facts: dict[str, Any]
    ) -> None:
        """Reach the wanted power state, verify, then write the ownership keys and config hash."""
        self._converge_power(vm, config, log, facts)
        with xen_errors(f"cannot read VM {config.name}"):
            record = self.api.VM.get_record(vm)
        problems = verify(config.name, record, wanted, config.power)
        if problems:
            raise DriverError("\n".join(problems))
        facts["uuid"] = record["uuid"]
        ops.write_other_config(self.api, vm, config.other_config)

    def _converge_power(
        self, vm: str, config: VMConfig, log: StepLog, facts: dict[str, Any]
    ) -> None:
        """Start (and wait for Running and a guest IP) or shut down, as spec.power says."""
        with xen_errors(f"cannot read the power state of VM {config.name}"):
            state = self.api.VM.get_power_state(vm)
        if config.power == "halted":
            if state != "Halted":
                ops.shutdown(self.api, vm, config.name, log)
            return
        if state == "Halted":
            ops.start(self.api, vm, config.name, config.wait_start, log)
        elif state != "Running":
            raise DriverError(
                f"VM {config.name} is {state}: resume or unpause it, then apply again"
            )
        if config.wait_ip > 0:
            facts["ip"] = wait_for_ip(self.api, vm, config.name, config.wait_ip, log)

    def _discard(self, vm: str, name: str, error: Exception, log: StepLog) -> NoReturn:
        """Destroy a half-built VM and its disks; always raises DriverError."""
        cause = (
            str(error) if isinstance(error, BojdeployError) else f"{type(error).__name__}: {error}"
        )
        log("error", f"{_first_line(cause)}; destroying the half-built VM {name}")
        try:
            ops.destroy_vm(self.api, vm, name, log)
        except BojdeployError as e:
            raise DriverError(
                f"{cause}\nCLEANUP FAILED: {e}\nthe half-built VM {name} may be left on the pool"
            ) from error
        raise DriverError(
            f"{cause}\nthe half-built VM {name} and its disks were destroyed"
        ) from error

    def _update(
        self, vm: str, record: dict[str, Any], config: VMConfig, log: StepLog, facts: dict[str, Any]
    ) -> str:
        """In place where Xen allows it; VCPUs, memory and VIFs of a running VM per on_change."""
        networks = ops.find_networks(self.api, config.networks)
        current = ops.read_hardware(self.api, vm, record)
        wanted = wanted_hardware(config, current, networks)
        changes = hardware_changes(current, wanted)
        if changes and record["power_state"] != "Halted":
            needs = f"VM {config.name}: changing {', '.join(changes)} needs the VM halted"
            if config.on_change == "refuse":
                raise DriverError(f"{needs} and spec.on_change is refuse; nothing was changed")
            if config.on_change == "recreate":
                log("info", f"{needs}: recreating it (spec.on_change: recreate)")
                return self._replace(vm, record, config, log, facts)
            log("info", f"{needs}: rebooting it (spec.on_change: reboot)")
            return self._reboot(vm, record, config, (current, wanted), log, facts)
        ops.apply_hardware(self.api, vm, current, wanted, log)
        if ops.write_xenstore(self.api, vm, record, config.xenstore):
            changes.append("xenstore_data")
            log("info", f"xenstore_data of VM {config.name} updated")
        if str(record["power_state"]).lower() != config.power:
            changes.append(f"power {config.power}")
        self._finish(vm, config, wanted, log, facts)
        return f"updated VM {config.name} in place ({', '.join(changes) or 'ownership keys'})"

    def _reboot(
        self,
        vm: str,
        record: dict[str, Any],
        config: VMConfig,
        hardware: tuple[Hardware, Hardware],
        log: StepLog,
        facts: dict[str, Any],
    ) -> str:
        """Shut down, change, start; a failure restores the previous hardware and restarts."""
        current, wanted = hardware
        ops.shutdown(self.api, vm, config.name, log)
        try:
            ops.apply_hardware(self.api, vm, current, wanted, log)
            ops.write_xenstore(self.api, vm, record, config.xenstore)
            self._finish(vm, config, wanted, log, facts)
        except BojdeployError as e:
            self._restore(vm, current, config, e, log)
        changed = ", ".join(hardware_changes(current, wanted))
        return f"rebooted VM {config.name} to change {changed}"

    def _restore(
        self, vm: str, previous: Hardware, config: VMConfig, error: Exception, log: StepLog
    ) -> NoReturn:
        """Put the previous VCPUs, memory and VIFs back and start the VM; always raises."""
        name = config.name
        log("error", f"{_first_line(str(error))}; restoring the previous settings")
        try:
            with xen_errors(f"cannot read VM {name}"):
                state = self.api.VM.get_power_state(vm)
            if state != "Halted":
                ops.hard_shutdown(self.api, vm, name, log)
            with xen_errors(f"cannot read VM {name}"):
                record = self.api.VM.get_record(vm)
            ops.apply_hardware(self.api, vm, ops.read_hardware(self.api, vm, record), previous, log)
            ops.start(self.api, vm, name, config.wait_start, log)
        except BojdeployError as e:
            raise DriverError(
                f"{error}\nRESTORE FAILED: {e}\nVM {name} may be halted with partly changed "
                "settings; apply again, or fix it by hand"
            ) from error
        raise DriverError(
            f"{error}\nthe previous VCPUs, memory and VIFs were restored and VM {name} started"
        ) from error

    def _replace(
        self, vm: str, record: dict[str, Any], config: VMConfig, log: StepLog, facts: dict[str, Any]
    ) -> str:
        """Halt the VM and set it aside, create the new one, then destroy the old one."""
        name, aside = config.name, config.name + PREVIOUS_SUFFIX
        was_running = record["power_state"] != "Halted"
        if was_running:
            ops.shutdown(self.api, vm, name, log)
        with xen_errors(f"cannot rename VM {name} to {aside}"):
            self.api.VM.set_name_label(vm, aside)
        log("info", f"VM {name} set aside as {aside} until its replacement runs")
        try:
            self._create(config, log, facts)
        except BojdeployError as e:
            self._bring_back(vm, config, was_running, e, log)
        try:
            ops.destroy_vm(self.api, vm, aside, log)
        except BojdeployError as e:
            log("warn", f"the previous VM is left as {aside}: {e}")
        return f"recreated VM {name} ({facts['uuid']}) from template {config.template}"

    def _bring_back(
        self, vm: str, config: VMConfig, was_running: bool, error: Exception, log: StepLog
    ) -> NoReturn:
        """Rename the set-aside VM back and restart it; always raises DriverError."""
        name, aside = config.name, config.name + PREVIOUS_SUFFIX
        try:
            with xen_errors(f"cannot rename VM {aside} back to {name}"):
                self.api.VM.set_name_label(vm, name)
            if was_running:
                ops.start(self.api, vm, name, config.wait_start, log)
        except BojdeployError as e:
            raise DriverError(
                f"{error}\nROLLBACK FAILED: {e}\nthe previous VM may be left halted as {aside}"
            ) from error
        again = " and started" if was_running else ""
        raise DriverError(f"{error}\nthe previous VM {name} was restored{again}") from error

    def _delete(self, step: Step, log: StepLog) -> str:
        """Power off and destroy the owned VM and its disks."""
        found = self._owned(step)
        if found is None:
            return f"VM {step.resource_name} is already gone"
        ops.destroy_vm(self.api, found[0], step.resource_name, log)
        return f"destroyed VM {step.resource_name} and its disks"

    def _owned(self, step: Step) -> tuple[str, dict[str, Any]] | None:
        """The step's VM and record (None if gone); DriverError unless bojdeploy owns it here."""
        uuid = step.observed.id if step.observed else None
        vm = ops.vm_by_uuid(self.api, uuid) if uuid else None
        if vm is None:
            return None
        with xen_errors(f"cannot read VM {step.resource_name}"):
            record: dict[str, Any] = self.api.VM.get_record(vm)
        other = record["other_config"]
        if not is_owned(other) or record["is_a_template"]:
            raise DriverError(
                f"VM {step.resource_name} ({uuid}) is not managed by bojdeploy (no "
                f"{OWNER_PREFIX}managed=true in other_config); refusing to touch it"
            )
        owner = other.get(OWNER_PREFIX + "environment")
        if owner != step.environment:
            raise DriverError(
                f"VM {step.resource_name} is owned by environment {owner}; refusing to change it "
                f"from {step.environment}"
            )
        return vm, record


def _config(work: Work) -> VMConfig:
    """The VMConfig of a create, update or replace step."""
    loaded = work.manifest
    if loaded is None or not isinstance(loaded.manifest, VMManifest) or work.ownership is None:
        raise DriverError(f"{work.step.action} {work.step.name}: no VM manifest given")
    return vm_config(loaded.manifest, loaded.files, work.secrets, work.ownership.labels())


def _first_line(text: str) -> str:
    return text.partition("\n")[0]
