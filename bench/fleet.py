"""A fleet rollout: containers on the test set-up's three local engines (the default one,
engine-1 and engine-2 over ssh://), rolled out serially and with `rollout.parallel: 3`, against
the same `docker run` commands in a shell loop (the floor). 10 engines are not available here,
so the run deploys --containers manifests (default 4), each to the three engines.

Each measure is the median of --runs fresh deploys (everything removed in between), printed as
seconds and as a ratio to the floor measured in the same run. A report, not a test: exits 0.

    .venv/bin/python bench/fleet.py [--runs 3] [--containers 4]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import fleet  # noqa: E402

IMAGE = "127.0.0.1:5000/bojdeploy-test/web:1"
ENGINES = fleet.engine_urls()  # default, engine-1, engine-2 (ssh://)


def repo(root: Path, containers: int, parallel: int, tag: str) -> None:
    (root / "deploy").mkdir(parents=True, exist_ok=True)
    (root / "bojdeploy.yaml").write_text(
        "environments:\n  bench: {branches: ['*']}\ntargets:\n  bench:\n"
        "    docker_host: unix:///var/run/docker.sock\n    hosts:\n"
        + "".join(
            f"      {h}: {{docker_host: '{u}'}}\n" for h, u in ENGINES.items() if h != "default"
        )
    )
    for i in range(containers):
        (root / "deploy" / f"c{i}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: bfleet-{tag}-{i}, hosts: [default, engine-1, engine-2]}}\n"
            f"spec:\n  image: {IMAGE}\n  pull: never\n  stop_timeout: 1s\n"
            "  labels: {io.bojdeploy.test: 'true'}\n"
            f"  rollout: {{parallel: {parallel}}}\n"
        )


def clean(tag: str) -> None:
    for url in ENGINES.values():
        client = fleet.connect(url)
        for c in client.containers.list(all=True, filters={"name": f"bfleet-{tag}"}):
            c.remove(force=True)
        client.close()


def bojdeploy(containers: int, parallel: int) -> float:
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        repo(root, containers, parallel, tag)
        cmd = [sys.executable, "-m", "bojdeploy", "--database-url", f"sqlite:///{tmp}/s.db"]
        started = time.monotonic()
        subprocess.run(
            [*cmd, "apply", "--env", "bench", str(root)], check=True, capture_output=True
        )
        took = time.monotonic() - started
    clean(tag)
    return took


def shell_loop(containers: int) -> float:
    tag = uuid.uuid4().hex[:6]
    lines = [
        f"docker -H {url} run -d --name bfleet-{tag}-{i} --label io.bojdeploy.test=true "
        f"{IMAGE} >/dev/null"
        for url in ENGINES.values()
        for i in range(containers)
    ]
    started = time.monotonic()
    subprocess.run(["bash", "-ec", "\n".join(lines)], check=True)
    took = time.monotonic() - started
    clean(tag)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--containers", type=int, default=4)
    args = parser.parse_args()
    n = args.containers
    floor = statistics.median(shell_loop(n) for _ in range(args.runs))
    serial = statistics.median(bojdeploy(n, 1) for _ in range(args.runs))
    parallel = statistics.median(bojdeploy(n, 3) for _ in range(args.runs))
    print(f"{n} containers x 3 engines, median of {args.runs} runs")
    print(f"  docker run, shell loop     {floor:6.2f}s  1.00x")
    print(f"  bojdeploy, parallel: 1     {serial:6.2f}s  {serial / floor:.2f}x")
    print(f"  bojdeploy, parallel: 3     {parallel:6.2f}s  {parallel / floor:.2f}x")
    print(f"  parallel 3 vs serial       {parallel / serial:.2f}x")


if __name__ == "__main__":
    main()
