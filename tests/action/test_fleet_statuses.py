"""Commit statuses of a fleet: one context per named host, and the manifest's own summed up."""

from __future__ import annotations

import io
from typing import Any

from bojdeploy.engine.apply import Outcome
from bojdeploy.frontends.action.io import Console
from bojdeploy.frontends.action.status import Statuses


class Recorded:
    """A Gitea client that keeps the statuses it is asked to set."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []

    def set_status(
        self, owner: str, repo: str, sha: str, state: str, context: str, *_: Any
    ) -> None:
        self.statuses.append((context, state))


def test_contexts_per_host() -> None:
    client = Recorded()
    statuses = Statuses(client, "team/app", "abc123", "production", None, Console(io.StringIO()))  # type: ignore[arg-type]
    statuses.pending(["web", "db"], "deploying")
    statuses.finish(
        [
            Outcome("container", "web", "create", "completed", "created", 1, host="edge-1"),
            Outcome("container", "web", "create", "failed", "crashed", 2, "crashed", host="edge-2"),
            Outcome("container", "db", "create", "completed", "created", 3),
        ],
        "1 failed",
    )
    final = dict(client.statuses[2:])
    assert final == {
        "bojdeploy/production/web@edge-1": "success",
        "bojdeploy/production/web@edge-2": "failure",
        "bojdeploy/production/db": "success",
        "bojdeploy/production/web": "failure",
        "bojdeploy/production": "failure",
    }
