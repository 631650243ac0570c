"""The repository config `bojdeploy.yaml`: environments, targets, policy, prune."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from bojdeploy.core.fields import Strict
from bojdeploy.core.files import MAX_FILE_BYTES, RepoFileError, decode
from bojdeploy.core.fleet import DEFAULT_HOST, HostName
from bojdeploy.core.yamlsrc import Document, parse_documents, validate, value_problems
from bojdeploy.errors import Problem

CONFIG_FILE = "bojdeploy.yaml"
DEFAULT_MANIFESTS = ["deploy/**/*.yml", "deploy/**/*.yaml"]
# Environment names go into the database (VARCHAR(50)), labels and container names.
ENVIRONMENT_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,48}[a-zA-Z0-9])?$")
MAX_ENVIRONMENTS = 64  # each one is rendered and validated by `bojdeploy validate`
DOCKER_SCHEMES = ("unix", "tcp", "ssh", "npipe", "http", "https")
# scheme://[user@]host[:port][/path]: enough to tell a usable endpoint from a mistake.
_URL = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/\s]+@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^/:\s\[\]]*)(?::\d+)?(?P<path>/\S*)?$"
)


def check_docker_host(value: str) -> str:
    """A Docker endpoint the Docker SDK can reach: unix://, tcp://, ssh://, npipe://, http(s)://."""
    match = _URL.match(value)
    if match is None or match["scheme"] not in DOCKER_SCHEMES:
        raise ValueError(
            f"invalid docker_host {value!r}: use unix:///path, tcp://host:port, ssh://user@host "
            "or npipe://"
        )
    if match["scheme"] in ("tcp", "ssh", "http", "https") and not match["host"]:
        raise ValueError(f"invalid docker_host {value!r}: a host is needed")
    if match["scheme"] == "unix" and not match["path"]:
        raise ValueError(f"invalid docker_host {value!r}: a socket path is needed")
    return value


def check_xen_url(value: str) -> str:
    """An http:// or https:// URL with a host."""
    match = _URL.match(value)
    if match is None or match["scheme"] not in ("http", "https") or not match["host"]:
        raise ValueError(f"invalid xen_url {value!r}: use https://host or http://host")
    return value


def check_manifest_glob(pattern: str) -> str:
    """A discovery glob relative to the repository root that stays inside it."""
    parts = pattern.replace("\\", "/").split("/")
    if not pattern.strip() or pattern.startswith(("/", "~")) or ".." in parts:
        raise ValueError(
            f"invalid manifests pattern {pattern!r}: use a glob relative to the repository "
            "root, without '..' (e.g. deploy/**/*.yml)"
        )
    if parts.count("**") > 2:
        raise ValueError(f"invalid manifests pattern {pattern!r}: at most two '**'")
    return pattern


def _environment_name(name: str) -> str:
    if not ENVIRONMENT_NAME.match(name):
        raise ValueError(
            f"invalid environment name {name!r}: 1-50 letters, digits, '_', '.', '-', "
            "starting and ending with a letter or digit"
        )
    return name


EnvironmentName = Annotated[str, AfterValidator(_environment_name)]


def _few_environments(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ENVIRONMENTS:
        raise ValueError(f"at most {MAX_ENVIRONMENTS} environments ({len(value)} given)")
    return value


class EnvironmentConfig(Strict):
    """One environment: the branches that deploy to it and its template vars."""

    branches: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    protected: bool = False


class HostConfig(Strict):
    """One named host of an environment: a Docker engine (or Swarm manager) and/or a Xen pool."""

    docker_host: Annotated[str, AfterValidator(check_docker_host)] | None = None
    tls_verify: bool = False
    cert_path: str | None = None  # ca.pem, cert.pem, key.pem; default DOCKER_CERT_PATH or ~/.docker
    xen_url: Annotated[str, AfterValidator(check_xen_url)] | None = None
    xen_username: str | None = None

    @model_validator(mode="after")
    def _reachable(self) -> HostConfig:
        if not self.docker_host and not self.xen_url:
            raise ValueError("a host needs docker_host or xen_url")
        if (self.tls_verify or self.cert_path) and not (self.docker_host or "").startswith(
            "tcp://"
        ):
            raise ValueError("tls_verify and cert_path need a tcp:// docker_host")
        return self


def _host_names(hosts: dict[str, HostConfig]) -> dict[str, HostConfig]:
    if DEFAULT_HOST in hosts:
        raise ValueError(
            f"{DEFAULT_HOST!r} names the environment's own docker_host/xen_url; "
            "choose another host name"
        )
    return hosts


class TargetConfig(Strict):
    """Connection settings for one environment (credentials come from env vars)."""

    docker_host: Annotated[str, AfterValidator(check_docker_host)] | None = None
    xen_url: Annotated[str, AfterValidator(check_xen_url)] | None = None
    xen_username: str | None = None
    hosts: Annotated[dict[HostName, HostConfig], AfterValidator(_host_names)] = Field(
        default_factory=dict
    )


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

    manifests: list[Annotated[str, AfterValidator(check_manifest_glob)]] = Field(
        default_factory=lambda: list(DEFAULT_MANIFESTS)
    )
    environments: Annotated[
        dict[EnvironmentName, EnvironmentConfig], AfterValidator(_few_environments)
    ] = Field(default_factory=_default_environments)
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    policy: Policy = Field(default_factory=Policy)
    prune: bool = False
    self_heal: bool = False  # the relay's drift watch re-applies drifted containers and services

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

    def hosts_for(self, environment: str) -> dict[str, HostConfig]:
        """The named hosts of `environment` (targets.<env>.hosts)."""
        target = self.targets.get(environment)
        return dict(target.hosts) if target else {}

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
    bad_values = value_problems(doc, file)
    if bad_values:
        return None, dup + bad_values
    model, errors = validate(RepoConfig, doc.data, doc, file)
    return (model if isinstance(model, RepoConfig) else None), dup + errors


def load_config(root: Path) -> tuple[RepoConfig | None, list[Problem]]:
    """Read `bojdeploy.yaml` at the repository root, or the defaults when there is none."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return RepoConfig(), []
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise RepoFileError(f"larger than {MAX_FILE_BYTES} bytes", 1)
        text = decode(data, CONFIG_FILE)
    except OSError as e:
        return None, [Problem(CONFIG_FILE, 1, "", f"cannot read: {e.strerror or e}")]
    except RepoFileError as e:
        return None, [Problem(CONFIG_FILE, e.line or 1, "", str(e))]
    return parse_config(text)
