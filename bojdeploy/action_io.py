"""What the Gitea Action writes: the step log (workflow commands), outputs and job summary."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Mapping
from typing import TextIO

from bojdeploy.core.secrets import Scrubber


class Console:
    """The step log: workflow commands and lines on stdout, every line scrubbed of secrets."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.scrub = Scrubber()
        self.masked: set[str] = set()
        self.lock = threading.Lock()
        self.open_group: str | None = None

    def mask(self, values: list[str]) -> None:
        """`::add-mask::` each value (line by line), and scrub it from everything printed."""
        for value in values:
            if not value.strip() or value in self.masked:
                continue
            self.masked.add(value)
            self.scrub.add([value, *value.splitlines()])
            for part in value.splitlines():
                if part.strip():
                    self._write(f"::add-mask::{_escape(part)}")

    def line(self, text: str) -> None:
        """One or more plain lines."""
        self._write(self.scrub(text))

    def warning(self, message: str) -> None:
        """A `::warning::` line."""
        self._write(f"::warning::{_escape(self.scrub(message))}")

    def error(self, message: str) -> None:
        """An `::error::` line."""
        self._write(f"::error::{_escape(self.scrub(message))}")

    def group(self, title: str) -> None:
        """Start a folded group (closing the open one)."""
        with self.lock:
            self._end()
            self.open_group = title
            self._raw(f"::group::{_escape(self.scrub(title))}")

    def end_group(self) -> None:
        """Close the open group, if any."""
        with self.lock:
            self._end()

    def _end(self) -> None:
        if self.open_group is not None:
            self._raw("::endgroup::")
            self.open_group = None

    def _write(self, text: str) -> None:
        with self.lock:
            self._raw(text)

    def _raw(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class GroupedLog:
    """The engine's progress lines, folded in a `::group::` per resource."""

    def __init__(self, console: Console):
        self.console = console
        self.current: str | None = None
        self.lock = threading.Lock()

    def __call__(self, resource: str, level: str, message: str) -> None:
        with self.lock:
            if resource != self.current:
                self.console.group(resource)
                self.current = resource
            {"warn": self.console.warning, "error": self.console.error}.get(
                level, self.console.line
            )(message)


def _escape(text: str) -> str:
    """Workflow-command data escaping (%, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def write_outputs(environ: Mapping[str, str], values: Mapping[str, str]) -> None:
    """Append step outputs to $GITHUB_OUTPUT (heredoc form, safe for any value)."""
    path = environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        for key, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            f.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


def write_summary(environ: Mapping[str, str], markdown: str) -> None:
    """Append markdown to $GITHUB_STEP_SUMMARY (Gitea shows it from 1.27 on)."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown.rstrip() + "\n")
