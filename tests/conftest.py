"""Shared fixtures for tests on real systems: Docker Engine, Swarm, the local registry, PostgreSQL.

`scripts/setup-env.sh` brings all of them up. A test whose system is missing skips locally and
fails under CI=true, so a green CI means the integration tests really ran.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

REGISTRY = "127.0.0.1:5000"
TEST_IMAGES = ("web:1", "web:2", "crash:1", "unhealthy:1")
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)
CLEANUP_LABELS = ("io.bojdeploy.test=true", "io.bojdeploy.managed=true")
DEFAULT_POSTGRES_URL = "postgresql://bojdeploy:bojdeploy@127.0.0.1:5432/bojdeploy_test"


def require(service_name: str, available: bool, why: str) -> None:
    """Skip the test if a service is unavailable; fail it instead under CI=true."""
    if available:
        return
    message = f"{service_name} is not available: {why} (run scripts/setup-env.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def http_ok(url: str, accept: str = "*/*") -> tuple[bool, str]:
    """Whether a HEAD request to url answers 2xx, and why not."""
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=3):
            return True, ""
    except OSError as e:  # URLError and HTTPError are OSErrors
        return False, f"HEAD {url}: {e}"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client for the local engine, API version negotiated."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as e:
        require("docker", False, str(e))
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry() -> str:
    """The address of the local test registry."""
    require("registry", *http_ok(f"http://{REGISTRY}/v2/"))
    return REGISTRY


@pytest.fixture(scope="session")
def test_images(registry: str) -> dict[str, str]:
    """The test images by short name: 'web:1' -> '127.0.0.1:5000/bojdeploy-test/web:1'."""
    images = {}
    for short in TEST_IMAGES:
        name, tag = short.split(":")
        url = f"http://{registry}/v2/bojdeploy-test/{name}/manifests/{tag}"
        require(f"test image {short}", *http_ok(url, MANIFEST_TYPES))
        images[short] = f"{registry}/bojdeploy-test/{short}"
    return images


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of the test PostgreSQL database (BOJDEPLOY_TEST_POSTGRES_URL overrides it)."""
    import psycopg

    url = os.environ.get("BOJDEPLOY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as e:
        require("postgres", False, str(e))
    return url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for one test, dropped afterwards."""
    import uuid
    from urllib.parse import urlsplit

    import psycopg
    from psycopg import sql

    name = f"bojdeploy_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def labelled(docker_client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Containers and services carrying a test or bojdeploy label, by id."""
    containers, services = {}, {}
    swarm = docker_client.info()["Swarm"]["LocalNodeState"] == "active"
    for label in CLEANUP_LABELS:
        only = {"label": label}
        found = docker_client.containers.list(all=True, filters=only, ignore_removed=True)
        containers.update((c.id, c) for c in found)
        if swarm:
            services.update((s.id, s) for s in docker_client.services.list(filters=only))
    return containers, services


@pytest.fixture
def docker_cleanup(docker_client: Any) -> Iterator[None]:
    """Remove the labelled containers and services that the test created."""
    from docker.errors import NotFound

    before_containers, before_services = labelled(docker_client)
    yield
    after_containers, after_services = labelled(docker_client)
    for sid in after_services.keys() - before_services.keys():
        with contextlib.suppress(NotFound):
            after_services[sid].remove()
    for cid in after_containers.keys() - before_containers.keys():
        with contextlib.suppress(NotFound):
            after_containers[cid].remove(force=True)


@pytest.fixture(scope="session")
def fleet_engines() -> Iterator[dict[str, Any]]:
    """Docker clients for the two extra engines, by name (engine-2 over ssh://).

    Each starts with no bojdeploy container; the default engine is `docker_client`.
    """
    from docker.errors import DockerException

    from tests import fleet

    urls = {k: v for k, v in fleet.engine_urls().items() if k != "default"}
    try:
        with fleet.clients(urls) as made:
            yield made
    except DockerException as e:
        require("the extra docker engines", False, str(e))


@pytest.fixture
def fleet_cleanup(fleet_engines: dict[str, Any], docker_cleanup: None) -> Iterator[None]:
    """Remove bojdeploy's containers from the extra engines before and after the test."""
    from tests import fleet

    for client in fleet_engines.values():
        fleet.remove_labelled(client)
    yield
    for client in fleet_engines.values():
        fleet.remove_labelled(client)


@pytest.fixture
def xapi_pools() -> Iterator[dict[str, Any]]:
    """Two XAPI simulators on two ports, `pool-a` and `pool-b`, each with its own password."""
    from bojdeploy.testing.xapi import XapiSimulator

    with (
        XapiSimulator(username="root", password="secret-a", ip_delay=0.2) as a,
        XapiSimulator(username="root", password="secret-b", ip_delay=0.2) as b,
    ):
        yield {"pool-a": a, "pool-b": b}
