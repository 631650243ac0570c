"""The apply engine by tables: levels and depends_on, failures blocking their dependents
transitively, --parallel, and prune deletes in their own last level."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bojdeploy.core.plan import Plan
from bojdeploy.engine.apply import apply_plan, step_levels
from bojdeploy.errors import PlanError
from bojdeploy.store import StateStore, open_store
from tests.engine.fakes import ENV, FakeDriver, make_run, rows_by_name, sqlite_url, step


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(sqlite_url(tmp_path)) as opened:
        yield opened


@dataclass(frozen=True)
class Case:
    """Steps as `name`, `name<dep,dep`, or `-name` (a delete); what each ends as."""

    id: str
    steps: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]  # the order the engine groups them in (changes only)
    outcomes: dict[str, str]  # name -> completed | failed | skipped
    failing: tuple[str, ...] = ()
    applied: tuple[str, ...] | None = None  # what the driver was asked to apply (default: all)
    messages: tuple[tuple[str, str], ...] = ()  # name -> part of its outcome's summary


def parse(spec: str):  # type: ignore[no-untyped-def]
    if spec.startswith("-"):
        return step(spec[1:], "delete")
    name, _, needs = spec.partition("<")
    return step(name, needs=tuple(n for n in needs.split(",") if n))


CASES = [
    Case(
        "independent steps form one level",
        ("a", "b", "c"),
        (("a", "b", "c"),),
        {"a": "completed", "b": "completed", "c": "completed"},
    ),
    Case(
        "depends_on orders a chain",
        ("web<api", "api<db", "db"),
        (("db",), ("api",), ("web",)),
        {"db": "completed", "api": "completed", "web": "completed"},
    ),
    Case(
        "a diamond: the join waits for both branches",
        ("d<b,c", "b<a", "c<a", "a"),
        (("a",), ("b", "c"), ("d",)),
        {"a": "completed", "b": "completed", "c": "completed", "d": "completed"},
    ),
    Case(
        "a dependency outside the run is not waited for",
        ("api<db", "web"),
        (("api", "web"),),
        {"api": "completed", "web": "completed"},
    ),
    Case(
        "a failure blocks its dependents transitively",
        ("db", "api<db", "web<api", "edge<web", "other"),
        (("db", "other"), ("api",), ("web",), ("edge",)),
        {"db": "failed", "api": "failed", "web": "failed", "edge": "failed", "other": "completed"},
        failing=("db",),
        applied=("db", "other"),
        messages=(
            ("db", "db broke"),
            ("api", "not applied: dependency db failed"),
            ("web", "not applied: dependency api failed"),
            ("edge", "not applied: dependency web failed"),
        ),
    ),
    Case(
        "a failure does not block what does not depend on it",
        ("a", "b", "c<b", "d<a,c"),
        (("a", "b"), ("c",), ("d",)),
        {"a": "failed", "b": "completed", "c": "completed", "d": "failed"},
        failing=("a",),
        applied=("a", "b", "c"),
        messages=(("d", "not applied: dependency a failed"),),
    ),
    Case(
        "a failed dependent blocks the next level down",
        ("db", "api<db", "web<api"),
        (("db",), ("api",), ("web",)),
        {"db": "completed", "api": "failed", "web": "failed"},
        failing=("api",),
        applied=("db", "api"),
    ),
    Case(
        "prune deletes run last, in a level of their own",
        ("-old", "web<db", "db", "-gone"),
        (("db",), ("web",)),
        {"db": "completed", "web": "completed", "old": "completed", "gone": "completed"},
        applied=("db", "web", "old", "gone"),
    ),
    Case(
        "no delete runs after a failure: they are skipped",
        ("-old", "web", "db"),
        (("web", "db"),),
        {"web": "failed", "db": "completed", "old": "skipped"},
        failing=("web",),
        applied=("web", "db"),
        messages=(("old", "not deleted: container web failed in this run, so nothing is pruned"),),
    ),
    Case(
        "a dependent not applied also keeps the deletes from running",
        ("db", "web<db", "-old"),
        (("db",), ("web",)),
        {"db": "failed", "web": "failed", "old": "skipped"},
        failing=("db",),
        applied=("db",),
        messages=(("old", "container db, container web failed in this run"),),
    ),
    Case(
        "a failing delete fails only itself",
        ("web", "-old", "-gone"),
        (("web",),),
        {"web": "completed", "old": "failed", "gone": "completed"},
        failing=("old",),
        applied=("web", "old", "gone"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_apply_plan(case: Case, store: StateStore) -> None:
    steps = tuple(parse(s) for s in case.steps)
    changes = [s for s in steps if s.desired is not None]
    assert [tuple(s.name for s in level) for level in step_levels(changes)] == list(case.levels)
    driver = FakeDriver(failing=case.failing)
    run = make_run(store, driver)

    outcomes = apply_plan(run, Plan(ENV, steps))

    assert {o.name: o.status for o in outcomes} == case.outcomes
    deletes = [s.name for s in steps if s.desired is None]
    expected = case.applied if case.applied is not None else tuple(case.outcomes)
    assert sorted(driver.applied()) == sorted(expected)
    summaries = {o.name: o.summary for o in outcomes}
    for name, text in case.messages:
        assert text in summaries[name]
    journal = driver.journal
    # Each level starts after the previous one has ended; the deletes after every change.
    order = [list(level) for level in case.levels] + [deletes]
    for earlier, later in zip(order, order[1:], strict=False):
        for before in earlier:
            for after in later:
                if ("start", after) in journal and ("end", before) in journal:
                    assert journal.index(("end", before)) < journal.index(("start", after))
    # Every step leaves a row: failed, completed, or failed with why it was not applied.
    rows = rows_by_name(store)
    assert set(rows) == set(case.outcomes)
    for name, status in case.outcomes.items():
        assert rows[name].status == ("failed" if status == "skipped" else status)
        if name not in driver.applied():
            assert rows[name].error_message == summaries[name]


def test_a_dependency_cycle_is_refused_not_applied() -> None:
    with pytest.raises(PlanError, match="dependency cycle among: a, b"):
        step_levels([step("a", needs=("b",)), step("b", needs=("a",))])


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_parallel_runs_a_level_n_at_a_time_and_levels_one_after_another(
    parallel: int, store: StateStore
) -> None:
    """Two rounds of `parallel` steps in the first level, then a level that depends on it.

    Each step waits at a barrier until `parallel` steps run at once: had the engine run fewer
    side by side, the barrier would break and the steps fail.
    """
    first = [f"a{i}" for i in range(2 * parallel)]
    second = [f"b{i}" for i in range(parallel)]
    steps = [step(n) for n in first] + [step(n, needs=("a0",)) for n in second]
    driver = FakeDriver(parties=parallel)
    run = make_run(store, driver, parallel=parallel)

    outcomes = apply_plan(run, Plan(ENV, tuple(steps)))

    assert [o.status for o in outcomes] == ["completed"] * len(steps)
    assert driver.most == parallel  # never more than --parallel at once, and that many
    journal = driver.journal
    last_end = max(journal.index(("end", n)) for n in first)
    first_start = min(journal.index(("start", n)) for n in second)
    assert last_end < first_start  # b* wait for every a*, not only the a0 they depend on
