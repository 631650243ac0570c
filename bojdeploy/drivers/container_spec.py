"""Pure translation of a Container manifest into docker SDK (low-level API) arguments."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bojdeploy.core.fields import PORT_RE
from bojdeploy.core.manifest import ContainerManifest, ContainerSpec
from bojdeploy.core.secrets import reveal
from bojdeploy.errors import DriverError

NS = 1_000_000_000
DOCKER_HUB = "docker.io"

PullPolicy = Literal["always", "if-missing", "never"]
PortBinding = tuple[str, int | None]


@dataclass(frozen=True)
class ContainerConfig:
    """What to send to Docker: create/host-config kwargs, networks and volumes to make first."""

    name: str
    image: str
    create_kwargs: dict[str, Any]
    host_config_kwargs: dict[str, Any]
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


def container_config(
    manifest: ContainerManifest, secrets: Mapping[str, str], labels: Mapping[str, str]
) -> ContainerConfig:
    """The docker arguments for `manifest`, secrets revealed, ownership `labels` winning."""
    spec = ContainerSpec.model_validate(reveal(manifest.spec.model_dump(), secrets))
    all_labels = {**reveal(dict(manifest.metadata.labels), secrets), **spec.labels, **labels}
    exposed, bindings = port_bindings(spec.ports)
    binds, volumes = volume_binds(spec.volumes)
    create = _create_kwargs(spec, manifest.resource_name, all_labels, exposed)
    host: dict[str, Any] = {
        "binds": binds,
        "port_bindings": bindings,
        "network_mode": spec.network_mode or (spec.networks[0] if spec.networks else "default"),
        "restart_policy": restart_policy(spec.restart),
        "privileged": spec.privileged,
    }
    if spec.resources and spec.resources.memory is not None:
        host["mem_limit"] = spec.resources.memory
    if spec.resources and spec.resources.cpus is not None:
        host["nano_cpus"] = round(spec.resources.cpus * NS)
    return ContainerConfig(
        manifest.resource_name, spec.image, create, host, list(spec.networks), volumes
    )


def _create_kwargs(
    spec: ContainerSpec, name: str, labels: dict[str, str], exposed: list[tuple[int, str]]
) -> dict[str, Any]:
    """Arguments of `client.api.create_container` (without host_config)."""
    create: dict[str, Any] = {
        "image": spec.image,
        "name": name,
        "command": spec.command,
        "entrypoint": spec.entrypoint,
        "environment": dict(spec.env),
        "ports": exposed,
        "labels": labels,
        "user": spec.user,
        "detach": True,
        "stop_timeout": round(spec.stop_timeout),
        "healthcheck": None,
    }
    if spec.networks:
        create["networking_config"] = {"EndpointsConfig": {spec.networks[0]: {}}}
    if spec.healthcheck is not None:
        check = spec.healthcheck
        create["healthcheck"] = {
            "test": check.test,
            "interval": round(check.interval * NS),
            "timeout": round(check.timeout * NS),
            "retries": check.retries,
            "start_period": round(check.start_period * NS),
        }
    return create


def port_bindings(
    ports: list[str],
) -> tuple[list[tuple[int, str]], dict[str, list[PortBinding]]]:
    """'[ip:][host:]container[/proto]' -> exposed (port, proto) and {"80/tcp": [(ip, host)]}."""
    exposed: list[tuple[int, str]] = []
    bindings: dict[str, list[PortBinding]] = {}
    for port in ports:
        m = PORT_RE.match(port)
        if m is None:
            raise DriverError(f"invalid port {port!r}")
        proto = m.group("proto") or "tcp"
        ip = (m.group("ip") or "").strip("[]")
        inner = _port_range(m.group("container"))
        outer: list[int | None] = [None] * len(inner)
        if m.group("host"):
            outer = list(_port_range(m.group("host")))
            if len(outer) != len(inner):
                raise DriverError(f"invalid port {port!r}: host and container ranges differ")
        for target, published in zip(inner, outer, strict=True):
            if (target, proto) not in exposed:
                exposed.append((target, proto))
            bindings.setdefault(f"{target}/{proto}", []).append((ip, published))
    return exposed, bindings


def _port_range(text: str) -> list[int]:
    """'80' -> [80]; '8000-8002' -> [8000, 8001, 8002]."""
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def volume_binds(volumes: list[str]) -> tuple[list[str], list[str]]:
    """Docker binds ('src:/path:rw') and the named volumes among them (to create first)."""
    binds: list[str] = []
    named: list[str] = []
    for volume in volumes:
        source, target, *mode = volume.split(":")
        binds.append(f"{source}:{target}:{mode[0] if mode else 'rw'}")
        if not source.startswith("/") and source not in named:
            named.append(source)
    return binds, named


def restart_policy(restart: str) -> dict[str, Any]:
    """'on-failure:3' -> {"Name": "on-failure", "MaximumRetryCount": 3}."""
    name, _, count = restart.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def parse_image(ref: str) -> tuple[str, str]:
    """'reg:5000/web:1' -> ('reg:5000/web', '1'); a digest wins over a tag; default 'latest'."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    else:
        tag = "latest"
    return name, digest or tag


def pull_policy(spec: ContainerSpec) -> PullPolicy:
    """The effective pull policy: `auto` pulls tags always and digests only if missing."""
    if spec.pull == "always":
        return "always"
    if spec.pull == "never":
        return "never"
    return "if-missing" if "@" in spec.image else "always"


def registry_host(repository: str) -> str:
    """The registry of a repository: 'reg:5000/web' -> 'reg:5000'; 'web' -> 'docker.io'."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def registry_auth(repository: str, docker_auth_config: str | None) -> dict[str, str] | None:
    """Credentials for `repository` from DOCKER_AUTH_CONFIG (a config.json), if it has them."""
    if not docker_auth_config:
        return None
    try:
        auths = json.loads(docker_auth_config).get("auths") or {}
    except (ValueError, AttributeError) as e:
        raise DriverError(f"DOCKER_AUTH_CONFIG is not a docker config.json: {e}") from e
    host = registry_host(repository)
    for key, entry in auths.items():
        if _auth_key_host(key) == host and isinstance(entry, dict):
            return _credentials(entry, key)
    return None


def _auth_key_host(key: str) -> str:
    """'https://index.docker.io/v1/' -> 'docker.io'; 'https://reg:5000' -> 'reg:5000'."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host


def _credentials(entry: Mapping[str, Any], key: str) -> dict[str, str]:
    """username/password of one config.json `auths` entry (the `auth` field is base64)."""
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise DriverError(f"DOCKER_AUTH_CONFIG: invalid auth for {key}") from e
        return {"username": user, "password": password}
    if entry.get("identitytoken"):
        return {"identitytoken": str(entry["identitytoken"])}
    return {"username": str(entry.get("username", "")), "password": str(entry.get("password", ""))}
