"""Bind-mount sources resolved on this machine: a symlink under an allowed path stays inside it."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.validation import host_path_refusal
from bojdeploy.core.yamlsrc import format_path
from bojdeploy.errors import Problem


def docker_host_for(config: RepoConfig, environment: str, environ: Mapping[str, str]) -> str | None:
    """The Docker endpoint of `environment`: DOCKER_HOST wins over targets.<env>.docker_host."""
    target = config.targets.get(environment)
    return environ.get("DOCKER_HOST") or (target.docker_host if target else None)


def engine_is_local(docker_host: str | None) -> bool:
    """Whether the engine sees this machine's filesystem (unset or a unix:// socket)."""
    return not docker_host or docker_host.startswith("unix://")


def resolved_path_problems(
    manifests: Sequence[LoadedManifest], allowed: Sequence[str], docker_host: str | None
) -> list[Problem]:
    """Bind sources that pass the lexical policy check but whose symlinks lead elsewhere."""
    if not engine_is_local(docker_host):
        return []  # a remote engine's filesystem cannot be seen from here: lexical check only
    problems = []
    for m in manifests:
        for i, volume in enumerate(getattr(m.manifest.spec, "volumes", []) or []):
            message = _resolved_refusal(volume.split(":")[0], allowed)
            if message:
                path = ("spec", "volumes", i)
                problems.append(
                    Problem(m.file, m.line_of(*path), format_path(path), f"policy: {message}")
                )
    return problems


def _resolved_refusal(source: str, allowed: Sequence[str]) -> str | None:
    if not source.startswith("/") or host_path_refusal(source, allowed) is not None:
        return None  # a named volume, or already refused as written
    real = os.path.realpath(source)  # follows every symlink that exists; loops stay as they are
    if real == posixpath.normpath(source):
        return None
    # Allowed paths are resolved too: allowing /var/run/docker.sock allows /run/docker.sock.
    resolved = [*allowed, *(os.path.realpath(a) for a in allowed if a.startswith("/"))]
    refusal = host_path_refusal(real, resolved)
    return f"{source} is a symlink to {real}: {refusal}" if refusal else None
