"""The DESIGN §9 deployment metrics, for every front end.

The relay's `/metrics` reads them from the database at each scrape; the CLI (`apply`,
`rollback`) and the action give the numbers of their own run: `--metrics-file PATH` (or
`BOJDEPLOY_METRICS_FILE`) writes them in the node_exporter textfile-collector format, atomically
(a temporary file in the same folder, then a rename), and `BOJDEPLOY_PUSHGATEWAY_URL` pushes them
to a Pushgateway under job `bojdeploy`, grouped by environment and repository (each push
replaces that group's previous numbers). Neither can fail a deployment: a problem is a warning.

prometheus_client is imported by the functions that need it only: a command that writes no
metrics never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bojdeploy.logs import redact

if TYPE_CHECKING:
    from bojdeploy.engine.apply import Outcome

DEPLOYMENTS = ("deployments", "Deployments recorded, by type and status")
DURATIONS = ("deployment_duration_seconds", "Duration of finished deployments, by type")
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
PUSH_JOB = "bojdeploy"
METRICS_FILE_ENV = "BOJDEPLOY_METRICS_FILE"
PUSHGATEWAY_ENV = "BOJDEPLOY_PUSHGATEWAY_URL"
PUSH_TIMEOUT = 10.0

Counts = Iterable[tuple[str, str, int]]  # (type, status, deployments)
Durations = Iterable[tuple[Any, ...]]  # (type, count, sum, count <= each of DURATION_BUCKETS)


def deployment_families(counts: Counts, durations: Durations) -> Iterator[Any]:
    """`deployments_total{type,status}` and `deployment_duration_seconds{type}`."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    total = CounterMetricFamily(*DEPLOYMENTS, labels=["type", "status"])
    for kind, status, n in counts:
        total.add_metric([kind, status], n)
    yield total
    family = HistogramMetricFamily(*DURATIONS, labels=["type"])
    for kind, n, seconds, *under in durations:
        buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, under, strict=True)]
        family.add_metric([kind], [*buckets, ("+Inf", n)], float(seconds))
    yield family


def run_families(outcomes: Sequence[Outcome]) -> list[Any]:
    """The deployment metrics of one run (a delete skipped after a failure is recorded, and
    counted, as failed)."""
    counts: dict[tuple[str, str], int] = {}
    timed: dict[str, list[float]] = {}
    for o in outcomes:
        status = "failed" if o.status == "skipped" else o.status
        counts[(o.kind, status)] = counts.get((o.kind, status), 0) + 1
        if o.seconds is not None and status != "unchanged":
            timed.setdefault(o.kind, []).append(o.seconds)
    durations = [
        (kind, len(s), sum(s), *(sum(1 for x in s if x <= b) for b in DURATION_BUCKETS))
        for kind, s in sorted(timed.items())
    ]
    rows = [(kind, status, n) for (kind, status), n in sorted(counts.items())]
    return list(deployment_families(rows, durations))


def publish(
    outcomes: Sequence[Outcome],
    *,
    metrics_file: str | None,
    pushgateway: str | None,
    grouping: Mapping[str, str | None],
    warn: Callable[[str], None],
) -> None:
    """Write the run's metrics to `metrics_file` and push them to `pushgateway` (each if set)."""
    if not metrics_file and not pushgateway:
        return
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(_Families(run_families(outcomes)))
    if metrics_file:
        _write(registry, metrics_file, warn)
    if pushgateway:
        _push(registry, pushgateway, {k: v for k, v in grouping.items() if v}, warn)


class _Families:
    """A collector of fixed metric families."""

    def __init__(self, families: list[Any]):
        self.families = families

    def collect(self) -> list[Any]:
        """The families."""
        return self.families


def _write(registry: Any, path: str, warn: Callable[[str], None]) -> None:
    from prometheus_client import write_to_textfile

    try:
        write_to_textfile(path, registry)  # a temporary file beside it, then os.replace
    except OSError as e:
        warn(f"metrics not written to {path}: {e.strerror or e}")


def _push(registry: Any, url: str, grouping: dict[str, str], warn: Callable[[str], None]) -> None:
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(url, PUSH_JOB, registry, grouping_key=grouping, timeout=PUSH_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - a monitoring outage never fails a deployment
        warn(f"metrics not pushed to {redact(url)}: {redact(str(e))}")
