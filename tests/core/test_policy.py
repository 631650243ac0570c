"""The repository policy: host networking by any key or spelling, and bind-mount sources whose
symlinks lead out of the allowed paths (resolved when the Docker engine is this machine's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bojdeploy import engine
from bojdeploy.engine.workspace import open_workspace
from bojdeploy.errors import ManifestError
from tests.helpers import CliResult, run_cli

CONTAINER = """apiVersion: bojdeploy/v1
kind: Container
metadata: {name: web}
spec:
  image: busybox
"""
SERVICE = """apiVersion: bojdeploy/v1
kind: Service
metadata: {name: api}
spec:
  image: busybox
"""


def repo_with(tmp_path: Path, manifest: str, policy: str = "", targets: str = "") -> Path:
    """A repository with one manifest and a bojdeploy.yaml holding `policy` and `targets`."""
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    config = "environments:\n  production: {branches: [main]}\n"
    if policy:
        config += f"policy:\n{policy}"
    if targets:
        config += f"targets:\n  production: {targets}\n"
    (repo / "bojdeploy.yaml").write_text(config)
    (repo / "deploy" / "m.yml").write_text(manifest)
    return repo


def validate(repo: Path, docker_host: str = "") -> CliResult:
    return run_cli("validate", str(repo), env={"DOCKER_HOST": docker_host})


@pytest.mark.parametrize(
    ("manifest", "key"),
    [
        (CONTAINER + "  networks: [host]\n", "spec.networks[0]"),
        (CONTAINER + "  networks: [Host]\n", "spec.networks[0]"),
        (SERVICE + "  networks: [backend, host]\n", "spec.networks[1]"),
        (CONTAINER + "  network_mode: host\n", "spec.network_mode"),
        (CONTAINER + "  network_mode: HOST\n", "spec.network_mode"),
        (CONTAINER + "  network_mode: container:db\n", "spec.network_mode"),
    ],
)
def test_host_network_needs_the_policy_whatever_the_key_or_spelling(
    tmp_path: Path, manifest: str, key: str
) -> None:
    result = validate(repo_with(tmp_path, manifest))
    assert result.code == 2
    assert f"deploy/m.yml:6: {key}: policy: " in result.err
    assert "(policy.allow_host_network)" in result.err

    allowed = validate(repo_with(tmp_path / "allowed", manifest, "  allow_host_network: true\n"))
    assert allowed.code == 0, allowed.err


@pytest.mark.parametrize(
    "mode", ['" host"', '"host "', '"ns:/proc/1/ns/net"', '"container:"', '"bridge;host"']
)
def test_network_mode_that_is_no_docker_mode_is_refused(tmp_path: Path, mode: str) -> None:
    manifest = CONTAINER + f"  network_mode: {mode}\n"
    result = validate(repo_with(tmp_path, manifest, "  allow_host_network: true\n"))
    assert result.code == 2
    assert "deploy/m.yml:6: spec.network_mode: invalid network_mode" in result.err


def test_host_network_is_the_only_network_of_a_container(tmp_path: Path) -> None:
    manifest = CONTAINER + "  networks: [backend, host]\n"
    result = validate(repo_with(tmp_path, manifest, "  allow_host_network: true\n"))
    assert result.code == 2
    assert "spec: network 'host' cannot be combined with other networks" in result.err


def test_network_mode_is_canonicalised(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, CONTAINER + "  network_mode: HOST\n", "  allow_host_network: true\n")
    result = open_workspace([repo]).load("production", {})
    assert not result.errors
    assert result.manifests[0].manifest.spec.network_mode == "host"  # type: ignore[union-attr]


@pytest.mark.parametrize("source", ["./data", "data/sub", "~/data", "~root/data", " /srv/x"])
def test_volume_source_that_is_no_absolute_path_or_volume_name_is_refused(
    tmp_path: Path, source: str
) -> None:
    manifest = CONTAINER + f'  volumes: ["{source}:/data"]\n'
    result = validate(repo_with(tmp_path, manifest, '  allowed_host_paths: ["/srv/"]\n'))
    assert result.code == 2
    assert "deploy/m.yml:6: spec.volumes[0]: invalid volume" in result.err


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    """An allowed host path with a symlink to the Docker socket, one to /etc, one inside."""
    srv = tmp_path / "srv"
    (srv / "data").mkdir(parents=True)
    os.symlink("/var/run/docker.sock", srv / "sock")
    os.symlink("/etc", srv / "etc")
    os.symlink(srv / "data", srv / "current")
    return srv


def symlink_repo(tmp_path: Path, allowed: Path, source: str, targets: str = "") -> Path:
    manifest = CONTAINER + f'  volumes: ["{allowed}/{source}:/mnt"]\n'
    return repo_with(tmp_path, manifest, f'  allowed_host_paths: ["{allowed}/"]\n', targets)


def test_symlink_under_allowed_path_to_docker_socket_is_refused(
    tmp_path: Path, allowed: Path
) -> None:
    result = validate(symlink_repo(tmp_path, allowed, "sock"))
    assert result.code == 2
    socket = os.path.realpath("/var/run/docker.sock")  # /run/docker.sock where /var/run is a link
    assert (
        f"deploy/m.yml:6: spec.volumes[0]: policy: {allowed}/sock is a symlink to "
        f"{socket}: mounting the Docker socket {socket} is not allowed"
    ) in result.err


def test_symlinked_folder_leading_out_of_allowed_path_is_refused(
    tmp_path: Path, allowed: Path
) -> None:
    result = validate(symlink_repo(tmp_path, allowed, "etc/shadow"))
    assert result.code == 2
    assert f"{allowed}/etc/shadow is a symlink to /etc/shadow: host path" in result.err


def test_symlink_that_stays_inside_the_allowed_path_is_accepted(
    tmp_path: Path, allowed: Path
) -> None:
    result = validate(symlink_repo(tmp_path, allowed, "current"))
    assert result.code == 0, result.err


def test_socket_allowed_by_name_is_allowed_through_a_symlinked_folder(tmp_path: Path) -> None:
    """/var/run is a symlink to /run on many systems: allowing the socket by either name works."""
    manifest = CONTAINER + '  volumes: ["/var/run/docker.sock:/var/run/docker.sock"]\n'
    repo = repo_with(tmp_path, manifest, '  allowed_host_paths: ["/var/run/docker.sock"]\n')
    result = validate(repo)
    assert result.code == 0, result.err


def test_apply_and_plan_refuse_the_symlink_too(tmp_path: Path, allowed: Path) -> None:
    ws = open_workspace([symlink_repo(tmp_path, allowed, "sock")])
    with pytest.raises(ManifestError, match="is a symlink to .*docker.sock"):
        engine.prepare(ws, "production", {"DOCKER_HOST": "unix:///var/run/docker.sock"})


@pytest.mark.parametrize("docker_host", ["ssh://deploy@prod-1", "tcp://10.0.0.5:2376"])
def test_remote_engine_is_checked_lexically_only(
    tmp_path: Path, allowed: Path, docker_host: str
) -> None:
    """This machine's symlinks say nothing about a remote engine's filesystem."""
    assert validate(symlink_repo(tmp_path, allowed, "sock"), docker_host).code == 0
    from_config = symlink_repo(tmp_path / "t", allowed, "sock", f'{{docker_host: "{docker_host}"}}')
    assert validate(from_config).code == 0
