"""The test environment is really there: Docker, Swarm, the registry and its images, PostgreSQL."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import require


def http_get(url: str, timeout: float = 10) -> str:
    """The body of url, retried until the server answers or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.docker
def test_docker_answers(docker_client: Any) -> None:
    assert docker_client.ping() is True


@pytest.mark.docker
def test_swarm_is_active(docker_client: Any) -> None:
    state = docker_client.info()["Swarm"]["LocalNodeState"]
    require("swarm", state == "active", f"LocalNodeState is {state!r}")


def test_registry_holds_the_test_images(test_images: dict[str, str]) -> None:
    assert sorted(test_images) == ["crash:1", "unhealthy:1", "web:1", "web:2"]
    assert test_images["web:1"] == "127.0.0.1:5000/bojdeploy-test/web:1"


@pytest.mark.docker
def test_web_image_serves_version_1(
    docker_client: Any, test_images: dict[str, str], docker_cleanup: None
) -> None:
    container = docker_client.containers.run(
        test_images["web:1"],
        detach=True,
        labels={"io.bojdeploy.test": "true"},
        ports={"80/tcp": ("127.0.0.1",)},  # a free port on 127.0.0.1, chosen by docker
    )
    container.reload()
    port = container.ports["80/tcp"][0]["HostPort"]
    assert http_get(f"http://127.0.0.1:{port}/").strip() == "version 1"


@pytest.mark.postgres
def test_postgres_answers_queries(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
