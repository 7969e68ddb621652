"""Password hashes: argon2id, computed on a worker thread so a login never blocks the event loop."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sessiongate.core.errors import Unavailable

__all__ = ("BUSY_RETRY_AFTER", "MAX_PASSWORD", "Passwords", "default_workers", "policy_problem")

_R = TypeVar("_R")

MAX_PASSWORD = 1024
"""Longest password accepted: argon2 takes any length, but hashing a megabyte on request is a gift to attackers."""
BUSY_RETRY_AFTER = 1
"""Seconds a login refused for a full queue is told to wait: a few verifications' time (0.1-0.3 s each)."""


def policy_problem(password: str, *, login: str, min_length: int, check_common: bool) -> str | None:
    """Why an operator may not set ``password`` (``SESSIONGATE_PASSWORD_MIN_LENGTH``, ``…_CHECK_COMMON``), or ``None``.

    The one policy of every password an operator sets, by the CLI or the admin API: at least ``min_length``
    characters, at most :data:`MAX_PASSWORD`, not the login, and (``check_common``) none of zxcvbn's 30 000 most
    common passwords, compared without case. Dialect logins are not checked.
    """
    if len(password) < min_length:
        return (
            f"the password is shorter than {min_length} characters "
            "(SESSIONGATE_PASSWORD_MIN_LENGTH); a passphrase of a few words is long and easy to type"
        )
    if len(password) > MAX_PASSWORD:
        return f"the password is longer than {MAX_PASSWORD} characters"
    if password.casefold() == login.casefold():
        return "the password is the login"
    if check_common and password.casefold() in _common_passwords():
        return (
            "the password is one of the most common passwords, the first that attackers try: choose another "
            "(SESSIONGATE_PASSWORD_CHECK_COMMON=false turns this check off)"
        )
    return None


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


def default_workers() -> int:
    """Hashes computed at once by default: one per CPU, at least two."""
    return max(2, os.cpu_count() or 2)


class Passwords:
    """Hash, verify and spot outdated hashes with one :class:`argon2.PasswordHasher`, on a bounded number of threads.

    Args:
        hasher: The argon2id parameters to hash with (the library's RFC 9106 defaults when not given). Hashes
            made with other parameters still verify, and :meth:`needs_rehash` says they should be replaced.
        workers: Hashes computed at once (each holds the hasher's memory, 64 MiB by default); one per CPU, at least
            two, when not given.
        queue: Logins that may wait for a free worker beyond those being hashed (:meth:`admission`); twice the
            workers when not given.
    """

    def __init__(
        self, hasher: PasswordHasher | None = None, *, workers: int | None = None, queue: int | None = None
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self.workers = workers or default_workers()
        self.queue = 2 * self.workers if queue is None else queue
        self._admitted = 0
        self._dummy: str | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """A place among the logins being checked or waiting for a worker, held for the ``with`` block.

        A flood of logins is refused at once past ``workers + queue`` of them, rather than queued: a queue without
        bound made every login wait for the whole flood (100 at once kept logins waiting 20 s on two cores).

        Raises:
            Unavailable: every place is taken (with ``Retry-After``).
        """
        if self._admitted >= self.workers + self.queue:
            raise Unavailable("too many logins at once", headers={"Retry-After": str(BUSY_RETRY_AFTER)})
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

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
            # Each hash holds the hasher's memory (64 MiB by default): a burst of logins must wait, not exhaust RAM.
            self._limiter = anyio.CapacityLimiter(self.workers)
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
