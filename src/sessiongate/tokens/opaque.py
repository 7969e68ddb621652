"""Opaque bearer secrets: drawn from ``secrets``, kept only as keyed SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ("Digester", "new_secret")


def new_secret(nbytes: int = 32) -> str:
    """A fresh URL-safe secret of ``nbytes`` random bytes."""
    return secrets.token_urlsafe(nbytes)


class Digester:
    """Keyed SHA-256 of secrets: the only form in which a secret reaches the database.

    A lookup goes by digest (an index seek), and the stored digest is then compared with
    :func:`hmac.compare_digest`, so the answer does not depend on how much of a guess was right.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, secret: str) -> str:
        """The hex digest stored for ``secret``."""
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str, stored: str) -> bool:
        """Whether ``secret`` is the one whose digest is ``stored`` (constant time)."""
        return hmac.compare_digest(self.digest(secret), stored)
