"""The fleet a test set-up provides: two extra Docker engines and two XAPI simulators.

`scripts/setup-env.sh` starts the engines under ENGINES (engine-1 on its own socket, engine-2
also behind an sshd on 127.0.0.1, reached as ssh://bojdeploy-engine-2:2222); the simulators are
started by the `xapi_pools` fixture, in-process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

ENGINES = "/var/lib/bojdeploy-engines"
SSH_DOCKER_HOST = "ssh://bojdeploy-engine-2:2222"


def socket_url(engine: str) -> str:
    """The unix:// URL of an extra engine's socket."""
    return f"unix://{ENGINES}/{engine}/docker.sock"


def engine_urls() -> dict[str, str]:
    """How tests reach the engines, by name: the default one, engine-1 and engine-2 over ssh."""
    return {
        "default": "unix:///var/run/docker.sock",
        "engine-1": socket_url("engine-1"),
        "engine-2": SSH_DOCKER_HOST,
    }


def connect(url: str) -> Any:
    """A docker SDK client for `url` that answered a ping (ssh:// runs the ssh client)."""
    import docker

    client = docker.DockerClient(base_url=url, use_ssh_client=url.startswith("ssh://"))
    client.ping()
    return client


def remove_labelled(client: Any, label: str = "io.bojdeploy.managed=true") -> None:
    """Remove every container carrying `label` on one engine."""
    from docker.errors import NotFound

    for container in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(NotFound):
            container.remove(force=True)


@contextlib.contextmanager
def clients(urls: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Clients for the extra engines, closed afterwards."""
    made: dict[str, Any] = {}
    try:
        for name, url in urls.items():
            made[name] = connect(url)
        yield made
    finally:
        for client in made.values():
            client.close()
