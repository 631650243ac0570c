"""Real Prometheus tools for the tests: promtool, a Pushgateway and a Prometheus server, each on
127.0.0.1 with its files in the test's folder; and the metric names a PromQL expression reads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require
from tests.repos import free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "observability"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
# Words of PromQL that look like metric names: functions, aggregations, modifiers, keywords.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "by", "without",
    "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
    "histogram_quantile", "time", "vector", "scalar", "absent", "absent_over_time", "clamp_min",
    "clamp_max", "changes", "resets", "max_over_time", "min_over_time", "avg_over_time", "topk",
    "bottomk", "label_replace", "sort", "sort_desc", "inf", "nan", "le", "count_over_time",
}  # fmt: skip


def tool(name: str) -> str:
    """The path of a Debian Prometheus tool; skip (or fail under CI=true) when it is missing."""
    found = shutil.which(name)
    require(name, found is not None, "apt-get install prometheus prometheus-pushgateway")
    assert found is not None
    return found


def promtool_problems(text: str) -> str:
    """What `promtool check metrics` says about an exposition ('' when it is clean)."""
    done = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
    )
    return "" if done.returncode == 0 and not done.stdout.strip() else done.stdout + done.stderr


def get(url: str, timeout: float = 10) -> str:
    """The body of a GET."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def exposed_names(text: str) -> set[str]:
    """The sample names of an exposition (`x_bucket`, `x_count`, ... as they are queried), and
    the gauges it declares without a sample yet (bojdeploy_drift before the first check)."""
    families = list(text_string_to_metric_families(text))
    declared = {f.name for f in families if f.type == "gauge"}
    return {name for name, _ in samples(text)} | declared


def promql_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, strings, ranges left out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", w)}


def wait_until(what: str, url: str, timeout: float = 60) -> None:
    """Poll `url` until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not answer at {url}") from None
            time.sleep(0.2)


@contextmanager
def daemon(what: str, argv: Sequence[str], log: Path, ready: str) -> Iterator[None]:
    """Run `argv` until the block ends, once `ready` answers; its output goes to `log`."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(what, ready)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def pushgateway(tmp: Path) -> Iterator[str]:
    """A Pushgateway on 127.0.0.1 persisting into `tmp` (Debian's default is a file under
    /var/lib/prometheus); its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        tool("prometheus-pushgateway"),
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={tmp / 'pushgateway.data'}",
    ]
    with daemon("the Pushgateway", argv, tmp / "pushgateway.log", f"{url}/-/ready"):
        yield url


@contextmanager
def prometheus(tmp: Path, jobs: dict[str, dict[str, Any]]) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 scraping every second: job name -> extra scrape settings
    (with `targets`); its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    scrape = [
        {
            "job_name": name,
            "scrape_interval": "1s",
            **{k: v for k, v in job.items() if k != "targets"},
            "static_configs": [{"targets": job["targets"]}],
        }
        for name, job in jobs.items()
    ]
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": scrape})
    )
    argv = [
        tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with daemon("Prometheus", argv, tmp / "prometheus.log", f"{url}/-/ready"):
        yield url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant PromQL query through Prometheus' HTTP API."""
    answer = json.loads(get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def grafana_expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a Grafana dashboard's panels (rows' panels too; Loki's LogQL
    queries left out)."""
    found = []
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                source = target.get("datasource") or inner.get("datasource") or {}
                if target.get("expr") and source.get("type") != "loki":
                    found.append(target["expr"])
    return found


def rule_expressions(rules: dict[str, Any]) -> list[str]:
    """Every expression of a Prometheus rules file."""
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]
