"""What every driver offers: observe its kind on a target, apply one plan step, log each step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Observed, Step

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
    host: str = ""  # a named host of the environment; "" for its default target

    def labels(self) -> dict[str, str]:
        """Docker labels: io.bojdeploy.managed=true and the rest (io.bojdeploy.host on a named
        host)."""
        named = {LABEL_PREFIX + "host": self.host} if self.host else {}
        return named | {
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
    # Names of this kind the run deletes after every change succeeded (prune): a create may
    # stop one that holds what it needs (a host port) and start it again if the create fails.
    deleting: tuple[str, ...] = ()


@dataclass(frozen=True)
class Applied:
    """What applying one step did: a short summary, facts about what now runs, how long it took.

    The facts (an image id, a digest, a VM's uuid and IP) are recorded with the deployment.
    """

    summary: str  # "replaced container web with reg/web:2" (the engine adds the time)
    facts: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Driver(Protocol):
    """Observes and applies resources of one kind on one target (a Docker host, a Xen pool)."""

    def observe(self) -> list[Observed]:
        """Every resource of this kind on the target (managed or not: name collisions matter)."""
        ...

    def observe_one(self, name: str, *, aside: bool = True) -> list[Observed]:
        """The resource named `name`, if any, found without listing the whole target.

        The re-check under a lock. aside=False: the plan found it finished, so what a swap sets
        aside beside it (a container's `.previous`) need not be looked for.
        """
        ...

    def apply(self, work: Work, log: StepLog) -> Applied:
        """Apply `work.step`; raise DriverError (with the previous version restored) on failure."""
        ...
