"""The repository config `bojdeploy.yaml`: environments, targets, policy, prune."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from bojdeploy.core.fields import Strict
from bojdeploy.core.yamlsrc import Document, parse_documents, validate
from bojdeploy.errors import Problem

CONFIG_FILE = "bojdeploy.yaml"
DEFAULT_MANIFESTS = ["deploy/**/*.yml", "deploy/**/*.yaml"]


class EnvironmentConfig(Strict):
    """One environment: the branches that deploy to it and its template vars."""

    branches: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    protected: bool = False


class TargetConfig(Strict):
    """Connection settings for one environment (credentials come from env vars)."""

    docker_host: str | None = None
    xen_url: str | None = None
    xen_username: str | None = None


class Policy(Strict):
    """What manifests may ask for."""

    allow_privileged: bool = False
    allow_host_network: bool = False
    allowed_host_paths: list[str] = Field(default_factory=list)
    allow_vm_destroy: bool = False


def _default_environments() -> dict[str, EnvironmentConfig]:
    return {
        "production": EnvironmentConfig(branches=["main", "master"]),
        "development": EnvironmentConfig(branches=["*"]),
    }


class RepoConfig(Strict):
    """bojdeploy.yaml; its defaults are what a repository without the file gets."""

    manifests: list[str] = Field(default_factory=lambda: list(DEFAULT_MANIFESTS))
    environments: dict[str, EnvironmentConfig] = Field(default_factory=_default_environments)
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    policy: Policy = Field(default_factory=Policy)
    prune: bool = False

    @model_validator(mode="after")
    def _known_targets(self) -> RepoConfig:
        unknown = sorted(set(self.targets) - set(self.environments))
        if unknown:
            raise ValueError(
                f"targets for unknown environment(s) {', '.join(unknown)}; "
                f"environments are {', '.join(self.environments)}"
            )
        if not self.environments:
            raise ValueError("at least one environment is needed")
        return self

    def environment_for_branch(self, branch: str) -> str | None:
        """The first environment (in file order) whose branch patterns match `branch`."""
        for name, env in self.environments.items():
            if any(fnmatch.fnmatchcase(branch, pattern) for pattern in env.branches):
                return name
        return None

    def vars_for(self, environment: str) -> dict[str, Any]:
        """Template vars of `environment`."""
        env = self.environments.get(environment)
        return dict(env.vars) if env else {}


def parse_config(text: str, file: str = CONFIG_FILE) -> tuple[RepoConfig | None, list[Problem]]:
    """Parse bojdeploy.yaml text; problems name file, line and key."""
    docs = list(parse_documents(text, file))
    problems = [d for d in docs if isinstance(d, Problem)]
    documents = [d for d in docs if isinstance(d, Document)]
    if problems:
        return None, problems
    if len(documents) > 1:
        return None, [Problem(file, documents[1].line, "", "expected a single YAML document")]
    if not documents or documents[0].data is None:
        return RepoConfig(), []
    doc = documents[0]
    if not isinstance(doc.data, dict):
        return None, [Problem(file, doc.line, "", "expected a mapping at the top level")]
    dup = [
        Problem(file, line, ".".join(map(str, p)), "duplicate key") for p, line in doc.duplicates
    ]
    model, errors = validate(RepoConfig, doc.data, doc, file)
    return (model if isinstance(model, RepoConfig) else None), dup + errors


def load_config(root: Path) -> tuple[RepoConfig | None, list[Problem]]:
    """Read `bojdeploy.yaml` at the repository root, or the defaults when there is none."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return RepoConfig(), []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem(CONFIG_FILE, None, "", f"cannot read: {e}")]
    return parse_config(text)
