"""The Service driver: create or update Swarm services in place and wait until they converge."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.manifest import ServiceManifest
from bojdeploy.core.plan import Action, Observed, Step
from bojdeploy.drivers.base import LABEL_PREFIX, Applied, Ownership, StepLog, Work
from bojdeploy.drivers.container_spec import DOCKER_HUB, parse_image, registry_auth, registry_host
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.drivers.networks import ensure_network
from bojdeploy.drivers.observe import observe_service, observe_services
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
        self._logged_in: set[str] = set()  # registries whose DOCKER_AUTH_CONFIG login is done
        self._login_lock = threading.Lock()

    def observe(self) -> list[Observed]:
        """Every Swarm service, each with why it is unfinished (three list calls in all)."""
        return observe_services(self.client)

    def observe_one(self, name: str, *, aside: bool = True) -> list[Observed]:
        """The service `name`, if any, with its own leftover configs and secrets."""
        return observe_service(self.client, name)

    def apply(self, work: Work, log: StepLog) -> Applied:
        """Apply one create, update, delete or unchanged step."""
        started = time.monotonic()
        if work.step.action is Action.UNCHANGED:
            return Applied("unchanged")
        if work.step.action is Action.DELETE:
            return Applied(self._delete(work.step, log), seconds=time.monotonic() - started)
        summary, facts = self._deploy(work, log)
        return Applied(summary, facts, time.monotonic() - started)

    def _deploy(self, work: Work, log: StepLog) -> tuple[str, dict[str, Any]]:
        """Resolve the image, make networks, configs and secrets, create or update, wait."""
        manifest, loaded, ownership = _service_work(work)
        spec = manifest.spec
        current = self._inspect(manifest.resource_name)
        store = SwarmObjects(self.client, owner_labels(ownership.name, ownership.environment))
        if current is not None and _interrupted(work, current, ownership.config_hash):
            finished = finish(self.client, current, store, spec.timeout, _unfinished(work), log)
            if finished is not None:
                return finished
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
        facts = {"image": image, "image_digest": digest, "service_id": service_id}
        verb = "created" if current is None else "updated"
        summary = f"{verb} service {cfg.name} ({spec.image}, {digest[:19]}){removed_note(removed)}"
        return summary, {**facts, "configs": configs}

    def _resolve(self, image: str, log: StepLog) -> tuple[str, str]:
        """The image pinned to its registry digest, so every task runs the same bytes."""
        self._log_in(image, log)
        if "@" in image:
            return image, image.partition("@")[2]
        with docker_errors(f"cannot resolve image {image} in its registry (nothing was changed)"):
            digest = str(self.client.api.inspect_distribution(image)["Descriptor"]["digest"])
        log("info", f"resolved {image} to {digest}")
        return pinned_image(image, digest), digest

    def _log_in(self, image: str, log: StepLog) -> None:
        """Log the client in with DOCKER_AUTH_CONFIG's credentials for the image's registry.

        docker-py sends a client's login with every service create and update (Swarm hands it
        to the nodes that pull) and with the digest lookup; without one, docker's own config.
        """
        repository = parse_image(image)[0]
        credentials = registry_auth(repository, self.environ.get("DOCKER_AUTH_CONFIG"))
        if credentials is None:
            return
        host = registry_host(repository)
        with self._login_lock:
            if host in self._logged_in:
                return
            if "username" not in credentials:
                raise DriverError(
                    f"DOCKER_AUTH_CONFIG: the credentials for {host} are an identity token; "
                    "Swarm services need a username and password (nothing was changed)"
                )
            what = f"cannot log in to registry {host} with DOCKER_AUTH_CONFIG (nothing was changed)"
            with docker_errors(what):
                self.client.api.login(
                    credentials["username"],
                    credentials["password"],
                    registry=None if host == DOCKER_HUB else host,
                    reauth=True,  # DOCKER_AUTH_CONFIG wins over docker's own config.json
                )
            self._logged_in.add(host)
        log("info", f"logged in to registry {host} as {credentials['username']}")

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
        name = step.resource_name
        current = self._inspect(name)
        if current is not None:
            self._remove(current["ID"], name, log)
        SwarmObjects(self.client, owner_labels(step.name, step.environment)).prune((), log)
        if current is None:
            return f"service {name} is already gone"
        return f"deleted service {name}"

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
