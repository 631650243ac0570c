"""Manifest models (apiVersion bojdeploy/v1): Container, Service and VM."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from bojdeploy.core.fields import (
    CONTAINER_NAME,
    DNS_LABEL,
    FINITE,
    MAX_COUNT,
    MAX_CPUS,
    NOT_BOOL,
    PORT_RE,
    RESTART_RE,
    Argv,
    Healthcheck,
    NetworkName,
    NonEmptyStr,
    PortStr,
    Strict,
    StrMap,
    VolumeStr,
    canonical_network_mode,
    check_image,
    check_port_number,
)
from bojdeploy.core.fleet import HostList, Rollout
from bojdeploy.core.units import Duration, Size


class Metadata(Strict):
    """metadata: name, environments, labels, depends_on, hosts."""

    name: str
    environments: list[str] | None = None
    labels: StrMap = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    hosts: HostList | None = None

    @field_validator("name")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not DNS_LABEL.match(v):
            raise ValueError(
                f"invalid name {v!r}: must be a DNS label (lowercase letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters)"
            )
        return v


class ContainerResources(Strict):
    """Container limits."""

    memory: Size | None = None
    cpus: Annotated[float, Field(gt=0, le=MAX_CPUS), FINITE] | None = None


class ContainerSpec(Strict):
    """spec of a Container."""

    image: str
    container_name: str | None = None
    command: Argv | None = None
    entrypoint: Argv | None = None
    env: StrMap = Field(default_factory=dict)
    ports: list[PortStr] = Field(default_factory=list)
    volumes: list[VolumeStr] = Field(default_factory=list)
    networks: list[NetworkName] = Field(default_factory=list)
    network_mode: Annotated[str, AfterValidator(canonical_network_mode)] | None = None
    restart: str = "unless-stopped"
    labels: StrMap = Field(default_factory=dict)
    user: str | None = None
    privileged: bool = False
    resources: ContainerResources | None = None
    healthcheck: Healthcheck | None = None
    pull: Literal["auto", "always", "never"] = "auto"
    stop_timeout: Duration = 10.0
    timeout: Duration = 120.0
    rollout: Rollout | None = None  # how several hosts are rolled out; not part of the config hash

    @field_validator("image")
    @classmethod
    def _image_ref(cls, v: str) -> str:
        return check_image(v)

    @model_validator(mode="after")
    def _network_choice(self) -> ContainerSpec:
        if self.network_mode is not None and self.networks:
            raise ValueError("set network_mode or networks, not both")
        special = [n for n in self.networks if n.lower() in ("host", "none")]
        if special and len(self.networks) > 1:
            raise ValueError(f"network {special[0]!r} cannot be combined with other networks")
        return self

    @field_validator("container_name")
    @classmethod
    def _container_name(cls, v: str | None) -> str | None:
        if v is not None and not CONTAINER_NAME.match(v):
            raise ValueError(f"invalid container name {v!r}: use letters, digits, '_', '.', '-'")
        return v

    @field_validator("restart")
    @classmethod
    def _restart(cls, v: str) -> str:
        if not RESTART_RE.match(v):
            raise ValueError(
                f"invalid restart policy {v!r}: no, always, unless-stopped or on-failure[:N]"
            )
        return v


class ServicePort(Strict):
    """A published Swarm port."""

    published: Annotated[int, Field(ge=1, le=65535), NOT_BOOL] | None = None
    target: Annotated[int, Field(ge=1, le=65535), NOT_BOOL]
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    mode: Literal["ingress", "host"] = "ingress"


def _service_port(value: Any) -> Any:
    """'8080:80/udp' -> {published: 8080, target: 80, protocol: udp}."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"target": value}
    if not isinstance(value, str):
        return value
    m = PORT_RE.match(value)
    if not m or m.group("ip") or "-" in value:
        raise ValueError(f"invalid port {value!r}: expected [published:]target[/tcp|udp]")
    check_port_number(f"{m.group('host') or ''}:{m.group('container')}")
    out: dict[str, Any] = {"target": int(m.group("container"))}
    if m.group("host"):
        out["published"] = int(m.group("host"))
    if m.group("proto"):
        out["protocol"] = m.group("proto")
    return out


class Spread(Strict):
    """A placement preference."""

    spread: str


class Placement(Strict):
    """Swarm placement."""

    constraints: list[str] = Field(default_factory=list)
    preferences: list[Spread] = Field(default_factory=list)
    max_replicas: Annotated[int, Field(ge=0, le=MAX_COUNT), NOT_BOOL] | None = None


class UpdatePolicy(Strict):
    """Swarm update_config (and rollback_config)."""

    parallelism: Annotated[int, Field(ge=0, le=MAX_COUNT), NOT_BOOL] = 1
    delay: Duration = 0.0
    failure_action: Literal["continue", "pause", "rollback"] = "rollback"
    monitor: Duration = 5.0
    order: Literal["start-first", "stop-first"] = "stop-first"
    max_failure_ratio: Annotated[float, Field(ge=0, le=1), FINITE] = 0.0


class RollbackPolicy(Strict):
    """Swarm rollback_config."""

    parallelism: Annotated[int, Field(ge=0, le=MAX_COUNT), NOT_BOOL] = 1
    delay: Duration = 0.0
    failure_action: Literal["continue", "pause"] = "pause"
    monitor: Duration = 5.0
    order: Literal["start-first", "stop-first"] = "stop-first"
    max_failure_ratio: Annotated[float, Field(ge=0, le=1), FINITE] = 0.0


class RestartPolicy(Strict):
    """Swarm restart_policy."""

    condition: Literal["none", "on-failure", "any"] = "any"
    max_attempts: Annotated[int, Field(ge=0, le=1_000_000), NOT_BOOL] | None = None
    delay: Duration = 5.0
    window: Duration | None = None


class Limits(Strict):
    """CPU and memory amounts."""

    cpus: Annotated[float, Field(gt=0, le=MAX_CPUS), FINITE] | None = None
    memory: Size | None = None


class ServiceResources(Strict):
    """Swarm resources."""

    limits: Limits | None = None
    reservations: Limits | None = None


class ConfigFile(Strict):
    """A repository file that becomes a Swarm config."""

    source: NonEmptyStr
    target: NonEmptyStr
    mode: Annotated[int, Field(ge=0, le=0o7777), NOT_BOOL] | None = None


class SecretRef(Strict):
    """A Swarm secret whose value comes from secret()."""

    name: Annotated[str, AfterValidator(lambda v: _dns(v, "secret name"))]
    value: str
    target: str | None = None


def _dns(v: str, what: str) -> str:
    if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$", v):
        raise ValueError(f"invalid {what} {v!r}")
    return v


class ServiceSpec(Strict):
    """spec of a Service (Docker Swarm)."""

    image: Annotated[str, AfterValidator(check_image)]
    replicas: Annotated[int, Field(ge=0, le=MAX_COUNT), NOT_BOOL] | None = None
    mode: Literal["replicated", "global"] = "replicated"
    command: Argv | None = None
    env: StrMap = Field(default_factory=dict)
    ports: list[
        Annotated[
            ServicePort,
            BeforeValidator(_service_port, json_schema_input_type=ServicePort | str | int),
        ]
    ] = Field(default_factory=list)
    networks: list[NetworkName] = Field(default_factory=list)
    placement: Placement | None = None
    update: UpdatePolicy | None = None
    rollback: RollbackPolicy | None = None
    restart: RestartPolicy | None = None
    resources: ServiceResources | None = None
    healthcheck: Healthcheck | None = None
    user: str | None = None
    stop_grace_period: Duration | None = None
    labels: StrMap = Field(default_factory=dict)
    container_labels: StrMap = Field(default_factory=dict)
    configs: list[ConfigFile] = Field(default_factory=list)
    secrets: list[SecretRef] = Field(default_factory=list)
    timeout: Duration = 300.0

    @model_validator(mode="after")
    def _mode(self) -> ServiceSpec:
        if self.mode == "global" and self.replicas is not None:
            raise ValueError("replicas cannot be set with mode: global")
        return self


class VMNetwork(Strict):
    """A VIF: the network (name_label or uuid) and an optional MAC."""

    network: NonEmptyStr
    mac: str | None = Field(None, pattern=r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class CloudInit(Strict):
    """cloud-init settings written to xenstore vm-data/cloud-init/."""

    datasource: str | None = None
    role: str | None = None
    user_data: str | None = None
    user_data_file: NonEmptyStr | None = None
    params: StrMap = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_user_data(self) -> CloudInit:
        if self.user_data is not None and self.user_data_file is not None:
            raise ValueError("set user_data or user_data_file, not both")
        return self


class VMWait(Strict):
    """How long to wait for the VM to run and report an IP."""

    start: Duration = 120.0
    ip: Duration = 300.0


def _xenstore_keys(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not key.startswith("vm-data/") or key == "vm-data/":
            raise ValueError(f"xenstore key {key!r} must start with vm-data/")
    return value


CLOUD_INIT_KEYS = ("datasource", "role", "environment", "user-data")


class VMSpec(Strict):
    """spec of a VM (XenServer / XCP-ng)."""

    template: NonEmptyStr
    vcpus: Annotated[int, Field(ge=1, le=64), NOT_BOOL] = 1
    memory: Size
    networks: list[VMNetwork] = Field(default_factory=list)
    cloud_init: CloudInit | None = None
    xenstore: Annotated[StrMap, AfterValidator(_xenstore_keys)] = Field(default_factory=dict)
    power: Literal["running", "halted"] = "running"
    wait: VMWait = Field(default_factory=VMWait)
    on_change: Literal["reboot", "recreate", "refuse"] = "reboot"

    @model_validator(mode="after")
    def _no_key_collisions(self) -> VMSpec:
        params = self.cloud_init.params if self.cloud_init else {}
        taken = set(CLOUD_INIT_KEYS) & set(params)
        if taken:
            raise ValueError(
                f"cloud_init.params cannot set {', '.join(sorted(taken))}: bojdeploy writes "
                "vm-data/cloud-init/{datasource,role,environment,user-data} itself"
            )
        generated = {f"vm-data/cloud-init/{k}" for k in (*CLOUD_INIT_KEYS, *params)}
        clash = sorted(generated & set(self.xenstore))
        if clash:
            raise ValueError(f"xenstore keys {', '.join(clash)} are written from cloud_init")
        return self


class _Manifest(Strict):
    api_version: Literal["bojdeploy/v1"] = Field(alias="apiVersion")
    metadata: Metadata

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.metadata.name


class ContainerManifest(_Manifest):
    """kind: Container."""

    kind: Literal["Container"]
    spec: ContainerSpec

    @property
    def resource_name(self) -> str:
        """The container's name on the Docker host."""
        return self.spec.container_name or self.metadata.name


class ServiceManifest(_Manifest):
    """kind: Service."""

    kind: Literal["Service"]
    spec: ServiceSpec

    @property
    def resource_name(self) -> str:
        """The Swarm service name."""
        return self.metadata.name


class VMManifest(_Manifest):
    """kind: VM."""

    kind: Literal["VM"]
    spec: VMSpec

    @property
    def resource_name(self) -> str:
        """The VM's name_label."""
        return self.metadata.name


Manifest = ContainerManifest | ServiceManifest | VMManifest
MODELS: dict[str, type[_Manifest]] = {
    "Container": ContainerManifest,
    "Service": ServiceManifest,
    "VM": VMManifest,
}
