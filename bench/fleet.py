"""A fleet rollout: --containers Container manifests (default 10), each on the test set-up's three
local engines (the default one, engine-1, and engine-2 over ssh://), applied serially
(`rollout.parallel: 1`, `--parallel 1`) and in parallel (`rollout.parallel: 5`, `--parallel 5`:
every host at once, five manifests at a time on each), against the same `docker run` commands in
a shell loop (the floor). Ten engines are not available here, so each of the three engines gets
the ten containers (30 in all).

Each measure is the median of --runs fresh deploys (everything removed in between, also when a
run fails), printed as seconds and as a ratio to the floor measured in the same run. A report,
not a test: exits 0, or 1 when a deploy failed.

    flock /tmp/bojdeploy-docker.lock .venv/bin/python bench/fleet.py [--runs 2] [--containers 10]
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
PARALLEL = 5


def repo(root: Path, containers: int, parallel: int, tag: str) -> None:
    (root / "deploy").mkdir(parents=True, exist_ok=True)
    (root / "bojdeploy.yaml").write_text(
        "environments:\n  bench: {branches: ['*']}\ntargets:\n  bench:\n"
        f"    docker_host: {ENGINES['default']}\n    hosts:\n"
        + "".join(
            f"      {h}: {{docker_host: '{u}'}}\n" for h, u in ENGINES.items() if h != "default"
        )
    )
    for i in range(containers):
        (root / "deploy" / f"c{i}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: bfleet-{tag}-{i}, hosts: [{', '.join(ENGINES)}]}}\n"
            f"spec:\n  image: {IMAGE}\n  pull: never\n  stop_timeout: 1s\n"
            "  labels: {io.bojdeploy.test: 'true'}\n"
            f"  rollout: {{parallel: {parallel}}}\n"
        )


def clean(tag: str) -> None:
    """Remove this measure's containers from every engine."""
    for url in ENGINES.values():
        client = fleet.connect(url)
        try:
            for c in client.containers.list(all=True, filters={"name": f"bfleet-{tag}"}):
                c.remove(force=True)
        finally:
            client.close()


def bojdeploy(containers: int, parallel: int) -> float:
    tag = uuid.uuid4().hex[:6]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "repo"
            repo(root, containers, parallel, tag)
            cmd = [sys.executable, "-m", "bojdeploy", "--database-url", f"sqlite:///{tmp}/s.db"]
            apply = [*cmd, "apply", "--env", "bench", "--parallel", str(parallel), str(root)]
            started = time.monotonic()
            done = subprocess.run(apply, capture_output=True, text=True)
            took = time.monotonic() - started
            if done.returncode != 0:
                why = f"{done.stdout}{done.stderr}"
                sys.exit(f"bojdeploy apply failed ({done.returncode}):\n{why}")
    finally:
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
    try:
        started = time.monotonic()
        subprocess.run(["bash", "-ec", "\n".join(lines)], check=True)
        took = time.monotonic() - started
    finally:
        clean(tag)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--containers", type=int, default=10)
    args = parser.parse_args()
    n, runs = args.containers, args.runs
    floor = statistics.median(shell_loop(n) for _ in range(runs))
    serial = statistics.median(bojdeploy(n, 1) for _ in range(runs))
    parallel = statistics.median(bojdeploy(n, PARALLEL) for _ in range(runs))
    print(f"{n} containers x {len(ENGINES)} engines ({n * len(ENGINES)} in all), median of {runs}")
    print(f"  docker run, shell loop     {floor:6.2f}s  1.00x")
    print(f"  bojdeploy, serial          {serial:6.2f}s  {serial / floor:.2f}x")
    print(f"  bojdeploy, parallel {PARALLEL}      {parallel:6.2f}s  {parallel / floor:.2f}x")
    print(f"  parallel {PARALLEL} / serial         {parallel / serial:.2f}x")


if __name__ == "__main__":
    main()
