"""What a container needs before anything is stopped: its image, networks and named volumes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from bojdeploy.drivers.base import LABEL_PREFIX, StepLog
from bojdeploy.drivers.container_spec import ContainerConfig, PullPolicy, parse_image, registry_auth
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.drivers.networks import ensure_network
from bojdeploy.errors import DriverError

MANAGED = {LABEL_PREFIX + "managed": "true"}
PULL_PROGRESS_SECONDS = 2.0


def ensure_image(
    client: Any, image: str, policy: PullPolicy, environ: Mapping[str, str], log: StepLog
) -> None:
    """Pull per policy; any failure here happens before anything is stopped."""
    if policy != "always" and _exists(client.api.inspect_image, image):
        log("info", f"image {image} is present; not pulling (pull: {policy})")
        return
    if policy == "never":
        raise DriverError(f"image {image} is not on the Docker host and spec.pull is never")
    pull(client, image, environ, log)


def pull(client: Any, image: str, environ: Mapping[str, str], log: StepLog) -> None:
    """Pull `image`, logging at most one progress line every PULL_PROGRESS_SECONDS."""
    repository, tag = parse_image(image)
    auth = registry_auth(repository, environ.get("DOCKER_AUTH_CONFIG"))
    started = last = time.monotonic()
    digest = ""
    log("info", f"pulling {image}")
    what = f"cannot pull {image} (nothing was changed)"
    with docker_errors(what):
        events = client.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth)
        for event in events:
            if "error" in event:
                raise DriverError(f"{what}: {event['error']}")
            digest = str(event.get("status", "")).partition("Digest: ")[2] or digest
            if time.monotonic() - last >= PULL_PROGRESS_SECONDS:
                last = time.monotonic()
                log("info", f"pulling {image} ... {_since(started)}", elapsed=last - started)
    log("info", f"pulled {image} ({digest or 'no digest reported'}) in {_since(started)}")


def prepare_resources(client: Any, cfg: ContainerConfig, log: StepLog) -> None:
    """Create the networks and named volumes the container needs, if missing."""
    api = client.api
    for network in cfg.networks:
        ensure_network(api, network, log, driver="bridge", labels=MANAGED)
    for volume in cfg.volumes:
        if not _exists(api.inspect_volume, volume):
            with docker_errors(f"cannot create volume {volume}"):
                api.create_volume(volume, labels=MANAGED)
            log("info", f"created volume {volume}")


def image_digest(client: Any, image: str) -> str | None:
    """The registry digest ('sha256:...') of the local `image`; None if absent or never pulled."""
    from docker.errors import NotFound

    with docker_errors(f"cannot inspect image {image}"):
        try:
            info = client.api.inspect_image(image)
        except NotFound:
            return None
    repository = parse_image(image)[0]
    for entry in info.get("RepoDigests") or []:
        repo, _, digest = entry.partition("@")
        if repo == repository:
            return str(digest)
    return None


def _exists(inspect: Any, name: str) -> bool:
    from docker.errors import NotFound

    with docker_errors(f"cannot inspect {name}"):
        try:
            inspect(name)
        except NotFound:
            return False
    return True


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"
