"""`bojdeploy validate` and `plan --offline` of many manifests, against the import floor.

Generates a repository of N manifests across 3 environments (a third of them templated, one in
ten with an `include()`, one in five limited to some environments, a few Services and VMs) and
measures, as whole processes (medians, interleaved):

- the floor: `python -c "import click, pydantic, yaml, jinja2"` (what validate cannot avoid),
  and beside it the same with `from pydantic import BaseModel` (pydantic's model machinery);
- `bojdeploy validate` of the repository at each size (default 250, 500 and 1,000 manifests);
- `bojdeploy plan --offline --env production` at each size (SQLite, nothing recorded yet);
- `bojdeploy validate examples/`.

bojdeploy's bytecode is compiled first, as an installed package has it (with
PYTHONDONTWRITEBYTECODE set, every run would otherwise compile the sources again).

It prints wall times, ratios to the floor, the time per manifest above the floor at each size
(linear when it stays flat), the peak memory (maxrss) of the largest validate, and checks the
targets: validate of 1,000 <= 1.0 s, plan --offline of 1,000 <= 0.7 s, peak < 100 MB,
validate examples/ <= 1.5x its floor. A report, not a test: it always exits 0.

    .venv/bin/python bench/validate.py [--runs 5] [--sizes 250,500,1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import click, pydantic, yaml, jinja2"
# `import pydantic` is lazy: validating needs its model machinery, which this loads too
MODELS_FLOOR = "import click, yaml, jinja2; from pydantic import BaseModel"
ENVS = ("production", "staging", "development")
CONFIG = """manifests: ["deploy/**/*.yml"]
environments:
  production: {branches: [main], vars: {replicas: 3, level: warn, base: 20000}}
  staging: {branches: [staging], vars: {replicas: 1, level: info, base: 30000}}
  development: {branches: ["*"], vars: {replicas: 1, level: debug, base: 40000}}
"""
PLAIN = """apiVersion: bojdeploy/v1
kind: Container
metadata:
  name: app-{n}
  labels: {{team: t{team}}}
spec:
  image: 127.0.0.1:5000/bojdeploy-test/web:1
  command: ["httpd", "-f", "-p", "80"]
  env: {{LOG_LEVEL: info, INDEX: "{n}"}}
  ports: ["127.0.0.1:{port}:80"]
  volumes: ["app-{n}:/var/lib/app"]
  restart: unless-stopped
  resources: {{memory: 64M, cpus: 0.25}}
  healthcheck: {{test: ["CMD", "true"], interval: 5s, timeout: 3s, retries: 3}}
"""
TEMPLATED = """apiVersion: bojdeploy/v1
kind: Container
metadata:
  name: app-{n}
  environments: {envs}
spec:
  image: 127.0.0.1:5000/bojdeploy-test/web:1
  container_name: "app-{n}-{{{{ environment }}}}"
  env:
    LOG_LEVEL: "{{{{ vars.level }}}}"
    RELEASE: "{{{{ git.short_sha or 'none' }}}}"
    BANNER: "{{{{ include('shared/banner.txt') }}}}"{extra}
  ports: ["127.0.0.1:{{{{ vars.base + {n} }}}}:80"]
  restart: unless-stopped
"""
SERVICE = """apiVersion: bojdeploy/v1
kind: Service
metadata: {{name: svc-{n}}}
spec:
  image: 127.0.0.1:5000/bojdeploy-test/web:2
  replicas: {{{{ vars.replicas }}}}
  env: {{LEVEL: "{{{{ vars.level }}}}"}}
  update: {{parallelism: 1, delay: 2s, order: start-first}}
"""
VM = """apiVersion: bojdeploy/v1
kind: VM
metadata: {{name: vm-{n}}}
spec:
  template: debian-12
  vcpus: 2
  memory: 2GiB
  networks: [{{network: "Pool-wide network associated with eth0"}}]
  cloud_init: {{role: web, datasource: "http://cfg.example/{{{{ environment }}}}/vm-{n}/"}}
"""


def make_repo(root: Path, count: int) -> None:
    """`count` manifests, one file each, in folders of 100."""
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "banner.txt").write_text("welcome\n")
    (root / "bojdeploy.yaml").write_text(CONFIG)
    for n in range(count):
        folder = root / "deploy" / f"group-{n // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{n:04d}.yml").write_text(manifest(n))


def manifest(n: int) -> str:
    """The n-th manifest: mostly plain containers, some templated, a few services and VMs."""
    if n % 50 == 7:
        return SERVICE.format(n=n)
    if n % 100 == 13:
        return VM.format(n=n)
    if n % 3 == 0:
        envs = "[production, staging]" if n % 5 == 0 else list(ENVS)
        extra = "\n    NOTE: \"{{ include('shared/banner.txt') | upper }}\"" if n % 10 == 0 else ""
        return TEMPLATED.format(n=n, envs=str(envs).replace("'", ""), extra=extra)
    return PLAIN.format(n=n, team=n % 7, port=10000 + n)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak resident memory (KiB, this child's own maxrss) of one run."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip()[-800:]
            sys.exit(f"{' '.join(argv[1:3])} exited {child.returncode}: {tail}")
    return seconds, usage.ru_maxrss


def commands(tmp: Path, sizes: list[int]) -> dict[str, list[str]]:
    """The measured commands by label; repositories made under `tmp`."""
    python = sys.executable
    bojdeploy = str(Path(python).parent / "bojdeploy")
    cmds = {"floor: " + FLOOR: [python, "-c", FLOOR]}
    cmds["floor: " + MODELS_FLOOR] = [python, "-c", MODELS_FLOOR]
    cmds["validate examples/"] = [bojdeploy, "validate", "examples/"]
    for size in sizes:
        repo = tmp / f"repo-{size}"
        make_repo(repo, size)
        cmds[f"validate {size}"] = [bojdeploy, "validate", str(repo)]
        plan = [bojdeploy, "plan", "--offline", "--env", "production", str(repo)]
        cmds[f"plan --offline {size}"] = plan
    return cmds


def compile_package(env: dict[str, str]) -> None:
    """Write the bytecode of the bojdeploy the commands import."""
    script = "import compileall, os, bojdeploy; "
    script += "compileall.compile_dir(os.path.dirname(bojdeploy.__file__), quiet=1)"
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def verdict(name: str, value: float, target: float, unit: str) -> str:
    """One target line."""
    met = "target met" if value <= target else "target MISSED"
    return f"{name}: {value:.2f}{unit} (target <= {target:g}{unit}): {met}"


def main() -> None:
    """Measure, print the table, linearity, memory and the target checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument("--sizes", default="250,500,1000", help="manifest counts, ascending")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOJDEPLOY_DATABASE_URL": f"sqlite:///{tmp}/state.db"}
        env["BOJDEPLOY_WEB_SESSION_KEY"] = env["BOJDEPLOY_API_TOKEN"] = "x"
        cmds = commands(Path(tmp), sizes)
        compile_package(env)
        for argv in cmds.values():  # warm-up: caches, the database's schema
            run(argv, env)
        times: dict[str, list[float]] = {label: [] for label in cmds}
        peak: dict[str, int] = dict.fromkeys(cmds, 0)
        for _ in range(args.runs):
            for label, argv in cmds.items():
                seconds, kib = run(argv, env)
                times[label].append(seconds)
                peak[label] = max(peak[label], kib)
    median = {label: statistics.median(t) for label, t in times.items()}
    floor = median["floor: " + FLOOR]
    print(f"median of {args.runs} runs, {sys.executable}")
    head = f"{'command':<66} {'median ms':>10} {'x floor':>8} {'ms/manifest':>12} {'peak MB':>8}"
    print(head)
    for label, seconds in median.items():
        size = label.rsplit(" ", 1)[-1]
        each = f"{(seconds - floor) * 1000 / int(size):.2f}" if size.isdigit() else ""
        print(
            f"{label:<66} {seconds * 1000:>10.1f} {seconds / floor:>8.2f} {each:>12}"
            f" {peak[label] / 1024:>8.1f}"
        )
    big = sizes[-1]
    peak_kib = max(peak[f"validate {big}"], peak[f"plan --offline {big}"])
    print(verdict("validate examples/ vs floor", median["validate examples/"] / floor, 1.5, "x"))
    with_models = median["validate examples/"] / median["floor: " + MODELS_FLOOR]
    print(verdict("validate examples/ vs floor with BaseModel", with_models, 1.5, "x"))
    print(verdict(f"validate {big}", median[f"validate {big}"], 1.0, " s"))
    print(verdict(f"plan --offline {big}", median[f"plan --offline {big}"], 0.7, " s"))
    print(verdict(f"peak memory at {big}", peak_kib / 1024, 100, " MB"))


if __name__ == "__main__":
    main()
