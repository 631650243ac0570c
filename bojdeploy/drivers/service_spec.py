"""Pure translation of a Service manifest into docker SDK (low-level API) service arguments."""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from docker import types

from bojdeploy.core.fields import Healthcheck
from bojdeploy.core.manifest import (
    Limits,
    RestartPolicy,
    RollbackPolicy,
    ServiceManifest,
    ServiceSpec,
    UpdatePolicy,
)
from bojdeploy.core.secrets import reveal
from bojdeploy.drivers.base import LABEL_PREFIX
from bojdeploy.errors import DriverError

NS = 1_000_000_000
NAME_LIMIT = 64  # Swarm's limit for config and secret names
DIGEST_CHARS = 10
DEFAULT_REPLICAS = 1
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class SwarmObject:
    """A Swarm config or secret: a content-addressed name, its data and where tasks see it."""

    kind: Literal["config", "secret"]
    name: str
    data: bytes = field(repr=False)  # a secret's value: never in a repr or a log
    target: str
    mode: int | None = None


@dataclass(frozen=True)
class ServiceConfig:
    """What to send to Swarm: create_service/update_service kwargs and overlay networks."""

    name: str
    image: str
    kwargs: dict[str, Any]
    networks: list[str] = field(default_factory=list)


def owner_labels(name: str, environment: str) -> dict[str, str]:
    """The labels that mark a service's configs and secrets as bojdeploy's."""
    return {
        LABEL_PREFIX + "managed": "true",
        LABEL_PREFIX + "kind": "service",
        LABEL_PREFIX + "name": name,
        LABEL_PREFIX + "environment": environment,
    }


def task_labels(name: str, environment: str) -> dict[str, str]:
    """Stable labels of task containers: never a deployment id, so tasks are not restarted.

    Not io.bojdeploy.managed: Swarm owns the task containers, and a managed label would make
    them look like orphaned Container resources.
    """
    return {LABEL_PREFIX + "service": name, LABEL_PREFIX + "environment": environment}


def pinned_image(image: str, digest: str) -> str:
    """'reg/web:1' + 'sha256:ab..' -> 'reg/web:1@sha256:ab..'; a pinned image is kept."""
    return image if "@" in image else f"{image}@{digest}"


def object_name(service: str, base: str, content: bytes) -> str:
    """`<service>-<base>-<sha256[:10]>`, within Swarm's 64 characters and allowed characters."""
    digest = hashlib.sha256(content).hexdigest()[:DIGEST_CHARS]
    stem = _UNSAFE.sub("-", f"{service}-{base}")[: NAME_LIMIT - DIGEST_CHARS - 1]
    return f"{stem.rstrip('-_.')}-{digest}"


def swarm_objects(
    manifest: ServiceManifest, files: Mapping[str, str], secrets: Mapping[str, str], key: bytes
) -> list[SwarmObject]:
    """The configs (repository files) and secrets a service mounts, named by content."""
    name = manifest.resource_name
    out = []
    for cfg in manifest.spec.configs:
        content = files.get(posixpath.normpath(cfg.source))
        if content is None:
            raise DriverError(f"service {name}: config source {cfg.source} was not read")
        data = content.encode()
        base = posixpath.basename(cfg.source)
        out.append(SwarmObject("config", object_name(name, base, data), data, cfg.target, cfg.mode))
    for ref in manifest.spec.secrets:
        data = str(reveal(ref.value, secrets)).encode()
        # Named by a keyed hash of the value (installation key): the name reveals nothing.
        keyed = hmac.new(key, f"{name}/{ref.name}\0".encode() + data, hashlib.sha256).digest()
        target = ref.target or ref.name
        out.append(SwarmObject("secret", object_name(name, ref.name, keyed), data, target))
    return out


def service_config(
    manifest: ServiceManifest,
    secrets: Mapping[str, str],
    labels: Mapping[str, str],
    image: str,
    objects: Sequence[tuple[SwarmObject, str]] = (),
    force_update: int = 0,
) -> ServiceConfig:
    """create_service kwargs for `manifest`, secrets revealed, ownership `labels` on the service.

    `image` is the reference to run (pinned to a digest); `objects` pairs each config and
    secret with its Swarm ID; `force_update` is the current ForceUpdate counter, carried over.
    """
    spec = ServiceSpec.model_validate(reveal(manifest.spec.model_dump(), secrets))
    name = manifest.resource_name
    environment = labels.get(LABEL_PREFIX + "environment", "")
    all_labels = {**reveal(dict(manifest.metadata.labels), secrets), **spec.labels, **labels}
    container = types.ContainerSpec(
        image,
        args=spec.command,
        env=dict(sorted(spec.env.items())),
        user=spec.user,
        stop_grace_period=None if spec.stop_grace_period is None else _ns(spec.stop_grace_period),
        labels=dict(sorted({**spec.container_labels, **task_labels(name, environment)}.items())),
        healthcheck=healthcheck(spec.healthcheck) if spec.healthcheck else None,
        configs=[_reference(obj, ident) for obj, ident in objects if obj.kind == "config"],
        secrets=[_reference(obj, ident) for obj, ident in objects if obj.kind == "secret"],
    )
    template = types.TaskTemplate(
        container,
        resources=resources(spec),
        restart_policy=restart_policy(spec.restart or RestartPolicy.model_validate({})),
        placement=placement(spec),
        networks=list(spec.networks),
        force_update=force_update,
    )
    kwargs = {
        "task_template": template,
        "name": name,
        "labels": dict(sorted(all_labels.items())),
        "mode": service_mode(spec),
        "update_config": update_config(spec),
        "rollback_config": rollback_config(spec),
        "endpoint_spec": types.EndpointSpec(ports=endpoint_ports(spec)),
    }
    return ServiceConfig(name, image, kwargs, list(spec.networks))


def _reference(obj: SwarmObject, ident: str) -> dict[str, Any]:
    if obj.kind == "secret":
        return types.SecretReference(ident, obj.name, filename=obj.target)
    return types.ConfigReference(ident, obj.name, filename=obj.target, mode=obj.mode or 0o444)


def _ns(seconds: float) -> int:
    return round(seconds * NS)


def healthcheck(check: Healthcheck) -> types.Healthcheck:
    """A manifest healthcheck in nanoseconds."""
    return types.Healthcheck(
        test=check.test,
        interval=_ns(check.interval),
        timeout=_ns(check.timeout),
        retries=check.retries,
        start_period=_ns(check.start_period),
    )


def resources(spec: ServiceSpec) -> types.Resources | None:
    """Limits and reservations: CPUs as NanoCPUs, memory in bytes."""
    if spec.resources is None:
        return None
    limits = spec.resources.limits or Limits.model_validate({})
    reserved = spec.resources.reservations or Limits.model_validate({})
    return types.Resources(
        cpu_limit=_ns(limits.cpus) if limits.cpus else None,
        mem_limit=limits.memory,
        cpu_reservation=_ns(reserved.cpus) if reserved.cpus else None,
        mem_reservation=reserved.memory,
    )


def restart_policy(policy: RestartPolicy) -> types.RestartPolicy:
    """The task restart policy (0 attempts and 0 window mean no limit)."""
    return types.RestartPolicy(
        condition=policy.condition,
        delay=_ns(policy.delay),
        max_attempts=policy.max_attempts or 0,
        window=_ns(policy.window or 0),
    )


def placement(spec: ServiceSpec) -> types.Placement | None:
    """Constraints, spread preferences and the per-node maximum."""
    if spec.placement is None:
        return None
    return types.Placement(
        constraints=list(spec.placement.constraints),
        preferences=[("spread", p.spread) for p in spec.placement.preferences],
        maxreplicas=spec.placement.max_replicas,
    )


def service_mode(spec: ServiceSpec) -> types.ServiceMode:
    """Global, or replicated with spec.replicas (1 when unset)."""
    if spec.mode == "global":
        return types.ServiceMode("global")
    replicas = DEFAULT_REPLICAS if spec.replicas is None else spec.replicas
    return types.ServiceMode("replicated", replicas=replicas)


def update_config(spec: ServiceSpec) -> types.UpdateConfig:
    """The rolling update policy; bojdeploy's defaults (failure_action: rollback) when unset."""
    return types.UpdateConfig(**_policy(spec.update or UpdatePolicy.model_validate({})))


def rollback_config(spec: ServiceSpec) -> types.RollbackConfig:
    """How Swarm rolls a failed update back; bojdeploy's defaults when unset."""
    return types.RollbackConfig(**_policy(spec.rollback or RollbackPolicy.model_validate({})))


def _policy(policy: UpdatePolicy | RollbackPolicy) -> dict[str, Any]:
    """UpdateConfig/RollbackConfig arguments of an update or rollback block."""
    return {
        "parallelism": policy.parallelism,
        "delay": _ns(policy.delay),
        "failure_action": policy.failure_action,
        "monitor": _ns(policy.monitor),
        "max_failure_ratio": policy.max_failure_ratio,
        "order": policy.order,
    }


def endpoint_ports(spec: ServiceSpec) -> list[dict[str, Any]]:
    """EndpointSpec ports; an unset published port is left for Swarm to choose."""
    ports = []
    for port in spec.ports:
        entry: dict[str, Any] = {
            "Protocol": port.protocol,
            "TargetPort": port.target,
            "PublishMode": port.mode,
        }
        if port.published is not None:
            entry["PublishedPort"] = port.published
        ports.append(entry)
    return ports
