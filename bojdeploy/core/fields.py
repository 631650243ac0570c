"""Field types and checks shared by the manifest models: names, images, ports, volumes."""

from __future__ import annotations

import math
import re
import shlex
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bojdeploy.core.units import Duration

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-]{1,2}[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]{1,2}[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
PORT_RE = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?:(?P<host>\d+(?:-\d+)?)?:)?(?P<container>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)
RESTART_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:\d{1,6})?)$")
NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
BUILTIN_NETWORK_MODES = ("host", "bridge", "none", "default")
MAX_COUNT = 10_000  # replicas, parallelism, max_replicas
MAX_CPUS = 1024.0
KINDS = {"Container": "container", "Service": "service", "VM": "vm"}


class Strict(BaseModel):
    """Base of every manifest model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


def _no_bool(value: Any) -> Any:
    """YAML `true` is not the number 1."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    return value


def _number(value: Any) -> Any:
    """Neither a boolean nor NaN or infinity (as a float or spelled "nan", "inf")."""
    value = _no_bool(value)
    try:
        number = float(value) if isinstance(value, str | float) else 0.0
    except ValueError:
        return value  # not a number at all: pydantic says so
    if not math.isfinite(number):
        raise ValueError(f"{value} is not accepted: use a finite number")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# Bounds go before these validators inside Annotated[...] so that the JSON Schema keeps them
# as minimum/maximum: Annotated[int, Field(ge=0, le=10), NOT_BOOL].
NOT_BOOL = BeforeValidator(_no_bool)
FINITE = BeforeValidator(_number)
NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]


def check_network_name(value: str) -> str:
    """A Docker network name: letters, digits, '_', '.', '-' (no spaces, no 'container:')."""
    if not NETWORK_NAME.match(value):
        raise ValueError(
            f"invalid network name {value!r}: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return value


NetworkName = Annotated[str, AfterValidator(check_network_name)]


def canonical_network_mode(value: str) -> str:
    """host/bridge/none/default in any case -> lowercase; container:NAME; else a network name."""
    if value.lower() in BUILTIN_NETWORK_MODES:
        return value.lower()
    prefix, sep, rest = value.partition(":")
    if sep and prefix.lower() == "container" and NETWORK_NAME.match(rest):
        return f"container:{rest}"
    if sep or not NETWORK_NAME.match(value):
        raise ValueError(
            f"invalid network_mode {value!r}: use bridge, none, host, container:NAME "
            "or a network name"
        )
    return value


def _argv(value: Any) -> Any:
    """A command given as a string is split like a shell would."""
    if isinstance(value, str):
        return shlex.split(value)
    return value


def _stringify_map(value: Any) -> Any:
    """Environment and label values are strings; YAML numbers and booleans are converted."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, int | float):
                v = str(v)
            elif v is None:
                v = ""
            out[str(k)] = v
        return out
    return value


Argv = Annotated[list[str], BeforeValidator(_argv, json_schema_input_type=list[str] | str)]
StrMap = Annotated[
    dict[str, str],
    BeforeValidator(_stringify_map, json_schema_input_type=dict[str, str | int | float | bool]),
]


def check_port_number(text: str) -> None:
    """Every number in a port or port range is within 1-65535."""
    for part in re.split(r"[-:]", text):
        if part.isdigit() and not 1 <= int(part) <= 65535:
            raise ValueError(f"port {part} out of range 1-65535")


def check_port(port: str) -> str:
    """A docker port mapping: [ip:][host:]container[/proto], numbers in range."""
    m = PORT_RE.match(port)
    if not m:
        raise ValueError(f"invalid port {port!r}: expected [ip:][host:]container[/tcp|udp]")
    check_port_number(f"{m.group('host') or ''}:{m.group('container')}")
    host, container = m.group("host"), m.group("container")
    if host and _range_size(host) != _range_size(container):
        raise ValueError(f"invalid port {port!r}: host and container ranges differ in length")
    return port


def _range_size(text: str) -> int:
    low, _, high = text.partition("-")
    return int(high or low) - int(low) + 1


def check_volume(vol: str) -> str:
    """A docker volume: NAME:/path or /host/path:/path, optionally :ro or :rw."""
    parts = vol.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        raise ValueError(f"invalid volume {vol!r}: expected NAME:/path or /host/path:/path[:ro|rw]")
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        raise ValueError(f"invalid volume mode {parts[2]!r} in {vol!r}: use ro or rw")
    if any(c.isspace() for c in vol):
        raise ValueError(f"invalid volume {vol!r}: no spaces around or inside the paths")
    source = parts[0]
    if not source.startswith("/") and not VOLUME_NAME.match(source):
        raise ValueError(
            f"invalid volume source {source!r} in {vol!r}: a bind mount needs an absolute path "
            "(relative paths and '~' are not expanded); a named volume is letters, digits, "
            "'_', '.', '-'"
        )
    return vol


def _port_number(value: Any) -> Any:
    """`ports: [80]` means "80": a bare number is a container port."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


PortStr = Annotated[
    str,
    BeforeValidator(_port_number, json_schema_input_type=str | int),
    AfterValidator(check_port),
]
VolumeStr = Annotated[str, AfterValidator(check_volume)]


def check_image(v: str) -> str:
    """An image reference: [registry/]name[:tag][@sha256:digest]."""
    if not IMAGE_REF.match(v) or "__BOJSECRET_" in v:
        raise ValueError(f"invalid image reference {v!r}: expected e.g. registry:5000/name:tag")
    return v


def _healthcheck_test(value: Any) -> Any:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    return value


class Healthcheck(Strict):
    """A Docker healthcheck."""

    test: Annotated[
        list[str], BeforeValidator(_healthcheck_test, json_schema_input_type=list[str] | str)
    ]
    interval: Duration = 30.0
    timeout: Duration = 30.0
    retries: Annotated[int, Field(ge=1, le=1000), NOT_BOOL] = 3
    start_period: Duration = 0.0

    @field_validator("test")
    @classmethod
    def _test_form(cls, v: list[str]) -> list[str]:
        if not v or v[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise ValueError('must start with "CMD", "CMD-SHELL" or "NONE" (or be a shell string)')
        return v
