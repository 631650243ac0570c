"""ServiceDriver on the real single-node Swarm and the local registry; convergence rules."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.manifest import ServiceManifest
from bojdeploy.core.plan import Action, Desired, Observed, Step
from bojdeploy.core.yamlsrc import Document
from bojdeploy.drivers.base import Ownership, Work
from bojdeploy.drivers.observe import observe_service, observe_services
from bojdeploy.drivers.service import ServiceDriver
from bojdeploy.drivers.service_spec import owner_labels
from bojdeploy.drivers.service_wait import (
    Progress,
    assess,
    referenced_objects,
    task_error,
    unfinished_why,
)
from bojdeploy.errors import DriverError
from tests.drivers.auth_registry import AuthRegistry
from tests.helpers import Recorder

RUN = uuid.uuid4().hex[:8]
PREFIX = f"bojs-{RUN}"
SECRET = "s3rv1ce-Secret-42"
# busybox httpd ignores SIGTERM: start-first updates do not wait 10s for each old task to stop.
FAST_UPDATE = {"order": "start-first", "monitor": "1s"}


def served(client: Any, name: str) -> list[str]:
    """What each running task of the service serves on its port 80 (asked from inside)."""
    found = client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}"})
    return [c.exec_run(["wget", "-qO-", "http://127.0.0.1/"]).output.decode() for c in found]


def work(
    action: Action,
    name: str,
    spec: dict[str, Any],
    files: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    deployment_id: int = 1,
) -> Work:
    """A Work item for a Service named `name`."""
    data = {"apiVersion": "bojdeploy/v1", "kind": "Service", "metadata": {"name": name}}
    data["spec"] = {"update": FAST_UPDATE, **spec}
    loaded = LoadedManifest(
        ServiceManifest.model_validate(data), f"deploy/{name}.yml", "test", Document(data, 1)
    )
    loaded.files = files or {}
    desired = Desired("service", name, "test", name, "hash", {}, loaded.file)
    owner = Ownership(name, "service", "test", "hash", deployment_id, "abc", "org/r", loaded.file)
    return Work(Step(action, "service", name, "test", desired, None), loaded, secrets or {}, owner)


def finishing(item: Work, observed: Observed) -> Work:
    """The same Work as an UPDATE step that must finish what `observed` says is unfinished."""
    assert observed.unfinished
    return replace(item, step=replace(item.step, action=Action.UPDATE, observed=observed))


def observed(client: Any, name: str) -> Observed:
    """How observation sees the service `name` (the re-check under a lock sees it the same).

    Swarm may move on between the two looks (an update starts the moment after the call), so
    they are taken again until two in a row agree; they must agree within a few tries.
    """
    for _ in range(5):
        (found,) = [o for o in observe_services(client) if o.resource_name == name]
        again = observe_service(client, name)
        if again == [found]:
            return found
        time.sleep(0.2)
    assert again == [found]
    return found


def wait_for_state(client: Any, name: str, state: str, seconds: float = 30) -> None:
    """Poll until the service's UpdateStatus.State is `state`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (client.api.inspect_service(name).get("UpdateStatus") or {}).get("State") == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"service {name} never reached {state}")


def as_if_killed(client: Any, name: str, image: str, deployment_id: int) -> None:
    """Start an update as a run killed right after its update call leaves it (same hash)."""
    service = client.services.get(name)
    labels = {**service.attrs["Spec"]["Labels"], "io.bojdeploy.deployment-id": str(deployment_id)}
    service.update(image=image, labels=labels)


def delete_work(name: str) -> Work:
    """A Work item that deletes the service `name`."""
    observed = Observed("service", name, True, name, "test")
    return Work(Step(Action.DELETE, "service", name, "test", None, observed), None)


@pytest.fixture(scope="module")
def swarm(docker_client: Any) -> Any:
    """The docker client of an engine that is an active Swarm manager."""
    if docker_client.info()["Swarm"]["LocalNodeState"] != "active":
        reason = "Docker is not a Swarm manager (run scripts/setup-env.sh)"
        pytest.fail(reason) if os.environ.get("CI") == "true" else pytest.skip(reason)
    return docker_client


@pytest.fixture
def driver(swarm: Any) -> Iterator[ServiceDriver]:
    """A driver; this run's services, configs, secrets and networks are removed afterwards."""
    yield ServiceDriver(swarm, environ={})
    api = swarm.api
    for s in api.services(filters={"name": PREFIX}):
        api.remove_service(s["ID"])
    for item in api.configs(filters={"name": PREFIX}):
        api.remove_config(item["ID"])
    for item in api.secrets(filters={"name": PREFIX}):
        api.remove_secret(item["ID"])
    for n in api.networks(names=[PREFIX]):
        remove_network(api, n["Id"])


def remove_network(api: Any, ident: str) -> None:
    """Remove a network once the tasks of removed services have left it."""
    from docker.errors import APIError, NotFound

    for _ in range(40):
        try:
            api.remove_network(ident)
            return
        except NotFound:
            return
        except APIError as e:  # in use by a task that is shutting down, or being removed
            if "not found" in str(e.explanation):
                return
            time.sleep(0.5)


@pytest.fixture
def name() -> str:
    """A service name unique to this test."""
    return f"{PREFIX}-{uuid.uuid4().hex[:6]}"


def running_tasks(client: Any, name: str) -> set[str]:
    """IDs of the service's tasks that run and should."""
    tasks = client.api.tasks(filters={"service": name, "desired-state": "running"})
    return {t["ID"] for t in tasks if t["Status"]["State"] == "running"}


def task_images(client: Any, name: str) -> list[str]:
    """The images the service's tasks that run and should run."""
    tasks = client.api.tasks(filters={"service": name, "desired-state": "running"})
    running = [t for t in tasks if t["Status"]["State"] == "running"]
    return sorted(t["Spec"]["ContainerSpec"]["Image"] for t in running)


def task_container(client: Any, name: str) -> Any:
    """One running container of the service."""
    found = client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}"})
    assert found, f"no running container of {name}"
    return found[0]


def test_create_with_config_secret_and_network(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    spec = {
        "image": test_images["web:1"],
        "replicas": 2,
        "networks": [f"{PREFIX}-net"],
        "configs": [{"source": "www/index.html", "target": "/www/index.html"}],
        "secrets": [{"name": "api_key", "value": "__BOJSECRET_API_KEY__", "target": "key"}],
        "container_labels": {"io.bojdeploy.test": "true"},
    }
    item = work(
        Action.CREATE, name, spec, {"www/index.html": "from a config\n"}, {"API_KEY": SECRET}
    )
    log = Recorder()
    applied = driver.apply(item, log)

    assert applied.summary.startswith(f"created service {name}")
    assert len(running_tasks(swarm, name)) == 2
    assert served(swarm, name) == ["from a config\n"] * 2
    container = task_container(swarm, name)
    assert container.exec_run("cat /run/secrets/key").output.decode() == SECRET
    assert "io.bojdeploy.deployment-id" not in container.labels
    labels = swarm.api.inspect_service(name)["Spec"]["Labels"]
    assert labels["io.bojdeploy.deployment-id"] == "1" and labels["io.bojdeploy.managed"] == "true"
    digest = swarm.api.inspect_distribution(test_images["web:1"])["Descriptor"]["digest"]
    assert applied.facts["image_digest"] == digest
    assert applied.facts["image"] == f"{test_images['web:1']}@{digest}"
    network = swarm.api.inspect_network(f"{PREFIX}-net")
    assert network["Driver"] == "overlay" and network["Attachable"]
    assert f"resolved {test_images['web:1']} to {digest}" in log.text
    assert SECRET not in log.text + json.dumps(applied.facts)


def test_update_of_labels_only_restarts_nothing_and_keeps_force_update(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    spec = {"image": test_images["web:1"], "replicas": 2}
    driver.apply(work(Action.CREATE, name, spec), Recorder())
    swarm.services.get(name).force_update()  # ForceUpdate 1: Swarm replaces both tasks
    driver.apply(work(Action.UPDATE, name, spec, deployment_id=2), Recorder())
    before = running_tasks(swarm, name)

    driver.apply(work(Action.UPDATE, name, spec, deployment_id=3), Recorder())

    assert running_tasks(swarm, name) == before and len(before) == 2
    current = swarm.api.inspect_service(name)["Spec"]
    assert current["TaskTemplate"]["ForceUpdate"] == 1
    assert current["Labels"]["io.bojdeploy.deployment-id"] == "3"


def test_an_update_swarm_pauses_fails(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    driver.apply(work(Action.CREATE, name, {"image": test_images["web:1"]}), Recorder())
    pause = {"update": {**FAST_UPDATE, "failure_action": "pause"}}
    crash = work(Action.UPDATE, name, {"image": test_images["crash:1"], **pause})
    with pytest.raises(DriverError) as failure:
        driver.apply(crash, Recorder())
    message = str(failure.value)
    assert f"Swarm paused the update of service {name}" in message
    assert "non-zero exit (1)" in message and "docker service rollback" in message
    assert swarm.api.inspect_service(name)["UpdateStatus"]["State"] == "paused"


def test_a_new_service_that_never_converges_is_removed(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    spec = {
        "image": test_images["web:1"],
        "placement": {"constraints": ["node.labels.bojdeploy-test-nowhere==true"]},
        "configs": [{"source": "c.txt", "target": "/c.txt"}],
        "timeout": "2s",
    }
    started = time.monotonic()
    with pytest.raises(DriverError) as failure:
        driver.apply(work(Action.CREATE, name, spec, {"c.txt": "c"}), Recorder())
    assert time.monotonic() - started < 15
    assert "did not converge within 2s: 0/1 tasks run the new spec" in str(failure.value)
    assert "the new service was removed" in str(failure.value)
    assert swarm.api.services(filters={"name": name}) == []
    assert swarm.api.configs(filters={"name": name}) == []


def test_delete_removes_the_service_its_configs_and_secrets(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    spec = {
        "image": test_images["web:1"],
        "replicas": 0,
        "configs": [{"source": "c.txt", "target": "/c.txt"}],
        "secrets": [{"name": "s", "value": "__BOJSECRET_S__"}],
    }
    driver.apply(work(Action.CREATE, name, spec, {"c.txt": "c"}, {"S": SECRET}), Recorder())
    assert len(swarm.api.secrets(filters={"name": name})) == 1

    assert driver.apply(delete_work(name), Recorder()).summary == f"deleted service {name}"

    assert swarm.api.services(filters={"name": name}) == []
    assert swarm.api.configs(filters={"name": name}) == []
    assert swarm.api.secrets(filters={"name": name}) == []
    gone = driver.apply(delete_work(name), Recorder())
    assert gone.summary == f"service {name} is already gone"


def test_an_unmanaged_service_is_never_touched(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    from docker.types import ContainerSpec, ServiceMode, TaskTemplate

    template = TaskTemplate(ContainerSpec(test_images["web:1"]))
    swarm.api.create_service(template, name=name, mode=ServiceMode("replicated", 0))
    for item in (delete_work(name), work(Action.UPDATE, name, {"image": test_images["web:2"]})):
        with pytest.raises(DriverError, match="not managed by bojdeploy"):
            driver.apply(item, Recorder())
    image = swarm.api.inspect_service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image == test_images["web:1"]


def test_an_unknown_tag_fails_before_anything_changes(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    image = test_images["web:1"].replace(":1", ":404")
    with pytest.raises(DriverError, match=f"cannot resolve image {image}.*nothing was changed"):
        driver.apply(work(Action.CREATE, name, {"image": image}), Recorder())
    assert swarm.api.services(filters={"name": name}) == []


def test_registry_credentials_from_docker_auth_config_go_to_swarm(
    test_images: dict[str, str], swarm: Any, name: str
) -> None:
    import docker
    from docker import auth

    token = base64.b64encode(b"deployer:pa55").decode()
    config = json.dumps({"auths": {"127.0.0.1:5000": {"auth": token}}})
    client = docker.from_env()
    driver = ServiceDriver(client, environ={"DOCKER_AUTH_CONFIG": config})
    try:
        driver.apply(
            work(Action.CREATE, name, {"image": test_images["web:1"], "replicas": 0}), Recorder()
        )
        header = auth.get_config_header(client.api, "127.0.0.1:5000")
    finally:
        client.api.remove_service(name)
        client.close()
    sent = json.loads(base64.urlsafe_b64decode(header))
    assert (sent["username"], sent["password"]) == ("deployer", "pa55")


def test_registry_credentials_reach_the_nodes_that_pull_on_create_and_update(
    test_images: dict[str, str], swarm: Any, name: str
) -> None:
    import docker

    with AuthRegistry("deployer", "pa55") as registry:
        image = {t: test_images[t].replace(registry.upstream, registry.host) for t in test_images}
        token = base64.b64encode(b"deployer:pa55").decode()
        config = json.dumps({"auths": {registry.host: {"auth": token}}})
        with pytest.raises(DriverError, match="cannot resolve image .*nothing was changed"):
            ServiceDriver(swarm, environ={}).apply(
                work(Action.CREATE, name, {"image": image["web:1"]}), Recorder()
            )
        assert registry.refused and not registry.relayed  # it does require the login
        client = docker.from_env()
        driver = ServiceDriver(client, environ={"DOCKER_AUTH_CONFIG": config})
        try:
            driver.apply(work(Action.CREATE, name, {"image": image["web:1"]}), Recorder())
            assert [i.partition("@")[0] for i in task_images(swarm, name)] == [image["web:1"]]
            update = work(Action.UPDATE, name, {"image": image["web:2"]}, deployment_id=2)
            driver.apply(update, Recorder())
            assert [i.partition("@")[0] for i in task_images(swarm, name)] == [image["web:2"]]
        finally:
            client.api.remove_service(name)
            client.close()
            _untag(swarm, registry.host)


def _untag(client: Any, host: str) -> None:
    """Remove the references the nodes pulled through `host` (the images stay)."""
    import contextlib

    from docker.errors import APIError

    for item in client.api.images(all=True):
        for ref in (item.get("RepoDigests") or []) + (item.get("RepoTags") or []):
            if ref.startswith(host + "/"):
                with contextlib.suppress(APIError):
                    client.api.remove_image(ref, force=True, noprune=True)


def test_an_interrupted_update_is_finished_without_sending_it_again(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    update = {**FAST_UPDATE, "monitor": "2s"}
    spec = {"image": test_images["web:1"], "replicas": 2, "update": update}
    driver.apply(work(Action.CREATE, name, spec), Recorder())
    as_if_killed(swarm, name, test_images["web:2"], 2)

    seen = observed(swarm, name)
    assert seen.unfinished in (
        "Swarm is still updating the service to deployment #2",
        "Swarm has not started the update to deployment #2 yet",  # the moment after the call
    )
    item = finishing(work(Action.UPDATE, name, spec, deployment_id=3), seen)
    log = Recorder()
    applied = driver.apply(item, log)

    assert applied.summary.startswith(f"finished the interrupted deployment #2 of service {name}")
    assert "running" in log.text  # the usual progress lines while it waited
    info = swarm.api.inspect_service(name)
    assert info["UpdateStatus"]["State"] == "completed"
    assert info["Spec"]["Labels"]["io.bojdeploy.deployment-id"] == "2"
    assert "web:1" in info["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert task_images(swarm, name) == [test_images["web:2"]] * 2
    assert applied.facts["image"] == test_images["web:2"]
    assert observed(swarm, name).unfinished is None


def test_an_update_swarm_paused_is_rolled_back_by_the_next_run(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    pause = {"update": {**FAST_UPDATE, "failure_action": "pause"}}
    spec = {"image": test_images["web:1"], **pause}
    driver.apply(work(Action.CREATE, name, spec), Recorder())
    web1 = swarm.api.inspect_service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    as_if_killed(swarm, name, test_images["crash:1"], 2)
    wait_for_state(swarm, name, "paused")

    seen = observed(swarm, name)
    assert seen.unfinished == "Swarm paused the update to deployment #2"
    item = finishing(work(Action.UPDATE, name, {**spec, "image": test_images["crash:1"]}), seen)
    with pytest.raises(DriverError) as failure:
        driver.apply(item, Recorder())

    assert "bojdeploy rolled it back: the previous version runs again" in str(failure.value)
    info = swarm.api.inspect_service(name)
    assert info["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == web1
    assert info["Spec"]["Labels"]["io.bojdeploy.deployment-id"] == "1"
    assert task_images(swarm, name) == [web1]


def test_configs_left_by_a_killed_update_are_removed_by_the_next_run(
    driver: ServiceDriver, swarm: Any, test_images: dict[str, str], name: str
) -> None:
    spec = {"image": test_images["web:1"], "configs": [{"source": "c.txt", "target": "/c.txt"}]}
    driver.apply(work(Action.CREATE, name, spec, {"c.txt": "one"}), Recorder())
    (used,) = [c["Spec"]["Name"] for c in swarm.api.configs(filters={"name": name})]
    left = f"{name}-c.txt-0123456789"
    swarm.api.create_config(left, b"two", labels=owner_labels(name, "test"))

    seen = observed(swarm, name)
    assert seen.unfinished == f"config {left} left by an interrupted deployment"
    item = finishing(work(Action.UPDATE, name, spec, {"c.txt": "one"}, deployment_id=2), seen)
    summary = driver.apply(item, Recorder()).summary

    assert f"removed leftover config {left}" in summary
    assert [c["Spec"]["Name"] for c in swarm.api.configs(filters={"name": name})] == [used]
    assert observed(swarm, name).unfinished is None


def _swarm_service(
    state: str | None,
    running: int = 2,
    desired: int = 2,
    deployment: str = "7",
    template: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    service: dict[str, Any] = {
        "Spec": {"Labels": {"io.bojdeploy.deployment-id": deployment}, "TaskTemplate": template},
        "ServiceStatus": {"RunningTasks": running, "DesiredTasks": desired},
    }
    if previous is not None:
        service["PreviousSpec"] = {"TaskTemplate": previous}
    if state:
        service["UpdateStatus"] = {"State": state}
    return service


@pytest.mark.parametrize(
    ("service", "why"),
    [
        (_swarm_service("updating"), "Swarm is still updating the service to deployment #7"),
        (_swarm_service("paused"), "Swarm paused the update to deployment #7"),
        (_swarm_service("rollback_started"), "Swarm is rolling an update back to deployment #7"),
        (_swarm_service("rollback_paused"), "Swarm paused rolling an update back to deployment #7"),
        (_swarm_service(None, running=0), "0/2 tasks of deployment #7 run"),
        (_swarm_service("completed"), None),
        (_swarm_service("completed", running=1), None),  # drift, not an unconfirmed update
        (_swarm_service("rollback_completed"), None),  # labels name what runs again
        (_swarm_service(None), None),
        (
            _swarm_service(None, template={"image": "web:2"}, previous={"image": "web:1"}),
            "Swarm has not started the update to deployment #7 yet",
        ),
        # a label-only update changes no task: nothing for Swarm to roll
        (_swarm_service(None, template={"image": "web:1"}, previous={"image": "web:1"}), None),
        (
            _swarm_service("completed", template={"image": "web:2"}, previous={"image": "web:1"}),
            None,
        ),
    ],
)
def test_what_swarm_has_not_confirmed(service: dict[str, Any], why: str | None) -> None:
    assert unfinished_why(service) == why


def test_objects_a_rollback_needs_are_in_use() -> None:
    spec = {"TaskTemplate": {"ContainerSpec": {"Configs": [{"ConfigID": "c1"}]}}}
    previous = {"TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretID": "s0"}]}}}
    services = [{"Spec": spec, "PreviousSpec": previous}, {"Spec": {}}]
    assert referenced_objects(services) == {"c1", "s0"}


def _task(state: str, desired: str = "running", err: str = "", at: str = "1") -> dict[str, Any]:
    status = {"State": state, "Timestamp": at, **({"Err": err} if err else {})}
    return {"ID": f"task-{state}-{at}-0123456789", "DesiredState": desired, "Status": status}


def _service(desired: int, state: str | None = None) -> dict[str, Any]:
    service: dict[str, Any] = {"ServiceStatus": {"DesiredTasks": desired}}
    if state:
        service["UpdateStatus"] = {"State": state, "Message": f"update {state}"}
    return service


@pytest.mark.parametrize(
    ("service", "tasks", "converged", "line"),
    [
        (_service(2), [_task("running"), _task("running")], True, "2/2 running, 3s"),
        (_service(3), [_task("running"), _task("starting")], False, "1/3 running, 3s"),
        (_service(1), [_task("running", desired="shutdown")], False, "0/1 running, 3s"),
        (_service(2, "updating"), [_task("running")] * 2, False, "2/2 running, 3s (updating)"),
        (_service(2, "completed"), [_task("running")] * 2, True, "2/2 running, 3s (completed)"),
        (_service(2, "completed"), [_task("running")], False, "1/2 running, 3s (completed)"),
        (_service(0), [], True, "0/0 running, 3s"),
    ],
)
def test_convergence(
    service: dict[str, Any], tasks: list[dict[str, Any]], converged: bool, line: str
) -> None:
    progress = assess(service, tasks)
    assert progress.converged is converged
    assert progress.describe(3.2) == line


def test_task_error_is_the_newest_failure() -> None:
    tasks = [
        _task("failed", "shutdown", "task: non-zero exit (1)", at="2024-01-01T00:00:02"),
        _task("failed", "shutdown", "older failure", at="2024-01-01T00:00:01"),
        _task("shutdown", "shutdown", "task: non-zero exit (137)", at="2024-01-01T00:00:03"),
        _task("running"),
    ]
    assert task_error(tasks) == "task task-failed- failed: task: non-zero exit (1)"
    assert task_error(tasks, old={tasks[0]["ID"]}) == "task task-failed- failed: older failure"
    assert task_error([_task("running")]) is None


def test_progress_state_stops_convergence() -> None:
    assert not Progress(2, 2, "rollback_completed").converged
    assert not Progress(2, 2, "paused").converged
