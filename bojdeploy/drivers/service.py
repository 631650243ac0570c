"""The Service driver: create or update Swarm services in place and wait until they converge."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.manifest import ServiceManifest
from bojdeploy.core.plan import Action, Step
from bojdeploy.drivers.base import LABEL_PREFIX, Ownership, StepLog, Work
from bojdeploy.drivers.container_spec import parse_image, registry_auth, registry_host
from bojdeploy.drivers.container_wait import docker_errors
from bojdeploy.drivers.networks import ensure_network
from bojdeploy.drivers.service_finish import finish
from bojdeploy.drivers.service_objects import SwarmObjects, removed_note
from bojdeploy.drivers.service_spec import (
    ServiceConfig,
    owner_labels,
    pinned_image,
    service_config,
    swarm_objects,
)
from bojdeploy.drivers.service_wait import (
    rollback_end,
    task_ids,
    wait_converged,
)
from bojdeploy.errors import BojdeployError, DriverError

MANAGED = {LABEL_PREFIX + "managed": "true"}
SEND_ATTEMPTS = 3


class ServiceDriver:
    """Applies Service steps on a Swarm manager; an update Swarm rolls back is a failure."""

    def __init__(self, client: Any, environ: Mapping[str, str] | None = None):
        self.client = client
        self.environ = os.environ if environ is None else environ

    def apply(self, work: Work, log: StepLog) -> str:
        """Apply one create, update, delete or unchanged step."""
        if work.step.action is Action.UNCHANGED:
            return "unchanged"
        if work.step.action is Action.DELETE:
            return self._delete(work.step, log)
        return self._deploy(work, log)

    def _deploy(self, work: Work, log: StepLog) -> str:
        """Resolve the image, make networks, configs and secrets, create or update, wait."""
        started = time.monotonic()
        manifest, loaded, ownership = _service_work(work)
        spec = manifest.spec
        current = self._inspect(manifest.resource_name)
        store = SwarmObjects(self.client, owner_labels(ownership.name, ownership.environment))
        if current is not None and _interrupted(work, current, ownership.config_hash):
            finished = finish(self.client, current, store, spec.timeout, _unfinished(work), log)
            if finished is not None:
                work.facts.update(finished[1])
                return f"{finished[0]} in {_since(started)}"
        image, digest = self._resolve(spec.image, log)
        self._ensure_networks(spec.networks, log)
        objects = swarm_objects(manifest, loaded.files, work.secrets, work.key)
        names = {obj.name for obj in objects}
        removed = store.sweep(names, log)
        refs = store.ensure(objects, log)
        force = current["Spec"]["TaskTemplate"].get("ForceUpdate", 0) if current else 0
        cfg = service_config(manifest, work.secrets, ownership.labels(), image, refs, force)
        if current is None:
            service_id = self._create(cfg, spec.timeout, store, log)
        else:
            service_id = self._update(current, cfg, spec.timeout, store, log)
        store.prune(names, log)
        configs = [obj.name for obj in objects if obj.kind == "config"]
        work.facts.update(image=image, image_digest=digest, service_id=service_id, configs=configs)
        verb = "created" if current is None else "updated"
        return (
            f"{verb} service {cfg.name} ({spec.image}, {digest[:19]}){removed_note(removed)} "
            f"in {_since(started)}"
        )

    def _resolve(self, image: str, log: StepLog) -> tuple[str, str]:
        """The image pinned to its registry digest, so every task runs the same bytes."""
        self._remember_credentials(image)
        if "@" in image:
            return image, image.partition("@")[2]
        with docker_errors(f"cannot resolve image {image} in its registry (nothing was changed)"):
            digest = str(self.client.api.inspect_distribution(image)["Descriptor"]["digest"])
        log("info", f"resolved {image} to {digest}")
        return pinned_image(image, digest), digest

    def _remember_credentials(self, image: str) -> None:
        """Add DOCKER_AUTH_CONFIG's credentials to docker's own; docker-py sends them to Swarm."""
        from docker import auth

        repository = parse_image(image)[0]
        credentials = registry_auth(repository, self.environ.get("DOCKER_AUTH_CONFIG"))
        if credentials is None:
            return
        api = self.client.api
        if not api._auth_configs or api._auth_configs.is_empty:
            api._auth_configs = auth.load_config(credstore_env=api.credstore_env)
        api._auth_configs.add_auth(registry_host(repository), credentials)

    def _ensure_networks(self, networks: Iterable[str], log: StepLog) -> None:
        """Create missing overlay networks (attachable, so containers can join them too)."""
        for network in networks:
            ensure_network(
                self.client.api, network, log, driver="overlay", labels=MANAGED, attachable=True
            )

    def _create(self, cfg: ServiceConfig, timeout: float, store: SwarmObjects, log: StepLog) -> str:
        """Create the service and wait for it; a new service that fails is removed again."""
        with docker_errors(f"cannot create service {cfg.name}"):
            service_id = str(self.client.api.create_service(**cfg.kwargs)["ID"])
        log("info", f"created service {cfg.name} ({_replicas(cfg)}) from {cfg.image}")
        try:
            wait_converged(self.client, service_id, cfg.name, timeout, log)
        except BojdeployError as e:
            log("error", f"new service {cfg.name} failed: {_first_line(e)}; removing it")
            self._remove(service_id, cfg.name, log)
            store.prune((), log)
            raise DriverError(f"{e}\nthe new service was removed") from e
        return service_id

    def _update(
        self,
        current: dict[str, Any],
        cfg: ServiceConfig,
        timeout: float,
        store: SwarmObjects,
        log: StepLog,
    ) -> str:
        """Send the whole new spec and wait; Swarm restarts tasks only if their template changed.

        When Swarm rolls the update back, the configs and secrets only it used are removed.
        """
        if (current.get("UpdateStatus") or {}).get("State") == "rollback_started":
            # Swarm 20.10 reports an update sent mid-rollback as completed while its tasks fail.
            log("info", f"waiting for Swarm to finish rolling service {cfg.name} back first")
            rollback_end(self.client, current["ID"], cfg.name, time.monotonic() + timeout)
        old = task_ids(self.client, current["ID"], cfg.name)
        result = self._send(current, cfg)
        for warning in (result or {}).get("Warnings") or []:
            log("warn", f"Swarm: {warning}")
        log("info", f"updated the spec of service {cfg.name} ({_replicas(cfg)}, {cfg.image})")
        try:
            wait_converged(self.client, current["ID"], cfg.name, timeout, log, old)
        except BojdeployError:
            store.sweep((), log, "unused")
            raise
        return str(current["ID"])

    def _send(self, current: dict[str, Any], cfg: ServiceConfig) -> Any:
        """update_service with the newest version: Swarm bumps it as its own rollout moves on."""
        from docker.errors import APIError

        for attempt in range(SEND_ATTEMPTS):
            version = (self._inspect(cfg.name) or current)["Version"]["Index"]
            with docker_errors(f"cannot update service {cfg.name}"):
                try:
                    return self.client.api.update_service(current["ID"], version, **cfg.kwargs)
                except APIError as e:
                    if "out of sequence" not in str(e) or attempt == SEND_ATTEMPTS - 1:
                        raise
        return None

    def _delete(self, step: Step, log: StepLog) -> str:
        """Remove the managed service, then its configs and secrets; networks stay."""
        started = time.monotonic()
        name = step.resource_name
        current = self._inspect(name)
        if current is not None:
            self._remove(current["ID"], name, log)
        SwarmObjects(self.client, owner_labels(step.name, step.environment)).prune((), log)
        if current is None:
            return f"service {name} is already gone"
        return f"deleted service {name} in {_since(started)}"

    def _remove(self, service_id: str, name: str, log: StepLog) -> None:
        from docker.errors import NotFound

        with docker_errors(f"cannot remove service {name}"):
            try:
                self.client.api.remove_service(service_id)
            except NotFound:
                return
        log("info", f"removed service {name}")

    def _inspect(self, name: str) -> dict[str, Any] | None:
        """The service named exactly `name`, or None; refuses one bojdeploy does not manage."""
        from docker.errors import NotFound

        with docker_errors(f"cannot inspect service {name}"):
            try:
                info: dict[str, Any] = self.client.api.inspect_service(name)
            except NotFound:
                return None
        if info["Spec"]["Name"] != name:
            return None
        if (info["Spec"].get("Labels") or {}).get(LABEL_PREFIX + "managed") != "true":
            raise DriverError(
                f"service {name} exists but is not managed by bojdeploy "
                f"(no {LABEL_PREFIX}managed=true label); refusing to touch it"
            )
        return info


def _first_line(error: Exception) -> str:
    return str(error).partition("\n")[0]


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"


def _interrupted(work: Work, current: dict[str, Any], config_hash: str) -> bool:
    """Whether the step finishes an unconfirmed deployment of this very configuration."""
    labels = current["Spec"].get("Labels") or {}
    return bool(_unfinished(work)) and labels.get(LABEL_PREFIX + "config-hash") == config_hash


def _unfinished(work: Work) -> str | None:
    observed = work.step.observed
    return observed.unfinished if work.step.action is Action.UPDATE and observed else None


def _replicas(cfg: ServiceConfig) -> str:
    replicated = cfg.kwargs["mode"].get("replicated")
    return "global" if replicated is None else f"{replicated['Replicas']} replicas"


def _service_work(work: Work) -> tuple[ServiceManifest, LoadedManifest, Ownership]:
    """The Service manifest (with its files) and the ownership a create or update needs."""
    loaded = work.manifest
    if loaded is None or not isinstance(loaded.manifest, ServiceManifest) or not work.ownership:
        raise DriverError(f"{work.step.action} {work.step.name}: no Service manifest given")
    return loaded.manifest, loaded, work.ownership
