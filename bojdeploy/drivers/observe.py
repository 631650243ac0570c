"""Observation of Docker containers and Swarm services: one list call per kind."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bojdeploy.core.plan import Observed
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import ConnectError

LABEL = "io.bojdeploy."
PREVIOUS = ".previous"
# Health evidence alone does not make a container unfinished once its deployment is confirmed:
# the engine drops it then (a confirmed container that turns unhealthy is not a deploy to undo).
HEALTH_EVIDENCE = "its health check is"


def observed_from_labels(
    kind: str,
    resource_name: str,
    labels: dict[str, str],
    state: str | None,
    ident: str,
    image_id: str | None = None,
) -> Observed:
    """An Observed value from a resource's labels."""
    managed = labels.get(LABEL + "managed") == "true"
    return Observed(
        kind=kind,
        resource_name=resource_name,
        managed=managed,
        name=labels.get(LABEL + "name") if managed else None,
        environment=labels.get(LABEL + "environment") if managed else None,
        config_hash=labels.get(LABEL + "config-hash") if managed else None,
        state=state,
        id=ident,
        manifest=labels.get(LABEL + "manifest") if managed else None,
        image_id=image_id,
        deployment_id=_int(labels.get(LABEL + "deployment-id")) if managed else None,
        repository=labels.get(LABEL + "repository") if managed else None,
    )


def _int(value: str | None) -> int | None:
    """A label's integer value, or None when missing or malformed."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def observe_containers(client: Any) -> list[Observed]:
    """Every container on the host (managed or not: name collisions matter)."""
    with docker_errors("cannot list containers", refused=ConnectError):  # nothing changed yet
        items = client.api.containers(all=True)
    return observed_containers(items)


def observed_containers(items: list[dict[str, Any]]) -> list[Observed]:
    """The observations of a container list (GET /containers/json?all=1)."""
    current: dict[str, Observed] = {}
    aside: dict[str, Observed] = {}  # base name -> its managed `.previous`
    for item in items:
        names = [n.lstrip("/") for n in item.get("Names") or []]
        labels = item.get("Labels") or {}
        if not names or "com.docker.swarm.task.id" in labels:
            continue  # a Swarm task is observed through its service
        obs = observed_from_labels(
            "container", names[0], labels, item.get("State"), item["Id"], item.get("ImageID")
        )
        obs = with_health(obs, _listed_health(item))
        if names[0].endswith(PREVIOUS) and obs.managed:
            aside[names[0].removesuffix(PREVIOUS)] = obs  # the driver's own swap: not a resource
        else:
            current[names[0]] = obs
    return [with_aside(current.get(name), aside.get(name), name) for name in current | aside]


def observe_container(client: Any, name: str, *, aside: bool = True) -> list[Observed]:
    """The container called `name`, if any, with its `.previous` as evidence (two inspects).

    aside=False looks for the `.previous` only when `name` itself is missing.
    """
    found = _inspected(client, name)
    previous = _inspected(client, name + PREVIOUS) if aside or found is None else None
    if previous is not None and not previous.managed:
        previous = None
    if found is None and previous is None:
        return []
    return [with_aside(found, previous, name)]


def _inspected(client: Any, name: str) -> Observed | None:
    from docker.errors import NotFound

    with docker_errors(f"cannot inspect container {name}", refused=ConnectError):
        try:
            item = client.api.inspect_container(name)
        except NotFound:
            return None
    if str(item.get("Name", "")).lstrip("/") != name:
        return None  # an ID prefix matched, not the name
    labels = item["Config"].get("Labels") or {}
    state = item["State"].get("Status")
    obs = observed_from_labels("container", name, labels, state, item["Id"], item["Image"])
    return with_health(obs, (item["State"].get("Health") or {}).get("Status"))


def _listed_health(item: dict[str, Any]) -> str | None:
    """The health in a container list's Status text: 'Up 3 seconds (health: starting)'."""
    status = str(item.get("Status") or "")
    for health in ("health: starting", "unhealthy"):
        if f"({health})" in status:
            return health.removeprefix("health: ")
    return None


def with_health(obs: Observed, health: str | None) -> Observed:
    """Target-side evidence: a running container whose health check has not passed."""
    if not obs.managed or obs.state != "running" or health not in ("starting", "unhealthy"):
        return obs
    return replace(obs, unfinished=f"{HEALTH_EVIDENCE} {health}")


def with_aside(current: Observed | None, previous: Observed | None, name: str) -> Observed:
    """Target-side evidence: a `.previous` beside a container is a swap that was not finished."""
    if previous is None:
        assert current is not None
        return current
    if current is None:
        why = f"only {name}{PREVIOUS} exists (a swap was interrupted)"
        return replace(previous, resource_name=name, unfinished=why)
    if not current.managed:
        return current
    why = f"{name}{PREVIOUS} is still beside it (a swap was not finished)"
    return replace(current, unfinished=why)


def observe_services(client: Any) -> list[Observed]:
    """Every Swarm service (an engine that is not a Swarm manager has none).

    A service whose update Swarm has not confirmed, or that has configs or secrets left by an
    interrupted update, is `unfinished` (three list calls in all, none per service).
    """
    return _observed_services(client, None)


def observe_service(client: Any, name: str) -> list[Observed]:
    """The Swarm service called `name`, if any, as observe_services sees it (three calls)."""
    return _observed_services(client, name)


def _observed_services(client: Any, name: str | None) -> list[Observed]:
    """The services (all, or the one called `name`), each with why it is unfinished."""
    from docker.errors import APIError

    from bojdeploy.drivers.service_wait import unfinished_why

    with docker_errors("cannot list services", refused=ConnectError):
        try:
            filters = {"name": [name]} if name is not None else None
            items = client.api.services(filters=filters, status=True)
        except APIError as e:
            if e.response is not None and e.response.status_code == 503:
                return []  # not a Swarm manager
            raise
        if name is not None:  # the name filter matches prefixes too
            items = [i for i in items if (i.get("Spec") or {}).get("Name") == name]
        leftovers = _leftover_objects(client, items, name) if items else {}
    out = []
    for item in items:
        spec = item.get("Spec") or {}
        labels = spec.get("Labels") or {}
        image = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image")
        found = observed_from_labels(
            "service", spec.get("Name", ""), labels, None, item["ID"], image
        )
        left = leftovers.get((found.environment, found.name)) if found.managed else None
        why = unfinished_why(item) if found.managed else None
        if why is None and left:
            why = f"{', '.join(sorted(left))} left by an interrupted deployment"
        out.append(replace(found, unfinished=why))
    return out


def _leftover_objects(
    client: Any, services: list[dict[str, Any]], name: str | None
) -> dict[tuple[str | None, str | None], list[str]]:
    """Our service configs and secrets no service uses: (environment, name) -> 'config X'.

    With `name`: only those of the service called `name` (its labels say whose they are).
    """
    from bojdeploy.drivers.service_wait import referenced_objects

    in_use = referenced_objects(services)
    wanted = [LABEL + "managed=true", LABEL + "kind=service"]
    if name is not None:
        labels = services[0].get("Spec", {}).get("Labels") or {}
        owner = (labels.get(LABEL + "environment"), labels.get(LABEL + "name"))
        if None in owner:
            return {}
        wanted += [f"{LABEL}environment={owner[0]}", f"{LABEL}name={owner[1]}"]
    out: dict[tuple[str | None, str | None], list[str]] = {}
    for kind, items in (("config", client.api.configs), ("secret", client.api.secrets)):
        for item in items(filters={"label": wanted}):
            if item["ID"] in in_use:
                continue
            labels = item["Spec"].get("Labels") or {}
            key = (labels.get(LABEL + "environment"), labels.get(LABEL + "name"))
            shown = item["Spec"]["Name"] if kind == "config" else "a secret"
            out.setdefault(key, []).append(f"{kind} {shown}")
    return out
