"""The Docker error boundary: what the docker SDK raises against a misbehaving engine becomes
ConnectError (unreachable, cut, timed out, a broken stream) or the caller's refusal error (an
answer), every message naming Docker; a bug passes through untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import BojdeployError, ConnectError, DriverError
from tests.drivers.canned import HANG, canned, http_answer
from tests.repos import free_port

TRUNCATED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'40\r\n{"status": "Pulling'
)
CONFLICT = http_answer("409 Conflict", b'{"message": "the name web is already in use"}')


def api(port: int) -> Any:
    import docker

    return docker.APIClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41", timeout=0.5)


def listing(client: Any) -> Any:
    return client.containers(all=True)


def pulling(client: Any) -> Any:
    return list(client.pull("web", tag="1", stream=True, decode=True))


CASES = [  # (id, answer, call, refused, expected type, expected message)
    ("answer", CONFLICT, listing, DriverError, DriverError, "Docker answered 409: the name web"),
    ("observing", CONFLICT, listing, ConnectError, ConnectError, "Docker answered 409: "),
    ("no answer", None, listing, DriverError, ConnectError, "cannot reach Docker: Remote end"),
    ("timeout", HANG, listing, DriverError, ConnectError, "cannot reach Docker: Read timed out"),
    ("broken body", TRUNCATED, listing, DriverError, ConnectError, "cannot reach Docker: "),
    ("broken stream", TRUNCATED, pulling, DriverError, ConnectError, "cannot reach Docker: "),
]


@pytest.mark.parametrize(
    ("answer", "call", "refused", "raised", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_docker_errors_translate(
    answer: bytes | None,
    call: Callable[[Any], Any],
    refused: type[BojdeployError],
    raised: type[BojdeployError],
    message: str,
) -> None:
    with (
        canned(answer) as port,
        pytest.raises(BojdeployError) as caught,
        docker_errors("cannot list containers", refused=refused),
    ):
        call(api(port))
    assert type(caught.value) is raised
    assert str(caught.value).startswith(f"cannot list containers: {message}"), caught.value
    assert "\n" not in str(caught.value)


def test_connection_refused_in_a_few_words() -> None:
    with pytest.raises(ConnectError) as caught, docker_errors("cannot list containers"):
        listing(api(free_port()))
    assert str(caught.value) == "cannot list containers: cannot reach Docker: Connection refused"


def test_a_connection_failure_can_be_worded_by_the_caller() -> None:
    from bojdeploy.drivers.docker_client import connect

    url = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectError) as caught:
        connect(url)
    assert str(caught.value) == f"cannot reach Docker at {url}: Connection refused"


def test_a_bug_is_not_dressed_as_a_docker_error() -> None:
    with pytest.raises(KeyError), docker_errors("cannot list containers"):
        raise KeyError("Id")


def test_an_error_already_typed_passes_unchanged() -> None:
    error = DriverError("container web keeps restarting")
    with pytest.raises(DriverError) as caught, docker_errors("cannot start container web"):
        raise error
    assert caught.value is error
