"""The VM driver (XenServer / XCP-ng): one XenAPI session per run; clone, provision, configure."""

from __future__ import annotations

import time
from typing import Any, NoReturn

from bojdeploy.core.manifest import VMManifest
from bojdeploy.core.plan import Action, Observed, Step
from bojdeploy.drivers import vm_build as build
from bojdeploy.drivers import vm_lookup as lookup
from bojdeploy.drivers import vm_ops as ops
from bojdeploy.drivers import vm_resume as resume
from bojdeploy.drivers.base import Applied, StepLog, Work
from bojdeploy.drivers.vm_lookup import observe_vm, observe_vms
from bojdeploy.drivers.vm_resume import CREATING_SUFFIX, PREVIOUS_SUFFIX
from bojdeploy.drivers.vm_session import connect_xen, disconnect_xen
from bojdeploy.drivers.vm_spec import (
    OWNER_PREFIX,
    XENSTORE_KEYS,
    Hardware,
    VMConfig,
    hardware_changes,
    is_owned,
    vm_config,
    wanted_hardware,
)
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import BojdeployError, DriverError

__all__ = ["VMDriver", "connect_xen", "disconnect_xen", "observe_vms"]


class VMDriver:
    """Applies VM steps through one XenAPI session; a failed create leaves nothing behind."""

    def __init__(self, session: Any):
        self.session = session
        self.api = session.xenapi

    def observe(self) -> list[Observed]:
        """Every VM of the pool, and owned templates (interrupted creates), in one call."""
        return observe_vms(self.session)

    def observe_one(self, name: str, *, aside: bool = True) -> list[Observed]:
        """The VM `name`, with its leftovers as evidence, looked up by name (not the pool)."""
        return observe_vm(self.session, name)

    def apply(self, work: Work, log: StepLog) -> Applied:
        """Apply one create, update, replace, delete or unchanged step."""
        step = work.step
        if step.action is Action.UNCHANGED:
            return Applied("unchanged")
        started = time.monotonic()
        facts: dict[str, Any] = {}  # filled as the VM comes up: uuid, ip
        if step.action is Action.DELETE:
            summary = self._delete(step, log)
        else:
            summary = self._deploy(step, _config(work), log, facts)
        return Applied(summary, facts, time.monotonic() - started)

    def _deploy(self, step: Step, config: VMConfig, log: StepLog, facts: dict[str, Any]) -> str:
        if step.action is Action.CREATE:
            return build.create(self.api, config, step.environment, log, facts, clear_previous=True)
        summary = self._change(step, config, log, facts)
        # A run killed mid-replace leaves the previous VM set aside: gone once this one runs.
        build.clear_leftovers(self.api, config.name, step.environment, PREVIOUS_SUFFIX, log)
        return summary

    def _change(self, step: Step, config: VMConfig, log: StepLog, facts: dict[str, Any]) -> str:
        """Update, replace, or finish an interrupted create of the step's VM."""
        found = self._owned(step, log)
        if found is None:
            raise DriverError(
                f"VM {config.name} is no longer on the pool; apply again to create it"
            )
        vm, record = found
        if resume.interrupted_destroy(record):
            log("info", f"VM {config.name} was being destroyed: finishing that, then creating it")
            ops.destroy_vm(self.api, vm, config.name, log)
            return build.create(self.api, config, step.environment, log, facts)
        if resume.interrupted_create(record):
            return build.adopt(self.api, vm, record, config, step.environment, log, facts)
        build.clear_leftovers(self.api, config.name, step.environment, CREATING_SUFFIX, log)
        if step.observed is not None and step.observed.unfinished:
            log("info", f"VM {config.name}: {step.observed.unfinished}; finishing it")
        if step.action is Action.REPLACE:
            return self._replace(vm, record, config, step.environment, log, facts)
        return self._update(vm, record, config, step.environment, log, facts)

    def _update(
        self,
        vm: str,
        record: dict[str, Any],
        config: VMConfig,
        environment: str,
        log: StepLog,
        facts: dict[str, Any],
    ) -> str:
        """In place where Xen allows it; VCPUs, memory and VIFs of a running VM per on_change."""
        networks = lookup.find_networks(self.api, config.networks)
        current = ops.read_hardware(self.api, vm, record)
        wanted = wanted_hardware(config, current, networks.refs)
        changes = hardware_changes(current, wanted)
        previous = resume.previous_of(record)
        if previous is not None:
            log("info", f"VM {config.name}: finishing the interrupted reboot")
            return self._reboot(vm, record, config, (current, wanted), previous, log, facts)
        if changes and record["power_state"] != "Halted":
            needs = f"VM {config.name}: changing {', '.join(changes)} needs the VM halted"
            if config.on_change == "refuse":
                raise DriverError(f"{needs} and spec.on_change is refuse; nothing was changed")
            if config.on_change == "recreate":
                log("info", f"{needs}: recreating it (spec.on_change: recreate)")
                return self._replace(vm, record, config, environment, log, facts)
            log("info", f"{needs}: rebooting it (spec.on_change: reboot)")
            before = (current, resume.owner_keys_of(record["other_config"]))
            return self._reboot(vm, record, config, (current, wanted), before, log, facts)
        self._mark(vm, config)
        ops.apply_hardware(self.api, vm, current, wanted, log, mtus=networks.mtus)
        if ops.write_xenstore(self.api, vm, record, config.xenstore):
            changes.append("xenstore_data")
            log("info", f"xenstore_data of VM {config.name} updated")
        if str(record["power_state"]).lower() != config.power:
            changes.append(f"power {config.power}")
        build.finish(self.api, vm, config, wanted, log, facts)
        return f"updated VM {config.name} in place ({', '.join(changes) or 'ownership keys'})"

    def _reboot(
        self,
        vm: str,
        record: dict[str, Any],
        config: VMConfig,
        hardware: tuple[Hardware, Hardware],
        previous: tuple[Hardware, dict[str, str]],
        log: StepLog,
        facts: dict[str, Any],
    ) -> str:
        """Shut down, change, start; a failure puts `previous` (settings, keys) back, restarts.

        `previous` is recorded on the VM first, so a run that finds the reboot interrupted
        finishes it, or undoes it if finishing fails: never leaves the VM halted.
        """
        current, wanted = hardware
        self._mark(vm, config, resume.saved(*previous))
        if record["power_state"] != "Halted" and hardware_changes(current, wanted):
            ops.shutdown(self.api, vm, config.name, log)
        try:
            ops.apply_hardware(self.api, vm, current, wanted, log)
            ops.write_xenstore(self.api, vm, record, config.xenstore)
            build.finish(self.api, vm, config, wanted, log, facts)
        except BojdeployError as e:
            self._restore(vm, previous, config, e, log)
        changed = ", ".join(hardware_changes(previous[0], wanted))
        return f"rebooted VM {config.name} to change {changed}"

    def _restore(
        self,
        vm: str,
        previous: tuple[Hardware, dict[str, str]],
        config: VMConfig,
        error: Exception,
        log: StepLog,
    ) -> NoReturn:
        """Put the previous VCPUs, memory, VIFs and ownership keys back, start; always raises."""
        name = config.name
        log("error", f"{_first_line(str(error))}; restoring the previous settings")
        try:
            with xen_errors(f"cannot read VM {name}"):
                state = self.api.VM.get_power_state(vm)
            if state != "Halted":
                ops.hard_shutdown(self.api, vm, name, log)
            with xen_errors(f"cannot read VM {name}"):
                record = self.api.VM.get_record(vm)
            current = ops.read_hardware(self.api, vm, record)
            ops.apply_hardware(self.api, vm, current, previous[0], log)
            ops.start(self.api, vm, name, config.wait_start, log)
            with xen_errors(f"cannot put the previous ownership keys back on VM {name}"):
                other = self.api.VM.get_other_config(vm)
                self.api.VM.set_other_config(vm, resume.with_owner_keys(other, previous[1]))
        except BojdeployError as e:
            raise DriverError(
                f"{error}\nRESTORE FAILED: {e}\nVM {name} may be halted with partly changed "
                "settings; apply again, or fix it by hand"
            ) from error
        raise DriverError(
            f"{error}\nthe previous VCPUs, memory and VIFs were restored and VM {name} started"
        ) from error

    def _replace(
        self,
        vm: str,
        record: dict[str, Any],
        config: VMConfig,
        environment: str,
        log: StepLog,
        facts: dict[str, Any],
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
            build.create(self.api, config, environment, log, facts)
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
        found = self._owned(step, log)
        name = step.resource_name
        for suffix in (CREATING_SUFFIX, PREVIOUS_SUFFIX):
            build.clear_leftovers(self.api, name, step.environment, suffix, log)
        if found is None:
            return f"VM {name} is already gone"
        ops.destroy_vm(self.api, found[0], name, log)
        return f"destroyed VM {name} and its disks"

    def _mark(self, vm: str, config: VMConfig, extra: dict[str, str] | None = None) -> None:
        """The new ownership keys and the update marker, which the confirmation removes.

        The new config hash goes on at once (status says the VM is changing, and a run that
        finds it unfinished finishes it); the xenstore key list only once xenstore is written.
        """
        keys = {k: v for k, v in config.other_config.items() if k != XENSTORE_KEYS}
        marker = resume.marker("update", config.other_config)
        resume.mark(self.api, vm, {**keys, **marker, **(extra or {})})

    def _owned(self, step: Step, log: StepLog) -> tuple[str, dict[str, Any]] | None:
        """The step's VM and record (None if gone); DriverError unless bojdeploy owns it here.

        An operation a killed run started on it (a start, a shutdown) is waited for first.
        """
        uuid = step.observed.id if step.observed else None
        vm = lookup.vm_by_uuid(self.api, uuid) if uuid else None
        if vm is None:
            return None
        resume.wait_idle(self.api, vm, f"VM {step.resource_name}", log)
        with xen_errors(f"cannot read VM {step.resource_name}"):
            record: dict[str, Any] = self.api.VM.get_record(vm)
        other = record["other_config"]
        if not is_owned(other):
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
