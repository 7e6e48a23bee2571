"""Issue 14, point 6: grid arithmetic is exact at any epoch.

Property tests over start times 0..1e10 s and ticks 1e-3..3600 s: grid points computed as
``start + k * tick`` (or as a user writes them, ``start + k * tick`` rounded once from the exact
decimal value) are on the grid with index k; times between grid points are not, and index the
point before them; a backtest clock ticks exactly the grid, ends exactly on ``end_time`` and
lands exactly on grid targets; a tick below the float resolution of the times is refused.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from search_budget import examples

from chronopype.clocks import BacktestClock, ClockConfig, ClockMode
from chronopype.clocks._grid import MIN_TICK_ULPS, check_resolution, grid_index
from chronopype.processors import TickProcessor

starts = st.floats(min_value=0.0, max_value=1e10, allow_nan=False, allow_infinity=False)
ticks = st.floats(min_value=1e-3, max_value=3600.0, allow_nan=False, allow_infinity=False)
# Ticks users actually configure: round decimal fractions and whole numbers of seconds.
decimal_ticks = st.sampled_from(
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 1.5, 5.0, 60.0, 900.0, 3600.0]
)
epoch_starts = st.one_of(
    starts,
    st.integers(min_value=0, max_value=10**10).map(float),
    st.sampled_from([1.7e9, 1_700_000_000.123, 1_735_689_600.0, 9_999_999_999.0]),
)
indices = st.integers(min_value=0, max_value=100_000)


@settings(max_examples=examples(400), deadline=None)
@given(start=epoch_starts, tick=st.one_of(ticks, decimal_ticks), k=indices)
def test_grid_points_are_on_the_grid_with_their_index(start: float, tick: float, k: int) -> None:
    point = start + k * tick
    assert grid_index(start, tick, point) == (k, True)


@settings(max_examples=examples(400), deadline=None)
@given(start=epoch_starts, tick=decimal_ticks, k=indices)
def test_targets_written_by_users_are_on_the_grid(start: float, tick: float, k: int) -> None:
    # The exactly rounded value of start + k * tick (what `start + 0.3` means), and the same
    # target reached by adding the offset in one step.
    exact = float(Decimal(start) + Decimal(k) * Decimal(str(tick)))
    one_step = start + float(Decimal(k) * Decimal(str(tick)))
    assert grid_index(start, tick, exact) == (k, True)
    assert grid_index(start, tick, one_step) == (k, True)


@settings(max_examples=examples(400), deadline=None)
@given(
    start=epoch_starts,
    tick=st.one_of(ticks, decimal_ticks),
    k=indices,
    fraction=st.floats(min_value=0.01, max_value=0.99),
)
def test_times_between_grid_points_index_the_point_before(
    start: float, tick: float, k: int, fraction: float
) -> None:
    t = start + (k + fraction) * tick
    # Only times clearly off the grid: more than the rounding allowance (a few float
    # spacings at this magnitude) away from both neighbours.
    clearance = 16 * math.ulp(max(start, t))
    assume(t - (start + k * tick) > clearance and (start + (k + 1) * tick) - t > clearance)
    index, on_grid = grid_index(start, tick, t)
    assert (index, on_grid) == (k, False)
    assert start + index * tick <= t < start + (index + 1) * tick


def ticked(
    start: float, tick: float, end: float, target: float | None
) -> tuple[list[float], float]:
    class Recorder(TickProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.stamps: list[float] = []

        def tick(self, timestamp: float) -> None:
            self.stamps.append(timestamp)

    async def main() -> tuple[list[float], float]:
        clock = BacktestClock(
            ClockConfig(ClockMode.BACKTEST, start_time=start, end_time=end, tick_size=tick)
        )
        recorder = Recorder()
        clock.add_processor(recorder)
        landed = math.nan
        async with clock:
            if target is not None:
                landed = await clock.step_to(target)
            await clock.run()
        return recorder.stamps, landed

    return asyncio.run(main())


@settings(max_examples=examples(150), deadline=None)
@given(start=epoch_starts, tick=st.one_of(ticks, decimal_ticks), n=st.integers(1, 40),
       data=st.data())
def test_a_backtest_ticks_exactly_the_grid_and_lands_on_grid_targets(
    start: float, tick: float, n: int, data: st.DataObject
) -> None:
    end = start + n * tick
    j = data.draw(st.integers(0, n), label="j")
    target = start + j * tick
    stamps, landed = ticked(start, tick, end, target)
    assert stamps == [start + k * tick for k in range(1, n)] + [end]
    assert landed == (target if j else start)


@settings(max_examples=examples(200), deadline=None)
@given(start=epoch_starts, tick=decimal_ticks)
def test_a_one_tick_range_is_accepted(start: float, tick: float) -> None:
    end = float(Decimal(start) + Decimal(str(tick)))
    config = ClockConfig(ClockMode.BACKTEST, start_time=start, end_time=end, tick_size=tick)
    stamps, _ = ticked(start, tick, config.end_time, None)
    assert stamps == [end]


def test_the_issue_example_at_epoch_scale() -> None:
    start = 1.7e9
    stamps, landed = ticked(start, 0.1, start + 100, start + 0.3)
    assert landed == start + 0.3
    assert len(stamps) == 1000
    assert stamps[-1] == start + 100
    ClockConfig(ClockMode.BACKTEST, start_time=start, end_time=start + 0.1, tick_size=0.1)


@settings(max_examples=examples(200), deadline=None)
@given(start=st.floats(min_value=1.0, max_value=1e10))
def test_a_tick_below_the_float_resolution_is_refused(start: float) -> None:
    spacing = math.ulp(start + 1.0)
    too_small = spacing * MIN_TICK_ULPS / 2
    with pytest.raises(ValueError, match="below the float resolution"):
        ClockConfig(ClockMode.BACKTEST, start_time=start, end_time=start + 1.0,
                    tick_size=too_small)
    check_resolution(spacing * MIN_TICK_ULPS * 2, start + 1.0)  # comfortably above: accepted


def test_realtime_configs_without_a_start_assume_epoch_times() -> None:
    with pytest.raises(ValueError, match="float resolution"):
        ClockConfig(ClockMode.REALTIME, tick_size=1e-6)
    ClockConfig(ClockMode.REALTIME, tick_size=1e-3)
