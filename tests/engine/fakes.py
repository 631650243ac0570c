"""A fake driver and a run around it: the apply engine without Docker or XenAPI.

The store is a real SQLite database in tmp_path; only the driver, the seam the engine applies
steps through, is a stand-in. It keeps a journal of `start`/`end` events (one lock, so the
journal's order is the order things happened) and can fail chosen steps or hold each step at a
barrier until `parties` steps run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bojdeploy.core.plan import Action, Desired, Observed, Step
from bojdeploy.core.secrets import Scrubber
from bojdeploy.drivers.base import Applied, StepLog, Work
from bojdeploy.engine.apply import Run
from bojdeploy.engine.gitrepo import GitInfo
from bojdeploy.errors import DriverError
from bojdeploy.store import StateStore

ENV = "prod"
REPOSITORY = "owner/repo"
BARRIER_GUARD = 30.0  # a hang guard only: a barrier never met within it breaks the step


@dataclass
class FakeDriver:
    """Applies steps by writing them in a journal; fails the names in `failing`."""

    failing: Collection[str] = ()
    parties: int = 1  # steps that must run at the same time before any of them ends
    journal: list[tuple[str, str]] = field(default_factory=list)
    running: int = 0
    most: int = 0  # the most steps that ran at the same time
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _barrier: threading.Barrier | None = None

    def __post_init__(self) -> None:
        self._barrier = threading.Barrier(self.parties) if self.parties > 1 else None

    facts: dict[str, Any] = field(default_factory=dict)  # what each apply reports as deployed
    seconds: float = 0.0  # how long each apply says it took

    def observe(self) -> list[Observed]:
        return []

    def observe_one(self, name: str, *, aside: bool = True) -> list[Observed]:
        return []

    def apply(self, work: Work, log: StepLog) -> Applied:
        name = work.step.name
        with self._lock:
            self.journal.append(("start", name))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self._barrier is not None:
                self._barrier.wait(BARRIER_GUARD)
            if name in self.failing:
                raise DriverError(f"{name} broke")
            log("info", f"applied {name}")
            return Applied(f"{work.step.action.value}d {name}", self.facts, self.seconds)
        finally:
            with self._lock:
                self.running -= 1
                self.journal.append(("end", name))

    def applied(self) -> list[str]:
        """The names the driver was asked to apply, in the order they started."""
        return [name for event, name in self.journal if event == "start"]


def step(name: str, action: str = "create", needs: tuple[str, ...] = ()) -> Step:
    """A plan step of a container called `name` (`delete`: an orphan to prune)."""
    if action == "delete":
        seen = Observed("container", name, True, name=name, environment=ENV, repository=REPOSITORY)
        return Step(Action.DELETE, "container", name, ENV, None, seen, reason="manifest deleted")
    want = Desired(
        kind="container",
        name=name,
        environment=ENV,
        resource_name=name,
        config_hash=f"hash-{name}",
        spec={"image": "example/web:1"},
        manifest=f"deploy/{name}.yml",
        depends_on=needs,
    )
    return Step(Action(action), "container", name, ENV, want, None)


def make_run(store: StateStore, driver: FakeDriver, parallel: int = 4) -> Run:
    """A run that applies containers through `driver` and finds nothing on the target."""
    lines: list[tuple[str, str, str]] = []
    run = Run(
        store=store,
        drivers={"container": driver},
        observe=lambda kind, name: [],
        info=GitInfo("abc1234", "abc1234", "main", "refs/heads/main", REPOSITORY),
        manifests={},
        secrets={},
        scrub=Scrubber(),
        report=lambda resource, level, message: lines.append((resource, level, message)),
        key=b"k" * 32,
        parallel=parallel,
    )
    run.lines = lines  # type: ignore[attr-defined]
    return run


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def event_index(journal: list[tuple[str, str]], event: str, name: str) -> int:
    return journal.index((event, name))


def rows_by_name(store: StateStore) -> dict[str, Any]:
    """The newest row of each name."""
    out: dict[str, Any] = {}
    for row in reversed(store.list_deployments(limit=1000)):
        out[row.name] = row
    return out
