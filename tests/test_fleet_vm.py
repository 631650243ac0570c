"""A VM on a named pool of a fleet: its own URL and password, records and drift per host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import XenAPI

from bojdeploy.store import open_store
from tests.helpers import CliResult, run_cli

NETWORK = "Pool-wide network associated with eth0"


def vm_manifest(name: str, hosts: str) -> str:
    return (
        f"apiVersion: bojdeploy/v1\nkind: VM\nmetadata: {{name: {name}{hosts}}}\nspec:\n"
        f"  template: Debian Bookworm 12\n  memory: 1GiB\n  networks: [{{network: {NETWORK}}}]\n"
        "  wait: {start: 30s, ip: 10s}\n"
    )


def vms(sim: Any, password: str) -> dict[str, str]:
    """name_label -> power state of the VMs (not templates) on a simulated pool."""
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", password, "1.0", "fleet-test")
    try:
        records = session.xenapi.VM.get_all_records().values()
        return {
            r["name_label"]: r["power_state"]
            for r in records
            if not r["is_a_template"] and not r["is_control_domain"]
        }
    finally:
        session.xenapi.session.logout()


def shut_down(sim: Any, password: str, name: str) -> None:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", password, "1.0", "fleet-test")
    try:
        (ref,) = session.xenapi.VM.get_by_name_label(name)
        session.xenapi.VM.hard_shutdown(ref)
    finally:
        session.xenapi.session.logout()


def test_vm_on_pool_b_with_its_own_password_and_drift_per_host(
    tmp_path: Path, xapi_pools: dict[str, Any]
) -> None:
    a, b = xapi_pools["pool-a"], xapi_pools["pool-b"]
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    (root / "bojdeploy.yaml").write_text(
        "environments:\n  test: {branches: ['*']}\n"
        f"targets:\n  test:\n    xen_url: {a.url}\n"
        f"    hosts:\n      pool-b: {{xen_url: '{b.url}', xen_username: root}}\n"
    )
    (root / "deploy" / "vms.yml").write_text(
        vm_manifest("box-a", "") + "---\n" + vm_manifest("box-b", ", hosts: [pool-b]")
    )
    db = f"sqlite:///{tmp_path / 'state.db'}"
    env = {"BOJDEPLOY_XEN_PASSWORD": "secret-a", "BOJDEPLOY_XEN_PASSWORD_POOL_B": "secret-b"}

    def cli(*args: str) -> CliResult:
        return run_cli("--database-url", db, *args, env=env)

    result = cli("apply", "--env", "test", str(root))
    assert result.code == 0, result.out + result.err
    assert "ok     vm box-b @pool-b" in result.out
    assert vms(a, "secret-a") == {"box-a": "Running"}
    assert vms(b, "secret-b") == {"box-b": "Running"}
    with open_store(db) as store:
        hosts = {d.name: d.host for d in store.list_deployments()}
    assert hosts == {"box-a": "", "box-b": "pool-b"}

    in_sync = cli("status", "--env", "test", str(root))
    assert in_sync.code == 0, in_sync.out + in_sync.err
    assert "All 2 in sync." in in_sync.out

    shut_down(b, "secret-b", "box-b")
    drifted = cli("status", "--env", "test", str(root))
    assert drifted.code == 1
    line = next(ln for ln in drifted.out.splitlines() if "box-b @pool-b" in ln)
    assert "stopped" in line
    assert "1 of 2 drifted." in drifted.out

    wrong = run_cli(
        "--database-url",
        db,
        "apply",
        "--env",
        "test",
        str(root),
        env={"BOJDEPLOY_XEN_PASSWORD": "secret-a", "BOJDEPLOY_XEN_PASSWORD_POOL_B": "nope"},
    )
    assert wrong.code == 3, wrong.out + wrong.err
    assert "host pool-b" in wrong.err
