"""Fleets in bojdeploy.yaml and manifests: named hosts, metadata.hosts, spec.rollout.

Every mistake is a validation error (exit 2) naming the file, the line and the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli

CONFIG = """environments:
  production: {branches: [main]}
  staging: {branches: [staging]}
targets:
  production:
    docker_host: unix:///var/run/docker.sock
    hosts:
      edge-1: {docker_host: "ssh://deploy@edge-1"}
      edge-2: {docker_host: "tcp://edge-2:2376", tls_verify: true}
      swarm-b: {docker_host: "unix:///run/b.sock"}
      pool-b: {xen_url: "https://xen-b.example", xen_username: root}
"""
CONTAINER = """apiVersion: bojdeploy/v1
kind: Container
metadata:
  name: web
  environments: [production]
  hosts: {hosts}
spec:
  image: busybox
{extra}"""
SERVICE = """apiVersion: bojdeploy/v1
kind: Service
metadata:
  name: api
  environments: [production]
  hosts: {hosts}
spec:
  image: busybox
"""
VM = """apiVersion: bojdeploy/v1
kind: VM
metadata:
  name: box
  environments: [production]
  hosts: {hosts}
spec:
  template: debian
  memory: 1GiB
"""


def repo_with(tmp_path: Path, manifest: str, config: str = CONFIG) -> Path:
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    (repo / "bojdeploy.yaml").write_text(config)
    (repo / "deploy" / "m.yml").write_text(manifest)
    return repo


@pytest.mark.parametrize(
    "manifest",
    [
        CONTAINER.format(hosts="[edge-1, edge-2, default]", extra=""),
        CONTAINER.format(
            hosts="[edge-1]", extra="  rollout: {parallel: 2, on_failure: rollback}\n"
        ),
        SERVICE.format(hosts="[swarm-b]"),
        VM.format(hosts="[pool-b]"),
    ],
)
def test_valid_fleets(tmp_path: Path, manifest: str) -> None:
    result = run_cli("validate", str(repo_with(tmp_path, manifest)))
    assert result.code == 0, result.out + result.err


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            CONTAINER.format(hosts="[edge-1, edge-9]", extra=""),
            "deploy/m.yml:6: metadata.hosts[1]: unknown host 'edge-9' for environment production",
        ),
        (
            SERVICE.format(hosts="[swarm-b, edge-1]"),
            "deploy/m.yml:6: metadata.hosts: a Service goes to one host (a Swarm manager); 2",
        ),
        (
            VM.format(hosts="[pool-b, edge-1]"),
            "deploy/m.yml:6: metadata.hosts: a VM goes to one host (a Xen pool); 2 are named",
        ),
        (CONTAINER.format(hosts="[edge-1, edge-1]", extra=""), "host 'edge-1' is named twice"),
        (CONTAINER.format(hosts="[Edge_1]", extra=""), "invalid host name 'Edge_1'"),
        (CONTAINER.format(hosts="[]", extra=""), "name at least one host"),
        (
            CONTAINER.format(hosts="[edge-1]", extra="  rollout: {parallel: 0}\n"),
            "spec.rollout.parallel",
        ),
        (
            CONTAINER.format(hosts="[edge-1]", extra="  rollout: {on_failure: undo}\n"),
            "spec.rollout.on_failure",
        ),
    ],
)
def test_manifest_mistakes(tmp_path: Path, manifest: str, expected: str) -> None:
    result = run_cli("validate", str(repo_with(tmp_path, manifest)))
    assert result.code == 2
    assert expected in result.out + result.err


def test_hosts_of_another_environment_are_unknown(tmp_path: Path) -> None:
    manifest = CONTAINER.format(hosts="[edge-1]", extra="").replace(
        "environments: [production]", "environments: [staging]"
    )
    result = run_cli("validate", str(repo_with(tmp_path, manifest)))
    assert result.code == 2
    assert "unknown host 'edge-1' for environment staging (known: default;" in result.err


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (
            'edge-1: {docker_host: "ftp://edge-1"}',
            "bojdeploy.yaml:8: targets.production.hosts.edge-1",
        ),
        ('edge-1: {docker_host: "ftp://edge-1"}', "invalid docker_host 'ftp://edge-1'"),
        ('edge-1: {xen_url: "xen-b"}', "invalid xen_url 'xen-b'"),
        ("edge-1: {}", "a host needs docker_host or xen_url"),
        ('edge-1: {docker_host: "ssh://edge-1", tls_verify: true}', "need a tcp:// docker_host"),
        ('default: {docker_host: "ssh://edge-1"}', "'default' names the environment's own"),
        ('Edge_1: {docker_host: "ssh://edge-1"}', "invalid host name 'Edge_1'"),
        ('edge-1: {docker_host: "ssh://edge-1", tsl_verify: true}', "tsl_verify"),
    ],
)
def test_config_mistakes(tmp_path: Path, host: str, expected: str) -> None:
    config = (
        "environments:\n  production: {branches: [main]}\ntargets:\n  production:\n"
        "    docker_host: unix:///var/run/docker.sock\n    hosts:\n"
        "      ok: {docker_host: unix:///run/ok.sock}\n"
        f"      {host}\n"
    )
    result = run_cli(
        "validate", str(repo_with(tmp_path, CONTAINER.format(hosts="[ok]", extra=""), config))
    )
    assert result.code == 2
    assert expected in result.out + result.err
