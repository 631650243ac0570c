"""Fleets: the named hosts of an environment, where a manifest goes, how it is rolled out."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field

from bojdeploy.core.fields import NOT_BOOL, Strict
from bojdeploy.errors import Problem

if TYPE_CHECKING:
    from bojdeploy.core.loaded import LoadedManifest

# The environment's default target (targets.<env>.docker_host / xen_url). Records of resources
# that name no host keep "" as their host, so every record made before fleets stays valid.
DEFAULT_HOST = "default"
# Host names go into labels, records, lock keys and BOJDEPLOY_XEN_PASSWORD_<HOST>.
HOST_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_PARALLEL = 100


def check_host_name(name: str) -> str:
    """A host name: a DNS label (lowercase letters, digits, '-')."""
    if not HOST_NAME.match(name):
        raise ValueError(
            f"invalid host name {name!r}: lowercase letters, digits and '-', starting and "
            "ending with a letter or digit, at most 63 characters"
        )
    return name


HostName = Annotated[str, AfterValidator(check_host_name)]


def _unique(names: list[str]) -> list[str]:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"host {duplicates[0]!r} is named twice")
    if not names:
        raise ValueError("name at least one host (or leave metadata.hosts out)")
    return names


HostList = Annotated[list[HostName], AfterValidator(_unique)]


class Rollout(Strict):
    """spec.rollout of a Container on several hosts."""

    parallel: Annotated[int, Field(ge=1, le=MAX_PARALLEL), NOT_BOOL] = 1
    on_failure: Literal["stop", "rollback"] = "stop"


def record_host(host: str) -> str:
    """The host as records, labels and locks keep it: '' for the default target."""
    return "" if host == DEFAULT_HOST else host


def shown_host(host: str | None) -> str:
    """The host as users read it: 'default' for the default target."""
    return host or DEFAULT_HOST


def xen_password_variable(host: str) -> str:
    """BOJDEPLOY_XEN_PASSWORD_<HOST>: the host's name uppercased, '-' as '_'."""
    return "BOJDEPLOY_XEN_PASSWORD_" + host.upper().replace("-", "_")


def hosts_of(m: LoadedManifest) -> list[str]:
    """The hosts a manifest goes to, in its order (the default target when it names none)."""
    return list(m.manifest.metadata.hosts or [DEFAULT_HOST])


def check_hosts(manifests: Sequence[LoadedManifest], defined: Collection[str]) -> list[Problem]:
    """Every host a manifest names is defined for its environment; Services and VMs name one."""
    problems = []
    for m in manifests:
        hosts = m.manifest.metadata.hosts
        if not hosts:
            continue
        if m.kind != "container" and len(hosts) > 1:
            what = "a Swarm manager" if m.kind == "service" else "a Xen pool"
            problems.append(
                Problem(
                    m.file,
                    m.line_of("metadata", "hosts"),
                    "metadata.hosts",
                    f"a {m.manifest.kind} goes to one host ({what}); {len(hosts)} are named",
                )
            )
        known = [DEFAULT_HOST, *sorted(defined)]
        for i, host in enumerate(hosts):
            if host != DEFAULT_HOST and host not in defined:
                problems.append(
                    Problem(
                        m.file,
                        m.line_of("metadata", "hosts", i),
                        f"metadata.hosts[{i}]",
                        f"unknown host {host!r} for environment {m.environment} "
                        f"(known: {', '.join(known)}; hosts are defined in bojdeploy.yaml "
                        f"under targets.{m.environment}.hosts)",
                    )
                )
    return problems
