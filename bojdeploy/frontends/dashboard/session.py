"""Signed dashboard sessions and their CSRF tokens, keyed by the relay's API token.

The key is derived from the API token, so every relay process sharing the token accepts the same
sessions, and changing the token signs everybody out. A session cookie is `nonce.expiry.mac`; the
CSRF token of a session is a MAC of its nonce, so nothing is kept on the server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "bojdeploy_session"
LIFETIME = 12 * 3600  # seconds


def _mac(token: str, message: str) -> str:
    key = hmac.new(token.encode(), b"bojdeploy dashboard session", hashlib.sha256).digest()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def token_matches(token: str, given: str) -> bool:
    """Whether `given` is the API token (compared in constant time)."""
    return hmac.compare_digest(given.strip().encode(), token.encode())


def new_session(token: str, now: float | None = None) -> str:
    """A fresh signed session value for the cookie."""
    body = f"{secrets.token_urlsafe(16)}.{int(now or time.time()) + LIFETIME}"
    return f"{body}.{_mac(token, body)}"


def session_nonce(token: str, value: str | None, now: float | None = None) -> str | None:
    """The nonce of a valid, unexpired session value; None otherwise."""
    nonce, _, rest = (value or "").partition(".")
    expires, _, mac = rest.partition(".")
    if not (nonce and expires.isdigit() and mac):
        return None
    if not hmac.compare_digest(mac, _mac(token, f"{nonce}.{expires}")):
        return None
    return nonce if int(expires) > (now or time.time()) else None


def csrf_token(token: str, nonce: str) -> str:
    """The CSRF token the forms of a session carry."""
    return _mac(token, f"csrf:{nonce}")


def csrf_matches(token: str, nonce: str, given: str) -> bool:
    """Whether a form's CSRF token belongs to this session."""
    return hmac.compare_digest(given.encode(), csrf_token(token, nonce).encode())
