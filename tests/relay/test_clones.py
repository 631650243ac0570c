"""The relay's clone cache on one machine: a clone locked by a stuck process is given up on."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from bojdeploy.errors import BojdeployError, UsageError
from bojdeploy.frontends.relay.clones import Clones, git_timeout


def test_a_clone_locked_too_long_by_another_process_is_an_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    clones = Clones(tmp_path / "clones", timeout=1)
    url = f"file://{tmp_path}/origin"
    (tmp_path / "clones").mkdir()
    with open(clones.mirror(url).path.with_suffix(".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # (flock locks are per open file: as another process)
        with pytest.raises(BojdeployError) as caught:
            clones.fetch(url, "1" * 40)
    assert str(caught.value) == (
        f"the clone of {url} stayed locked by another process for 1s "
        "(BOJDEPLOY_RELAY_GIT_TIMEOUT): is a fetch stuck?"
    )


def test_the_git_timeout_setting() -> None:
    assert git_timeout({}) == 300
    assert git_timeout({"BOJDEPLOY_RELAY_GIT_TIMEOUT": "20"}) == 20
    for bad in ("soon", "0"):
        with pytest.raises(UsageError, match="BOJDEPLOY_RELAY_GIT_TIMEOUT must be"):
            git_timeout({"BOJDEPLOY_RELAY_GIT_TIMEOUT": bad})
