"""The drift watch's settings: intervals a cron schedule can keep, refusals in one line."""

from __future__ import annotations

import pytest

from bojdeploy.errors import UsageError
from bojdeploy.frontends.relay.config import RelayConfig, drift_cron, drift_interval

DB = "postgresql://u@127.0.0.1/db"


@pytest.mark.parametrize(
    ("raw", "seconds", "cron"),
    [
        ("", 300, "*/5 * * * *"),
        ("2", 2, "* * * * * */2"),
        ("30s", 30, "* * * * * */30"),
        ("5m", 300, "*/5 * * * *"),
        ("120", 120, "*/2 * * * *"),
        ("1h", 3600, "0 */1 * * *"),
        ("24h", 86400, "0 0 * * *"),
    ],
)
def test_intervals_become_cron_schedules(raw: str, seconds: int, cron: str) -> None:
    assert drift_interval(raw) == seconds
    assert drift_cron(seconds) == cron


@pytest.mark.parametrize("raw", ["off", "0", " OFF "])
def test_the_watch_can_be_turned_off(raw: str) -> None:
    assert drift_interval(raw) is None


@pytest.mark.parametrize("raw", ["7m", "90", "abc", "-5", "5x", "48h"])
def test_an_interval_a_schedule_cannot_keep_is_refused(raw: str) -> None:
    with pytest.raises(UsageError, match=r"BOJDEPLOY_DRIFT_INTERVAL must be .*e\.g\. 30s, 5m"):
        drift_interval(raw)


def test_the_relay_reads_the_drift_settings() -> None:
    env = {"BOJDEPLOY_WEBHOOK_SECRET": "s", "BOJDEPLOY_DATABASE_URL": DB}
    default = RelayConfig.from_env(env)
    assert (default.drift_interval, default.drift_status) == (300, False)
    custom = RelayConfig.from_env(
        env | {"BOJDEPLOY_DRIFT_INTERVAL": "10s", "BOJDEPLOY_DRIFT_STATUS": "true"}
    )
    assert (custom.drift_interval, custom.drift_status) == (10, True)
    with pytest.raises(UsageError, match="BOJDEPLOY_DRIFT_STATUS must be true or false"):
        RelayConfig.from_env(env | {"BOJDEPLOY_DRIFT_STATUS": "maybe"})
