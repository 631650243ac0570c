"""examples/observability/: promtool accepts the Prometheus config and the alert rules, and the
rules' unit tests pass (the alerts fire on the series they are written for)."""

from __future__ import annotations

import subprocess

from tests.observability import EXAMPLES, tool


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=EXAMPLES, capture_output=True, text=True, timeout=60
    )


def test_promtool_accepts_the_alert_rules() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_scrape_config() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
