"""The per-address budget of creates that need no password: bursts up to the limit, then the average rate."""

from __future__ import annotations

import pytest

from sessiongate.identity.throttle import CreateBudget
from sessiongate.settings import Settings, SettingsError


class Seconds:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_may_burst_up_to_the_limit_then_waits_for_the_refill():
    clock = Seconds()
    budget = CreateBudget(3, 60, clock)
    assert [budget.take("a") for _ in range(3)] == [None, None, None]
    assert budget.take("a") == 20  # one create refills every 20 s
    clock.now += 19
    assert budget.take("a") == 1
    clock.now += 1
    assert budget.take("a") is None
    assert budget.take("a") == 20


def test_an_idle_address_refills_no_further_than_the_limit():
    clock = Seconds()
    budget = CreateBudget(2, 10, clock)
    budget.take("a")
    clock.now += 3600
    assert [budget.take("a") for _ in range(3)] == [None, None, 5]


def test_addresses_have_budgets_of_their_own():
    budget = CreateBudget(1, 60, Seconds())
    assert (budget.take("a"), budget.take("b"), budget.take("a")) == (None, None, 60)


def test_a_clock_that_goes_back_refills_nothing():
    clock = Seconds()
    budget = CreateBudget(1, 60, clock)
    budget.take("a")
    clock.now -= 3600
    assert budget.take("a") == 60


def test_memory_is_bounded_by_forgetting_the_address_idle_longest():
    budget = CreateBudget(1, 60, Seconds(), addresses=3)
    for address in ("a", "b", "c"):
        budget.take(address)
    budget.take("a")  # refused, but now the most recent
    budget.take("d")  # evicts b, idle longest
    assert len(budget._buckets) == 3
    assert budget.take("b") is None  # forgotten: a fresh budget
    assert budget.take("a") == 60  # kept


def test_the_budget_settings_have_a_default_and_checked_values():
    assert (Settings().create_rate_limit, Settings().create_rate_window) == (600, 60.0)
    settings = Settings.from_env({"SESSIONGATE_CREATE_RATE_LIMIT": "0", "SESSIONGATE_CREATE_RATE_WINDOW": "3600"})
    assert (settings.create_rate_limit, settings.create_rate_window) == (0, 3600.0)
    for name, value in (("CREATE_RATE_LIMIT", "-1"), ("CREATE_RATE_WINDOW", "0")):
        with pytest.raises(SettingsError, match="create_rate"):
            Settings.from_env({f"SESSIONGATE_{name}": value})
