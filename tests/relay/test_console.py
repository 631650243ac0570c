"""What a relay job's console puts in the relay's log: plain lines whole, commands decoded."""

from __future__ import annotations

import logging

import pytest

from bojdeploy.frontends.relay.job import JobConsole


def test_the_log_shows_lines_as_written_and_command_values_decoded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    console = JobConsole("job 7")
    with caplog.at_level(logging.INFO, logger="bojdeploy.relay"):
        console.line("image registry:5000/web:2 at host::port::path")
        console.warning("disk at 95% on node-1\nsecond line")
        console.group("web")
        console.error("failed: exit 1")
        console.end_group()
        console.mask(["hunter2-secret"])
        console.line("the password is hunter2-secret")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "job 7: image registry:5000/web:2 at host::port::path"),
        (logging.WARNING, "job 7: disk at 95% on node-1"),
        (logging.WARNING, "job 7: second line"),
        (logging.WARNING, "job 7: failed: exit 1"),
        (logging.INFO, "job 7: the password is ***"),
    ]
