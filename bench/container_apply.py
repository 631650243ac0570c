"""Container apply against the raw engine, measured side by side in one run.

1. One new container: `bojdeploy apply` of a one-manifest repository (interpreter start-up
   included) vs `docker run -d` of the same image with a published port, runs interleaved,
   medians. Target: ratio <= 1.5. Ansible's `community.docker.docker_container` doing the same
   is a third column when its venv is found (BOJDEPLOY_ANSIBLE_VENV, default
   ~/.cache/bojdeploy-ansible); it is skipped otherwise.
2. A no-op apply of 200 unchanged manifests (after a first apply created them) vs one
   `docker ps -a --filter` listing them. Target: <= 0.5 s.
3. 20 new containers with `--parallel 4` vs `--parallel 1`. Target: ratio <= 0.5.

Everything runs on the local engine with the test image from the local registry. Every manifest
publishes its own free port on 127.0.0.1; every container is labelled io.bojdeploy.bench=true and
removed at the end, also when a step fails. A report, not a test: it exits 0 unless a step fails.

The package's bytecode is compiled first, as an installed package has it (with
PYTHONDONTWRITEBYTECODE set, a source checkout would otherwise compile every module on every run).
A create waits for its container to stay up through the settle window (a container that exits
within it is a failed deploy), so `docker run -d` plus that window is also shown: no create with
the same safety can be quicker than that.

    .venv/bin/python bench/container_apply.py [--runs 7] [--noop 200]
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bojdeploy.drivers import container_wait
from bojdeploy.drivers.container_wait import SETTLE_SECONDS

IMAGE = "127.0.0.1:5000/bojdeploy-test/web:1"
BOJDEPLOY = str(Path(sys.executable).parent / "bojdeploy")
DOCKER = shutil.which("docker") or "docker"
BENCH_LABEL = "io.bojdeploy.bench=true"
ANSIBLE_VENV = Path(os.environ.get("BOJDEPLOY_ANSIBLE_VENV", "~/.cache/bojdeploy-ansible"))
ANSIBLE_MODULE = "community.docker.docker_container"

_given: set[int] = set()  # ports handed out in this run: never twice


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and was not handed out before in this run."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _given:
            _given.add(port)
            return port


def manifest(name: str, port: int) -> str:
    """One Container manifest document."""
    return (
        f"apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {{name: {name}}}\n"
        f"spec:\n  image: {IMAGE}\n  ports: ['127.0.0.1:{port}:80']\n"
        "  labels: {io.bojdeploy.bench: 'true'}\n  stop_timeout: 1s\n"
    )


def make_repo(names: list[str], work: Path) -> Path:
    """A deployment repository under `work` with one manifest per name, each with its own port."""
    root = Path(tempfile.mkdtemp(prefix="repo-", dir=work))
    (root / "deploy").mkdir()
    (root / "bojdeploy.yaml").write_text("environments:\n  bench: {branches: ['*']}\n")
    for name in names:
        (root / "deploy" / f"{name}.yml").write_text(manifest(name, free_port()))
    return root


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one command; a failure stops the bench (after its clean-up) with its output."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        output = (done.stderr or done.stdout)[-2000:]
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{output}")
    return elapsed


def apply(repo: Path, db: Path, *extra: str) -> float:
    """Time `bojdeploy apply` of `repo` with state in `db`."""
    env = {**os.environ, "BOJDEPLOY_DATABASE_URL": f"sqlite:///{db}"}
    return timed([BOJDEPLOY, "apply", "--env", "bench", *extra, str(repo)], env)


def docker_run(name: str) -> float:
    """Time `docker run -d` of the bench image with its own published port."""
    port = f"127.0.0.1:{free_port()}:80"
    return timed([DOCKER, "run", "-d", "--name", name, "--label", BENCH_LABEL, "-p", port, IMAGE])


def ansible() -> Callable[[str], float] | None:
    """Timing of Ansible's docker_container creating a container, or None without Ansible."""
    venv = ANSIBLE_VENV.expanduser()
    binary = venv / "bin" / "ansible"
    collection = next(
        venv.glob("lib/python*/site-packages/ansible_collections/community/docker"), None
    )
    if not binary.exists() or collection is None:
        return None
    # The module needs `requests` on the managed side: the first of these Pythons that has it.
    pythons = [venv / "bin" / "python", Path(sys.prefix).resolve() / "bin" / "python"]
    python = next((str(p) for p in pythons if _imports(p, "requests")), sys.executable)

    def run(name: str) -> float:
        args = (
            f"name={name} image={IMAGE} state=started pull=missing "
            f"published_ports=127.0.0.1:{free_port()}:80 labels={{'io.bojdeploy.bench':'true'}}"
        )
        return timed(
            [str(binary), "localhost", "-c", "local", "-i", "localhost,", "-m", ANSIBLE_MODULE,
             "-e", f"ansible_python_interpreter={python}", "-a", args]
        )  # fmt: skip

    return run


def _imports(python: Path, module: str) -> bool:
    """Whether `python` can import `module`."""
    done = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True)
    return done.returncode == 0


def cleanup() -> None:
    """Remove every bench container (by label, and by name for a half-made one)."""
    ids: set[str] = set()
    for flt in (f"label={BENCH_LABEL}", "name=^bench-"):
        listed = subprocess.run(
            [DOCKER, "ps", "-aq", "--filter", flt], capture_output=True, text=True
        )
        ids |= set(listed.stdout.split())
    if ids:
        subprocess.run([DOCKER, "rm", "-f", *sorted(ids)], capture_output=True)


def one_container(runs: int, work: Path) -> dict[str, float]:
    """Median seconds to create one container: bojdeploy, docker run -d, and Ansible if found."""
    peers: dict[str, Callable[[str], float]] = {
        "bojdeploy apply": lambda name: apply(make_repo([name], work), work / f"{name}.db"),
        "docker run -d": docker_run,
    }
    if (run_ansible := ansible()) is not None:
        peers["ansible docker_container"] = run_ansible
    times: dict[str, list[float]] = {label: [] for label in peers}
    for _ in range(runs):
        order = list(peers)
        random.shuffle(order)  # interleaved, in no fixed order
        try:
            for label in order:
                times[label].append(peers[label](f"bench-{uuid.uuid4().hex[:8]}"))
        finally:
            cleanup()
    return {label: statistics.median(t) for label, t in times.items()}


def noop(count: int, runs: int, work: Path) -> tuple[float, float]:
    """Median seconds of a no-op apply of `count` unchanged manifests, and of one `docker ps`."""
    repo = make_repo([f"bench-{uuid.uuid4().hex[:6]}-{i}" for i in range(count)], work)
    db = work / "noop.db"
    try:
        apply(repo, db, "--parallel", "8")
        ours, raw = [], []
        listing = [DOCKER, "ps", "-a", "--filter", f"label={BENCH_LABEL}"]
        for _ in range(runs):
            ours.append(apply(repo, db))
            raw.append(timed(listing))
    finally:
        cleanup()
    return statistics.median(ours), statistics.median(raw)


def twenty(parallel: int, work: Path) -> float:
    """Seconds to create 20 new containers with --parallel N."""
    repo = make_repo([f"bench-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)], work)
    try:
        return apply(repo, work / f"twenty-{parallel}.db", "--parallel", str(parallel))
    finally:
        cleanup()


def verdict(ok: bool) -> str:
    """'target met' or 'target MISSED'."""
    return "target met" if ok else "target MISSED"


def main() -> None:
    """Run the three measurements and print times, ratios and verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measurement (medians)")
    parser.add_argument("--noop", type=int, default=200, help="manifests in the no-op apply")
    parser.add_argument("--skip-parallel", action="store_true", help="skip the 20-container run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    compileall.compile_dir(Path(container_wait.__file__).parents[1], quiet=1)
    cleanup()
    try:
        one = one_container(args.runs, work)
        raw = one["docker run -d"]
        print(f"one new container (median of {args.runs}, interleaved):")
        for label, seconds in one.items():
            print(f"  {label:26} {seconds:5.2f}s  {seconds / raw:4.2f}x docker run -d")
        ratio = one["bojdeploy apply"] / raw
        print(f"  bojdeploy / docker run -d = {ratio:.2f} (<= 1.5: {verdict(ratio <= 1.5)})")
        floor = raw + SETTLE_SECONDS
        print(
            f"  docker run -d + the {SETTLE_SECONDS:g}s settle window = {floor:.2f}s "
            f"({floor / raw:.2f}x docker run -d); bojdeploy / that = "
            f"{one['bojdeploy apply'] / floor:.2f}"
        )
        if "ansible docker_container" not in one:
            print(f"  (Ansible skipped: no {ANSIBLE_MODULE} in {ANSIBLE_VENV})")
        ours, listing = noop(args.noop, max(3, args.runs // 2), work)
        print(
            f"no-op apply of {args.noop} unchanged manifests: {ours:.2f}s, one docker ps "
            f"--filter {listing:.2f}s ({ours / listing:.1f}x) (<= 0.5 s: {verdict(ours <= 0.5)})"
        )
        if not args.skip_parallel:
            p4, p1 = twenty(4, work), twenty(1, work)
            print(
                f"20 new containers: --parallel 4 {p4:.2f}s, --parallel 1 {p1:.2f}s, ratio "
                f"{p4 / p1:.2f} (<= 0.5: {verdict(p4 / p1 <= 0.5)})"
            )
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
