"""Container apply against the raw engine, measured side by side in one run.

1. One new container: `bojdeploy apply` of a one-manifest repository (interpreter start-up
   included) vs `docker run -d` of the same image with the same published port.
   Target: ratio <= 1.5.
2. A no-op apply of 50 unchanged manifests (after a first apply created them). Target: < 1 s.
3. 20 new containers with `--parallel 4` vs `--parallel 1`. Target: ratio <= 0.5.

Everything runs on the local engine with the test image from the local registry; containers are
labelled io.bojdeploy.test=true and removed at the end. A report, not a test: it always exits 0.

    .venv/bin/python bench/container_apply.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

IMAGE = "127.0.0.1:5000/bojdeploy-test/web:1"
BOJDEPLOY = str(Path(sys.executable).parent / "bojdeploy")
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest(name: str, port: int) -> str:
    """One Container manifest document."""
    return (
        f"apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {{name: {name}}}\n"
        f"spec:\n  image: {IMAGE}\n  ports: ['127.0.0.1:{port}:80']\n"
        "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n"
    )


def make_repo(names: list[str]) -> Path:
    """A deployment repository with one manifest per name."""
    root = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    (root / "deploy").mkdir()
    (root / "bojdeploy.yaml").write_text("environments:\n  bench: {branches: ['*']}\n")
    for name in names:
        (root / "deploy" / f"{name}.yml").write_text(manifest(name, free_port()))
    return root


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one command; a failure aborts the bench with its output."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def apply(repo: Path, db: Path, *extra: str) -> float:
    """Time `bojdeploy apply` of `repo` with state in `db`."""
    env = {**os.environ, "BOJDEPLOY_DATABASE_URL": f"sqlite:///{db}"}
    return timed([BOJDEPLOY, "apply", "--env", "bench", *extra, str(repo)], env)


def cleanup() -> None:
    """Remove every bench container."""
    ids = subprocess.run(
        [DOCKER, "ps", "-aq", "--filter", "label=io.bojdeploy.bench=true"],
        capture_output=True,
        text=True,
    ).stdout.split()
    ids += subprocess.run(
        [DOCKER, "ps", "-aq", "--filter", "name=^bench-"], capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run([DOCKER, "rm", "-f", *set(ids)], capture_output=True)


def one_container(runs: int, work: Path) -> tuple[float, float]:
    """Median seconds: bojdeploy creating one container, and `docker run -d` doing it."""
    ours, raw = [], []
    for _ in range(runs):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        ours.append(apply(make_repo([name]), work / f"{name}.db"))
        raw.append(
            timed(
                [
                    DOCKER,
                    "run",
                    "-d",
                    "--name",
                    name + "-raw",
                    "--label",
                    "io.bojdeploy.bench=true",
                    "-p",
                    f"127.0.0.1:{free_port()}:80",
                    IMAGE,
                ]
            )
        )
        cleanup()
    return statistics.median(ours), statistics.median(raw)


def noop_fifty(work: Path) -> float:
    """Seconds of an apply where all 50 manifests are unchanged."""
    repo = make_repo([f"bench-{uuid.uuid4().hex[:6]}-{i}" for i in range(50)])
    db = work / "fifty.db"
    apply(repo, db, "--parallel", "8")
    elapsed = apply(repo, db)
    cleanup()
    return elapsed


def twenty(parallel: int, work: Path) -> float:
    """Seconds to create 20 new containers with --parallel N."""
    repo = make_repo([f"bench-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)])
    elapsed = apply(repo, work / f"twenty-{parallel}.db", "--parallel", str(parallel))
    cleanup()
    return elapsed


def verdict(ok: bool) -> str:
    """'target met' or 'target MISSED'."""
    return "target met" if ok else "target MISSED"


def main() -> None:
    """Run the three measurements and print times, ratios and verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    cleanup()
    ours, raw = one_container(args.runs, work)
    print(
        f"one container: bojdeploy apply {ours:.2f}s, docker run -d {raw:.2f}s, "
        f"ratio {ours / raw:.2f} (<= 1.5: {verdict(ours / raw <= 1.5)})"
    )
    noop = noop_fifty(work)
    print(f"no-op apply of 50 unchanged manifests: {noop:.2f}s (< 1 s: {verdict(noop < 1)})")
    p4, p1 = twenty(4, work), twenty(1, work)
    print(
        f"20 new containers: --parallel 4 {p4:.2f}s, --parallel 1 {p1:.2f}s, ratio "
        f"{p4 / p1:.2f} (<= 0.5: {verdict(p4 / p1 <= 0.5)})"
    )


if __name__ == "__main__":
    main()
