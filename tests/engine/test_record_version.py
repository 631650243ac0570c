"""Every deployment record keeps the bojdeploy version that wrote it (config.deployed).

A real deploy's record, made by the released image, is checked in tests/action/test_release.py."""

from __future__ import annotations

from pathlib import Path

from bojdeploy import __version__
from bojdeploy.core.plan import Plan
from bojdeploy.engine.apply import apply_plan
from bojdeploy.store import open_store
from tests.engine.fakes import ENV, FakeDriver, make_run, sqlite_url, step


def test_every_row_records_the_bojdeploy_version(tmp_path: Path) -> None:
    with open_store(sqlite_url(tmp_path)) as store:
        outcomes = apply_plan(
            make_run(store, FakeDriver()),
            Plan(ENV, (step("web"), step("old", "delete"))),
        )
        assert {o.name: o.status for o in outcomes} == {"web": "completed", "old": "completed"}
        rows = store.list_deployments(limit=10)
    assert sorted(r.name for r in rows) == ["old", "web"]
    for row in rows:
        assert row.config is not None
        assert row.config["deployed"]["bojdeploy_version"] == __version__
