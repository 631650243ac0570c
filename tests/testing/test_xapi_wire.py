"""The wire format, sessions and generic calls, as the XenAPI SDK and raw XML see them."""

from __future__ import annotations

import functools
import http.client
import re
import urllib.parse
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
import XenAPI

from bojdeploy.testing.xapi import XapiSimulator

REF = r"OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(username="root", password="secret", ip_delay=0.05) as simulator:
        yield simulator


@pytest.fixture
def xapi(sim: XapiSimulator) -> Iterator[Any]:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "secret", "1.0", "bojdeploy-tests")
    yield session.xenapi
    session.xenapi.session.logout()


def post(url: str, body: str | bytes, path: str = "/") -> tuple[int, str]:
    """POST a raw body and return the HTTP status and the response text."""
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.netloc, timeout=5)
    try:
        connection.request("POST", path, body, {"Content-Type": "text/xml"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def raw_call(url: str, method: str, *params: Any) -> str:
    """The raw XML response of one XML-RPC call (HTTP 200 expected)."""
    status, text = post(url, xmlrpc.client.dumps(params, method))
    assert status == 200
    return text


def envelope(text: str) -> dict[str, Any]:
    """The Success/Failure struct of a raw response."""
    (value,), _ = xmlrpc.client.loads(text)
    assert isinstance(value, dict)
    return value


def login(url: str) -> str:
    text = raw_call(url, "session.login_with_password", "root", "secret", "1.0", "raw")
    return str(envelope(text)["Value"])


def failure(call: Any, *args: Any) -> list[str]:
    """The ErrorDescription a call fails with."""
    with pytest.raises(XenAPI.Failure) as raised:
        call(*args)
    return list(raised.value.details)


def test_success_envelope_is_ocaml_rpc_shaped(sim: XapiSimulator) -> None:
    text = raw_call(sim.url, "session.login_with_password", "root", "secret", "1.0", "raw")
    assert re.fullmatch(
        "<methodResponse><params><param><value><struct>"
        "<member><name>Status</name><value>Success</value></member>"
        f"<member><name>Value</name><value>{REF}</value></member>"
        "</struct></value></param></params></methodResponse>",
        text,
    )


def test_failure_envelope_lists_code_and_parameters(sim: XapiSimulator) -> None:
    text = raw_call(sim.url, "session.login_with_password", "root", "wrong", "1.0", "raw")
    assert text == (
        "<methodResponse><params><param><value><struct>"
        "<member><name>Status</name><value>Failure</value></member>"
        "<member><name>ErrorDescription</name><value><array><data>"
        "<value>SESSION_AUTHENTICATION_FAILED</value><value>root</value>"
        "<value>Authentication failure</value>"
        "</data></array></value></member></struct></value></param></params></methodResponse>"
    )


def test_int64_fields_are_strings_and_other_types_are_typed(sim: XapiSimulator) -> None:
    session = login(sim.url)
    (template,) = sim.state.find("VM", name_label="Debian Bookworm 12")
    text = raw_call(sim.url, "VM.get_record", session, template)
    member = "<member><name>{}</name><value>{}</value></member>"
    assert member.format("memory_static_max", "2147483648") in text
    assert member.format("VCPUs_max", "1") in text
    assert member.format("domid", "-1") in text
    assert member.format("is_a_template", "<boolean>1</boolean>") in text
    assert member.format("HVM_shadow_multiplier", "<double>1.0</double>") in text
    epoch = "<dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601>"
    assert member.format("snapshot_time", epoch) in text
    assert member.format("guest_metrics", "OpaqueRef:NULL") in text
    assert not re.search("<(string|int|i4|i8)>", text)


def test_sdk_sees_strings_for_int64_bools_and_datetimes(xapi: Any) -> None:
    (template,) = xapi.VM.get_by_name_label("Debian Bookworm 12")
    record = xapi.VM.get_record(template)
    assert record["VCPUs_max"] == "1" and record["memory_static_max"] == "2147483648"
    assert record["is_a_template"] is True
    assert isinstance(record["snapshot_time"], xmlrpc.client.DateTime)
    assert record["guest_metrics"] == "OpaqueRef:NULL"


def test_refs_are_opaque_and_distinct_from_uuids(xapi: Any) -> None:
    for ref, record in xapi.VM.get_all_records().items():
        assert re.fullmatch(REF, ref)
        assert record["uuid"] not in ref
        assert xapi.VM.get_by_uuid(record["uuid"]) == ref


def test_root_and_rpc2_paths_serve_xml_rpc_other_paths_do_not(sim: XapiSimulator) -> None:
    call = xmlrpc.client.dumps(("root", "secret"), "session.login_with_password")
    assert post(sim.url, call, "/")[0] == 200
    assert post(sim.url, call, "/RPC2")[0] == 200
    assert post(sim.url, call, "/jsonrpc")[0] == 404
    session = XenAPI.Session(sim.url + "/RPC2")
    session.login_with_password("root", "secret", "1.0", "rpc2")
    assert session.xenapi.pool.get_all()


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"<?xml version='1.0'?><methodCall><methodName>pool.get_all</methodName></methodCall>",
        b"<?xml version='1.0'?><methodCall><params></params></methodCall>",
    ],
)
def test_malformed_calls_get_http_500(sim: XapiSimulator, body: bytes) -> None:
    status, text = post(sim.url, body)
    assert status == 500 and "<html>" in text


# Placeholders in arguments and expectations: TPL a template's ref, HOST the host's ref.
ERRORS = [
    ("VM.frobnicate", ["TPL"], ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]),
    ("VM.get_record", [], ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "2", "1"]),
    ("VM.start", ["TPL", False], ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "4", "3"]),
    ("VM.set_power_state", ["TPL", "Running"], ["MESSAGE_METHOD_UNKNOWN", "VM.set_power_state"]),
    ("Async.VM.get_record", ["TPL"], ["MESSAGE_METHOD_UNKNOWN", "Async.VM.get_record"]),
    ("VM.get_record", ["OpaqueRef:NULL"], ["HANDLE_INVALID", "VM", "OpaqueRef:NULL"]),
    ("VM.get_record", ["HOST"], ["HANDLE_INVALID", "VM", "HOST"]),
    ("VM.get_name_label", ["HOST"], ["HANDLE_INVALID", "VM", "HOST"]),
    ("SR.get_by_uuid", ["nope"], ["UUID_INVALID", "SR", "nope"]),
    ("VM.start", ["TPL", "false", False], ["FIELD_TYPE_ERROR", "start_paused"]),
    ("VM.set_user_version", ["TPL", "four"], ["FIELD_TYPE_ERROR", "value"]),
    ("VM.add_to_platform", ["TPL", "k", 1], ["FIELD_TYPE_ERROR", "value"]),
    (
        "VM.add_to_platform",
        ["TPL", "acpi", "0"],
        ["MAP_DUPLICATE_KEY", "VM", "platform", "TPL", "acpi"],
    ),
    ("session.get_this_host", ["OpaqueRef:x"], ["HANDLE_INVALID", "session", "OpaqueRef:x"]),
]


@pytest.mark.parametrize("method, args, expected", ERRORS)
def test_errors_carry_xapi_codes_and_parameters(
    xapi: Any, method: str, args: list[Any], expected: list[str]
) -> None:
    (template,) = xapi.VM.get_by_name_label("Other install media")
    refs = {"TPL": template, "HOST": xapi.pool.get_master(xapi.pool.get_all()[0])}
    call = functools.reduce(getattr, method.split("."), xapi)
    resolved = [refs.get(arg, arg) if isinstance(arg, str) else arg for arg in args]
    assert failure(call, *resolved) == [refs.get(item, item) for item in expected]


def test_int64_parameters_arrive_as_ints_or_strings(xapi: Any) -> None:
    (template,) = xapi.VM.get_by_name_label("Other install media")
    xapi.VM.set_user_version(template, 3)
    assert xapi.VM.get_user_version(template) == "3"
    xapi.VM.set_user_version(template, "4")
    assert xapi.VM.get_user_version(template) == "4"


def test_getters_setters_and_name_lookup(xapi: Any) -> None:
    (template,) = xapi.VM.get_by_name_label("Other install media")
    xapi.VM.set_name_description(template, "changed")
    assert xapi.VM.get_name_description(template) == "changed"
    assert xapi.VM.get_by_name_label("no such VM") == []
    assert len(xapi.network.get_all()) == 2
    assert xapi.VBD.get_all() == []


def test_map_add_and_remove_semantics(xapi: Any) -> None:
    (template,) = xapi.VM.get_by_name_label("Other install media")
    xapi.VM.add_to_xenstore_data(template, "vm-data/role", "web")
    assert xapi.VM.get_xenstore_data(template)["vm-data/role"] == "web"
    duplicate = ["MAP_DUPLICATE_KEY", "VM", "xenstore_data", template, "vm-data/role"]
    assert failure(xapi.VM.add_to_xenstore_data, template, "vm-data/role", "db") == duplicate
    xapi.VM.remove_from_xenstore_data(template, "vm-data/role")
    xapi.VM.remove_from_xenstore_data(template, "vm-data/role")  # missing key: no-op
    assert "vm-data/role" not in xapi.VM.get_xenstore_data(template)
    xapi.VM.set_xenstore_data(template, {"vm-data": ""})
    assert xapi.VM.get_xenstore_data(template) == {"vm-data": ""}


def test_sessions_login_logout_and_this_host(sim: XapiSimulator) -> None:
    session = XenAPI.Session(sim.url)
    with pytest.raises(XenAPI.Failure) as raised:
        session.xenapi.login_with_password("root", "wrong", "1.0", "tests")
    assert raised.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
    session.xenapi.login_with_password("root", "secret", "1.0", "tests")
    host = session.xenapi.session.get_this_host(session.handle)
    assert host == session.xenapi.pool.get_master(session.xenapi.pool.get_all()[0])
    handle = session.handle
    session.xenapi.session.logout()
    reply = envelope(raw_call(sim.url, "pool.get_all", handle))
    assert reply["ErrorDescription"] == ["SESSION_INVALID", handle]


def test_any_credentials_without_configured_user() -> None:
    with XapiSimulator() as simulator:
        session = XenAPI.Session(simulator.url)
        session.xenapi.login_with_password("anyone", "anything")
        assert session.xenapi.pool.get_all()


def test_pool_and_host_inventory(xapi: Any) -> None:
    pool = xapi.pool.get_all()[0]
    host = xapi.pool.get_master(pool)
    assert xapi.SR.get_name_label(xapi.pool.get_default_SR(pool)) == "Local storage"
    version = xapi.host.get_software_version(host)
    assert version["product_brand"] == "XCP-ng" and version["product_version"] == "8.3.0"
    assert xapi.host.get_API_version_major(host) == "2"
    assert xapi.host.get_API_version_minor(host) == "21"
    assert int(xapi.host.compute_free_memory(host)) > 8 * 2**30
    dom0 = xapi.host.get_control_domain(host)
    assert xapi.VM.get_is_control_domain(dom0) and xapi.VM.get_power_state(dom0) == "Running"
    names = {r["name_label"] for r in xapi.network.get_all_records().values()}
    assert "Pool-wide network associated with eth0" in names
