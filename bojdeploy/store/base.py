"""The records the state store keeps, and the StateStore protocol every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bojdeploy.store.reads import Duration, HistoryFilter

STATUSES = ("pending", "running", "completed", "failed", "unchanged")
SUCCESSFUL = ("completed", "unchanged")
INTERRUPTED = "interrupted (the run that started it stopped before finishing)"


def redact_url(url: str) -> str:
    """Return a database URL with its password replaced by ***."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***{at}{hostport}")
    query = "&".join(
        "password=***" if item.startswith("password=") else item for item in parts.query.split("&")
    )
    redacted = parts._replace(query=query)
    return url if redacted == urlsplit(url) else redacted.geturl()


def _jsonable(record: Any) -> dict[str, Any]:
    """Return a record as a dict with ISO timestamps."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}


@dataclass(frozen=True)
class Deployment:
    """One recorded deployment of one target (a row of `deployments`)."""

    id: int
    deployment_type: str
    name: str
    environment: str
    status: str
    git_commit: str | None
    git_branch: str | None
    git_repository: str | None
    config: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    error_message: str | None
    rollback_from: int | None
    reason: str | None
    config_hash: str | None
    manifest: str | None
    host: str = ""  # the named host it ran on; "" = the environment's default target

    def to_dict(self) -> dict[str, Any]:
        """Return the deployment as JSON-friendly values."""
        return _jsonable(self)


@dataclass(frozen=True)
class Confirmation:
    """What the records say about the deployment that made a resource (its id on a label)."""

    deployment_id: int
    deployment_type: str
    name: str
    status: str
    error_message: str | None
    config_hash: str | None
    confirmed_by: int | None  # a later completed/unchanged row of the same resource and config
    host: str = ""


@dataclass(frozen=True)
class LogEntry:
    """One log line of a deployment (a row of `deployment_logs`)."""

    id: int
    deployment_id: int
    timestamp: datetime
    level: str
    message: str
    metadata: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Return the log entry as JSON-friendly values."""
        return _jsonable(self)


@dataclass(frozen=True)
class DriftState:
    """What the drift watch last saw of one recorded resource (a row of `drift_states`)."""

    environment: str
    kind: str
    name: str
    drifted: bool
    state: str  # in sync | missing | unfinished | stopped | running | config or image differs
    detail: str
    checked_at: datetime
    repository: str | None = None  # the repository whose records the resource came from
    deployment_id: int | None = None  # the recorded deployment it was compared with

    def to_dict(self) -> dict[str, Any]:
        """Return the observation as JSON-friendly values."""
        return _jsonable(self)


class StateStore(Protocol):
    """Where deployments, their logs and target locks live (SQLite or PostgreSQL)."""

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied now."""
        ...

    def pending_migrations(self) -> list[int]:
        """The versions of the migrations this database has not applied (a read, no lock)."""
        ...

    def create_deployment(
        self,
        *,
        deployment_type: str,
        name: str,
        environment: str,
        status: str = "pending",
        git_commit: str | None = None,
        git_branch: str | None = None,
        git_repository: str | None = None,
        config: dict[str, Any] | None = None,
        rollback_from: int | None = None,
        reason: str | None = None,
        config_hash: str | None = None,
        manifest: str | None = None,
        host: str = "",
    ) -> int:
        """Record a new deployment and return its id."""
        ...

    def record_unchanged(self, records: Sequence[Mapping[str, Any]], message: str) -> list[int]:
        """Record deployments that found their resource unchanged, in one transaction: each a
        row (create_deployment's fields, completed now) with `message` as its log line; their ids.
        """
        ...

    def open_deployments(self, environment: str) -> set[tuple[str, str, str]]:
        """(deployment_type, name, host) of an environment's deployments still pending or
        running ('' = the default target)."""
        ...

    def update_deployment(
        self,
        deployment_id: int,
        *,
        status: str | None = None,
        error_message: str | None = None,
        config: dict[str, Any] | None = None,
        config_hash: str | None = None,
        completed: bool = False,
        at: datetime | None = None,
    ) -> None:
        """Change the given fields, bump updated_at, and set completed_at if completed.

        `at` is when it happened (default now): a change written late keeps its time.
        """
        ...

    def get_deployment(self, deployment_id: int) -> Deployment | None:
        """Return one deployment, or None if there is no such id."""
        ...

    def list_deployments(
        self,
        *,
        environment: str | None = None,
        name: str | None = None,
        deployment_type: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
        host: str | None = None,
    ) -> list[Deployment]:
        """Return matching deployments, newest first (only ids below `before_id` if given)."""
        ...

    def add_log(
        self,
        deployment_id: int,
        level: str,
        message: str,
        metadata: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append a log line to a deployment (`at`: when it was said, default now)."""
        ...

    def get_logs(self, deployment_id: int) -> list[LogEntry]:
        """Return a deployment's log lines in the order they were written."""
        ...

    def latest_states(self, environment: str) -> list[Deployment]:
        """Return, per target of an environment, its newest completed or unchanged deployment."""
        ...

    def unfinished_kinds(self, environment: str, host: str | None = None) -> set[str]:
        """The kinds with a pending or running deployment in an environment (on one `host` of a
        fleet if given, '' the default target): work a killed run may have left half-done,
        which the next run must look at whatever it deploys."""
        ...

    def environment_repositories(self) -> list[tuple[str, str | None]]:
        """Every environment with each repository that recorded deployments in it."""
        ...

    def current_deployments(self, environment: str | None = None) -> list[Deployment]:
        """The newest row of every target (of one environment, or all), by environment and name."""
        ...

    def history(
        self, only: HistoryFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[Deployment]:
        """Deployments matching `only`, newest first; ids below `before_id` when given."""
        ...

    def durations(self, only: HistoryFilter, *, limit: int = 500) -> list[Duration]:
        """How long the newest `limit` finished deployments matching `only` took, newest first."""
        ...

    def later_deployments(self, record: Deployment, limit: int = 10) -> list[Deployment]:
        """The rows of the same target after `record`, oldest first."""
        ...

    def rollbacks_to(self, deployment_id: int, limit: int = 10) -> list[Deployment]:
        """The deployments that restored the config `deployment_id` recorded, oldest first."""
        ...

    def successful_deployments(
        self,
        environment: str,
        deployment_type: str,
        name: str,
        limit: int = 10,
        host: str | None = None,
    ) -> list[Deployment]:
        """Return a target's completed deployments, newest first (on `host` only, if given)."""
        ...

    def mark_interrupted(
        self, environment: str, deployment_type: str, name: str, host: str = ""
    ) -> list[int]:
        """Mark a target's pending/running rows failed (call while holding its lock)."""
        ...

    def confirmations(
        self, environment: str, deployment_ids: Collection[int]
    ) -> dict[int, Confirmation]:
        """The rows of an environment with these ids, each with its later confirmation."""
        ...

    def save_drift(
        self,
        observations: Collection[DriftState],
        *,
        scope: tuple[str, str | None] | None = None,
    ) -> None:
        """Upsert observations per (environment, kind, name, repository); with a scope
        (environment, repository), that pair's other rows are deleted (they were all checked)."""
        ...

    def drift_states(self, environment: str | None = None) -> list[DriftState]:
        """Return the last drift observations (of one environment), by environment, kind, name."""
        ...

    def lock(
        self,
        environment: str,
        deployment_type: str,
        name: str,
        *,
        timeout: float = 300,
        holder: str | None = None,
        on_wait: Callable[[str], None] | None = None,
        host: str = "",
    ) -> AbstractContextManager[None]:
        """Hold the target's lock across processes; raise LockTimeout after timeout seconds."""
        ...

    def installation_key(self) -> bytes:
        """Return this installation's 32-byte secret key, creating it once."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...
