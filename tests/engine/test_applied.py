"""What a driver returns is what the engine records and shows: facts, summary and time."""

from __future__ import annotations

from pathlib import Path

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.manifest import ContainerManifest
from bojdeploy.core.plan import Plan
from bojdeploy.core.yamlsrc import Document
from bojdeploy.engine.apply import apply_plan
from bojdeploy.store import open_store
from tests.engine.fakes import ENV, FakeDriver, make_run, rows_by_name, sqlite_url, step


def manifest(name: str) -> LoadedManifest:
    data = {
        "apiVersion": "bojdeploy/v1",
        "kind": "Container",
        "metadata": {"name": name},
        "spec": {"image": "example/web:1"},
    }
    model = ContainerManifest.model_validate(data)
    return LoadedManifest(model, f"deploy/{name}.yml", ENV, Document(data, 1))


def test_the_facts_a_driver_returns_are_recorded_and_its_time_shown(tmp_path: Path) -> None:
    driver = FakeDriver(facts={"image_id": "sha256:abc"}, seconds=2.5)
    with open_store(sqlite_url(tmp_path)) as store:
        run = make_run(store, driver)
        run.manifests = {("container", "web"): manifest("web")}
        (outcome,) = apply_plan(run, Plan(ENV, (step("web"),)))
        row = rows_by_name(store)["web"]
    assert (outcome.status, outcome.summary, outcome.seconds) == (
        "completed",
        "created web in 2.5s",
        2.5,
    )
    assert row.config["deployed"] == {"image_id": "sha256:abc"}
    assert ("container/web", "info", "created web in 2.5s") in run.lines  # type: ignore[attr-defined]


def test_a_driver_that_reports_no_facts_leaves_the_config_as_planned(tmp_path: Path) -> None:
    with open_store(sqlite_url(tmp_path)) as store:
        run = make_run(store, FakeDriver())
        run.manifests = {("container", "web"): manifest("web")}
        apply_plan(run, Plan(ENV, (step("web"),)))
        row = rows_by_name(store)["web"]
    assert "deployed" not in row.config
