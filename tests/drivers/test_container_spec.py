"""container_config and friends: manifest -> docker SDK arguments, tested by equality."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError

from bojdeploy.core.manifest import ContainerManifest, ContainerSpec
from bojdeploy.drivers.container_spec import (
    ContainerConfig,
    container_config,
    parse_image,
    port_bindings,
    pull_policy,
    registry_auth,
    restart_policy,
    volume_binds,
)
from bojdeploy.errors import DriverError

OWNER = {"io.bojdeploy.managed": "true", "io.bojdeploy.name": "web"}


def manifest(spec: dict[str, Any], **metadata: Any) -> ContainerManifest:
    """A Container manifest named web with `spec`."""
    return ContainerManifest.model_validate(
        {
            "apiVersion": "bojdeploy/v1",
            "kind": "Container",
            "metadata": {"name": "web", **metadata},
            "spec": spec,
        }
    )


def test_minimal_manifest() -> None:
    cfg = container_config(manifest({"image": "reg:5000/web:1"}), {}, OWNER)
    assert cfg == ContainerConfig(
        name="web",
        image="reg:5000/web:1",
        create_kwargs={
            "image": "reg:5000/web:1",
            "name": "web",
            "command": None,
            "entrypoint": None,
            "environment": {},
            "ports": [],
            "labels": OWNER,
            "user": None,
            "detach": True,
            "stop_timeout": 10,
            "healthcheck": None,
        },
        host_config_kwargs={
            "binds": [],
            "port_bindings": {},
            "network_mode": "default",
            "restart_policy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
            "privileged": False,
        },
        networks=[],
        volumes=[],
    )


def test_every_field() -> None:
    spec = {
        "image": "reg:5000/web:1",
        "container_name": "web-blue",
        "command": "httpd -f -p 80",
        "entrypoint": ["/bin/sh", "-c"],
        "env": {"LOG_LEVEL": "info", "DB_PASSWORD": "pw=__BOJSECRET_DB_PASSWORD__"},
        "ports": ["127.0.0.1:18080:80", "9090:9090/udp"],
        "volumes": ["webdata:/var/lib/web", "/srv/web/conf:/etc/web:ro"],
        "networks": ["frontend", "backend"],
        "restart": "on-failure:3",
        "labels": {"team": "spec", "io.bojdeploy.name": "spoofed"},
        "user": "1000:1000",
        "privileged": True,
        "resources": {"memory": "256M", "cpus": 0.5},
        "healthcheck": {
            "test": ["CMD", "wget", "-qO-", "http://127.0.0.1/"],
            "interval": "5s",
            "timeout": "3s",
            "retries": 4,
            "start_period": "1500ms",
        },
        "stop_timeout": "20s",
    }
    cfg = container_config(
        manifest(spec, labels={"team": "metadata", "tier": "front"}),
        {"DB_PASSWORD": "s3cret"},
        OWNER,
    )
    assert cfg.name == "web-blue"
    assert cfg.networks == ["frontend", "backend"]
    assert cfg.volumes == ["webdata"]
    assert cfg.create_kwargs == {
        "image": "reg:5000/web:1",
        "name": "web-blue",
        "command": ["httpd", "-f", "-p", "80"],
        "entrypoint": ["/bin/sh", "-c"],
        "environment": {"LOG_LEVEL": "info", "DB_PASSWORD": "pw=s3cret"},
        "ports": [(80, "tcp"), (9090, "udp")],
        "labels": {
            "team": "spec",
            "tier": "front",
            "io.bojdeploy.managed": "true",
            "io.bojdeploy.name": "web",
        },
        "user": "1000:1000",
        "detach": True,
        "stop_timeout": 20,
        "healthcheck": {
            "test": ["CMD", "wget", "-qO-", "http://127.0.0.1/"],
            "interval": 5_000_000_000,
            "timeout": 3_000_000_000,
            "retries": 4,
            "start_period": 1_500_000_000,
        },
        "networking_config": {"EndpointsConfig": {"frontend": {}}},
    }
    assert cfg.host_config_kwargs == {
        "binds": ["webdata:/var/lib/web:rw", "/srv/web/conf:/etc/web:ro"],
        "port_bindings": {"80/tcp": [("127.0.0.1", 18080)], "9090/udp": [("", 9090)]},
        "network_mode": "frontend",
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 3},
        "privileged": True,
        "mem_limit": 256 * 1024**2,
        "nano_cpus": 500_000_000,
    }


def test_secrets_are_revealed_only_in_the_result() -> None:
    m = manifest({"image": "web:1", "command": ["run", "--token=__BOJSECRET_TOKEN__"]})
    cfg = container_config(m, {"TOKEN": "t0ken"}, OWNER)
    assert cfg.create_kwargs["command"] == ["run", "--token=t0ken"]
    assert m.spec.command == ["run", "--token=__BOJSECRET_TOKEN__"]


def test_network_mode() -> None:
    cfg = container_config(manifest({"image": "web:1", "network_mode": "host"}), {}, OWNER)
    assert cfg.host_config_kwargs["network_mode"] == "host"
    assert "networking_config" not in cfg.create_kwargs


def test_network_mode_and_networks_conflict_is_refused_by_validation() -> None:
    with pytest.raises(ValidationError, match="set network_mode or networks, not both"):
        manifest({"image": "web:1", "network_mode": "host", "networks": ["frontend"]})


@pytest.mark.parametrize(
    ("ports", "exposed", "bindings"),
    [
        (["80"], [(80, "tcp")], {"80/tcp": [("", None)]}),
        (["8080:80"], [(80, "tcp")], {"80/tcp": [("", 8080)]}),
        (["127.0.0.1::80"], [(80, "tcp")], {"80/tcp": [("127.0.0.1", None)]}),
        (["[::1]:53:53/udp"], [(53, "udp")], {"53/udp": [("::1", 53)]}),
        (
            ["8000-8001:80-81/tcp"],
            [(80, "tcp"), (81, "tcp")],
            {"80/tcp": [("", 8000)], "81/tcp": [("", 8001)]},
        ),
        (
            ["127.0.0.1:8080:80", "127.0.0.1:8081:80", "80/udp"],
            [(80, "tcp"), (80, "udp")],
            {"80/tcp": [("127.0.0.1", 8080), ("127.0.0.1", 8081)], "80/udp": [("", None)]},
        ),
    ],
)
def test_port_bindings(ports: list[str], exposed: list[Any], bindings: dict[str, Any]) -> None:
    assert port_bindings(ports) == (exposed, bindings)


def test_port_ranges_must_match() -> None:
    with pytest.raises(DriverError, match="host and container ranges differ"):
        port_bindings(["8000-8002:80-81"])


def test_volume_binds() -> None:
    assert volume_binds(["data:/a", "data:/b:ro", "/srv:/c", "/srv:/d:rw"]) == (
        ["data:/a:rw", "data:/b:ro", "/srv:/c:rw", "/srv:/d:rw"],
        ["data"],
    )


@pytest.mark.parametrize(
    ("restart", "policy"),
    [
        ("no", {"Name": "no", "MaximumRetryCount": 0}),
        ("always", {"Name": "always", "MaximumRetryCount": 0}),
        ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
    ],
)
def test_restart_policy(restart: str, policy: dict[str, Any]) -> None:
    assert restart_policy(restart) == policy


DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("web", ("web", "latest")),
        ("web:1.4.2", ("web", "1.4.2")),
        ("127.0.0.1:5000/team/web:1", ("127.0.0.1:5000/team/web", "1")),
        ("127.0.0.1:5000/web", ("127.0.0.1:5000/web", "latest")),
        (f"reg:5000/web@{DIGEST}", ("reg:5000/web", DIGEST)),
        (f"reg:5000/web:1@{DIGEST}", ("reg:5000/web", DIGEST)),
    ],
)
def test_parse_image(ref: str, parsed: tuple[str, str]) -> None:
    assert parse_image(ref) == parsed


@pytest.mark.parametrize(
    ("image", "pull", "policy"),
    [
        ("web:1", "auto", "always"),
        (f"web@{DIGEST}", "auto", "if-missing"),
        (f"web:1@{DIGEST}", "auto", "if-missing"),
        ("web:1", "never", "never"),
        (f"web@{DIGEST}", "always", "always"),
    ],
)
def test_pull_policy(image: str, pull: str, policy: str) -> None:
    assert pull_policy(ContainerSpec(image=image, pull=pull)) == policy  # type: ignore[arg-type]


def _config(auths: dict[str, Any]) -> str:
    return json.dumps({"auths": auths})


def test_registry_auth() -> None:
    token = base64.b64encode(b"deploy:pa:ss").decode()
    config = _config({"https://reg.example:5000/v1/": {"auth": token}})
    assert registry_auth("reg.example:5000/web", config) == {
        "username": "deploy",
        "password": "pa:ss",
    }
    assert registry_auth("other.example/web", config) is None
    assert registry_auth("reg.example:5000/web", None) is None


def test_registry_auth_docker_hub_and_plain_fields() -> None:
    config = _config({"https://index.docker.io/v1/": {"username": "u", "password": "p"}})
    assert registry_auth("library/busybox", config) == {"username": "u", "password": "p"}
    assert registry_auth("busybox", config) == {"username": "u", "password": "p"}
    tokens = _config({"reg:5000": {"identitytoken": "tok"}})
    assert registry_auth("reg:5000/web", tokens) == {"identitytoken": "tok"}


def test_registry_auth_invalid() -> None:
    with pytest.raises(DriverError, match="DOCKER_AUTH_CONFIG is not a docker config.json"):
        registry_auth("reg:5000/web", "[1, 2")
