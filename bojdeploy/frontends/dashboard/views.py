"""What each page shows, read from the store (no HTTP here): overview, one deployment, history."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from bojdeploy.core.diff import diff_specs
from bojdeploy.store.base import Deployment, LogEntry, StateStore
from bojdeploy.store.reads import HistoryFilter

ACTIVE = ("pending", "running")
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
PAGE_SIZE = 50
VALUE_CHARS = 200


@dataclass(frozen=True)
class Drift:
    """What the drift watch last saw of a target ("unknown" when it never looked)."""

    word: str
    detail: str = ""
    checked_at: datetime | None = None


UNKNOWN = Drift("unknown", "the drift watch has not checked this target")


@dataclass(frozen=True)
class Row:
    """One manifest on the overview."""

    record: Deployment
    commit_url: str | None
    drift: Drift

    @property
    def deploying(self) -> bool:
        """Whether a deployment of it is under way."""
        return self.record.status in ACTIVE


@dataclass(frozen=True)
class Change:
    """One changed field of a deployment's config against the deployment before it."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Link:
    """One step of a rollback chain."""

    label: str
    record: Deployment


@dataclass
class DeploymentView:
    """Everything the page of one deployment shows."""

    record: Deployment
    logs: list[LogEntry]
    commit_url: str | None
    changes: list[Change]
    compared_with: Deployment | None
    chain: list[Link]
    rollback_target: Deployment | None
    later: list[Deployment] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """Whether it is still under way (the page then streams its log)."""
        return self.record.status in ACTIVE


def commit_url(gitea_url: str | None, repository: str | None, sha: str | None) -> str | None:
    """The commit's page on Gitea, when Gitea's URL and an owner/name repository are known."""
    if not (gitea_url and repository and sha and REPOSITORY.fullmatch(repository)):
        return None
    if not gitea_url.startswith(("http://", "https://")):
        return None
    return f"{gitea_url.rstrip('/')}/{quote(repository)}/commit/{quote(sha)}"


def drift_states(store: StateStore, environment: str | None) -> dict[tuple[str, str, str], Drift]:
    """The drift watch's last observation of each target (drifted if any repository's is)."""
    found: dict[tuple[str, str, str], Drift] = {}
    for state in store.drift_states(environment=environment):
        key = (state.environment, state.kind, state.name)
        seen = found.get(key)
        if seen is not None and (seen.word == "drifted" or not state.drifted):
            continue
        word = "drifted" if state.drifted else "in sync"
        detail = "; ".join(part for part in (state.state, state.detail) if part)
        found[key] = Drift(word, detail, state.checked_at)
    return found


def overview(
    store: StateStore, environment: str | None, gitea_url: str | None
) -> list[tuple[str, list[Row]]]:
    """Every manifest by environment: its newest deployment and drift."""
    drift = drift_states(store, environment)
    grouped: dict[str, list[Row]] = {}
    for record in store.current_deployments(environment):
        if (record.config or {}).get("deleted") and record.status not in ACTIVE:
            continue  # pruned: no longer a manifest
        key = (record.environment, record.deployment_type, record.name)
        row = Row(
            record,
            commit_url(gitea_url, record.git_repository, record.git_commit),
            drift.get(key, UNKNOWN),
        )
        grouped.setdefault(record.environment, []).append(row)
    return list(grouped.items())


def _spec(config: dict[str, Any] | None) -> dict[str, Any]:
    """The part of a recorded config a plan compares (not who recorded it, nor where)."""
    return {k: v for k, v in (config or {}).items() if k not in ("deployed", "target")}


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= VALUE_CHARS else f"{text[: VALUE_CHARS - 1]}…"


def deployment(
    store: StateStore, deployment_id: int, gitea_url: str | None
) -> DeploymentView | None:
    """One deployment with its log, its changes, its rollback chain and what a rollback restores."""
    record = store.get_deployment(deployment_id)
    if record is None:
        return None
    target = {
        "environment": record.environment,
        "deployment_type": record.deployment_type,
        "name": record.name,
    }
    before = store.list_deployments(**target, limit=1, before_id=record.id)
    succeeded = store.list_deployments(**target, status="completed", limit=5, before_id=record.id)
    kept = [r for r in succeeded if r.config and not r.config.get("deleted")]
    compared = kept[0] if kept else None
    changes = [
        Change(c.path, _shown(c.old), _shown(c.new))
        for c in diff_specs(_spec(compared.config if compared else {}), _spec(record.config), "")
    ]
    chain = []
    if record.rollback_from is not None:
        restored = store.get_deployment(record.rollback_from)
        if before:
            chain.append(Link("rolled back from", before[0]))
        if restored is not None:
            chain.append(Link("rolled back to", restored))
    later = store.later_deployments(record)
    chain += [Link("rolled back by", r) for r in later if r.rollback_from is not None]
    chain += [
        Link("restored by", r)
        for r in store.rollbacks_to(record.id)
        if r.id not in {r.id for r in later}
    ]
    return DeploymentView(
        record=record,
        logs=store.get_logs(record.id),
        commit_url=commit_url(gitea_url, record.git_repository, record.git_commit),
        changes=changes,
        compared_with=compared,
        chain=chain,
        rollback_target=compared,
        later=later,
    )


def history(
    store: StateStore, only: HistoryFilter, before_id: int | None
) -> tuple[list[Deployment], int | None]:
    """One page of the history, newest first, and the `before` of the next page."""
    rows = store.history(only, limit=PAGE_SIZE + 1, before_id=before_id)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, rows[-1].id if more else None
