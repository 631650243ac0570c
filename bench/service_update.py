"""An image update of a 3-replica Swarm service: bojdeploy against `docker service update`.

One service, deployed by bojdeploy; then, --runs times, bojdeploy switches its image (web:1 <->
web:2, through `bojdeploy apply` of a changed manifest) and `docker service update --image`
switches it back. Both wait until Swarm reports the update completed. Prints the median of each and
their ratio against the target (bojdeploy within 1.2x of the docker CLI). A report, not a test: it
exits 0 whatever the ratio, and non-zero only if an update fails or Swarm is not there.

    .venv/bin/python bench/service_update.py [--runs 3]
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

TARGET_RATIO = 1.2
IMAGES = ("127.0.0.1:5000/bojdeploy-test/web:1", "127.0.0.1:5000/bojdeploy-test/web:2")
# busybox httpd ignores SIGTERM: stop-first would wait 10s per task for both tools alike.
MANIFEST = """apiVersion: bojdeploy/v1
kind: Service
metadata: {{name: {name}}}
spec:
  image: {image}
  replicas: 3
  update: {{order: start-first}}
  labels: {{io.bojdeploy.test: 'true', bench-round: '{round}'}}
"""


def timed(argv: list[str], what: str) -> float:
    """Wall time of one command; exits with its output if it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


class Bench:
    """A repository with one Service manifest, its database, and the two ways to update it."""

    def __init__(self, root: Path):
        self.root = root
        self.name = f"bench-svc-{uuid.uuid4().hex[:6]}"
        self.bojdeploy = str(Path(sys.executable).parent / "bojdeploy")
        self.database = f"sqlite:///{root / 'state.db'}"
        (root / "deploy").mkdir()
        (root / "bojdeploy.yaml").write_text("environments:\n  bench: {branches: ['*']}\n")

    def apply(self, image: str, round_: int) -> float:
        """`bojdeploy apply` of the manifest with `image`; seconds."""
        text = MANIFEST.format(name=self.name, image=image, round=round_)
        (self.root / "deploy" / "svc.yml").write_text(text)
        argv = [self.bojdeploy, "--database-url", self.database, "apply", "--env", "bench"]
        return timed([*argv, str(self.root)], f"bojdeploy apply {image}")

    def docker_update(self, image: str) -> float:
        """`docker service update --image`, waiting for convergence as it does by default."""
        return timed(["docker", "service", "update", "--quiet", "--image", image, self.name], image)

    def remove(self) -> None:
        """Remove the service."""
        subprocess.run(["docker", "service", "rm", self.name], capture_output=True)


def measure(bench: Bench, runs: int) -> tuple[list[float], list[float]]:
    """Alternate the two tools, each switching the image the other one left running."""
    ours: list[float] = []
    theirs: list[float] = []
    bench.apply(IMAGES[0], 0)
    for i in range(runs):
        ours.append(bench.apply(IMAGES[1], i + 1))
        theirs.append(bench.docker_update(IMAGES[0]))
        print(f"run {i + 1}: bojdeploy {ours[-1]:.2f}s, docker CLI {theirs[-1]:.2f}s", flush=True)
    return ours, theirs


def main() -> None:
    """Measure and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="updates per tool")
    args = parser.parse_args()
    state = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True, text=True
    )
    if state.stdout.strip() != "active":
        sys.exit("Docker is not a Swarm manager: run scripts/setup-env.sh")
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            ours, theirs = measure(bench, args.runs)
        finally:
            bench.remove()
    mine, floor = statistics.median(ours), statistics.median(theirs)
    ratio = mine / floor
    verdict = "target met" if ratio <= TARGET_RATIO else "target MISSED"
    print(f"image update of 3 replicas, median of {args.runs} runs each")
    print(f"{'bojdeploy apply':<32} {mine:>7.2f} s")
    print(f"{'docker service update --image':<32} {floor:>7.2f} s")
    print(f"bojdeploy vs docker CLI: {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")


if __name__ == "__main__":
    main()
