"""The Container driver: pull, set the running container aside, start the new one, roll back."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, TypeGuard

from bojdeploy.core.manifest import ContainerManifest
from bojdeploy.core.plan import Action, Step
from bojdeploy.drivers.base import LABEL_PREFIX, Ownership, StepLog, Work
from bojdeploy.drivers.container_spec import (
    ContainerConfig,
    PullPolicy,
    container_config,
    parse_image,
    pull_policy,
    registry_auth,
)
from bojdeploy.drivers.container_wait import docker_errors, wait_ready
from bojdeploy.drivers.handover import give_back, take_over
from bojdeploy.drivers.networks import ensure_network
from bojdeploy.errors import BojdeployError, DriverError

MANAGED = {LABEL_PREFIX + "managed": "true"}
PREVIOUS_SUFFIX = ".previous"
PULL_PROGRESS_SECONDS = 2.0
DEFAULT_STOP_TIMEOUT = 10


class ContainerDriver:
    """Applies Container steps on one Docker host; a failed deploy restores the previous one."""

    def __init__(self, client: Any, environ: Mapping[str, str] | None = None):
        self.client = client
        self.environ = os.environ if environ is None else environ

    def apply(self, work: Work, log: StepLog) -> str:
        """Apply one create, replace (update), delete or unchanged step."""
        action = work.step.action
        if action is Action.UNCHANGED:
            return "unchanged"
        if action is Action.DELETE:
            return self._delete(work.step, log)
        return self._deploy(work, log)

    def _deploy(self, work: Work, log: StepLog) -> str:
        """Pull, prepare, set the current one aside, start the new one; roll back on failure."""
        started = time.monotonic()
        manifest, ownership = _container_work(work)
        cfg = container_config(manifest, work.secrets, ownership.labels())
        self._ensure_image(cfg.image, pull_policy(manifest.spec), log)
        self._prepare(cfg, log)
        previous = self._find_previous(cfg.name, log)
        ports = cfg.host_config_kwargs.get("port_bindings") or {}
        holders = take_over(self.client, ports, work.deleting, log) if work.deleting else []
        try:
            self._switch(cfg, previous, manifest.spec.stop_timeout, manifest.spec.timeout, log)
        except BojdeployError as e:
            try:
                self._roll_back(cfg.name, previous, e, log)
            finally:
                give_back(self.client, holders, log)
        self._record_facts(work, cfg)
        if previous is None:
            return f"created container {cfg.name} ({cfg.image}) in {_since(started)}"
        self._remove(previous["Id"], cfg.name + PREVIOUS_SUFFIX, log)
        return f"replaced container {cfg.name} with {cfg.image} in {_since(started)}"

    def _record_facts(self, work: Work, cfg: ContainerConfig) -> None:
        """What now runs: the image id (drift detection) and the registry digest."""
        with docker_errors(f"cannot inspect {cfg.name}"):
            work.facts["image_id"] = self.client.api.inspect_container(cfg.name)["Image"]
        work.facts["image_digest"] = image_digest(self.client, cfg.image)

    def _ensure_image(self, image: str, policy: PullPolicy, log: StepLog) -> None:
        """Pull per policy; any failure here happens before anything is stopped."""
        if policy != "always" and self._exists(self.client.api.inspect_image, image):
            log("info", f"image {image} is present; not pulling (pull: {policy})")
            return
        if policy == "never":
            raise DriverError(f"image {image} is not on the Docker host and spec.pull is never")
        self._pull(image, log)

    def _pull(self, image: str, log: StepLog) -> None:
        """Pull `image`, logging at most one progress line every PULL_PROGRESS_SECONDS."""
        repository, tag = parse_image(image)
        auth = registry_auth(repository, self.environ.get("DOCKER_AUTH_CONFIG"))
        started = last = time.monotonic()
        digest = ""
        log("info", f"pulling {image}")
        what = f"cannot pull {image} (nothing was changed)"
        with docker_errors(what):
            events = self.client.api.pull(
                repository, tag=tag, stream=True, decode=True, auth_config=auth
            )
            for event in events:
                if "error" in event:
                    raise DriverError(f"{what}: {event['error']}")
                digest = str(event.get("status", "")).partition("Digest: ")[2] or digest
                if time.monotonic() - last >= PULL_PROGRESS_SECONDS:
                    last = time.monotonic()
                    log("info", f"pulling {image} ... {_since(started)}", elapsed=last - started)
        log("info", f"pulled {image} ({digest or 'no digest reported'}) in {_since(started)}")

    def _prepare(self, cfg: ContainerConfig, log: StepLog) -> None:
        """Create the networks and named volumes the container needs, if missing."""
        api = self.client.api
        for network in cfg.networks:
            ensure_network(api, network, log, driver="bridge", labels=MANAGED)
        for volume in cfg.volumes:
            if not self._exists(api.inspect_volume, volume):
                with docker_errors(f"cannot create volume {volume}"):
                    api.create_volume(volume, labels=MANAGED)
                log("info", f"created volume {volume}")

    def _exists(self, inspect: Any, name: str) -> bool:
        from docker.errors import NotFound

        with docker_errors(f"cannot inspect {name}"):
            try:
                inspect(name)
            except NotFound:
                return False
        return True

    def _find_previous(self, name: str, log: StepLog) -> dict[str, Any] | None:
        """The managed container to replace (a stale `.previous` is removed or adopted)."""
        current = self._inspect(name)
        stale = self._inspect(name + PREVIOUS_SUFFIX)
        for info in (current, stale):
            if info is not None:
                _check_managed(info)
        if current is None:
            if stale is not None:
                log(
                    "warn",
                    f"found {_name(stale)} without {name} (an interrupted deploy): "
                    "it is the previous container",
                )
            return stale
        if stale is not None:
            log("warn", f"removing {_name(stale)} left by an interrupted deploy")
            self._remove(stale["Id"], _name(stale), log)
        return current

    def _switch(
        self,
        cfg: ContainerConfig,
        previous: dict[str, Any] | None,
        stop_timeout: float,
        timeout: float,
        log: StepLog,
    ) -> None:
        """Rename and stop the previous container, then create, start and wait for the new one."""
        api = self.client.api
        if previous is not None:
            aside = cfg.name + PREVIOUS_SUFFIX
            if _name(previous) != aside:
                with docker_errors(f"cannot rename {cfg.name} to {aside}"):
                    api.rename(previous["Id"], aside)
                log("info", f"renamed {cfg.name} to {aside}")
            self._stop(previous["Id"], aside, round(stop_timeout), log)
        with docker_errors(f"cannot create container {cfg.name}"):
            host_config = api.create_host_config(**cfg.host_config_kwargs)
            ident = api.create_container(**cfg.create_kwargs, host_config=host_config)["Id"]
            for network in cfg.networks[1:]:
                api.connect_container_to_network(ident, network)
        with docker_errors(f"cannot start container {cfg.name}"):
            api.start(ident)
        log("info", f"started container {cfg.name} ({ident[:12]}) from {cfg.image}")
        wait_ready(self.client, ident, cfg.name, timeout, log)
        log("info", f"container {cfg.name} is up")

    def _roll_back(
        self, name: str, previous: dict[str, Any] | None, error: BojdeployError, log: StepLog
    ) -> None:
        """Remove the new container and restore the previous one; always raises DriverError."""
        cause = str(error).partition("\n")[0]
        log("error", f"deploy of container {name} failed: {cause}; rolling back")
        try:
            current = self._inspect(name)
            if _is_new(current, previous):
                self._remove(current["Id"], name, log)
            if previous is not None:
                self._restore(previous, name, log)
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

    def _restore(self, previous: dict[str, Any], name: str, log: StepLog) -> None:
        """Rename the previous container back to `name` and start it."""
        if self._inspect(name) is None:
            with docker_errors(f"cannot rename {_name(previous)} back to {name}"):
                self.client.api.rename(previous["Id"], name)
            log("info", f"renamed {name}{PREVIOUS_SUFFIX} back to {name}")
        with docker_errors(f"cannot start the previous container {name}"):
            self.client.api.start(previous["Id"])
        log("info", f"restored and started the previous container {name}")

    def _delete(self, step: Step, log: StepLog) -> str:
        """Stop and remove the managed container (and a stale `.previous`); volumes stay."""
        started = time.monotonic()
        name = step.resource_name
        found = [
            info
            for info in (self._inspect(name), self._inspect(name + PREVIOUS_SUFFIX))
            if info is not None
        ]
        if not found:
            return f"container {name} is already gone"
        for info in found:
            _check_managed(info)
        for info in found:
            stop_timeout = info["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT
            self._stop(info["Id"], _name(info), stop_timeout, log)
            self._remove(info["Id"], _name(info), log)
        return f"deleted container {name} in {_since(started)}"

    def _stop(self, ident: str, name: str, timeout: int, log: StepLog) -> None:
        log("info", f"stopping {name} (timeout {timeout}s)")
        with docker_errors(f"cannot stop container {name}"):
            self.client.api.stop(ident, timeout=timeout)

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
        return info if _name(info) == name else None


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"


def _name(info: Mapping[str, Any]) -> str:
    return str(info["Name"]).lstrip("/")


def _is_managed(info: Mapping[str, Any]) -> bool:
    return bool((info["Config"].get("Labels") or {}).get(LABEL_PREFIX + "managed") == "true")


def _is_new(
    current: dict[str, Any] | None, previous: dict[str, Any] | None
) -> TypeGuard[dict[str, Any]]:
    """Whether `current` is the container this deploy created (not the previous one)."""
    if current is None or not _is_managed(current):
        return False
    return previous is None or current["Id"] != previous["Id"]


def _check_managed(info: Mapping[str, Any]) -> None:
    """Refuse to touch a container without io.bojdeploy.managed=true."""
    if not _is_managed(info):
        raise DriverError(
            f"container {_name(info)} exists but is not managed by bojdeploy "
            f"(no {LABEL_PREFIX}managed=true label); refusing to touch it"
        )


def _container_work(work: Work) -> tuple[ContainerManifest, Ownership]:
    """The Container manifest and ownership a create or replace step needs."""
    manifest = work.manifest.manifest if work.manifest is not None else None
    if not isinstance(manifest, ContainerManifest) or work.ownership is None:
        raise DriverError(f"{work.step.action} {work.step.name}: no Container manifest given")
    return manifest, work.ownership


def image_digest(client: Any, image: str) -> str | None:
    """The registry digest ('sha256:...') of the local `image`; None if absent or never pulled."""
    from docker.errors import NotFound

    with docker_errors(f"cannot inspect image {image}"):
        try:
            info = client.api.inspect_image(image)
        except NotFound:
            return None
    repository = parse_image(image)[0]
    for entry in info.get("RepoDigests") or []:
        repo, _, digest = entry.partition("@")
        if repo == repository:
            return str(digest)
    return None
