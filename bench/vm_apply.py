"""XenAPI calls and wall time of `bojdeploy apply` for a VM, against the raw SDK doing the same.

Each run starts a fresh XAPI simulator (guest IPs --ip-delay seconds after start) and measures:

- create: `bojdeploy apply` of one VM manifest (start-up, database, plan, driver) against a bare
  XenAPI script making the same VM (clone, provision, VCPUs, memory, VIF, xenstore,
  other_config, start, wait for the guest IP);
- no-op: `bojdeploy apply` again (the VM is unchanged) against the least a client must do to know
  that: log in, one VM.get_all_records_where, log out.

Both sides run as whole processes of the same Python, so interpreter start-up is in both; the
raw client's process imports XenAPI and nothing else (not the simulator, not bojdeploy).
bojdeploy's modules are compiled first, as an install does (PYTHONDONTWRITEBYTECODE would
otherwise make every run compile them again). Beside them, a process that only imports the
libraries bojdeploy loads on this path (click, pydantic, yaml, jinja2, sqlite3, XenAPI) shows
the floor a whole bojdeploy process cannot go under.

Prints the median wall time, the XenAPI calls (all, and mutating), and the ratios against the
targets (create <= 1.3x, no-op <= 1.5x the raw SDK's calls and time).
A report, not a test: it always exits 0.

    .venv/bin/python bench/vm_apply.py [--runs 5] [--ip-delay 0.2]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import XenAPI

TEMPLATE = "Debian Bookworm 12"
NETWORK = "Pool-wide network associated with eth0"
GIB = 2**30
MANIFEST = f"""apiVersion: bojdeploy/v1
kind: VM
metadata: {{name: bench}}
spec:
  template: {TEMPLATE}
  vcpus: 2
  memory: 1GiB
  networks: [{{network: {NETWORK}}}]
  cloud_init: {{role: bench}}
  wait: {{start: 60s, ip: 60s}}
"""
LIBRARIES = "import click, pydantic, yaml, jinja2, sqlite3, XenAPI"
WHERE = 'field "is_a_template" = "false" and field "is_a_snapshot" = "false"'

TARGETS = {"create": 1.3, "no-op": 1.5}  # bojdeploy / raw SDK, for wall time and calls
Measure = tuple[float, int, int]  # seconds, calls, mutating calls


def make_repo(root: Path) -> None:
    """A repository with the one VM manifest."""
    (root / "deploy").mkdir(parents=True)
    (root / "bojdeploy.yaml").write_text("environments:\n  bench: {branches: ['*']}\n")
    (root / "deploy" / "bench.yml").write_text(MANIFEST)


def bojdeploy_apply(sim: Any, root: Path) -> Measure:
    """One `bojdeploy apply` subprocess against the simulator."""
    env = {**os.environ, "BOJDEPLOY_XEN_URL": sim.url, "BOJDEPLOY_XEN_PASSWORD": "pw"}
    env["BOJDEPLOY_DATABASE_URL"] = f"sqlite:///{root.parent / 'state.db'}"
    argv = [str(Path(sys.executable).parent / "bojdeploy"), "apply", "--env", "bench", str(root)]
    return measured(sim, lambda: _run(argv, env))


def raw(sim: Any, what: str) -> Measure:
    """This script's raw SDK client (`--raw create|no-op URL`) in a subprocess."""
    argv = [sys.executable, __file__, "--raw", what, sim.url]
    return measured(sim, lambda: _run(argv, dict(os.environ)))


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{argv[1]} exited {done.returncode}: {done.stderr.strip()[-500:]}")


def measured(sim: Any, action: Callable[[], None]) -> Measure:
    """Wall time of `action` and the simulator calls it made."""
    calls, mutating = len(sim.calls), len(sim.mutating_calls())
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    return seconds, len(sim.calls) - calls, len(sim.mutating_calls()) - mutating


def raw_create(url: str) -> None:
    """The same VM with the bare SDK: synchronous calls, no checks beyond XenAPI's own."""
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", "pw", "1.0", "bench")
    api = session.xenapi
    (template,) = api.VM.get_by_name_label(TEMPLATE)
    (network,) = api.network.get_by_name_label(NETWORK)
    vm = api.VM.clone(template, "raw")
    sr = api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0]))
    other = api.VM.get_other_config(vm)
    other["disks"] = other["disks"].replace('sr=""', f'sr="{sr}"')
    api.VM.set_other_config(vm, {**other, "bojdeploy.managed": "true"})
    api.VM.provision(vm)
    api.VM.set_VCPUs_max(vm, "2")
    api.VM.set_VCPUs_at_startup(vm, "2")
    api.VM.set_memory_limits(vm, str(GIB), str(GIB), str(GIB), str(GIB))
    vif = {"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1500"}
    api.VIF.create(
        {**vif, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}}
    )
    api.VM.add_to_xenstore_data(vm, "vm-data/cloud-init/role", "bench")
    api.VM.start(vm, False, False)
    while api.VM.get_guest_metrics(vm) == "OpaqueRef:NULL":
        time.sleep(0.05)
    session.xenapi.session.logout()


def raw_observe(url: str) -> None:
    """The least a client does to see that nothing changed."""
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", "pw", "1.0", "bench")
    session.xenapi.VM.get_all_records_where(WHERE)
    session.xenapi.session.logout()


def imports(code: str) -> Measure:
    """A process that runs the import statement `code` and nothing else."""
    start = time.perf_counter()
    _run([sys.executable, "-c", code], dict(os.environ))
    return time.perf_counter() - start, 0, 0


def one_run(ip_delay: float) -> dict[str, Measure]:
    """Both floors and both bojdeploy applies, each on a fresh simulator."""
    # Imported here: the raw client's process (this script with --raw) loads XenAPI only.
    from bojdeploy.testing.xapi import XapiSimulator

    out = {}
    with tempfile.TemporaryDirectory() as tmp, XapiSimulator(ip_delay=ip_delay) as sim:
        root = Path(tmp) / "repo"
        make_repo(root)
        out["create: bojdeploy apply"] = bojdeploy_apply(sim, root)
        out["no-op: bojdeploy apply"] = bojdeploy_apply(sim, root)
    with XapiSimulator(ip_delay=ip_delay) as sim:
        out["create: raw XenAPI"] = raw(sim, "create")
        out["no-op: raw XenAPI"] = raw(sim, "no-op")
    out["floor: import XenAPI"] = imports("import XenAPI")
    out["floor: import libraries"] = imports(LIBRARIES)
    return out


def main() -> None:
    """Measure --runs times, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (fresh simulators each)")
    parser.add_argument("--ip-delay", type=float, default=0.2, help="guest IP delay (seconds)")
    parser.add_argument("--raw", nargs=2, metavar=("WHAT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw:
        what, url = args.raw
        (raw_create if what == "create" else raw_observe)(url)
        return
    import bojdeploy

    compileall.compile_dir(Path(bojdeploy.__file__).parent, quiet=1)
    runs = [one_run(args.ip_delay) for _ in range(args.runs)]
    labels = list(runs[0])
    median = {k: statistics.median(r[k][0] for r in runs) for k in labels}
    print(f"median of {args.runs} runs, guest IP after {args.ip_delay:g}s, {sys.executable}")
    print(f"{'what':<28} {'median ms':>10} {'calls':>6} {'mutating':>9}")
    for label in sorted(labels):
        _, calls, mutating = runs[-1][label]
        print(f"{label:<28} {median[label] * 1000:>10.1f} {calls:>6} {mutating:>9}")
    for what, target in TARGETS.items():
        ours, raw = runs[-1][f"{what}: bojdeploy apply"], runs[-1][f"{what}: raw XenAPI"]
        ratio = median[f"{what}: bojdeploy apply"] / median[f"{what}: raw XenAPI"]
        calls = ours[1] / raw[1]
        verdict = "target met" if max(ratio, calls) <= target else "target MISSED"
        print(
            f"{what}: {ratio:.2f}x the raw SDK's wall time, {calls:.2f}x its calls "
            f"(target <= {target}x both): {verdict}"
        )
    libraries = median["floor: import libraries"] - median["floor: import XenAPI"]
    for what in TARGETS:
        ours, raw = median[f"{what}: bojdeploy apply"], median[f"{what}: raw XenAPI"]
        print(
            f"{what}: {(ours - raw) * 1000:.0f} ms over the raw SDK, of which importing "
            f"bojdeploy's libraries is {libraries * 1000:.0f} ms (floor "
            f"{(raw + libraries) / raw:.2f}x for a process that loads them)"
        )


if __name__ == "__main__":
    main()
