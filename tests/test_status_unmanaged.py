"""`bojdeploy status` lists the VMs on a pool that bojdeploy does not manage, and `apply` (with
prune, or a manifest of the same name) never adopts, changes or deletes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from bojdeploy.testing.xapi import XapiSimulator
from tests.helpers import CliResult, git_identity, run_cli
from tests.test_apply_vm import PASSWORD, USER, Pool, VMRepo

KEPT = ("uuid", "power_state", "other_config", "VBDs", "VIFs", "VCPUs_max", "memory_static_max")


def status(repo: VMRepo, *extra: str, url: str | None = None) -> CliResult:
    env = {"BOJDEPLOY_XEN_URL": url or repo.url, "BOJDEPLOY_XEN_USERNAME": USER}
    env["BOJDEPLOY_XEN_PASSWORD"] = PASSWORD
    return run_cli("--database-url", repo.db_url, "status", *extra, str(repo.root), env=env)


def listed(result: CliResult) -> list[tuple[Any, ...]]:
    return [(i["kind"], i["name"], i["resource_name"], i["state"]) for i in json.loads(result.out)]


def their_vm(pool: Pool, name: str, *, start: bool) -> str:
    """A VM made with the XenAPI SDK, as another tool would: no bojdeploy keys."""
    template = pool.api.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = pool.api.VM.clone(template, name)
    pool.api.VM.remove_from_other_config(vm, "disks")  # its disks' SR "" means the default one
    pool.api.VM.provision(vm)
    if start:
        pool.api.VM.start(vm, False, False)
    return str(vm)


def facts(pool: Pool, vm: str) -> dict[str, Any]:
    record = pool.api.VM.get_record(vm)
    return {field: record[field] for field in KEPT}


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(username=USER, password=PASSWORD, ip_delay=0.2) as simulator:
        yield simulator


@pytest.fixture
def pool(sim: XapiSimulator) -> Iterator[Pool]:
    view = Pool(sim.url)
    yield view
    view.session.xenapi.session.logout()


@pytest.fixture
def repo(tmp_path: Path, sim: XapiSimulator) -> VMRepo:
    made = VMRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", sim.url)
    git_identity(made.root, "team/vms")
    return made


def test_status_lists_unmanaged_vms_and_apply_leaves_them(
    repo: VMRepo, pool: Pool, sim: XapiSimulator
) -> None:
    legacy = their_vm(pool, "legacy-db", start=True)
    spare = their_vm(pool, "spare", start=False)
    before = {vm: facts(pool, vm) for vm in (legacy, spare)}

    fresh = status(repo, "--env", "test", "--json")  # nothing deployed yet: listed all the same
    assert fresh.code == 0, fresh.err
    assert listed(fresh) == [
        ("vm", None, "legacy-db", "unmanaged"),
        ("vm", None, "spare", "unmanaged"),
    ]
    assert all(i["drifted"] is False and i["deployment_id"] is None for i in json.loads(fresh.out))

    assert repo.apply().code == 0
    after_apply = status(repo, "--json")  # every environment of the repository
    assert after_apply.code == 0, after_apply.err
    assert listed(after_apply) == [
        ("vm", "web", "web", "in sync"),
        ("vm", None, "legacy-db", "unmanaged"),
        ("vm", None, "spare", "unmanaged"),
    ]
    legacy_uuid = pool.api.VM.get_uuid(legacy)
    [item] = [i for i in json.loads(after_apply.out) if i["resource_name"] == "legacy-db"]
    assert item["detail"] == (
        f"Running, uuid {legacy_uuid}: no bojdeploy.managed in other_config; "
        "never changed or deleted by bojdeploy"
    )
    text = status(repo, "--env", "test")
    assert text.code == 0
    assert "test  vm    -     legacy-db  unmanaged  Running, uuid" in text.out
    assert "All 1 in sync; 2 unmanaged (not bojdeploy's: never changed or deleted)." in text.out

    calls = len(sim.calls)
    (repo.root / "deploy" / "web.yml").unlink()
    repo.config(allow_vm_destroy=True)
    pruned = repo.apply("--prune")
    assert pruned.code == 0, pruned.err
    assert pool.vms("web") == []
    assert {vm: facts(pool, vm) for vm in (legacy, spare)} == before
    theirs = {legacy, spare}
    touched = [m for m, p in sim.calls[calls:] if theirs & set(map(str, p)) and ".get_" not in m]
    assert touched == []
    with open_store(repo.db_url) as store:
        names = {r.name for r in store.list_deployments(limit=100)}
    assert names == {"web"}
    gone = status(repo, "--env", "test", "--json")
    assert gone.code == 0 and listed(gone)[-2:] == [
        ("vm", None, "legacy-db", "unmanaged"),
        ("vm", None, "spare", "unmanaged"),
    ]


def test_a_manifest_named_like_an_unmanaged_vm_is_refused(
    repo: VMRepo, pool: Pool, sim: XapiSimulator
) -> None:
    legacy = their_vm(pool, "legacy-db", start=True)
    before = facts(pool, legacy)
    web = (repo.root / "deploy" / "web.yml").read_text()
    (repo.root / "deploy" / "db.yml").write_text(web.replace("{name: web}", "{name: legacy-db}"))
    changes = len(sim.mutating_calls())
    refused = repo.apply("--prune")
    assert refused.code == 1
    assert (
        'deploy/db.yml: vm "legacy-db" exists on the target but is not managed by bojdeploy'
        in refused.err
    )
    assert len(sim.mutating_calls()) == changes  # the plan refused: nothing changed, not even web
    assert facts(pool, legacy) == before
    result = status(repo, "--env", "test", "--json")
    assert listed(result) == [("vm", None, "legacy-db", "unmanaged")]


def test_an_unreachable_pool_leaves_the_listing_unchecked(repo: VMRepo) -> None:
    dead = "http://127.0.0.1:9"
    result = status(repo, "--env", "test", "--json", url=dead)
    assert result.code == 0, result.err
    [item] = json.loads(result.out)
    assert (item["kind"], item["state"], item["drifted"]) == ("vm", "not checked", False)
    assert item["detail"].startswith("unmanaged resources not listed: ")
    assert dead in item["detail"]


def test_no_pool_no_listing(repo: VMRepo, tmp_path: Path) -> None:
    result = run_cli("--database-url", repo.db_url, "status", "--env", "test", str(repo.root))
    assert (result.code, result.out.strip()) == (0, "No deployments recorded.")
