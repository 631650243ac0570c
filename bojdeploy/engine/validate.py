"""Validation of a whole repository: every manifest for every environment it applies to."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from bojdeploy.engine.workspace import Workspace
from bojdeploy.errors import Problem


@dataclass
class ValidationReport:
    """Problems found across environments, each reported once."""

    environments: list[str]
    manifests: dict[str, int] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a valid repository."""
        per_env = ", ".join(f"{env}: {n}" for env, n in self.manifests.items())
        n_files = len(self.files)
        return f"valid: {n_files} file{'s' if n_files != 1 else ''} ({per_env})"


def validate_workspace(ws: Workspace, environ: Mapping[str, str]) -> ValidationReport:
    """Render and validate for each environment; a problem seen only in some names them."""
    envs = list(ws.config.environments)
    report = ValidationReport(environments=envs)
    seen: dict[Problem, list[str]] = {}
    for env in envs:
        result = ws.load(env, environ)
        wanted = set(ws.explicit) if ws.explicit is not None else None
        manifests = [m for m in result.manifests if wanted is None or m.file in wanted]
        report.manifests[env] = len(manifests)
        report.files.update(m.file for m in manifests)
        for problem in result.problems:
            if wanted is None or problem.file in wanted or not problem.file:
                seen.setdefault(problem, []).append(env)
    for problem, where in seen.items():
        if len(where) < len(envs) and len(envs) > 1:
            problem = dataclasses.replace(
                problem, message=f"{problem.message} (environment {', '.join(where)})"
            )
        (report.warnings if problem.warning else report.errors).append(problem)
    report.errors.sort()
    report.warnings.sort()
    return report
