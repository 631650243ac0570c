"""Fleets, continued: rollback by name on one host, status of a host no longer defined, and
unfinished work looked up per host (real engines, as in test_fleet)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bojdeploy.store import open_store
from tests import fleet
from tests.helpers import CliResult, run_cli
from tests.test_fleet import Fleet, app  # noqa: F401  (the fixture)

TWO = ("default", "engine-1")


def test_rollback_by_name_chooses_a_host(app: Fleet) -> None:  # noqa: F811
    app.write(hosts=TWO)
    assert app.apply().code == 0
    app.write(image="web:2", hosts=TWO)
    assert app.apply().code == 0

    unchosen = app.cli("rollback", "--name", app.name, str(app.root))
    assert unchosen.code == 2, unchosen.out + unchosen.err
    assert "deployed on several hosts: default, engine-1" in unchosen.err
    assert "--host HOST" in unchosen.err and "Traceback" not in unchosen.err

    unknown = app.cli("rollback", "--name", app.name, "--host", "engine-2", str(app.root))
    assert unknown.code == 2 and "no successful deployment on host engine-2" in unknown.err

    result = app.cli("rollback", "--name", app.name, "--host", "engine-1", str(app.root))
    assert result.code == 0, result.out + result.err
    assert f"container {app.name} @engine-1" in result.out
    assert app.image("engine-1") == "web:1"
    assert app.image("default") == "web:2"  # the other host is left alone
    last = app.rows()[-1]
    assert last.host == "engine-1" and last.rollback_from is not None

    default = app.cli("rollback", "--name", app.name, "--host", "default", str(app.root))
    assert default.code == 0, default.out + default.err
    assert app.image("default") == "web:1"


def test_status_names_a_host_gone_from_the_config(app: Fleet) -> None:  # noqa: F811
    app.write(hosts=TWO)
    assert app.apply().code == 0
    on_engine_1 = next(r.id for r in app.rows() if r.host == "engine-1")
    config = app.root / "bojdeploy.yaml"
    config.write_text(
        "".join(line for line in config.read_text().splitlines(True) if "engine-1" not in line)
    )
    app.write(hosts=("default",))
    status = app.cli("status", str(app.root))
    assert status.code == 1, status.out + status.err
    line = next(x for x in status.out.splitlines() if "@engine-1" in x)
    assert f"host no longer defined in bojdeploy.yaml (recorded deployment #{on_engine_1})" in line
    assert "cannot reach" not in status.out + status.err


def test_unfinished_work_on_another_host_needs_no_connection_here(app: Fleet) -> None:  # noqa: F811
    # a VM deployment left running on engine-2: only a run that goes to engine-2 looks at VMs
    with open_store(app.db) as store:
        store.create_deployment(
            deployment_type="vm", name="left", environment="test", status="running", host="engine-2"
        )
        assert store.unfinished_kinds("test") == {"vm"}
        assert store.unfinished_kinds("test", "engine-1") == set()
        assert store.unfinished_kinds("test", "engine-2") == {"vm"}
    app.write(hosts=TWO)  # no Xen pool is defined: asking default or engine-1 for VMs fails
    result = app.apply()
    assert result.code == 0, result.out + result.err
    assert [(r.host, r.status) for r in app.rows()] == [
        ("", "completed"),
        ("engine-1", "completed"),
    ]
    assert run_cli("--database-url", app.db, "history").code == 0


def test_an_ssh_host_without_an_ssh_client_goes_through_paramiko(
    app: Fleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    bare = tmp_path / "bin"  # a PATH with git and no ssh, as in the action image
    bare.mkdir()
    (bare / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    home = tmp_path / "home"  # ~/.ssh as paramiko reads it: config (no Include), known_hosts
    (home / ".ssh").mkdir(parents=True)
    keys = Path(fleet.ENGINES) / "ssh"
    (home / ".ssh" / "config").write_text((keys / "client_config").read_text())
    app.write()

    def apply() -> CliResult:
        env = {"PATH": str(bare), "HOME": str(home)}
        return run_cli("--database-url", app.db, "apply", "--env", "test", str(app.root), env=env)

    unknown = apply()  # the engine's host key is not in ~/.ssh/known_hosts: refused, one line
    assert unknown.code == 3, unknown.out + unknown.err
    assert "host engine-2" in unknown.err and "ssh:" in unknown.err
    assert "Traceback" not in unknown.err and app.rows() == []

    (home / ".ssh" / "known_hosts").write_text((keys / "known_hosts").read_text())
    result = apply()
    assert result.code == 0, result.out + result.err
    assert app.container("engine-2").status == "running"
