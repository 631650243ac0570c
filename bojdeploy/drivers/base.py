"""What every driver offers: apply one plan step to a target, logging each step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Step

LABEL_PREFIX = "io.bojdeploy."


class StepLog(Protocol):
    """Records one line of a deployment's log (and shows it to the user)."""

    def __call__(self, level: str, message: str, **metadata: Any) -> None: ...


@dataclass(frozen=True)
class Ownership:
    """The io.bojdeploy.* facts put on every managed resource."""

    name: str
    kind: str
    environment: str
    config_hash: str
    deployment_id: int
    git_commit: str
    repository: str
    manifest: str

    def labels(self) -> dict[str, str]:
        """Docker labels: io.bojdeploy.managed=true and the rest."""
        return {
            LABEL_PREFIX + "managed": "true",
            LABEL_PREFIX + "name": self.name,
            LABEL_PREFIX + "kind": self.kind,
            LABEL_PREFIX + "environment": self.environment,
            LABEL_PREFIX + "config-hash": self.config_hash,
            LABEL_PREFIX + "deployment-id": str(self.deployment_id),
            LABEL_PREFIX + "git-commit": self.git_commit,
            LABEL_PREFIX + "repository": self.repository,
            LABEL_PREFIX + "manifest": self.manifest,
        }


@dataclass
class Work:
    """Everything a driver needs to apply one step."""

    step: Step
    manifest: LoadedManifest | None  # None for deletes
    secrets: Mapping[str, str] = field(default_factory=dict)  # values of the secrets it uses
    ownership: Ownership | None = None  # None for deletes
    key: bytes = b""  # the installation key, for keyed hashes of secrets
    facts: dict[str, Any] = field(default_factory=dict)  # filled by the driver: image, ip...
    # Names of this kind the run deletes after every change succeeded (prune): a create may
    # stop one that holds what it needs (a host port) and start it again if the create fails.
    deleting: tuple[str, ...] = ()


class Driver(Protocol):
    """Applies steps of one kind; raises DriverError (with the previous version restored)."""

    def apply(self, work: Work, log: StepLog) -> str:
        """Apply `work.step`; return a short human summary ("replaced container web in 3.2s")."""
        ...
