"""Answers to repeated reads, kept only while the rows they came from are unchanged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ("ReadCache",)

K = TypeVar("K")
V = TypeVar("V")


class ReadCache(Generic[K, V]):
    """Answers read under one database version, each noted with the row it came from.

    The version must change whenever anything commits a change to the database, from any connection or process
    (:meth:`StatementRunner.data_version`), and never come back. Before answering under a new version, the owner
    :meth:`advance`\\ s the cache to it with the rows the commits in between changed (the change log,
    :meth:`StatementRunner.session_changes`), and only their answers are dropped; when those rows cannot be told,
    everything is. So a kept answer is always what a read would return now: a revocation by another worker or by
    the CLI is seen by the next lookup, not after some time-to-live. Read the version *before* the database: an
    answer is then at least as new as its version, and :meth:`put` refuses it when the version moved on meanwhile.

    Args:
        capacity: Most answers kept; when full, the cache starts over (hot keys come back on their next read).
        row_of: The row an answer came from, as the change log names it.
    """

    def __init__(self, capacity: int, row_of: Callable[[V], Hashable] | None = None) -> None:
        self._capacity = capacity
        self._row_of = row_of
        self._version: object | None = None
        self._answers: dict[K, V] = {}
        # Tuples, not sets: a row is read under one or two keys, and a tuple of text is one object the cyclic
        # collector soon stops tracking, where a set per kept answer was one more it scanned on every full pass.
        self._keys_of: dict[Hashable, tuple[K, ...]] = {}

    def advance(self, version: object | None, changed: Iterable[Hashable] | None) -> None:
        """Move to ``version``, reached from the kept one by commits that changed only the rows ``changed``: their
        answers are dropped, the others kept. ``changed`` ``None`` (not known), or no ``row_of``, drops everything."""
        if version is None or changed is None or self._row_of is None:
            self._clear()
        else:
            for row in changed:
                for key in self._keys_of.pop(row, ()):
                    self._answers.pop(key, None)
        self._version = version

    def get(self, key: K, version: object | None) -> V | None:
        """The answer kept for ``key`` if the cache is at ``version``; a version it was not advanced to forgets
        everything kept."""
        if version is None or version != self._version:
            self._clear()
            self._version = version
            return None
        return self._answers.get(key)

    def put(self, key: K, answer: V, version: object | None) -> None:
        """Keep ``answer``, read after the database was seen at ``version``, unless it has moved on since."""
        if version is None or version != self._version:
            return
        if len(self._answers) >= self._capacity:
            self._clear()
        self._answers[key] = answer
        if self._row_of is not None:
            row = self._row_of(answer)
            keys = self._keys_of.get(row, ())
            if key not in keys:
                self._keys_of[row] = (*keys, key)

    async def read_through(self, key: K, version: object | None, read: Callable[[K], Awaitable[V | None]]) -> V | None:
        """The answer kept for ``key`` at ``version`` (seen before calling this), else ``read(key)``, then kept."""
        if (kept := self.get(key, version)) is not None:
            return kept
        found = await read(key)
        if found is not None:
            self.put(key, found, version)
        return found

    def _clear(self) -> None:
        self._answers.clear()
        self._keys_of.clear()

    def __len__(self) -> int:
        return len(self._answers)
