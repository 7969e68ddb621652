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

__all__ = ("Step", "Timing", "counting", "gauge_steps", "timing")


class Step(Protocol):
    """What a count or a gauge is moved by: ``inc(amount)``."""

    def inc(self, amount: float) -> None:
        """Add ``amount``."""


def _value(child: Any, kind: type[Any]) -> Step | None:
    """The value object of ``child``, when it is a ``kind`` whose value can be updated straight."""
    if type(child) is not kind or not child._labelvalues:
        return None
    value = getattr(child, "_value", None)
    return value if callable(getattr(value, "inc", None)) else None


def counting(child: Counter) -> Step:
    """``child``, a labelled counter, moved by ``inc(1)``."""
    return _value(child, Counter) or child


class _Gauge:
    """A gauge moved through its public methods (``inc`` refuses nothing but a ``mostrecent`` gauge)."""

    __slots__ = ("_child",)

    def __init__(self, child: Gauge) -> None:
        self._child = child

    def inc(self, amount: float) -> None:
        self._child.inc(amount)


def gauge_steps(child: Gauge) -> Step:
    """``child``, a labelled gauge, moved by ``inc(1)`` and ``inc(-1)``."""
    if getattr(child, "_is_most_recent", True) is not False:  # set()-only gauges: leave the refusal to them
        return _Gauge(child)
    return _value(child, Gauge) or _Gauge(child)


class Timing:
    """A labelled histogram child's ``observe``."""

    __slots__ = ("_bounds", "_buckets", "_child", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        bounds = getattr(child, "_upper_bounds", None)
        buckets = getattr(child, "_buckets", None)
        total = _sum_of(child)
        usable = (
            total is not None
            and isinstance(bounds, list)
            and isinstance(buckets, list)
            and len(bounds) == len(buckets) > 0
            and bounds[-1] == float("inf")
            and bounds == sorted(bounds)
            and all(callable(getattr(bucket, "inc", None)) for bucket in buckets)
        )
        self._sum: Step | None = total if usable else None
        self._bounds: list[float] = bounds if usable else []  # type: ignore[assignment]
        self._buckets: list[Step] = buckets if usable else []  # type: ignore[assignment]

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is at least it (as ``Histogram.observe``), add it to the
        sum."""
        if self._sum is None:
            self._child.observe(amount)
            return
        self._sum.inc(amount)
        self._buckets[bisect_left(self._bounds, amount)].inc(1.0)


def _sum_of(child: Histogram) -> Step | None:
    if type(child) is not Histogram or not child._labelvalues:
        return None
    total = getattr(child, "_sum", None)
    return total if callable(getattr(total, "inc", None)) else None


def timing(child: Histogram) -> Timing:
    """``child``, a labelled histogram, observed by ``observe(seconds)``."""
    return Timing(child)
