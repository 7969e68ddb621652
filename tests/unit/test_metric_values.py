"""Request metrics updated straight on their values read exactly as through prometheus_client's own methods."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sessiongate.metric_values import Timing, counting, gauge_steps

_LABELS = ("method", "path")
_names = (f"m{n}" for n in itertools.count())

# Durations as the observer measures them, and every bucket bound exactly, where "at most the bound" decides.
durations = st.lists(
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False) | st.sampled_from(Histogram.DEFAULT_BUCKETS[:-1]),
    max_size=40,
)
steps = st.lists(st.sampled_from([1.0, -1.0]), max_size=40)


def _exposition(registry: CollectorRegistry) -> list[str]:
    # Without the creation times, which differ between two metrics made one after the other.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def _pair(kind: type[Counter | Gauge | Histogram]) -> tuple[CollectorRegistry, Any, CollectorRegistry, Any]:
    name = next(_names)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if kind is Gauge else {}
    child = kind(name, "help", _LABELS, registry=ours, **mode).labels("GET", "/a")
    public = kind(name, "help", _LABELS, registry=theirs, **mode).labels("GET", "/a")
    return ours, child, theirs, public


@given(durations)
def test_a_duration_lands_in_the_same_bucket_and_sum_as_observe_puts_it(seconds: list[float]) -> None:
    ours, child, theirs, public = _pair(Histogram)
    timed = Timing(child)
    for amount in seconds:
        timed.observe(amount)
        public.observe(amount)
    assert _exposition(ours) == _exposition(theirs)


@given(steps)
def test_a_gauge_moved_up_and_down_reads_as_inc_and_dec_leave_it(moves: list[float]) -> None:
    ours, child, theirs, public = _pair(Gauge)
    step = gauge_steps(child)
    for amount in moves:
        step.inc(amount)
        if amount > 0:
            public.inc()
        else:
            public.dec()
    assert _exposition(ours) == _exposition(theirs)


@given(st.integers(min_value=0, max_value=50))
def test_a_count_reads_as_inc_leaves_it(times: int) -> None:
    ours, child, theirs, public = _pair(Counter)
    step = counting(child)
    for _ in range(times):
        step.inc(1.0)
        public.inc()
    assert _exposition(ours) == _exposition(theirs)


def test_the_values_are_updated_straight_for_prometheus_clients_own_metrics() -> None:
    # The point of the module: were these public children again, every request would pay for the checks again.
    _, counter, _, _ = _pair(Counter)
    _, gauge, _, _ = _pair(Gauge)
    _, histogram, _, _ = _pair(Histogram)
    assert counting(counter) is counter._value
    assert gauge_steps(gauge) is gauge._value
    assert Timing(histogram)._sum is histogram._sum


class _OwnGauge(Gauge):
    """A gauge of a shape the module does not know (here: a subclass that counts its calls)."""

    calls = 0

    def inc(self, amount: float = 1) -> None:
        _OwnGauge.calls += 1
        super().inc(amount)


class _OwnHistogram(Histogram):
    observed: list[float] = []  # noqa: RUF012 - the test's record

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        _OwnHistogram.observed.append(amount)
        super().observe(amount, exemplar)


def test_a_metric_of_another_shape_is_updated_through_its_own_methods() -> None:
    registry = CollectorRegistry()
    gauge = _OwnGauge("own_gauge", "help", _LABELS, registry=registry).labels("GET", "/a")
    histogram = _OwnHistogram("own_histogram", "help", _LABELS, registry=registry).labels("GET", "/a")

    step = gauge_steps(gauge)
    step.inc(1.0)
    step.inc(-1.0)
    timed = Timing(histogram)
    timed.observe(0.25)

    assert _OwnGauge.calls == 2
    assert _OwnHistogram.observed == [0.25]
    assert registry.get_sample_value("own_histogram_bucket", {"method": "GET", "path": "/a", "le": "0.25"}) == 1.0


def test_a_mostrecent_gauge_still_refuses_to_be_moved() -> None:
    gauge = Gauge(next(_names), "help", _LABELS, registry=CollectorRegistry(), multiprocess_mode="mostrecent")
    step = gauge_steps(gauge.labels("GET", "/a"))
    try:
        step.inc(1.0)
    except RuntimeError:
        return
    raise AssertionError("a mostrecent gauge was moved")
