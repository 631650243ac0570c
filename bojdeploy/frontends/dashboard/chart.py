"""Per-manifest durations as small multiples: the geometry an inline SVG template draws."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bojdeploy.store.reads import Duration

WIDTH = 720
ROW = 40
LABEL = 200  # the manifest's name, left of its bars
BARS = 380  # the bars' width
BAR_HEIGHT = 28
PER_MANIFEST = 30
MANIFESTS = 12


@dataclass(frozen=True)
class Bar:
    """One deployment's duration as a bar."""

    x: float
    y: float
    width: float
    height: float
    failed: bool
    title: str


@dataclass(frozen=True)
class Series:
    """One manifest's row of bars, with its median and maximum in words."""

    label: str
    y: float
    bars: list[Bar]
    summary: str


@dataclass(frozen=True)
class Chart:
    """The whole chart: its rows and the viewBox that holds them."""

    series: list[Series]
    width: int
    height: int
    label_x: int = 0
    bars_x: int = LABEL
    summary_x: int = LABEL + BARS + 12


def seconds(value: float) -> str:
    """A duration in words: 850 ms, 3.2 s, 4 min 05 s."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def durations_chart(items: Sequence[Duration]) -> Chart | None:
    """The newest durations of each manifest (newest first in, oldest left out); None if none."""
    per: dict[tuple[str, str], list[Duration]] = {}
    for item in items:
        key = (item.deployment_type, item.name)
        if key in per or len(per) < MANIFESTS:
            per.setdefault(key, []).append(item)
    if not per:
        return None
    series = []
    for row, ((kind, name), found) in enumerate(per.items()):
        newest = list(reversed(found[:PER_MANIFEST]))
        longest = max(d.seconds for d in newest)
        top = longest or 1.0
        step = BARS / PER_MANIFEST
        y = row * ROW
        bars = [
            Bar(
                x=LABEL + i * step,
                y=y + BAR_HEIGHT - max(1.0, d.seconds / top * BAR_HEIGHT),
                width=step - 2,
                height=max(1.0, d.seconds / top * BAR_HEIGHT),
                failed=d.status == "failed",
                title=f"#{d.deployment_id}: {seconds(d.seconds)}, {d.status}",
            )
            for i, d in enumerate(newest)
        ]
        middle = statistics.median(d.seconds for d in newest)
        summary = f"median {seconds(middle)}, max {seconds(longest)}"
        series.append(Series(f"{name} ({kind})", y, bars, summary))
    return Chart(series, WIDTH, len(series) * ROW)
