"""ContainerDriver against a real Docker Engine and the local registry."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.manifest import ContainerManifest
from bojdeploy.core.plan import Action, Desired, Observed, Step
from bojdeploy.core.yamlsrc import Document
from bojdeploy.drivers.base import Ownership, Work
from bojdeploy.drivers.container import ContainerDriver, image_digest
from bojdeploy.drivers.container_spec import container_config
from bojdeploy.errors import DriverError
from tests.helpers import Recorder

RUN = uuid.uuid4().hex[:8]
TEST_LABELS = {"io.bojdeploy.test": "true", "io.bojdeploy.test-run": RUN}
FAST_CHECK = {
    "test": ["CMD", "wget", "-qO-", "http://127.0.0.1/"],
    "interval": "300ms",
    "timeout": "2s",
    "retries": 2,
}
SECRET = "s3cr3t-Value-42"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, wait: float = 5.0) -> str:
    """The body served on 127.0.0.1:port, retrying while the server starts."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return r.read().decode().strip()  # type: ignore[no-any-return]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def work(
    action: Action, name: str, spec: dict[str, Any], secrets: dict[str, str] | None = None
) -> Work:
    """A Work item for a Container named `name` (test labels added)."""
    data = {
        "apiVersion": "bojdeploy/v1",
        "kind": "Container",
        "metadata": {"name": name},
        "spec": {**spec, "labels": {**TEST_LABELS, **spec.get("labels", {})}},
    }
    manifest = ContainerManifest.model_validate(data)
    loaded = LoadedManifest(manifest, f"deploy/{name}.yml", "test", Document(data, 1))
    desired = Desired("container", name, "test", name, "hash", {}, loaded.file)
    step = Step(action, "container", name, "test", desired, None)
    owner = Ownership(name, "container", "test", "hash", 1, "abc123", "org/repo", loaded.file)
    return Work(step, loaded, secrets or {}, owner)


def delete_work(name: str) -> Work:
    """A Work item that deletes the container `name`."""
    observed = Observed("container", name, True, name, "test")
    return Work(Step(Action.DELETE, "container", name, "test", None, observed), None)


@pytest.fixture
def driver(docker_client: Any) -> Iterator[ContainerDriver]:
    """A driver; every container, network and volume of this test run is removed afterwards."""
    yield ContainerDriver(docker_client, environ={})
    api = docker_client.api
    for c in api.containers(all=True, filters={"label": f"io.bojdeploy.test-run={RUN}"}):
        api.remove_container(c["Id"], force=True)
    for n in api.networks(names=[f"bojt-{RUN}"]):
        api.remove_network(n["Id"])
    for v in (api.volumes(filters={"name": f"bojt-{RUN}"}) or {}).get("Volumes") or []:
        api.remove_volume(v["Name"])


@pytest.fixture
def name() -> str:
    """A container name unique to this test."""
    return f"bojt-{RUN}-{uuid.uuid4().hex[:6]}"


def web(images: dict[str, str], tag: str, port: int, **extra: Any) -> dict[str, Any]:
    """A spec for one of the test images, published on 127.0.0.1:port."""
    # busybox httpd as PID 1 ignores SIGTERM: a short stop_timeout keeps the tests quick.
    return {"image": images[tag], "ports": [f"127.0.0.1:{port}:80"], "stop_timeout": "1s", **extra}


def ours(client: Any) -> list[str]:
    """Names of this run's containers."""
    found = client.api.containers(all=True, filters={"label": f"io.bojdeploy.test-run={RUN}"})
    return sorted(c["Names"][0].lstrip("/") for c in found)


def test_create(driver: ContainerDriver, docker_client: Any, test_images: Any, name: str) -> None:
    port, log = free_port(), Recorder()
    # Credentials from DOCKER_AUTH_CONFIG are sent (the test registry accepts any).
    auth = base64.b64encode(b"deploy:pw").decode()
    driver.environ = {
        "DOCKER_AUTH_CONFIG": json.dumps({"auths": {"127.0.0.1:5000": {"auth": auth}}})
    }
    spec = web(
        test_images,
        "web:1",
        port,
        networks=[f"bojt-{RUN}-net"],
        volumes=[f"bojt-{RUN}-data:/data"],
        restart="on-failure:2",
    )
    applied = driver.apply(work(Action.CREATE, name, spec), log)
    assert applied.summary == f"created container {name} ({test_images['web:1']})"
    assert applied.seconds > 0
    assert http_get(port) == "version 1"
    info = docker_client.api.inspect_container(name)
    labels = info["Config"]["Labels"]
    assert labels["io.bojdeploy.managed"] == "true"
    assert labels["io.bojdeploy.deployment-id"] == "1"
    assert labels["io.bojdeploy.test-run"] == RUN
    assert list(info["NetworkSettings"]["Networks"]) == [f"bojt-{RUN}-net"]
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert info["Mounts"][0]["Name"] == f"bojt-{RUN}-data"
    assert any(m.startswith(f"pulled {test_images['web:1']} (sha256:") for _, m, _ in log.lines)
    assert f"created network bojt-{RUN}-net" in log.text


def test_secret_reaches_the_container_but_not_the_log(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    log = Recorder()
    spec = web(test_images, "web:1", free_port(), env={"PASSWORD": "__BOJSECRET_PW__"})
    driver.apply(work(Action.CREATE, name, spec, {"PW": SECRET}), log)
    assert f"PASSWORD={SECRET}" in docker_client.api.inspect_container(name)["Config"]["Env"]
    assert SECRET not in log.text


def test_replace(driver: ContainerDriver, docker_client: Any, test_images: Any, name: str) -> None:
    port = free_port()
    driver.apply(work(Action.CREATE, name, web(test_images, "web:1", port)), Recorder())
    assert http_get(port) == "version 1"
    spec = web(test_images, "web:2", port, healthcheck=FAST_CHECK)
    applied = driver.apply(work(Action.REPLACE, name, spec), Recorder())
    assert applied.summary == f"replaced container {name} with {test_images['web:2']}"
    assert applied.facts["image_id"] == docker_client.api.inspect_container(name)["Image"]
    assert http_get(port) == "version 2"
    assert ours(docker_client) == [name]


@pytest.mark.parametrize(
    ("tag", "extra", "why"),
    [
        ("unhealthy:1", {"healthcheck": FAST_CHECK}, "became unhealthy"),
        ("crash:1", {"env": {"PASSWORD": "__BOJSECRET_PW__"}}, "keeps restarting|exited"),
        (
            "unhealthy:1",
            {"healthcheck": {**FAST_CHECK, "retries": 100}, "timeout": "2s"},
            r"did not become healthy within 2s \(starting\)",
        ),
    ],
    ids=["unhealthy", "crash", "timeout"],
)
def test_failed_replace_restores_the_previous_container(
    driver: ContainerDriver,
    docker_client: Any,
    test_images: Any,
    name: str,
    tag: str,
    extra: dict[str, Any],
    why: str,
) -> None:
    port = free_port()
    driver.apply(work(Action.CREATE, name, web(test_images, "web:1", port)), Recorder())
    old = docker_client.api.inspect_container(name)["Id"]
    log = Recorder()
    with pytest.raises(DriverError, match=why) as failed:
        driver.apply(
            work(Action.REPLACE, name, web(test_images, tag, port, **extra), {"PW": SECRET}), log
        )
    assert "the previous container was restored" in str(failed.value)
    assert SECRET not in str(failed.value) and SECRET not in log.text
    info = docker_client.api.inspect_container(name)
    assert info["Id"] == old and info["State"]["Running"]
    assert http_get(port) == "version 1"
    assert ours(docker_client) == [name]


@pytest.mark.parametrize("restart", ["no", "always"])
def test_a_container_that_exits_within_the_settle_window_is_a_failed_deploy(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str, restart: str
) -> None:
    """Up for 0.2 s, then gone (or restarted by its policy): the previous one is back."""
    port = free_port()
    driver.apply(work(Action.CREATE, name, web(test_images, "web:1", port)), Recorder())
    old = docker_client.api.inspect_container(name)["Id"]
    brief = ["sh", "-c", "echo about to exit; sleep 0.2; exit 3"]
    spec = web(test_images, "web:2", port, command=brief, restart=restart)
    with pytest.raises(DriverError, match="exited with code 3|keeps restarting") as failed:
        driver.apply(work(Action.REPLACE, name, spec), Recorder())
    assert "the previous container was restored" in str(failed.value)
    assert "about to exit" in str(failed.value)
    info = docker_client.api.inspect_container(name)
    assert info["Id"] == old and info["State"]["Running"]
    assert http_get(port) == "version 1"
    assert ours(docker_client) == [name]


def test_a_passing_healthcheck_ends_the_wait(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    """The health check's own verdict ends the wait (reported by the engine's events)."""
    log = Recorder()
    spec = web(test_images, "web:2", free_port(), healthcheck=FAST_CHECK)
    driver.apply(work(Action.CREATE, name, spec), log)
    assert docker_client.api.inspect_container(name)["State"]["Health"]["Status"] == "healthy"
    assert f"container {name} is up" in log.text


def test_unhealthy_error_shows_the_healthcheck_output(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    spec = web(test_images, "unhealthy:1", free_port(), healthcheck=FAST_CHECK)
    with pytest.raises(DriverError) as failed:
        driver.apply(work(Action.CREATE, name, spec), Recorder())
    message = str(failed.value)
    assert "last healthcheck (exit code 1): " in message
    assert "404" in message
    assert "the new container was removed" in message
    assert ours(docker_client) == []


@pytest.mark.parametrize(
    "image",
    ["127.0.0.1:5000/bojdeploy-test/web:404", "127.0.0.1:5999/nothing:1"],
    ids=["missing-tag", "registry-down"],
)
def test_pull_failure_stops_nothing(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str, image: str
) -> None:
    port = free_port()
    driver.apply(work(Action.CREATE, name, web(test_images, "web:1", port)), Recorder())
    before = docker_client.api.inspect_container(name)
    with pytest.raises(DriverError, match=f"cannot pull {image} \\(nothing was changed\\)"):
        driver.apply(
            work(Action.REPLACE, name, {**web(test_images, "web:1", port), "image": image}),
            Recorder(),
        )
    after = docker_client.api.inspect_container(name)
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["Id"] == before["Id"] and after["State"]["Running"]
    assert ours(docker_client) == [name]


def test_unmanaged_container_is_never_touched(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    api = docker_client.api
    ident = api.create_container(test_images["web:1"], name=name, labels=TEST_LABELS)["Id"]
    api.start(ident)
    started = api.inspect_container(ident)["State"]["StartedAt"]
    with pytest.raises(DriverError, match="not managed by bojdeploy"):
        driver.apply(work(Action.REPLACE, name, web(test_images, "web:2", free_port())), Recorder())
    with pytest.raises(DriverError, match="not managed by bojdeploy"):
        driver.apply(delete_work(name), Recorder())
    info = api.inspect_container(ident)
    assert info["State"]["Running"] and info["State"]["StartedAt"] == started
    assert ours(docker_client) == [name]


def test_delete_keeps_volumes(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    volume = f"bojt-{RUN}-keep"
    spec = web(test_images, "web:1", free_port(), volumes=[f"{volume}:/data"])
    driver.apply(work(Action.CREATE, name, spec), Recorder())
    log = Recorder()
    assert driver.apply(delete_work(name), log).summary == f"deleted container {name}"
    assert "stopping" in log.text and "(timeout 1s)" in log.text
    assert ours(docker_client) == []
    assert docker_client.api.inspect_volume(volume)["Name"] == volume
    gone = driver.apply(delete_work(name), Recorder())
    assert gone.summary == f"container {name} is already gone"


def test_unchanged_is_a_no_op(driver: ContainerDriver, test_images: Any, name: str) -> None:
    step = work(Action.UNCHANGED, name, web(test_images, "web:1", free_port()))
    assert driver.apply(step, Recorder()).summary == "unchanged"


def _interrupted(driver: ContainerDriver, client: Any, images: Any, name: str, port: int) -> str:
    """Simulate a crash between 'rename to .previous' and 'create': only `<name>.previous`."""
    driver.apply(work(Action.CREATE, name, web(images, "web:1", port)), Recorder())
    client.api.rename(name, f"{name}.previous")
    client.api.stop(f"{name}.previous", timeout=1)
    return str(client.api.inspect_container(f"{name}.previous")["Id"])


def test_interrupted_deploy_then_success(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    port = free_port()
    _interrupted(driver, docker_client, test_images, name, port)
    log = Recorder()
    driver.apply(work(Action.REPLACE, name, web(test_images, "web:2", port)), log)
    assert f"found {name}.previous without {name}" in log.text
    assert http_get(port) == "version 2"
    assert ours(docker_client) == [name]


def test_interrupted_deploy_then_failure_restores(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    port = free_port()
    old = _interrupted(driver, docker_client, test_images, name, port)
    with pytest.raises(DriverError, match="the previous container was restored"):
        driver.apply(work(Action.REPLACE, name, web(test_images, "crash:1", port)), Recorder())
    assert docker_client.api.inspect_container(name)["Id"] == old
    assert http_get(port) == "version 1"
    assert ours(docker_client) == [name]


def test_stale_previous_beside_a_good_container_is_removed(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    port = free_port()
    driver.apply(work(Action.CREATE, name, web(test_images, "web:1", port)), Recorder())
    labels = {**TEST_LABELS, "io.bojdeploy.managed": "true"}
    docker_client.api.create_container(test_images["web:1"], name=f"{name}.previous", labels=labels)
    log = Recorder()
    driver.apply(work(Action.REPLACE, name, web(test_images, "web:2", port)), log)
    assert f"found {name}.previous beside {name}: finishing or undoing that swap first" in log.text
    assert http_get(port) == "version 2"
    assert ours(docker_client) == [name]


def _half_swapped(
    driver: ContainerDriver, client: Any, images: Any, name: str, port: int, tag: str, start: bool
) -> str:
    """As if killed mid-replace: web:1 stopped as `.previous`, the new `tag` created (started)."""
    driver.apply(work(Action.CREATE, name, web(images, "web:1", port)), Recorder())
    old = str(client.api.inspect_container(name)["Id"])
    client.api.rename(name, f"{name}.previous")
    client.api.stop(old, timeout=1)
    new = work(Action.REPLACE, name, web(images, tag, port, healthcheck=FAST_CHECK))
    assert new.manifest is not None and new.ownership is not None
    cfg = container_config(new.manifest.manifest, {}, new.ownership.labels())  # type: ignore[arg-type]
    host_config = client.api.create_host_config(**cfg.host_config_kwargs)
    ident = client.api.create_container(**cfg.create_kwargs, host_config=host_config)["Id"]
    if start:
        client.api.start(ident)
    return old


def finishing(name: str, spec: dict[str, Any]) -> Work:
    """An update that finishes deployment #1, which was interrupted."""
    item = work(Action.UPDATE, name, spec)
    why = "deployment #1 was interrupted"
    observed = Observed("container", name, True, name, "test", "hash", deployment_id=1)
    item.step = replace(item.step, observed=replace(observed, unfinished=why))
    return item


@pytest.mark.parametrize("start", [True, False], ids=["started", "created"])
def test_an_interrupted_replace_is_finished(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str, start: bool
) -> None:
    port = free_port()
    _half_swapped(driver, docker_client, test_images, name, port, "web:2", start)
    log, spec = Recorder(), web(test_images, "web:2", port, healthcheck=FAST_CHECK)
    summary = driver.apply(finishing(name, spec), log).summary
    assert summary == f"finished the interrupted deployment #1: container {name} is healthy"
    assert "pulling" not in log.text  # nothing is redeployed
    assert http_get(port) == "version 2"
    assert ours(docker_client) == [name]


def test_an_interrupted_replace_that_stays_unhealthy_is_undone(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    port = free_port()
    old = _half_swapped(driver, docker_client, test_images, name, port, "unhealthy:1", True)
    spec = web(test_images, "unhealthy:1", port, healthcheck=FAST_CHECK, timeout="10s")
    with pytest.raises(DriverError, match="became unhealthy") as failed:
        driver.apply(finishing(name, spec), Recorder())
    assert "the previous container was restored" in str(failed.value)
    info = docker_client.api.inspect_container(name)
    assert info["Id"] == old and info["State"]["Running"]
    assert http_get(port) == "version 1"
    assert ours(docker_client) == [name]


def test_a_replace_never_deletes_the_good_previous_beside_an_unhealthy_current(
    driver: ContainerDriver, docker_client: Any, test_images: Any, name: str
) -> None:
    port = free_port()
    _half_swapped(driver, docker_client, test_images, name, port, "unhealthy:1", True)
    log = Recorder()
    spec = web(test_images, "crash:1", port)
    with pytest.raises(DriverError, match="the previous container was restored"):
        driver.apply(work(Action.REPLACE, name, spec), log)
    assert f"restoring {name}.previous" in log.text
    assert http_get(port) == "version 1"
    assert ours(docker_client) == [name]
    driver.apply(work(Action.REPLACE, name, web(test_images, "web:2", port)), Recorder())
    assert http_get(port) == "version 2"
    assert ours(docker_client) == [name]


def test_image_digest(docker_client: Any, test_images: Any) -> None:
    docker_client.api.pull(test_images["web:1"])
    assert (image_digest(docker_client, test_images["web:1"]) or "").startswith("sha256:")
    assert image_digest(docker_client, "127.0.0.1:5000/bojdeploy-test/web:404") is None
