"""Password hashes: argon2id, computed on a worker thread so a login never blocks the event loop."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ("MAX_PASSWORD", "Passwords")

_R = TypeVar("_R")

MAX_PASSWORD = 1024
"""Longest password accepted: argon2 takes any length, but hashing a megabyte on request is a gift to attackers."""


class Passwords:
    """Hash, verify and spot outdated hashes with one :class:`argon2.PasswordHasher`.

    Args:
        hasher: The argon2id parameters to hash with (the library's RFC 9106 defaults when not given). Hashes
            made with other parameters still verify, and :meth:`needs_rehash` says they should be replaced.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` (a fresh salt each time)."""
        return await self._run(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``.

        With no stored hash (an unknown login, or a principal without a password) the password is checked against a
        dummy hash made with the same parameters, so the answer takes as long as a real mismatch and timing does not
        tell an unknown login from a wrong password.
        """
        if stored is None:
            await self._run(self._verify, await self._dummy_hash(), password)
            return False
        return await self._run(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def _run(self, work: Callable[..., _R], *args: str) -> _R:
        if self._limiter is None:  # made here: it belongs to the running event loop
            # Each hash holds the hasher's memory (64 MiB by default): a burst of logins must queue, not exhaust RAM.
            self._limiter = anyio.CapacityLimiter(max(2, os.cpu_count() or 2))
        return await anyio.to_thread.run_sync(work, *args, limiter=self._limiter)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            # Racing first callers each compute one; any of them will do.
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        return self._dummy
