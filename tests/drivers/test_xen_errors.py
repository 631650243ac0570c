"""The XenAPI error boundary: what the XenAPI SDK raises against a misbehaving pool becomes
ConnectError (unreachable, cut, timed out, not XML-RPC) or the caller's refusal error (a XenAPI
failure with its code and parameters, an XML-RPC fault), every message naming Xen; a bug passes
through untouched."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest

from bojdeploy.drivers.vm_session import _Session, connect_xen, disconnect_xen
from bojdeploy.drivers.xen_errors import failure_text, xen_errors
from bojdeploy.errors import BojdeployError, ConnectError, DriverError
from bojdeploy.testing.xapi import XapiSimulator
from tests.drivers.canned import HANG, canned, http_answer
from tests.repos import free_port

FAULT = http_answer(
    "200 OK", xmlrpc.client.dumps(xmlrpc.client.Fault(1, "boom"), methodresponse=True).encode()
)
CASES = [  # (id, answer, refused, expected type, expected message)
    ("fault", FAULT, DriverError, DriverError, "Xen answered fault 1: boom"),
    ("fault observing", FAULT, ConnectError, ConnectError, "Xen answered fault 1: boom"),
    ("http error", http_answer("502 Bad Gateway", b"", "text/html"), DriverError, ConnectError,
     "cannot reach Xen: HTTP 502 Bad Gateway"),
    ("not xml", http_answer("200 OK", b"<html>", "text/xml"), DriverError, ConnectError,
     "cannot reach Xen: the answer is not XML-RPC"),
    ("no answer", None, DriverError, ConnectError, "cannot reach Xen: "),
    ("timeout", HANG, DriverError, ConnectError, "cannot reach Xen: timed out"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "refused", "raised", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_xen_errors_translate(
    answer: bytes | None,
    refused: type[BojdeployError],
    raised: type[BojdeployError],
    message: str,
) -> None:
    with (
        canned(answer) as port,
        pytest.raises(BojdeployError) as caught,
        xen_errors("cannot list the VMs", refused=refused),
    ):
        session = _Session(f"http://127.0.0.1:{port}", False, 0.5)
        session.xenapi.login_with_password("root", "pw", "1.0", "test")
    assert type(caught.value) is raised
    assert str(caught.value).startswith(f"cannot list the VMs: {message}"), caught.value


def test_connection_refused_in_a_few_words() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectError) as caught:
        connect_xen(url, "root", "pw")
    assert str(caught.value) == f"cannot reach Xen at {url}: Connection refused"


@pytest.mark.parametrize("url", ["http://[::1"])
def test_a_malformed_url_is_a_connection_error_naming_it(url: str) -> None:
    with pytest.raises(ConnectError) as caught:
        connect_xen(url, "root", "pw")
    assert str(caught.value).startswith(f"cannot reach Xen at {url}: not a usable URL")


@pytest.fixture
def session() -> Iterator[Any]:
    with XapiSimulator(username="root", password="pw") as sim:
        made = connect_xen(sim.url, "root", "pw")
        yield made
        disconnect_xen(made)


@pytest.mark.parametrize("refused", [DriverError, ConnectError])
def test_a_failure_keeps_its_code_and_parameters(session: Any, refused: type) -> None:
    with pytest.raises(BojdeployError) as caught, xen_errors("cannot read VM web", refused=refused):
        session.xenapi.VM.get_record("OpaqueRef:nope")
    assert type(caught.value) is refused
    assert (
        str(caught.value) == "cannot read VM web: Xen answered HANDLE_INVALID: VM, OpaqueRef:nope"
    )


def test_a_wrong_password_is_a_login_refusal() -> None:
    with (
        XapiSimulator(username="root", password="right") as sim,
        pytest.raises(ConnectError) as caught,
    ):
        connect_xen(sim.url, "root", "wrong")
    assert str(caught.value).startswith(
        f"cannot log in to Xen at {sim.url}: Xen answered SESSION_AUTHENTICATION_FAILED"
    )


def test_a_bug_is_not_dressed_as_a_xen_error() -> None:
    with pytest.raises(KeyError), xen_errors("cannot read VM web"):
        raise KeyError("uuid")


def test_failure_text() -> None:
    assert failure_text(["VM_BAD_POWER_STATE", "OpaqueRef:1", "halted", "running"]) == (
        "VM_BAD_POWER_STATE: OpaqueRef:1, halted, running"
    )
    assert failure_text([]) == "UNKNOWN_ERROR"
