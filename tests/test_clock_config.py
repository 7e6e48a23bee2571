"""ClockConfig validates every field, naming it; events and subscriptions behave."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from chronopype.clocks import (
    BacktestClock,
    ClockConfig,
    ClockMode,
    ClockStartEvent,
    ClockStopEvent,
    ClockTickEvent,
    RealtimeClock,
)


def test_defaults() -> None:
    config = ClockConfig(ClockMode.BACKTEST)
    assert (
        config.tick_size,
        config.start_time,
        config.end_time,
        config.processor_timeout,
        config.max_retries,
        config.concurrent_processors,
        config.stats_window_size,
        config.fail_fast,
    ) == (1.0, 0.0, 0.0, 1.0, 3, False, 100, False)


def test_frozen() -> None:
    config = ClockConfig(ClockMode.REALTIME)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tick_size = 2.0  # type: ignore[misc]


def test_ints_become_floats() -> None:
    config = ClockConfig(ClockMode.BACKTEST, tick_size=2, start_time=10, end_time=20)
    assert type(config.tick_size) is float
    assert type(config.start_time) is float
    assert type(config.end_time) is float


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tick_size", math.nan),
        ("tick_size", math.inf),
        ("tick_size", 0.0),
        ("tick_size", -1.0),
        ("start_time", math.nan),
        ("start_time", math.inf),
        ("start_time", -5.0),
        ("end_time", math.nan),
        ("end_time", math.inf),
        ("end_time", -1.0),
        ("processor_timeout", math.nan),
        ("processor_timeout", math.inf),
        ("processor_timeout", 0.0),
        ("processor_timeout", -0.5),
        ("max_retries", -1),
        ("stats_window_size", 0),
        ("stats_window_size", 10_001),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ClockConfig(ClockMode.BACKTEST, **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clock_mode", "BACKTEST"),
        ("tick_size", "1"),
        ("tick_size", True),
        ("max_retries", 1.5),
        ("max_retries", True),
        ("stats_window_size", 10.0),
        ("concurrent_processors", 1),
        ("fail_fast", "yes"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_field(field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"clock_mode": ClockMode.BACKTEST, field: value}
    with pytest.raises(TypeError, match=field):
        ClockConfig(**kwargs)


@pytest.mark.parametrize(
    ("start_time", "end_time", "tick_size"),
    [(100.0, 50.0, 1.0), (100.0, 100.0, 1.0), (0.0, 0.5, 1.0)],
)
def test_inconsistent_range_raises_naming_end_time(
    start_time: float, end_time: float, tick_size: float
) -> None:
    with pytest.raises(ValueError, match="end_time"):
        ClockConfig(
            ClockMode.BACKTEST, start_time=start_time, end_time=end_time, tick_size=tick_size
        )


def test_clock_checks_its_mode_and_backtest_needs_an_end() -> None:
    with pytest.raises(ValueError, match="clock_mode"):
        BacktestClock(ClockConfig(ClockMode.REALTIME, end_time=10.0))
    with pytest.raises(ValueError, match="clock_mode"):
        RealtimeClock(ClockConfig(ClockMode.BACKTEST))
    with pytest.raises(ValueError, match="end_time"):
        BacktestClock(ClockConfig(ClockMode.BACKTEST))
    with pytest.raises(TypeError, match="config"):
        BacktestClock({"clock_mode": ClockMode.BACKTEST})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_backoff"):
        BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=10.0), retry_backoff=-1.0)


def test_clocks_accept_new_attributes_as_in_0_8_3() -> None:
    clock = BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=10.0))
    clock.strategy_name = "mean reversion"  # type: ignore[attr-defined]
    assert clock.strategy_name == "mean reversion"  # type: ignore[attr-defined]
    realtime = RealtimeClock(ClockConfig(ClockMode.REALTIME))
    realtime.tag = 1  # type: ignore[attr-defined]
    assert realtime.tag == 1  # type: ignore[attr-defined]


async def test_subscribe_delivers_in_order_and_unsubscribe_stops_it(fake_clock: object) -> None:
    clock = BacktestClock(ClockConfig(ClockMode.BACKTEST, start_time=10.0, end_time=13.0))
    seen: list[tuple[str, float, int]] = []
    clock.subscribe(ClockStartEvent, lambda e: seen.append(("start", e.timestamp, 0)))
    unsubscribe_tick = clock.subscribe(
        ClockTickEvent, lambda e: seen.append(("tick", e.timestamp, e.tick_counter))
    )
    clock.subscribe(ClockStopEvent, lambda e: seen.append(("stop", e.timestamp, e.total_ticks)))
    async with clock:
        await clock.step(2)
        unsubscribe_tick()
        unsubscribe_tick()  # a second call is harmless
        await clock.run()
    assert seen == [
        ("start", 10.0, 0),
        ("tick", 11.0, 1),
        ("tick", 12.0, 2),
        ("stop", 13.0, 3),
    ]


def test_subscribe_rejects_unknown_event_types_and_non_callables() -> None:
    clock = BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=10.0))
    with pytest.raises(TypeError, match="event_type"):
        clock.subscribe(int, print)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="callback"):
        clock.subscribe(ClockTickEvent, "not callable")  # type: ignore[arg-type]


async def test_a_raising_subscriber_is_logged_and_the_others_still_run(
    fake_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    clock = BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=3.0))
    ticks: list[float] = []

    def broken(event: ClockTickEvent) -> None:
        raise RuntimeError("subscriber bug")

    clock.subscribe(ClockTickEvent, broken)
    clock.subscribe(ClockTickEvent, lambda e: ticks.append(e.timestamp))
    async with clock:
        await clock.run()
    assert ticks == [1.0, 2.0, 3.0]
    assert sum("subscriber" in r.getMessage() for r in caplog.records) == 3
