"""Requests sent at once: each call on a thread of its own, all started before any is awaited."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def at_once(call: Callable[[int], T], count: int) -> list[T]:
    """``call(0)`` … ``call(count - 1)``, each on its own thread, all in flight together; their results in order."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))
