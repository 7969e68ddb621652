"""Labelled metric children updated straight on their values: what every request pays for being counted.

prometheus_client's ``inc``, ``dec`` and ``observe`` check on every call what is settled once a labelled child exists
(that it has all its labels, that a gauge is not ``mostrecent``, that a counter's step is not negative), and a
histogram finds its bucket by walking its bounds. For an issp validate (issue 17), the in-flight gauge, the request
count and the duration histogram cost 36,000 of the app's 411,000 instructions. Here a child's value objects
(prometheus_client's own: in memory, or in the multiprocess files) are taken once, and each update goes straight to
them, a histogram's bucket found by bisection: the same values in the same places as the public methods leave them,
read by the same exposition. A child of a shape this does not know (another prometheus_client) is updated through its
public methods.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

__all__ = ("Step", "Timing", "counting", "gauge_steps")


class Step(Protocol):
    """What a count or a gauge is moved by: ``inc(amount)``."""

    def inc(self, amount: float) -> None:
        """Add ``amount``."""


def _value(child: Any, kind: type[Any], name: str = "_value") -> Step | None:
    """The value object ``name`` of ``child``, when it is a labelled ``kind`` whose value can be updated straight."""
    if type(child) is not kind or not child._labelvalues:
        return None
    value = getattr(child, name, None)
    return value if callable(getattr(value, "inc", None)) else None


def counting(child: Counter) -> Step:
    """``child``, a labelled counter, moved by ``inc(1)``."""
    return _value(child, Counter) or child


def gauge_steps(child: Gauge) -> Step:
    """``child``, a labelled gauge, moved by ``inc(1)`` and ``inc(-1)``."""
    if getattr(child, "_is_most_recent", True) is not False:  # set()-only gauges: their own inc refuses
        return child
    return _value(child, Gauge) or child


class Timing:
    """A labelled histogram child's ``observe``."""

    __slots__ = ("_bounds", "_buckets", "_child", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        # Histogram itself keeps its bounds sorted, +Inf last, one bucket each.
        bounds: Any = getattr(child, "_upper_bounds", None)
        buckets: Any = getattr(child, "_buckets", None)
        total = _value(child, Histogram, "_sum")
        usable = (
            total is not None
            and isinstance(bounds, list)
            and isinstance(buckets, list)
            and len(bounds) == len(buckets)
            and all(callable(getattr(bucket, "inc", None)) for bucket in buckets)
        )
        self._sum: Step | None = total if usable else None
        self._bounds: list[float] = bounds if usable else []
        self._buckets: list[Step] = buckets if usable else []

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is at least it (as ``Histogram.observe``), add it to the
        sum."""
        if self._sum is None:
            self._child.observe(amount)
            return
        self._sum.inc(amount)
        self._buckets[bisect_left(self._bounds, amount)].inc(1.0)
