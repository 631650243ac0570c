"""Start-up time of the bojdeploy CLI against its floor: the libraries a command cannot avoid.

Runs every command --runs times (interleaved, after one untimed warm-up run each), prints the
median wall times and their ratios, and checks the start-up targets measured in this same run:
`bojdeploy --help` within 1.5x of `python -c "import click"`, and `bojdeploy validate examples/`
within 1.5x of importing click + pydantic + yaml + jinja2. A report, not a test: it always exits 0.

    .venv/bin/python bench/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
LIBRARIES = "import click, pydantic, yaml, jinja2"  # what `validate` cannot avoid importing
TARGETS = (("bojdeploy --help", "import click"), ("bojdeploy validate examples/", LIBRARIES))


def commands() -> dict[str, list[str]]:
    """The measured commands by label; bojdeploy is the console script beside this Python."""
    python = sys.executable
    bojdeploy = str(Path(python).parent / "bojdeploy")
    return {
        "python -c pass": [python, "-c", "pass"],
        "import click": [python, "-c", "import click"],
        LIBRARIES: [python, "-c", LIBRARIES],
        "bojdeploy --help": [bojdeploy, "--help"],
        "bojdeploy validate examples/": [bojdeploy, "validate", "examples/"],
    }


def run_once(argv: list[str]) -> tuple[float, int, str]:
    """Wall time in seconds, exit code and stderr of one run."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stderr


def measure(cmds: dict[str, list[str]], runs: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median wall time and warm-up exit code of every command, runs interleaved."""
    codes = {}
    for label, argv in cmds.items():
        try:
            _, codes[label], err = run_once(argv)
        except FileNotFoundError as e:
            sys.exit(f"cannot run {label!r}: {e} (pip install -e . first)")
        if codes[label] != 0:
            print(f"warning: {label!r} exited {codes[label]}: {err.strip()[-300:]}")
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(runs):
        for label, argv in cmds.items():
            times[label].append(run_once(argv)[0])
    return {label: statistics.median(t) for label, t in times.items()}, codes


def check(name: str, ratio: float) -> str:
    """One target line: a measured/floor ratio against TARGET_RATIO."""
    verdict = "target met" if ratio <= TARGET_RATIO else "target MISSED"
    return f"{name}: {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}"


def main() -> None:
    """Measure, print the table and the two target checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    args = parser.parse_args()

    cmds = commands()
    medians, codes = measure(cmds, args.runs)
    bare = medians["python -c pass"]
    print(f"median of {args.runs} runs, {sys.executable}")
    print(f"{'command':<40} {'median ms':>10} {'x bare':>8}  exit")
    for label, seconds in medians.items():
        print(f"{label:<40} {seconds * 1000:>10.1f} {seconds / bare:>8.2f}  {codes[label]}")
    for measured, floor in TARGETS:
        print(check(f"{measured} vs {floor}", medians[measured] / medians[floor]))


if __name__ == "__main__":
    main()
