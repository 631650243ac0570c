"""service_config and friends: Service manifest -> docker SDK service arguments, by equality."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from bojdeploy.core.manifest import ServiceManifest
from bojdeploy.drivers.base import Ownership
from bojdeploy.drivers.service_spec import (
    SwarmObject,
    object_name,
    owner_labels,
    pinned_image,
    service_config,
    swarm_objects,
)
from bojdeploy.errors import DriverError

IMAGE = "reg:5000/web:1@sha256:" + "a" * 64
KEY = b"k" * 32
OWNER = Ownership("web", "service", "prod", "h1", 7, "abc123", "org/repo", "deploy/web.yml")
TASK_LABELS = {"io.bojdeploy.environment": "prod", "io.bojdeploy.service": "web"}
DEFAULT_UPDATE = {
    "Parallelism": 1,
    "Delay": 0,
    "FailureAction": "rollback",
    "Monitor": 5_000_000_000,
    "MaxFailureRatio": 0.0,
    "Order": "stop-first",
}
DEFAULT_ROLLBACK = {**DEFAULT_UPDATE, "FailureAction": "pause"}
DEFAULT_RESTART = {"Condition": "any", "Delay": 5_000_000_000, "MaxAttempts": 0, "Window": 0}


def manifest(spec: dict[str, Any], **metadata: Any) -> ServiceManifest:
    """A Service manifest named web with `spec`."""
    return ServiceManifest.model_validate(
        {
            "apiVersion": "bojdeploy/v1",
            "kind": "Service",
            "metadata": {"name": "web", **metadata},
            "spec": spec,
        }
    )


def test_minimal_manifest() -> None:
    cfg = service_config(manifest({"image": "reg:5000/web:1"}), {}, OWNER.labels(), IMAGE)
    assert cfg.name == "web" and cfg.image == IMAGE and cfg.networks == []
    assert cfg.kwargs == {
        "task_template": {
            "ContainerSpec": {
                "Image": IMAGE,
                "Command": None,
                "Args": None,
                "Env": [],
                "Labels": TASK_LABELS,
                "Configs": [],
                "Secrets": [],
            },
            "RestartPolicy": DEFAULT_RESTART,
            "ForceUpdate": 0,
        },
        "name": "web",
        "labels": dict(sorted(OWNER.labels().items())),
        "mode": {"replicated": {"Replicas": 1}},
        "update_config": DEFAULT_UPDATE,
        "rollback_config": DEFAULT_ROLLBACK,
        "endpoint_spec": {},
    }


def test_every_field() -> None:
    spec = {
        "image": "reg:5000/web:1",
        "replicas": 3,
        "command": "httpd -f -p 80",
        "env": {"B": "2", "A": "x=__BOJSECRET_TOKEN__"},
        "ports": [
            "8080:80",
            {"published": 9000, "target": 9000, "protocol": "udp", "mode": "host"},
            53,
        ],
        "networks": ["backend"],
        "placement": {
            "constraints": ["node.role==worker"],
            "preferences": [{"spread": "node.labels.zone"}],
            "max_replicas": 2,
        },
        "update": {"parallelism": 2, "delay": "5s", "monitor": "10s", "order": "start-first"},
        "rollback": {"parallelism": 0, "failure_action": "continue", "max_failure_ratio": 0.5},
        "restart": {"condition": "on-failure", "max_attempts": 3, "delay": "1s", "window": "1m"},
        "resources": {"limits": {"cpus": 0.5, "memory": "256M"}, "reservations": {"memory": "64M"}},
        "healthcheck": {"test": "wget -qO- http://127.0.0.1/", "interval": "2s", "retries": 5},
        "user": "1000",
        "labels": {"team": "spec", "io.bojdeploy.deployment-id": "spoofed"},
        "container_labels": {"tier": "front", "io.bojdeploy.service": "spoofed"},
    }
    cfg = service_config(
        manifest(spec, labels={"team": "metadata", "owner": "ops"}),
        {"TOKEN": "t0k"},
        OWNER.labels(),
        IMAGE,
        force_update=4,
    )
    assert cfg.networks == ["backend"]
    assert cfg.kwargs["task_template"] == {
        "ContainerSpec": {
            "Image": IMAGE,
            "Command": None,
            "Args": ["httpd", "-f", "-p", "80"],
            "Env": ["A=x=t0k", "B=2"],
            "User": "1000",
            "Labels": {"tier": "front", **TASK_LABELS},
            "Configs": [],
            "Secrets": [],
            "Healthcheck": {
                "Test": ["CMD-SHELL", "wget -qO- http://127.0.0.1/"],
                "Interval": 2_000_000_000,
                "Timeout": 30_000_000_000,
                "Retries": 5,
                "StartPeriod": 0,
            },
        },
        "Resources": {
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 1024**2},
            "Reservations": {"MemoryBytes": 64 * 1024**2},
        },
        "RestartPolicy": {
            "Condition": "on-failure",
            "Delay": 1_000_000_000,
            "MaxAttempts": 3,
            "Window": 60_000_000_000,
        },
        "Placement": {
            "Constraints": ["node.role==worker"],
            "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
            "MaxReplicas": 2,
        },
        "Networks": [{"Target": "backend"}],
        "ForceUpdate": 4,
    }
    assert cfg.kwargs["labels"] == {
        **OWNER.labels(),
        "owner": "ops",
        "team": "spec",
    }
    assert cfg.kwargs["mode"] == {"replicated": {"Replicas": 3}}
    assert cfg.kwargs["update_config"] == {
        **DEFAULT_UPDATE,
        "Parallelism": 2,
        "Delay": 5_000_000_000,
        "Monitor": 10_000_000_000,
        "Order": "start-first",
    }
    assert cfg.kwargs["rollback_config"] == {
        **DEFAULT_ROLLBACK,
        "Parallelism": 0,
        "FailureAction": "continue",
        "MaxFailureRatio": 0.5,
    }
    assert cfg.kwargs["endpoint_spec"] == {
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080},
            {"Protocol": "udp", "TargetPort": 9000, "PublishMode": "host", "PublishedPort": 9000},
            {"Protocol": "tcp", "TargetPort": 53, "PublishMode": "ingress"},
        ]
    }


def test_global_mode() -> None:
    cfg = service_config(manifest({"image": "web:1", "mode": "global"}), {}, OWNER.labels(), IMAGE)
    assert cfg.kwargs["mode"] == {"global": {}}


def test_changing_metadata_stays_off_the_task_template() -> None:
    """Two deployments of one spec differ in service labels only: Swarm restarts nothing."""
    m = manifest({"image": "web:1", "container_labels": {"tier": "front"}})
    later = Ownership("web", "service", "prod", "h2", 8, "def456", "org/repo", "deploy/web.yml")
    first = service_config(m, {}, OWNER.labels(), IMAGE)
    second = service_config(m, {}, later.labels(), IMAGE)
    assert first.kwargs["task_template"] == second.kwargs["task_template"]
    assert first.kwargs["labels"] != second.kwargs["labels"]
    assert second.kwargs["labels"]["io.bojdeploy.deployment-id"] == "8"


def test_configs_and_secrets_are_content_addressed() -> None:
    m = manifest(
        {
            "image": "web:1",
            "configs": [
                {"source": "./config/nginx.conf", "target": "/etc/nginx.conf", "mode": 0o440}
            ],
            "secrets": [{"name": "api_key", "value": "__BOJSECRET_API_KEY__", "target": "key"}],
        }
    )
    files = {"config/nginx.conf": "worker_processes 1;\n"}
    objects = swarm_objects(m, files, {"API_KEY": "k3y-value"}, KEY)
    sha = hashlib.sha256(b"worker_processes 1;\n").hexdigest()[:10]
    config, secret = objects
    assert config == SwarmObject(
        "config", f"web-nginx.conf-{sha}", b"worker_processes 1;\n", "/etc/nginx.conf", 0o440
    )
    assert secret.kind == "secret" and secret.data == b"k3y-value" and secret.target == "key"
    assert secret.name.startswith("web-api_key-") and len(secret.name) == len("web-api_key-") + 10
    assert "k3y-value" not in repr(secret)
    cfg = service_config(m, {}, OWNER.labels(), IMAGE, [(config, "cid"), (secret, "sid")])
    container = cfg.kwargs["task_template"]["ContainerSpec"]
    assert container["Configs"] == [
        {
            "ConfigID": "cid",
            "ConfigName": config.name,
            "File": {"Name": "/etc/nginx.conf", "UID": "0", "GID": "0", "Mode": 0o440},
        }
    ]
    assert container["Secrets"] == [
        {
            "SecretID": "sid",
            "SecretName": secret.name,
            "File": {"Name": "key", "UID": "0", "GID": "0", "Mode": 0o444},
        }
    ]


def test_a_changed_file_or_secret_gets_a_new_name() -> None:
    m = manifest(
        {
            "image": "web:1",
            "configs": [{"source": "a.conf", "target": "/a"}],
            "secrets": [{"name": "k", "value": "__BOJSECRET_K__"}],
        }
    )
    one = swarm_objects(m, {"a.conf": "1"}, {"K": "one"}, KEY)
    again = swarm_objects(m, {"a.conf": "1"}, {"K": "one"}, KEY)
    two = swarm_objects(m, {"a.conf": "2"}, {"K": "two"}, KEY)
    assert [o.name for o in one] == [o.name for o in again]
    assert {o.name for o in one}.isdisjoint(o.name for o in two)
    assert one[1].target == "k"


def test_a_config_source_that_was_not_read() -> None:
    m = manifest({"image": "web:1", "configs": [{"source": "missing.conf", "target": "/m"}]})
    with pytest.raises(DriverError, match="config source missing.conf was not read"):
        swarm_objects(m, {}, {}, KEY)


@pytest.mark.parametrize(
    ("service", "base", "expected_stem"),
    [
        ("web", "nginx.conf", "web-nginx.conf"),
        ("web", "my file+x.conf", "web-my-file-x.conf"),
        ("a" * 63, "nginx.conf", "a" * 53),
        ("a" * 50, "x._-long", "a" * 50 + "-x"),
    ],
)
def test_object_names_fit_swarm(service: str, base: str, expected_stem: str) -> None:
    name = object_name(service, base, b"data")
    assert name == f"{expected_stem}-{hashlib.sha256(b'data').hexdigest()[:10]}"
    assert len(name) <= 64


def test_pinned_image() -> None:
    assert pinned_image("reg:5000/web:1", "sha256:ab") == "reg:5000/web:1@sha256:ab"
    assert pinned_image("web@sha256:cd", "sha256:ab") == "web@sha256:cd"


def test_owner_labels() -> None:
    assert owner_labels("web", "prod") == {
        "io.bojdeploy.managed": "true",
        "io.bojdeploy.kind": "service",
        "io.bojdeploy.name": "web",
        "io.bojdeploy.environment": "prod",
    }


def test_stop_grace_period_reaches_the_task_in_nanoseconds() -> None:
    cfg = service_config(
        manifest({"image": "reg:5000/web:1", "stop_grace_period": "2s"}), {}, OWNER.labels(), IMAGE
    )
    assert cfg.kwargs["task_template"]["ContainerSpec"]["StopGracePeriod"] == 2_000_000_000
