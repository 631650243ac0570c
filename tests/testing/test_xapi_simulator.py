"""Async calls and tasks, fault injection, session expiry, call recording, concurrency, an
Ansible-style client, and the standalone server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
import XenAPI

from bojdeploy.testing.xapi import XapiSimulator

DEBIAN = "Debian Bookworm 12"


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(username="root", password="secret", ip_delay=0.05) as simulator:
        yield simulator


@pytest.fixture
def session(sim: XapiSimulator) -> XenAPI.Session:
    client = XenAPI.Session(sim.url)
    client.xenapi.login_with_password("root", "secret", "1.0", "tests")
    return client


def wait_for(xapi: Any, task: str) -> str:
    """Poll a task as clients do until it leaves `pending`; return its status."""
    deadline = time.monotonic() + 5
    while (status := xapi.task.get_status(task)) == "pending" and time.monotonic() < deadline:
        time.sleep(0.01)
    return str(status)


def test_async_clone_runs_as_a_task(session: XenAPI.Session) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    task = xapi.Async.VM.clone(debian, "web")
    assert task.startswith("OpaqueRef:") and xapi.task.get_name_label(task) == "Async.VM.clone"
    assert wait_for(xapi, task) == "success"
    result = xapi.task.get_result(task)
    assert re.fullmatch(r"<value>OpaqueRef:[0-9a-f-]{36}</value>", result)
    (clone,), _ = xmlrpc.client.loads(
        f"<methodResponse><params><param>{result}</param></params></methodResponse>"
    )
    assert xapi.VM.get_name_label(clone) == "web"
    record = xapi.task.get_record(task)
    assert record["progress"] == 1.0 and record["error_info"] == []
    assert isinstance(record["finished"], xmlrpc.client.DateTime)
    xapi.task.destroy(task)
    assert task not in xapi.task.get_all()


def test_async_failure_lands_in_error_info(session: XenAPI.Session) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    task = xapi.Async.VM.start(debian, False, False)
    assert wait_for(xapi, task) == "failure"
    assert xapi.task.get_error_info(task) == ["VM_IS_TEMPLATE", debian, "start"]
    assert xapi.task.get_result(task) == ""


def test_slow_async_call_stays_pending(sim: XapiSimulator, session: XenAPI.Session) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    sim.slow("VM.clone", 0.3)
    task = xapi.Async.VM.clone(debian, "slow")
    assert xapi.task.get_status(task) == "pending" and xapi.task.get_progress(task) == 0.0
    assert wait_for(xapi, task) == "success"
    sim.slow("VM.clone", 0)
    started = time.monotonic()
    xapi.VM.clone(debian, "fast")
    assert time.monotonic() - started < 0.3


def test_fail_next_fails_sync_and_async_calls(sim: XapiSimulator, session: XenAPI.Session) -> None:
    xapi = session.xenapi
    pool = xapi.pool.get_all()[0]
    sim.fail_next("pool.get_default_SR", "INTERNAL_ERROR", "boom", count=2)
    for _ in range(2):
        with pytest.raises(XenAPI.Failure) as raised:
            xapi.pool.get_default_SR(pool)
        assert raised.value.details == ["INTERNAL_ERROR", "boom"]
    assert xapi.pool.get_default_SR(pool).startswith("OpaqueRef:")
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    sim.fail_next("VM.clone", "SR_FULL", 10, 5)
    task = xapi.Async.VM.clone(debian, "full")
    assert wait_for(xapi, task) == "failure"
    assert xapi.task.get_error_info(task) == ["SR_FULL", "10", "5"]
    assert xapi.VM.get_by_name_label("full") == []


def test_slow_sync_call(sim: XapiSimulator, session: XenAPI.Session) -> None:
    sim.slow("pool.get_all", 0.2)
    started = time.monotonic()
    session.xenapi.pool.get_all()
    assert time.monotonic() - started >= 0.2


def test_an_operation_holds_the_vm_while_it_runs(
    sim: XapiSimulator, session: XenAPI.Session
) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    vm = xapi.VM.clone(debian, "web")
    xapi.VM.remove_from_other_config(vm, "disks")
    sim.slow("VM.provision", 0.3)
    task = xapi.Async.VM.provision(vm)
    time.sleep(0.05)
    assert xapi.VM.get_current_operations(vm) == {task: "provision"}
    assert xapi.VM.get_allowed_operations(vm) == []
    with pytest.raises(XenAPI.Failure) as raised:
        xapi.VM.destroy(vm)
    assert raised.value.details == ["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "provision", task]
    sim.settle()
    assert xapi.task.get_status(task) == "success"
    assert xapi.VM.get_current_operations(vm) == {} and "start" in xapi.VM.get_allowed_operations(
        vm
    )


def test_clones_of_one_template_run_side_by_side(
    sim: XapiSimulator, session: XenAPI.Session
) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    sim.slow("VM.clone", 0.3)
    tasks = [xapi.Async.VM.clone(debian, f"web-{i}") for i in range(2)]
    time.sleep(0.05)
    assert sorted(xapi.VM.get_current_operations(debian).values()) == ["clone", "clone"]
    assert sorted(xapi.VM.get_allowed_operations(debian)) == ["clone", "copy"]
    assert [wait_for(xapi, task) for task in tasks] == ["success", "success"]


def test_power_state_is_checked_before_operations_in_progress(
    sim: XapiSimulator, session: XenAPI.Session
) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    vm = xapi.VM.clone(debian, "web")
    xapi.VM.remove_from_other_config(vm, "disks")
    xapi.VM.provision(vm)
    sim.slow("VM.start", 0.3)
    xapi.Async.VM.start(vm, False, False)
    time.sleep(0.05)
    with pytest.raises(XenAPI.Failure) as raised:
        xapi.VM.clean_shutdown(vm)
    assert raised.value.details == ["VM_BAD_POWER_STATE", vm, "running", "halted"]


def test_a_killed_client_s_call_still_happens(sim: XapiSimulator, session: XenAPI.Session) -> None:
    """As in xapi, a call runs to its end when its client is gone; settle() waits for it."""
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    sim.slow("VM.clone", 0.3)
    body = xmlrpc.client.dumps((session._session, debian, "orphan"), "VM.clone").encode()
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        head = f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n"
        client.sendall(head.encode() + body)
        while ("VM.clone", (debian, "orphan")) not in sim.calls:
            time.sleep(0.01)
    sim.settle()  # the client is gone before the simulator answers
    assert len(xapi.VM.get_by_name_label("orphan")) == 1


def test_expired_sessions_are_survived_by_the_sdk(
    sim: XapiSimulator, session: XenAPI.Session
) -> None:
    old = session.handle
    sim.expire_sessions()
    assert session.xenapi.pool.get_all()  # SESSION_INVALID -> the SDK logs in again, retries
    assert session.handle != old
    logins = [call for call in sim.calls if call[0] == "session.login_with_password"]
    assert len(logins) == 2
    invalid = XenAPI.Session(sim.url)
    invalid._session = old
    invalid.last_login_method = None
    with pytest.raises(xmlrpc.client.Fault, match="You must log in"):
        invalid.xenapi.pool.get_all()


def test_wrong_credentials(sim: XapiSimulator) -> None:
    client = XenAPI.Session(sim.url)
    with pytest.raises(XenAPI.Failure) as raised:
        client.xenapi.login_with_password("root", "nope", "1.0", "tests")
    expected = ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]
    assert raised.value.details == expected
    assert sim.state.sessions == {}


def test_calls_are_recorded_without_the_session(
    sim: XapiSimulator, session: XenAPI.Session
) -> None:
    xapi = session.xenapi
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    xapi.VM.get_record(debian)
    xapi.VM.get_all_records_where('field "is_a_template" = "true"')
    session.xenapi.session.get_this_host(session.handle)
    assert sim.mutating_calls() == []
    assert ("VM.get_by_name_label", (DEBIAN,)) in sim.calls
    task = xapi.Async.VM.clone(debian, "web")
    wait_for(xapi, task)
    xapi.VM.add_to_other_config(debian, "k", "v")
    assert sim.mutating_calls() == [
        ("Async.VM.clone", (debian, "web")),
        ("VM.add_to_other_config", (debian, "k", "v")),
    ]


def test_concurrent_clients_are_serialised(sim: XapiSimulator) -> None:
    def clone(index: int) -> None:
        client = XenAPI.Session(sim.url)
        client.xenapi.login_with_password("root", "secret", "1.0", "tests")
        (debian,) = client.xenapi.VM.get_by_name_label(DEBIAN)
        client.xenapi.VM.clone(debian, f"vm-{index}")

    threads = [threading.Thread(target=clone, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = {sim.state.record("VM", ref)["name_label"] for ref in sim.state.objects["VM"]}
    assert {f"vm-{i}" for i in range(8)} <= names


def test_ansible_xenserver_guest_info_call_set(session: XenAPI.Session) -> None:
    """The calls community.general's xenserver_guest_info makes, with the fields it reads."""
    xapi = session.xenapi
    pool = xapi.pool.get_all()[0]
    xapi.pool.get_default_SR(pool)
    host = xapi.session.get_this_host(session.handle)
    version = xapi.host.get_software_version(host)["product_version"]
    assert [int(part) for part in version.split(".")][:2] == [8, 3]
    (debian,) = xapi.VM.get_by_name_label(DEBIAN)
    params = xapi.VM.get_record(debian)
    assert params["affinity"] == "OpaqueRef:NULL" and xapi.host.get_record(host)["name_label"]
    for vbd in [xapi.VBD.get_record(ref) for ref in params["VBDs"]]:
        assert int(vbd["userdevice"]) >= 0
    for vif in [xapi.VIF.get_record(ref) for ref in params["VIFs"]]:
        xapi.network.get_record(vif["network"])
    sr = xapi.SR.get_record(xapi.pool.get_default_SR(pool))
    assert sr["name_label"] and sr["uuid"]
    facts = {
        "num_cpus": int(params["VCPUs_max"]),
        "memory_mb": int(params["memory_dynamic_max"]) // 2**20,
        "cores": int(params["platform"].get("cores-per-socket", "1")),
        "domid": params["domid"],
    }
    assert facts == {"num_cpus": 1, "memory_mb": 2048, "cores": 1, "domid": "-1"}
    session.xenapi.session.logout()


def test_cli_serves_until_terminated() -> None:
    options = ["--port", "0", "--username", "root", "--password", "secret", "--ip-delay", "0.1"]
    command = [sys.executable, "-m", "bojdeploy.testing.xapi", *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        match = re.fullmatch(
            r"XAPI simulator listening on (http://127\.0\.0\.1:\d+) \(user root, 2 templates\)",
            line,
        )
        assert match, line
        client = XenAPI.Session(match.group(1))
        client.xenapi.login_with_password("root", "secret", "1.0", "tests")
        assert client.xenapi.VM.get_by_name_label(DEBIAN)
        client.xenapi.session.logout()
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0


def test_cli_needs_username_and_password_together() -> None:
    command = [sys.executable, "-m", "bojdeploy.testing.xapi", "--port", "0", "--username", "u"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--username and --password go together" in result.stderr
