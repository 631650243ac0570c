"""The Gitea API client: commit statuses, PR comments and the compare API (requests session).

Retries are urllib3's `Retry` on the session's adapter: connection failures, 429, 500, 502,
503 and 504 are retried with exponential backoff, honouring `Retry-After` (at most
MAX_RETRY_AFTER seconds). A request that reached Gitea is repeated only when repeating it is
harmless: GET always; a commit status POST (the latest status per context wins, so a second one
changes nothing) and a comment PATCH (it sets the same text) opt in; creating a PR comment
does not, because a POST that succeeded but whose answer was lost would post the comment twice.
A 429 (Gitea refused the call without doing it) and a connection never made are retried for
every call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from bojdeploy.core.changes import FileChange
from bojdeploy.errors import ForgeError

# Gitea's per-commit file statuses; a rename names only the new path, so it counts as an add.
_FILE_STATUS = {"added": "A", "copied": "A", "renamed": "A", "removed": "D", "deleted": "D"}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After would hold up the deployment


class _Retry(Retry):
    """urllib3's Retry; a 429 is retried whatever the method, Retry-After is bounded."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """429 Too Many Requests: Gitea refused the call without doing it, so it may be repeated."""
        if status_code == 429:
            return bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)

    def get_retry_after(self, response: Any) -> float | None:
        """Seconds the server asked to wait, at most MAX_RETRY_AFTER."""
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


class GiteaClient:
    """A token-authenticated Gitea API client; see the module for what it retries."""

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
        self.warn = warn or (lambda message: None)
        headers = {"Authorization": f"token {token}", "Accept": "application/json"}
        # One session per retry policy: requests applies retries per adapter, not per call.
        self.session = _session(headers, _retry(attempts, backoff, IDEMPOTENT))
        self._repeatable = _session(headers, _retry(attempts, backoff, None))

    def close(self) -> None:
        """Close the HTTP sessions."""
        self.session.close()
        self._repeatable.close()

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
        path = _path("repos", owner, repo, "statuses", sha)
        self._request("POST", path, json=body, repeatable=True)

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
                self._request("PATCH", path, json={"body": text}, repeatable=True)
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

    def _request(
        self, method: str, path: str, *, json: Any = None, repeatable: bool = False
    ) -> Any:
        """One API call (retried as the module says); its JSON, or None; ForgeError otherwise.

        `repeatable`: the call may be sent again after Gitea received it (it is idempotent)."""
        retried = repeatable or method in IDEMPOTENT
        session = self._repeatable if repeatable else self.session
        tries = f" (tried {self.attempts} times)" if self.attempts > 1 else ""
        try:
            response = session.request(method, self.api + path, json=json, timeout=self.timeout)
        except requests.RequestException as e:
            if retried or _never_sent(e):
                problem = f"cannot reach Gitea ({type(e).__name__}){tries}"
            else:
                problem = (
                    f"no answer from Gitea ({type(e).__name__}); not sent again: it may be done"
                )
            raise ForgeError(f"{method} {path}: {problem}") from e
        if response.status_code in RETRY_STATUSES:
            tries = tries if retried or response.status_code == 429 else ""
            raise ForgeError(f"{method} {path}: Gitea answered {response.status_code}{tries}")
        return _answer(method, path, response)


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


def _retry(attempts: int, backoff: float, methods: frozenset[str] | None) -> Retry:
    """Retry `methods` (None: every method) up to `attempts` times in all."""
    return _Retry(
        total=attempts - 1,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        backoff_factor=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _never_sent(e: requests.RequestException) -> bool:
    """True when the request cannot have reached Gitea (no connection was made)."""
    reason = getattr(e.args[0], "reason", None) if e.args else None
    return isinstance(e, requests.ConnectTimeout) or isinstance(
        reason, NewConnectionError | ConnectTimeoutError
    )


def _session(headers: dict[str, str], retry: Retry) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(headers)
    return session


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
