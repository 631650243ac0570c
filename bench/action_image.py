"""The action image: its size, and how long a run takes to its first commit status.

Runs the action image the way act_runner does (workspace in a named volume, the Docker socket
mounted, a fake Gitea on 127.0.0.1) and reports, as medians of --runs runs measured in the same
session, the time from `docker run` to the first commit status Gitea receives and to the exit,
against two floors: a bare container of the same image (`python -c pass`), and a container that
only imports the libraries the action cannot avoid. A report, not a test: it always exits 0.

    .venv/bin/python bench/action_image.py [--image bojdeploy-action:latest] [--build] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake Gitea lives with the tests
from tests.fakes.fake_gitea import FakeGitea  # noqa: E402

PYTHON = "/opt/bojdeploy/bin/python"
LIBRARIES = "import docker, requests, pydantic, yaml, jinja2"
TOKEN = "bench-token"
WORKDIR = "/workspace/bench/deployments"
MANIFEST = """apiVersion: bojdeploy/v1
kind: Container
metadata: {{name: {name}}}
spec:
  image: 127.0.0.1:5000/bojdeploy-test/web:1
  ports: ['127.0.0.1:{port}:80']
  labels: {{io.bojdeploy.test: 'true'}}
  stop_timeout: 1s
"""


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; its output."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True)


def make_workspace(volume: str) -> str:
    """A one-manifest repository copied into `volume`; the sha of its commit."""
    repo = Path(tempfile.mkdtemp())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (repo / "deploy").mkdir()
    name = f"bdbench-{uuid.uuid4().hex[:8]}"
    (repo / "deploy" / "web.yml").write_text(MANIFEST.format(name=name, port=port))
    for argv in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=bench", "-c", "user.email=b@example.com", "commit", "-q", "-m", "web"],
    ):
        subprocess.run(["git", "-C", str(repo), *argv], check=True)
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    docker("volume", "create", volume)
    docker(
        "run", "--rm", "-v", f"{repo}:/src:ro", "-v", f"{volume}:{WORKDIR}",
        "--entrypoint", "cp", IMAGE, "-a", "/src/.", f"{WORKDIR}/",
    )  # fmt: skip
    shutil.rmtree(repo)
    return sha


def action_argv(volume: str, sha: str, gitea: FakeGitea) -> list[str]:
    """`docker run` of the action as act_runner runs it."""
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": WORKDIR,
        "GITHUB_REPOSITORY": "bench/deployments",
        "GITHUB_SHA": sha,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_SERVER_URL": gitea.url,
        "GITHUB_RUN_ID": "1",
        "INPUT_TOKEN": TOKEN,
        "INPUT_DATABASE-URL": f"sqlite:///{WORKDIR}/.state.db",
    }
    argv = ["docker", "run", "--rm", "--network", "host", "-w", WORKDIR]
    argv += ["-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{volume}:{WORKDIR}"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    return [*argv, IMAGE]


def time_action(argv: list[str], gitea: FakeGitea) -> tuple[float, float, int]:
    """Seconds to the first status, seconds to the exit, and the exit code of one run."""
    gitea.calls.clear()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None or first is None:
        if first is None and any("/statuses/" in c.path for c in gitea.calls):
            first = time.perf_counter() - start
        if proc.poll() is not None and first is None:
            first = float("nan")
        time.sleep(0.005)
    return first, time.perf_counter() - start, proc.returncode


def time_container(code: str) -> float:
    """Seconds for `docker run` of the image running `python -c code`."""
    start = time.perf_counter()
    docker("run", "--rm", "--entrypoint", PYTHON, IMAGE, "-c", code)
    return time.perf_counter() - start


def report(runs: int) -> None:
    """Measure and print."""
    size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"image {IMAGE}: {size / 1e6:.0f} MB")
    volume = f"bojdeploy-bench-{uuid.uuid4().hex[:8]}"
    gitea = FakeGitea(token=TOKEN).start()
    try:
        sha = make_workspace(volume)
        argv = action_argv(volume, sha, gitea)
        time_action(argv, gitea)  # warm-up: deploys the container; later runs find it unchanged
        rows: dict[str, list[float]] = {"bare": [], "libraries": [], "first": [], "exit": []}
        for _ in range(runs):
            rows["bare"].append(time_container("pass"))
            rows["libraries"].append(time_container(LIBRARIES))
            first, total, code = time_action(argv, gitea)
            rows["first"].append(first)
            rows["exit"].append(total)
            if code != 0:
                print(f"warning: the action exited {code}")
    finally:
        gitea.stop()
        docker("volume", "rm", "-f", volume)
        ids = docker("ps", "-aq", "--filter", "label=io.bojdeploy.test=true").stdout.split()
        for cid in ids:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    print_table({k: statistics.median(v) for k, v in rows.items()}, runs)


def print_table(median: dict[str, float], runs: int) -> None:
    """The medians and their ratios to the bare container."""
    labels = {
        "bare": "docker run: python -c pass",
        "libraries": f"docker run: python -c '{LIBRARIES}'",
        "first": "action: docker run -> first commit status",
        "exit": "action: docker run -> exit (all unchanged)",
    }
    print(f"medians of {runs} runs")
    for key, label in labels.items():
        print(f"  {label:<66} {median[key]:6.2f}s  {median[key] / median['bare']:5.2f}x bare")
    floor = median["libraries"]
    print(f"  exit (all unchanged) / libraries floor: {median['exit'] / floor:.2f}x")
    first = median["first"] / floor
    print(f"  first status / libraries floor: {first:.2f}x (it is sent before docker loads)")


def main() -> None:
    """Parse arguments, build if asked, report."""
    global IMAGE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="bojdeploy-action:latest")
    parser.add_argument("--build", action="store_true", help="run scripts/build-action-image.sh")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    IMAGE = args.image
    if args.build:
        subprocess.run([str(ROOT / "scripts" / "build-action-image.sh"), IMAGE], check=True)
    report(args.runs)


IMAGE = "bojdeploy-action:latest"

if __name__ == "__main__":
    main()
