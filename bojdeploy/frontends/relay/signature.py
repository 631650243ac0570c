"""Gitea's webhook signature: lowercase hex HMAC-SHA256 of the raw body, no prefix."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: bytes, body: bytes) -> str:
    """The X-Gitea-Signature value of `body`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed(secret: bytes, body: bytes, signature: str | None) -> bool:
    """Whether `signature` is `body`'s, compared in constant time; missing or empty is not."""
    if not signature or not secret:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().lower().encode())
