"""Answers to repeated reads, kept only while the database is unchanged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ("ReadCache",)

K = TypeVar("K")
V = TypeVar("V")


class ReadCache(Generic[K, V]):
    """Answers read under one database version; a different version (or ``None``) empties the cache.

    The version must change whenever anything commits a change to the database, from any connection or process
    (:meth:`StatementRunner.data_version`), so a kept answer is always what a read would return now: a revocation
    by another worker or by the CLI is seen by the next lookup, not after some time-to-live. Read the version
    *before* the database: an answer is then at least as new as its version, and :meth:`put` refuses it when the
    version moved on meanwhile.

    Args:
        capacity: Most answers kept; when full, the cache starts over (hot keys come back on their next read).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._version: int | None = None
        self._answers: dict[K, V] = {}

    def get(self, key: K, version: int | None) -> V | None:
        """The answer kept for ``key`` if the database is still at ``version``; else forget everything kept."""
        if version is None or version != self._version:
            self._answers.clear()
            self._version = version
            return None
        return self._answers.get(key)

    def put(self, key: K, answer: V, version: int | None) -> None:
        """Keep ``answer``, read after the database was seen at ``version``, unless it has moved on since."""
        if version is None or version != self._version:
            return
        if len(self._answers) >= self._capacity:
            self._answers.clear()
        self._answers[key] = answer

    async def read_through(self, key: K, version: int | None, read: Callable[[K], Awaitable[V | None]]) -> V | None:
        """The answer kept for ``key`` at ``version`` (seen before calling this), else ``read(key)``, then kept."""
        if (kept := self.get(key, version)) is not None:
            return kept
        found = await read(key)
        if found is not None:
            self.put(key, found, version)
        return found

    def __len__(self) -> int:
        return len(self._answers)
