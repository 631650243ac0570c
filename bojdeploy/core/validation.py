"""Checks across manifests: unique names, dependencies, cycles and the repository policy."""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bojdeploy.core.config import Policy, RepoConfig
from bojdeploy.core.files import Reader
from bojdeploy.core.fleet import check_hosts
from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.loader import LoadCache, load_file
from bojdeploy.core.sandbox import Budget
from bojdeploy.core.template import RenderContext
from bojdeploy.core.yamlsrc import format_path
from bojdeploy.errors import PlanError, Problem

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
MAX_FILES = 5000  # manifest files in one environment
T = TypeVar("T")


@dataclass
class LoadResult:
    """The manifests of one environment and every problem found while loading them."""

    environment: str
    manifests: list[LoadedManifest] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that stop a deployment."""
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        """Problems reported but not fatal (e.g. a secret missing for a plan)."""
        return [p for p in self.problems if p.warning]


def load_manifests(
    reader: Reader,
    files: Sequence[str],
    ctx: RenderContext,
    config: RepoConfig,
    *,
    require_secrets: bool = False,
    budget: Budget | None = None,
    cache: LoadCache | None = None,
) -> LoadResult:
    """Load, validate and cross-check the manifest files for one environment; `budget` bounds
    the work of every file, `cache` shares what every environment needs (share one of either
    across environments to bound a whole run; a cache brings its budget)."""
    result = LoadResult(ctx.environment)
    # shared: many files must not multiply what one file may do
    cache = cache or LoadCache(reader, budget)
    budget = cache.budget
    for n, rel in enumerate(files):
        why = budget.exhausted or (
            f"more than {MAX_FILES} manifest files" if n >= MAX_FILES else ""
        )
        if why:
            message = f"not loaded: {why} ({len(files) - n} files left unchecked)"
            result.problems.append(Problem(rel, 1, "", message))
            break
        loaded, problems = load_file(reader, rel, ctx, require_secrets=require_secrets, cache=cache)
        result.manifests += loaded
        result.problems += problems
    result.problems += check_unique(result.manifests)
    result.problems += check_dependencies(result.manifests)
    result.problems += check_policy(result.manifests, config.policy)
    result.problems += check_hosts(result.manifests, config.hosts_for(ctx.environment))
    return result


def check_unique(manifests: Sequence[LoadedManifest]) -> list[Problem]:
    """Names are unique per kind and environment, and so are container names on the host."""
    problems = []
    seen: dict[tuple[str, str], LoadedManifest] = {}
    for m in manifests:
        for key in {(m.kind, m.name), (f"{m.kind}:resource", m.resource_name)}:
            first = seen.setdefault(key, m)
            if first is not m:
                what = "name" if ":" not in key[0] else "resource name"
                problems.append(
                    Problem(
                        m.file,
                        m.line_of("metadata", "name"),
                        "metadata.name",
                        f"duplicate {m.manifest.kind} {what} {key[1]!r} in environment "
                        f"{m.environment} (first defined at {first.file}:{first.line})",
                    )
                )
                break
    return problems


def check_dependencies(manifests: Sequence[LoadedManifest]) -> list[Problem]:
    """depends_on names exist in the same environment and form no cycle."""
    names = {m.name for m in manifests}
    problems = []
    for m in manifests:
        for i, dep in enumerate(m.manifest.metadata.depends_on):
            if dep in names:
                continue
            close = difflib.get_close_matches(dep, sorted(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                Problem(
                    m.file,
                    m.line_of("metadata", "depends_on", i),
                    f"metadata.depends_on[{i}]",
                    f"unknown manifest {dep!r} in environment {m.environment}{hint}",
                )
            )
    return problems + _cycles(manifests)


def _cycles(manifests: Sequence[LoadedManifest]) -> list[Problem]:
    by_name = {m.name: m for m in manifests}
    state: dict[str, int] = {}
    problems: list[Problem] = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for dep in by_name[name].manifest.metadata.depends_on:
            if dep not in by_name:
                continue
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                m = by_name[dep]
                problems.append(
                    Problem(
                        m.file,
                        m.line_of("metadata", "depends_on"),
                        "metadata.depends_on",
                        f"dependency cycle: {' -> '.join(cycle)}",
                    )
                )
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[name] = 2

    for name in by_name:
        if name not in state:
            visit(name, [name])
    return problems


def levels(
    items: Sequence[T], name: Callable[[T], str], needs: Callable[[T], Iterable[str]]
) -> list[list[T]]:
    """Groups to apply in order: each item comes after the items it `needs` (named `name`).

    Needs outside `items` are ignored (they are not part of this run). Items keep their order
    within a group. The one algorithm for manifests and for plan steps; a cycle is a PlanError
    (validation reports cycles first, so a run never meets one).
    """
    names = {name(item) for item in items}
    done: set[str] = set()
    out: list[list[T]] = []
    remaining = list(items)
    while remaining:
        ready = [i for i in remaining if all(d in done or d not in names for d in needs(i))]
        if not ready:
            raise PlanError("dependency cycle among: " + ", ".join(name(i) for i in remaining))
        out.append(ready)
        done.update(name(i) for i in ready)
        chosen = {id(i) for i in ready}
        remaining = [i for i in remaining if id(i) not in chosen]
    return out


def dependency_levels(manifests: Sequence[LoadedManifest]) -> list[list[LoadedManifest]]:
    """Manifests grouped by `metadata.depends_on`: each group only depends on earlier ones."""
    return levels(manifests, lambda m: m.name, lambda m: m.manifest.metadata.depends_on)


def check_policy(manifests: Sequence[LoadedManifest], policy: Policy) -> list[Problem]:
    """What the repository policy refuses: privileged, host network, host paths, docker socket."""
    problems = []
    for m in manifests:
        spec = m.manifest.spec
        if getattr(spec, "privileged", False) and not policy.allow_privileged:
            problems.append(
                _policy(
                    m,
                    ("spec", "privileged"),
                    "privileged containers are not allowed (policy.allow_privileged)",
                )
            )
        if not policy.allow_host_network:
            problems += _network_refusals(m)
        for i, vol in enumerate(getattr(spec, "volumes", []) or []):
            message = host_path_refusal(vol.split(":")[0], policy.allowed_host_paths)
            if message:
                problems.append(_policy(m, ("spec", "volumes", i), message))
    return problems


def _network_refusals(m: LoadedManifest) -> list[Problem]:
    """Host networking, or another container's network namespace, through any key."""
    spec = m.manifest.spec
    problems = []
    mode = getattr(spec, "network_mode", None)
    if mode is not None:
        message = network_refusal(mode)
        if message:
            problems.append(_policy(m, ("spec", "network_mode"), message))
    if m.kind in ("container", "service"):
        for i, name in enumerate(getattr(spec, "networks", []) or []):
            message = network_refusal(name)
            if message:
                problems.append(_policy(m, ("spec", "networks", i), message))
    return problems


def network_refusal(mode: str) -> str | None:
    """Why a network mode or network name needs policy.allow_host_network, or None."""
    canonical = mode.strip().lower()
    if canonical == "host":
        return "host networking is not allowed (policy.allow_host_network)"
    if ":" in canonical:
        return (
            f"network {mode!r} shares another container's network namespace; "
            "not allowed (policy.allow_host_network)"
        )
    return None


def host_path_refusal(source: str, allowed: Sequence[str]) -> str | None:
    """Why a bind-mount source is refused by the policy, or None when it is allowed."""
    if not source.startswith("/"):
        return None
    path = posixpath.normpath(source)
    if path in DOCKER_SOCKETS:
        if any(posixpath.normpath(a) == path for a in allowed):
            return None
        return (
            f"mounting the Docker socket {path} is not allowed "
            "unless policy.allowed_host_paths lists it"
        )
    for prefix in allowed:
        base = posixpath.normpath(prefix)
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return None
    where = ", ".join(allowed) if allowed else "none are allowed"
    return f"host path {source} is not allowed by policy.allowed_host_paths ({where})"


def _policy(m: LoadedManifest, path: tuple[str | int, ...], message: str) -> Problem:
    return Problem(m.file, m.line_of(*path), format_path(path), f"policy: {message}")
