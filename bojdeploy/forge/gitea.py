"""The Gitea API client: commit statuses, PR comments and the compare API (requests session)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import requests

from bojdeploy.core.changes import FileChange
from bojdeploy.errors import ForgeError

# Gitea's per-commit file statuses; a rename names only the new path, so it counts as an add.
_FILE_STATUS = {"added": "A", "copied": "A", "renamed": "A", "removed": "D", "deleted": "D"}


class GiteaClient:
    """A token-authenticated Gitea API client that retries connection errors and 5xx answers."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.25,
        warn: Callable[[str], None] | None = None,
    ):
        self.api = base_url.rstrip("/") + "/api/v1"
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.warn = warn or (lambda message: None)
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"token {token}", "Accept": "application/json"}
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def set_status(
        self,
        owner: str,
        repo: str,
        sha: str,
        state: str,
        context: str,
        description: str,
        target_url: str | None = None,
    ) -> None:
        """Set the commit status `context` of `sha` (the latest one per context wins)."""
        body = {"state": state, "context": context, "description": description}
        if target_url:
            body["target_url"] = target_url
        self._request("POST", _path("repos", owner, repo, "statuses", sha), json=body)

    def version(self) -> str:
        """Gitea's version string (`GET /version`), e.g. '1.25.4' or '11.0.1+gitea-1.22.0'."""
        answer = self._request("GET", "/version")
        version = answer.get("version") if isinstance(answer, dict) else None
        if not isinstance(version, str) or not version.strip():
            raise ForgeError("GET /version: Gitea answered no version")
        return version.strip()

    def upsert_comment(self, owner: str, repo: str, index: int, marker: str, body: str) -> int:
        """Update the issue/PR comment containing `marker` (hidden), or create it; its id."""
        text = f"{body.rstrip()}\n\n{marker}\n"
        comments = self._request(
            "GET", _path("repos", owner, repo, "issues", str(index), "comments")
        )
        for comment in comments or []:
            if marker in (comment.get("body") or ""):
                path = _path("repos", owner, repo, "issues", "comments", str(comment["id"]))
                self._request("PATCH", path, json={"body": text})
                return int(comment["id"])
        path = _path("repos", owner, repo, "issues", str(index), "comments")
        return int(self._request("POST", path, json={"body": text})["id"])

    def compare(self, owner: str, repo: str, base: str, head: str) -> list[FileChange] | None:
        """The files changed from `base` to `head`, or None when Gitea cannot tell them all."""
        path = _path("repos", owner, repo, "compare", f"{base}...{head}")
        try:
            data = self._request("GET", path)
        except ForgeError as e:
            self.warn(f"the compare API could not help: {e}")
            return None
        commits = data.get("commits") or []
        if data.get("total_commits", len(commits)) > len(commits):
            return None
        if any(c.get("files") is None for c in commits):
            return None
        return changes_of(commits)

    def _request(self, method: str, path: str, *, json: Any = None) -> Any:
        """One API call, retried with backoff on connection errors and 5xx; JSON or None."""
        url = self.api + path
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.request(method, url, json=json, timeout=self.timeout)
            except requests.RequestException as e:
                problem = f"cannot reach Gitea ({type(e).__name__})"
            else:
                if response.status_code < 500:
                    return _answer(method, path, response)
                problem = f"Gitea answered {response.status_code}"
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise ForgeError(f"{method} {path}: {problem} (tried {self.attempts} times)")


def changes_of(commits: Sequence[dict[str, Any]]) -> list[FileChange]:
    """Fold the per-commit file lists of a compare answer (newest first) into one diff."""
    seen: dict[str, tuple[bool, bool]] = {}  # path -> (existed before, exists after)
    for commit in reversed(commits):
        for f in commit.get("files") or []:
            status = _FILE_STATUS.get(f.get("status", ""), "M")
            before = seen[f["filename"]][0] if f["filename"] in seen else status != "A"
            seen[f["filename"]] = (before, status != "D")
    out = []
    for path, (before, after) in sorted(seen.items()):
        if before or after:
            out.append(FileChange("M" if before and after else "A" if after else "D", path))
    return out


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe=".") for p in parts)


def _answer(method: str, path: str, response: requests.Response) -> Any:
    """The JSON of a < 500 answer; 4xx becomes a ForgeError with Gitea's message."""
    if response.status_code >= 400:
        try:
            data = response.json()
        except ValueError:
            data = None
        message = (data.get("message") if isinstance(data, dict) else None) or response.reason
        raise ForgeError(f"{method} {path}: Gitea answered {response.status_code}: {message}")
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as e:
        raise ForgeError(f"{method} {path}: Gitea answered non-JSON") from e
