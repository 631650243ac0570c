"""The waits of the VM driver: async tasks and guest IPs."""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import XenAPI

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import BojdeployError, DriverError

NULL_REF = "OpaqueRef:NULL"
PROGRESS_SECONDS = 5.0
MAX_POLL_SECONDS = 1.0
IP_POLL_SECONDS = 0.25


def run_async(
    api: Any, what: str, timeout: float, log: StepLog, call: Callable[..., str], *args: Any
) -> Any:
    """Start an Async.* call and wait for its task; its result, or DriverError naming `what`."""
    started = time.monotonic()
    log("info", f"{what} ...")
    with xen_errors(what):
        task = call(*args)
        try:
            result = _wait_task(api, task, what, timeout, log)
        finally:
            _forget(api, task)
    log("info", f"{what}: done in {time.monotonic() - started:.1f}s")
    return result


def _wait_task(api: Any, task: str, what: str, timeout: float, log: StepLog) -> Any:
    """Poll the task until it ends; a timeout cancels it."""
    started = last = time.monotonic()
    delay = 0.05
    while True:
        record = api.task.get_record(task)  # status, result and error in one call
        status = record["status"]
        if status == "success":
            return task_result(record["result"])
        if status in ("failure", "cancelled"):
            raise XenAPI.Failure(record["error_info"])
        elapsed = time.monotonic() - started
        if elapsed >= timeout:
            with suppress(BojdeployError), xen_errors("cancel"):
                api.task.cancel(task)
            raise DriverError(f"{what}: not done within {timeout:g}s (task cancelled)")
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            log("info", f"{what} ... {elapsed:.0f}s", elapsed=round(elapsed, 1))
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)


def _forget(api: Any, task: str) -> None:
    """Destroy a finished task record; one that is already gone is fine."""
    with suppress(BojdeployError), xen_errors("forget"):
        api.task.destroy(task)


def task_result(text: str) -> Any:
    """A task's result: XML-RPC '<value>...</value>' text decoded; '' (void) -> None."""
    if not text:
        return None
    body = f"<methodResponse><params><param>{text}</param></params></methodResponse>"
    return xmlrpc.client.loads(body)[0][0]


def wait_for_ip(
    api: Any, vm: str, name: str, timeout: float, log: StepLog, *, booting: bool = False
) -> tuple[str, dict[str, Any]]:
    """Wait for a guest IP in VM_guest_metrics.networks; the IP and the VM's record read with
    it. DriverError after `timeout`. `booting`: just started (the first look is one poll on)."""
    started = last = time.monotonic()
    log("info", f"waiting for a guest IP of VM {name} ...")
    if booting:
        time.sleep(IP_POLL_SECONDS)
    while True:
        with xen_errors(f"cannot read the guest metrics of VM {name}"):
            record = api.VM.get_record(vm)
            ip = _current_ip(api, record["guest_metrics"])
        elapsed = time.monotonic() - started
        if ip:
            log("info", f"guest IP {ip} after {elapsed:.1f}s", ip=ip, elapsed=round(elapsed, 1))
            return ip, record
        if elapsed >= timeout:
            raise DriverError(
                f"VM {name} reported no guest IP within {timeout:g}s (are the guest tools "
                "running? set spec.wait.ip: 0 to not wait)"
            )
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            log("info", f"waiting for a guest IP of VM {name} ... {elapsed:.0f}s")
        time.sleep(IP_POLL_SECONDS)


def _current_ip(api: Any, metrics: str) -> str | None:
    """The guest IP the VM's `metrics` report; none yet, or stale metrics (deleted at restart),
    count as none."""
    if metrics == NULL_REF:
        return None
    try:
        networks = api.VM_guest_metrics.get_networks(metrics)
    except XenAPI.Failure as e:
        if e.details and e.details[0] == "HANDLE_INVALID":
            return None
        raise
    return guest_ip(networks)


def guest_ip(networks: Mapping[str, str]) -> str | None:
    """The guest's first IPv4 address from VM_guest_metrics.networks ("0/ip" first)."""
    for key in ("0/ip", "0/ipv4/0"):
        if networks.get(key):
            return networks[key]
    keys = sorted(k for k in networks if (k.endswith("/ip") or "/ipv4/" in k) and networks[k])
    return networks[keys[0]] if keys else None
