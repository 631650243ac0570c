"""Protected environments: who may change them (the branch) and what needs --allow-delete."""

from __future__ import annotations

import fnmatch

from bojdeploy.core.config import CONFIG_FILE, RepoConfig
from bojdeploy.core.plan import Action, Plan, Step
from bojdeploy.errors import UsageError


class ProtectedError(UsageError):
    """A change to a protected environment that its protection does not allow (exit 2)."""


def is_protected(config: RepoConfig, environment: str) -> bool:
    """Whether bojdeploy.yaml marks `environment` as protected."""
    env = config.environments.get(environment)
    return bool(env and env.protected)


def branch_refusal(config: RepoConfig, environment: str, branch: str, what: str) -> str | None:
    """Why `what` (apply, rollback) to protected `environment` from `branch` is refused, if so."""
    if not is_protected(config, environment):
        return None
    patterns = config.environments[environment].branches
    if branch and any(fnmatch.fnmatchcase(branch, p) for p in patterns):
        return None
    allowed = ", ".join(patterns) or "none"
    source = f"branch {branch!r}" if branch else "a checkout with no branch (detached HEAD)"
    return (
        f"environment {environment} is protected: {what} is refused from {source}; "
        f"only from its branches in {CONFIG_FILE} ({allowed}); nothing was changed"
    )


def check_branch(config: RepoConfig, environment: str, branch: str, what: str) -> None:
    """Raise ProtectedError when `what` to `environment` is not allowed from `branch`."""
    refusal = branch_refusal(config, environment, branch, what)
    if refusal:
        raise ProtectedError(refusal)


def destroys(step: Step) -> bool:
    """Whether a step deletes something: a delete, or a VM recreated (its disks are destroyed)."""
    return step.action is Action.DELETE or (step.kind == "vm" and step.action is Action.REPLACE)


def delete_refusal(
    config: RepoConfig, environment: str, plan: Plan, allow_delete: bool
) -> str | None:
    """Why the plan's deletes in a protected environment are refused without --allow-delete."""
    if allow_delete or not is_protected(config, environment):
        return None
    names = [f"{s.kind}/{s.name}" for s in plan.steps if destroys(s)]
    if not names:
        return None
    return (
        f"environment {environment} is protected: deleting {', '.join(names)} needs "
        '--allow-delete (action input allow-delete: "true"); nothing was changed'
    )


def check_deletes(config: RepoConfig, environment: str, plan: Plan, allow_delete: bool) -> None:
    """Raise ProtectedError when the plan deletes in a protected environment without consent."""
    refusal = delete_refusal(config, environment, plan, allow_delete)
    if refusal:
        raise ProtectedError(refusal)


def plan_notes(config: RepoConfig, environment: str, branch: str, plan: Plan) -> list[str]:
    """What a plan of a protected environment tells: whether and why an apply would be refused."""
    notes = []
    if branch_refusal(config, environment, branch, "apply"):
        source = f"branch {branch!r}" if branch else "a checkout with no branch"
        allowed = ", ".join(config.environments[environment].branches) or "none"
        notes.append(
            f"environment {environment} is protected: an apply from {source} would be refused "
            f"(its branches: {allowed})"
        )
    if delete_refusal(config, environment, plan, allow_delete=False):
        names = ", ".join(f"{s.kind}/{s.name}" for s in plan.steps if destroys(s))
        notes.append(
            f"environment {environment} is protected: an apply would delete {names} "
            "only with --allow-delete"
        )
    return notes
