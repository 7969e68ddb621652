"""Opaque bearer secrets: drawn from ``secrets``, kept only as keyed SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ("Digester", "new_secret")

log = logging.getLogger("sessiongate.keys")
T = TypeVar("T")


def new_secret(nbytes: int = 32) -> str:
    """A fresh URL-safe secret of ``nbytes`` random bytes."""
    return secrets.token_urlsafe(nbytes)


class Digester:
    """Keyed SHA-256 of secrets: the only form in which a secret reaches the database.

    A lookup goes by digest (an index seek), and the stored digest is then compared with
    :func:`hmac.compare_digest`, so the answer does not depend on how much of a guess was right.

    The digest key rotates (``sessiongate key-ring rotate digest``): new secrets are digested under the current key,
    and a lookup that misses under it tries the other keys of the ring (:meth:`find`), so secrets digested before the
    rotation keep working until their key is retired. ``older`` keys were current before; a secret found under one is
    digested again under the current key, so it outlives the older key. ``newer`` keys are rotated in but not current
    yet in this process (another process may already digest under them); nothing found under one is moved back.

    Args:
        key: The current key.
        older: Keys current before, newest first.
        newer: Keys that will be current, newest first.
    """

    __slots__ = ("_keyed", "_last", "_others")

    def __init__(self, key: bytes, *, older: Sequence[bytes] = (), newer: Sequence[bytes] = ()) -> None:
        self._others: tuple[tuple[bytes, bool], ...] = ()
        self.replace(key, older=older, newer=newer)

    def replace(self, key: bytes, *, older: Sequence[bytes] = (), newer: Sequence[bytes] = ()) -> None:
        """Take up a key ring read again (a rotation made by another process); every holder of this object sees it."""
        # HMAC keyed once: each digest copies it, sparing the key's own two hash blocks (a third of the work).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._last: tuple[str, str] | None = None  # (secret, digest) of the latest digest under the current key
        # Newer first: during a rotation, a miss is more likely a secret another process just digested under it.
        self._others = (*((k, False) for k in newer if k != key), *((k, True) for k in older if k != key))

    def digest(self, secret: str) -> str:
        """The hex digest stored for ``secret``: under the current key."""
        # A lookup digests the secret it is given and the check after it digests the same string again: the same
        # object, told by identity, which compares no character (an equality test of one client's secret against
        # another's would time how much of it matched).
        last = self._last
        if last is not None and last[0] is secret:
            return last[1]
        mac = self._keyed.copy()
        mac.update(secret.encode())
        digest = mac.hexdigest()
        self._last = (secret, digest)
        return digest

    def digests(self, secret: str) -> list[str]:
        """Every digest ``secret`` may be stored under: the current key's first, then the other keys' of the ring."""
        return [self.digest(secret), *(_digest(key, secret) for key, _ in self._others)]

    def matches(self, secret: str, stored: str) -> bool:
        """Whether ``secret`` is the one whose digest is ``stored`` (constant time), under any key of the ring."""
        if hmac.compare_digest(self.digest(secret), stored):
            return True
        return any(hmac.compare_digest(_digest(key, secret), stored) for key, _ in self._others)

    async def find(
        self,
        secret: str,
        lookup: Callable[[str], Awaitable[T]],
        rekey: Callable[[str, str], Awaitable[object]] | None = None,
    ) -> T:
        """What ``lookup`` finds by the digest of ``secret``: under the current key, else under the ring's other keys.

        A falsy answer (``None``, no rows, ``False``) is a miss. The other keys are tried only on a miss, so a secret
        digested under the current key costs one lookup. One found under an older key is digested again under the
        current one by ``rekey(old_digest, new_digest)``, which should replace the stored digest only where it is
        still the old one; its failure is logged, never raised (the secret was found all the same, and is moved at a
        later use). The last miss is returned when no key finds anything.
        """
        current = self.digest(secret)
        found = await lookup(current)
        if found or not self._others:
            return found
        for key, older in self._others:
            digest = _digest(key, secret)
            found = await lookup(digest)
            if not found:
                continue
            if older and rekey is not None:
                try:
                    await rekey(digest, current)
                except Exception:
                    log.warning("a secret found under an older digest key could not be digested again", exc_info=True)
            return found
        return found


def _digest(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
