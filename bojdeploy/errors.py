"""The error tree and the exit codes every front end uses."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3


@dataclass(frozen=True, order=True)
class Problem:
    """One precise problem in a user's input: file, line, key path and message."""

    file: str
    line: int | None
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class BojdeployError(Exception):
    """Base of every error bojdeploy reports to a user."""

    exit_code = EXIT_FAILED


class ManifestError(BojdeployError):
    """Invalid manifests or repository config; carries every problem found."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("", None, "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(BojdeployError):
    """Wrong command-line usage (bad option combination, unknown environment...)."""

    exit_code = EXIT_INVALID


class PlanError(BojdeployError):
    """The plan cannot be made: e.g. a resource owned by someone else."""

    exit_code = EXIT_FAILED


class DriverError(BojdeployError):
    """A target refused or failed an operation during apply."""

    exit_code = EXIT_FAILED


class StoreError(BojdeployError):
    """The state store failed."""

    exit_code = EXIT_FAILED


class LockTimeout(StoreError):
    """A target lock could not be taken within the bounded wait."""

    exit_code = EXIT_FAILED


class ForgeError(BojdeployError):
    """The Gitea API failed."""

    exit_code = EXIT_FAILED


class ConnectError(BojdeployError):
    """An external system (Docker, XenAPI, database, Gitea) could not be reached."""

    exit_code = EXIT_UNREACHABLE


class DatabaseUnreachable(StoreError, ConnectError):
    """The state store's database could not be reached (refused, timed out, connection lost)."""

    exit_code = EXIT_UNREACHABLE


def internal_error_line(error: BaseException, hint: str = "") -> str:
    """One line for an unexpected exception (a bug): 'internal error: KeyError: 'x'; <hint> for
    the traceback'. Front ends print it; the traceback only when the user asked for it."""
    text = " ".join(str(error).split())
    line = f"internal error: {type(error).__name__}" + (f": {text}" if text else "")
    return f"{line}; {hint} for the traceback" if hint else line
