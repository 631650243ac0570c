"""Plans: what must change on the targets, as a value made from desired and observed state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bojdeploy.core.actions import Action
from bojdeploy.core.diff import FieldChange, diff_specs, field_name
from bojdeploy.core.kinds import Refusal, rules_for
from bojdeploy.errors import PlanError

REASON_CONFIG_CHANGED = "config changed"
REASON_UNCHANGED = "config hash matches"
REASON_SECRET_CHANGED = "a secret or an included file changed"
REASON_DELETED = "manifest deleted"


@dataclass(frozen=True)
class Desired:
    """A rendered manifest: what one resource should look like."""

    kind: str
    name: str
    environment: str
    resource_name: str
    config_hash: str
    spec: Mapping[str, Any]
    manifest: str
    reason: str = ""
    depends_on: tuple[str, ...] = ()
    missing_secrets: tuple[str, ...] = ()  # not available to this run (a fork's pull request)
    labels: Mapping[str, str] = field(default_factory=dict)  # metadata.labels


@dataclass(frozen=True)
class Observed:
    """One resource as found on a target (or as recorded in the state store when offline)."""

    kind: str
    resource_name: str
    managed: bool
    name: str | None = None
    environment: str | None = None
    config_hash: str | None = None
    spec: Mapping[str, Any] | None = None
    state: str | None = None
    id: str | None = None
    manifest: str | None = None
    source: str = "target"
    image_id: str | None = None  # the image that runs: container image id, service pinned image
    labels: Mapping[str, str] | None = None  # recorded metadata.labels, with the recorded spec
    deployment_id: int | None = None  # the deployment that made it (io.bojdeploy.deployment-id)
    repository: str | None = None  # the repository that owns it (io.bojdeploy.repository)
    # Why the deployment that made it is not confirmed (interrupted, health pending, Swarm still
    # updating, a swap or clone left half-done); None when confirmed or unknown. The config hash
    # alone never means "done": an unfinished resource is finished or rolled back by the next run.
    unfinished: str | None = None


@dataclass(frozen=True)
class Step:
    """One action on one resource."""

    action: Action
    kind: str
    name: str
    environment: str
    desired: Desired | None
    observed: Observed | None
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""
    host: str = ""  # a named host of the environment (a fleet); "" for its default target

    @property
    def shown_name(self) -> str:
        """The name as plans show it: `web`, or `web @edge-1` on a named host."""
        return f"{self.name} @{self.host}" if self.host else self.name

    @property
    def resource_name(self) -> str:
        """The resource's name on the target."""
        if self.desired is not None:
            return self.desired.resource_name
        assert self.observed is not None
        return self.observed.resource_name

    @property
    def manifest(self) -> str | None:
        """The manifest that declares (or declared) the resource, when known."""
        if self.desired is not None:
            return self.desired.manifest
        return self.observed.manifest if self.observed else None


@dataclass(frozen=True)
class Plan:
    """The steps for one environment, in order, plus the orphans left alone."""

    environment: str
    steps: tuple[Step, ...]
    orphans: tuple[Observed, ...] = ()
    unpruned: str = ""  # why prune was asked for but the orphans were not turned into deletes

    def counts(self) -> dict[Action, int]:
        """How many steps of each action, every action included."""
        counted = Counter(step.action for step in self.steps)
        return {action: counted[action] for action in Action}

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would change anything."""
        return any(step.action is not Action.UNCHANGED for step in self.steps)


def make_plan(
    desired: Sequence[Desired],
    observed: Sequence[Observed],
    *,
    environment: str,
    prune: bool = False,
    full_scope: bool = True,
    deleted_names: Collection[tuple[str, str]] = (),
    offline: bool = False,
    repository: str | None = None,
    unprunable: str = "",
) -> Plan:
    """Compare desired with observed state; raise PlanError listing every conflict found.

    Orphans (and so deletes) are only the managed resources of this environment labelled with
    this run's `repository`: never another repository's, never an unlabelled one, none when the
    repository is unknown. `unprunable` (why this run must not delete) keeps them as orphans.
    """
    found: dict[tuple[str, str], list[Observed]] = {}
    for obs in observed:
        found.setdefault((obs.kind, obs.resource_name), []).append(obs)
    conflicts: list[str] = []
    steps: list[Step] = []
    claimed: dict[tuple[str, str], Desired] = {}
    for want in desired:
        key = (want.kind, want.resource_name)
        matches = found.get(key, [])
        conflict = _conflict(want, matches, claimed.get(key), environment, repository)
        claimed.setdefault(key, want)
        if conflict:
            conflicts.append(conflict)
        elif step := _step_for(want, matches, offline, conflicts):
            steps.append(step)
    if conflicts:
        raise PlanError("\n".join(conflicts))
    orphans = [
        obs
        for obs in sorted(observed, key=lambda o: (o.kind, _orphan_name(o), o.resource_name))
        if obs.managed
        and obs.environment == environment
        and same_repository(obs.repository, repository)
        and (obs.kind, obs.resource_name) not in claimed
        and (full_scope or (obs.kind, _orphan_name(obs)) in deleted_names)
    ]
    if not prune or unprunable:
        unpruned = unprunable if prune and orphans else ""
        return Plan(environment, tuple(steps), tuple(orphans), unpruned)
    deletes = [
        Step(Action.DELETE, o.kind, _orphan_name(o), environment, None, o, reason=REASON_DELETED)
        for o in orphans
    ]
    return Plan(environment, tuple(steps + deletes))


def same_repository(owner: str | None, repository: str | None) -> bool:
    """Whether a resource labelled `owner` is this run's (both known; Gitea ignores case)."""
    return bool(owner and repository and owner.casefold() == repository.casefold())


def _orphan_name(obs: Observed) -> str:
    return obs.name or obs.resource_name


def _what(want: Desired) -> str:
    return f'{want.manifest}: {want.kind} "{want.resource_name}"'


def _conflict(
    want: Desired,
    matches: list[Observed],
    other: Desired | None,
    environment: str,
    repository: str | None,
) -> str | None:
    """Why bojdeploy must not touch the resource `want` names, if it must not."""
    if other is not None:
        return f"{_what(want)} is also declared by {other.manifest}"
    if len(matches) > 1:
        return (
            f"{_what(want)}: {len(matches)} resources with this name exist on the target; "
            "refusing to guess which one to change"
        )
    return _ownership_conflict(want, matches[0], environment, repository) if matches else None


def _ownership_conflict(
    want: Desired, obs: Observed, environment: str, repository: str | None
) -> str | None:
    """Why the one resource of that name is not this run's to change, if it is not."""
    rules = rules_for(want.kind)
    hint = rules.rename_hint
    if not obs.managed:
        return (
            f"{_what(want)} exists on the target but is not managed by bojdeploy "
            f"(no {rules.ownership}); refusing to replace it"
        )
    if obs.environment != environment:
        return (
            f"{_what(want)} is owned by environment {obs.environment or '(none)'}; "
            f"refusing to replace it from {environment} (use {hint})"
        )
    # A resource without the label is adopted (nothing says it is another's); a label of
    # another repository is proof that it is not ours, even in the same environment.
    if obs.repository and repository and not same_repository(obs.repository, repository):
        return (
            f"{_what(want)} is owned by repository {obs.repository} (environment "
            f"{environment}); refusing to replace it from {repository} (use {hint})"
        )
    return None


def _step_for(
    want: Desired, matches: list[Observed], offline: bool, conflicts: list[str]
) -> Step | None:
    """The step for one desired resource, or None after recording a conflict."""
    if not matches:
        reason = "no record" if offline else "not found on the target"
        return Step(Action.CREATE, want.kind, want.name, want.environment, want, None, (), reason)
    obs = matches[0]
    if want.config_hash == obs.config_hash:
        return _same_config_step(want, obs)
    return _changed_step(want, obs, conflicts)


def _step(
    action: Action, want: Desired, obs: Observed, changes: Sequence[FieldChange], reason: str
) -> Step:
    return Step(action, want.kind, want.name, want.environment, want, obs, tuple(changes), reason)


def _same_config_step(want: Desired, obs: Observed) -> Step:
    """Equal hashes: unchanged, unless unfinished or not in the state the spec asks for."""
    if obs.unfinished:
        return _step(Action.UPDATE, want, obs, (), f"unfinished: {obs.unfinished}")
    if obs.state is not None:
        verdict = rules_for(want.kind).wrong_state(want.spec, obs.state)
        if verdict is not None:
            return _step(verdict.action, want, obs, verdict.changes, verdict.reason)
    return _step(Action.UNCHANGED, want, obs, (), REASON_UNCHANGED)


def _changed_step(want: Desired, obs: Observed, conflicts: list[str]) -> Step | None:
    """Different hashes: what the change needs is the kind's rule (core.kinds)."""
    changes = diff_specs(obs.spec, want.spec) if obs.spec is not None else []
    if obs.labels is not None:
        changes += diff_specs(obs.labels, want.labels, prefix="metadata.labels")
    reason = REASON_CONFIG_CHANGED
    if not changes and want.missing_secrets and obs.spec is not None:
        names = ", ".join(want.missing_secrets)
        why = f"secret {names} not available to this run: a change to it cannot be seen"
        return _step(Action.UNCHANGED, want, obs, [], why)
    if not changes:
        changes = [FieldChange("config_hash", obs.config_hash, want.config_hash)]
        reason = REASON_SECRET_CHANGED if obs.spec is not None else "config hash differs"
    fields = frozenset(field_name(change.path) for change in changes)
    verdict = rules_for(want.kind).changed(want.spec, obs.state, fields, reason)
    if isinstance(verdict, Refusal):
        conflicts.append(f"{_what(want)}: {verdict.why}")
        return None
    return _step(verdict.action, want, obs, changes, verdict.reason)


def force_redeploy(plan: Plan, reason: str = "redeploy requested") -> Plan:
    """Turn unchanged steps into redeploys, each as its kind redeploys (a container is replaced)."""
    steps = []
    for step in plan.steps:
        if step.action is Action.UNCHANGED:
            step = replace(step, action=rules_for(step.kind).redeploy, reason=reason)
        steps.append(step)
    return replace(plan, steps=tuple(steps))
