"""The Container driver: pull, set the running container aside, start the new one, roll back."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from bojdeploy.core.plan import Action, Observed, Step
from bojdeploy.drivers.base import Applied, StepLog, Work
from bojdeploy.drivers.container_checks import (
    check_managed,
    container_work,
    finishing,
    interrupted,
    is_new,
    name_of,
)
from bojdeploy.drivers.container_image import ensure_image, image_digest, prepare_resources
from bojdeploy.drivers.container_spec import ContainerConfig, container_config, pull_policy
from bojdeploy.drivers.container_wait import wait_ready
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.drivers.handover import give_back, take_over
from bojdeploy.drivers.observe import observe_container, observe_containers
from bojdeploy.errors import BojdeployError, DriverError

__all__ = ["ContainerDriver", "image_digest"]

PREVIOUS_SUFFIX = ".previous"
DEFAULT_STOP_TIMEOUT = 10


class ContainerDriver:
    """Applies Container steps on one Docker host; a failed deploy restores the previous one."""

    def __init__(self, client: Any, environ: Mapping[str, str] | None = None):
        self.client = client
        self.environ = os.environ if environ is None else environ

    def observe(self) -> list[Observed]:
        """Every container on the host, with a `.previous` beside one as evidence (one call)."""
        return observe_containers(self.client)

    def observe_one(self, name: str, *, aside: bool = True) -> list[Observed]:
        """The container `name` and (unless aside=False) its `.previous` (two inspects)."""
        return observe_container(self.client, name, aside=aside)

    def apply(self, work: Work, log: StepLog) -> Applied:
        """Apply one create, replace (update), delete or unchanged step."""
        started = time.monotonic()
        action = work.step.action
        if action is Action.UNCHANGED:
            return Applied("unchanged")
        if action is Action.DELETE:
            return Applied(self._delete(work.step, log), seconds=time.monotonic() - started)
        summary, facts = self._deploy(work, log)
        return Applied(summary, facts, time.monotonic() - started)

    def _deploy(self, work: Work, log: StepLog) -> tuple[str, dict[str, Any]]:
        """Pull, prepare, set the current one aside, start the new one; roll back on failure."""
        manifest, ownership = container_work(work)
        cfg = container_config(manifest, work.secrets, ownership.labels())
        if finishing(work.step) and (current := self._inspect(cfg.name)) is not None:
            return self._finish(work, cfg, current, manifest.spec.timeout, log)
        ensure_image(self.client, cfg.image, pull_policy(manifest.spec), self.environ, log)
        prepare_resources(self.client, cfg, log)
        previous = self._find_previous(cfg.name, manifest.spec.timeout, log)
        ports = cfg.host_config_kwargs.get("port_bindings") or {}
        holders = take_over(self.client, ports, work.deleting, log) if work.deleting else []
        try:
            image_id = self._switch(
                cfg, previous, manifest.spec.stop_timeout, manifest.spec.timeout, log
            )
        except BojdeployError as e:
            try:
                self._roll_back(cfg.name, previous, e, log)
            finally:
                give_back(self.client, holders, log)
        facts = self._facts(cfg, image_id)
        if previous is None:
            return f"created container {cfg.name} ({cfg.image})", facts
        self._remove(previous["Id"], cfg.name + PREVIOUS_SUFFIX, log)
        return f"replaced container {cfg.name} with {cfg.image}", facts

    def _finish(
        self,
        work: Work,
        cfg: ContainerConfig,
        current: dict[str, Any],
        timeout: float,
        log: StepLog,
    ) -> tuple[str, dict[str, Any]]:
        """Finish an interrupted deployment (the new one becomes ready) or undo it."""
        aside = self._inspect(cfg.name + PREVIOUS_SUFFIX)
        for info in (current, aside):
            if info is not None:
                check_managed(info)
        what = interrupted(work.step)
        why = work.step.observed.unfinished if work.step.observed else None
        log("info", f"finishing {what} of container {cfg.name} ({why})")
        try:
            goal = self._await(current, cfg.name, timeout, log)
        except BojdeployError as e:
            self._roll_back(cfg.name, aside, e, log, head=f"could not finish {what}")
        if aside is not None:
            self._remove(aside["Id"], name_of(aside), log)
        return f"finished the interrupted {what}: container {cfg.name} is {goal}", self._facts(cfg)

    def _await(self, info: dict[str, Any], name: str, timeout: float, log: StepLog) -> str:
        """Start a container left created, wait until it is ready; 'healthy' or 'running'."""
        if info["State"].get("Status") == "created":
            with docker_errors(f"cannot start container {name}"):
                self.client.api.start(info["Id"])
            log("info", f"started container {name} ({info['Id'][:12]})")
        ready = wait_ready(self.client, info["Id"], name, timeout, log)
        return "healthy" if ready["State"].get("Health") else "running"

    def _facts(self, cfg: ContainerConfig, image_id: str | None = None) -> dict[str, Any]:
        """What now runs: the image id (drift detection; looked up unless given) and the
        registry digest."""
        if image_id is None:
            with docker_errors(f"cannot inspect {cfg.name}"):
                image_id = self.client.api.inspect_container(cfg.name)["Image"]
        return {"image_id": image_id, "image_digest": image_digest(self.client, cfg.image)}

    def _find_previous(self, name: str, timeout: float, log: StepLog) -> dict[str, Any] | None:
        """The managed container to replace; a swap left half-done is finished or undone first."""
        current = self._inspect(name)
        stale = self._inspect(name + PREVIOUS_SUFFIX)
        for info in (current, stale):
            if info is not None:
                check_managed(info)
        if current is None:
            if stale is not None:
                log(
                    "warn",
                    f"found {name_of(stale)} without {name} (an interrupted deploy): "
                    "it is the previous container",
                )
            return stale
        if stale is None:
            return current
        # Which of the two is good is unknown: the current may be an unconfirmed new version.
        log("warn", f"found {name_of(stale)} beside {name}: finishing or undoing that swap first")
        try:
            self._await(current, name, timeout, log)
        except BojdeployError as e:
            log("warn", f"{str(e).partition(chr(10))[0]}: restoring {name_of(stale)}")
            self._undo(name, stale, log)
            return self._inspect(name)
        self._remove(stale["Id"], name_of(stale), log)
        return current

    def _switch(
        self,
        cfg: ContainerConfig,
        previous: dict[str, Any] | None,
        stop_timeout: float,
        timeout: float,
        log: StepLog,
    ) -> str:
        """Rename and stop the previous container, then create, start and wait for the new one;
        the image id it runs."""
        api = self.client.api
        if previous is not None:
            aside = cfg.name + PREVIOUS_SUFFIX
            if name_of(previous) != aside:
                with docker_errors(f"cannot rename {cfg.name} to {aside}"):
                    api.rename(previous["Id"], aside)
                log("info", f"renamed {cfg.name} to {aside}")
            self._stop(previous["Id"], aside, round(stop_timeout), log)
        with docker_errors(f"cannot create container {cfg.name}"):
            host_config = api.create_host_config(**cfg.host_config_kwargs)
            ident = api.create_container(**cfg.create_kwargs, host_config=host_config)["Id"]
            for network in cfg.networks[1:]:
                api.connect_container_to_network(ident, network)
        log("info", f"created container {cfg.name} ({ident[:12]})")
        with docker_errors(f"cannot start container {cfg.name}"):
            api.start(ident)
        log("info", f"started container {cfg.name} ({ident[:12]}) from {cfg.image}")
        ready = wait_ready(self.client, ident, cfg.name, timeout, log)
        log("info", f"container {cfg.name} is up")
        return str(ready["Image"])

    def _roll_back(
        self,
        name: str,
        previous: dict[str, Any] | None,
        error: BojdeployError,
        log: StepLog,
        head: str = "deploy failed",
    ) -> NoReturn:
        """Remove the new container and restore the previous one; always raises DriverError."""
        cause = str(error).partition("\n")[0]
        log("error", f"container {name}: {head}: {cause}; rolling back")
        try:
            self._undo(name, previous, log)
        except BojdeployError as e:
            aside = name + PREVIOUS_SUFFIX
            raise DriverError(
                f"{error}\nROLLBACK FAILED: {e}\nThe previous container could not be restored: "
                f"check `docker ps -a`; it may be left stopped as {aside} "
                f"(restore it with `docker rm -f {name}; docker rename {aside} {name}; "
                f"docker start {name}`)"
            ) from error
        if previous is None:
            raise DriverError(f"{error}\nthe new container was removed") from error
        raise DriverError(f"{error}\nthe previous container was restored") from error

    def _undo(self, name: str, previous: dict[str, Any] | None, log: StepLog) -> None:
        """Remove the container that is not `previous`, then bring `previous` back as `name`."""
        current = self._inspect(name)
        if is_new(current, previous):
            self._remove(current["Id"], name, log)
        if previous is not None:
            self._restore(previous, name, log)

    def _restore(self, previous: dict[str, Any], name: str, log: StepLog) -> None:
        """Rename the previous container back to `name` and start it."""
        if self._inspect(name) is None:
            with docker_errors(f"cannot rename {name_of(previous)} back to {name}"):
                self.client.api.rename(previous["Id"], name)
            log("info", f"renamed {name}{PREVIOUS_SUFFIX} back to {name}")
        with docker_errors(f"cannot start the previous container {name}"):
            self.client.api.start(previous["Id"])
        log("info", f"restored and started the previous container {name}")

    def _delete(self, step: Step, log: StepLog) -> str:
        """Stop and remove the managed container (and a stale `.previous`); volumes stay."""
        name = step.resource_name
        found = [
            info
            for info in (self._inspect(name), self._inspect(name + PREVIOUS_SUFFIX))
            if info is not None
        ]
        if not found:
            return f"container {name} is already gone"
        for info in found:
            check_managed(info)
        for info in found:
            stop_timeout = info["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT
            self._stop(info["Id"], name_of(info), stop_timeout, log)
            self._remove(info["Id"], name_of(info), log)
        return f"deleted container {name}"

    def _stop(self, ident: str, name: str, timeout: int, log: StepLog) -> None:
        log("info", f"stopping {name} (timeout {timeout}s)")
        with docker_errors(f"cannot stop container {name}"):
            self.client.api.stop(ident, timeout=timeout)
        log("info", f"stopped {name}")

    def _remove(self, ident: str, name: str, log: StepLog) -> None:
        """Force-remove a container; one that is already gone is fine."""
        from docker.errors import NotFound

        with docker_errors(f"cannot remove container {name}"):
            try:
                self.client.api.remove_container(ident, force=True)
            except NotFound:
                log("info", f"container {name} was already removed")
                return
        log("info", f"removed container {name}")

    def _inspect(self, name: str) -> dict[str, Any] | None:
        """The container named exactly `name` (not an ID prefix), or None."""
        from docker.errors import NotFound

        with docker_errors(f"cannot inspect container {name}"):
            try:
                info: dict[str, Any] = self.client.api.inspect_container(name)
            except NotFound:
                return None
        return info if name_of(info) == name else None
