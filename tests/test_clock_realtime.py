"""RealtimeClock on FakeClock: wall-time grid, loop-time scheduling, a documented skip policy.

FakeClock starts at DEFAULT_START (2024-01-01T00:00:00Z) with loop time 0.0, so tick k of a
clock entered at once falls at wall time T0 + k and loop time k.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types

import pytest

import chronopype.clocks.realtime as realtime_module
from chronopype.clocks import (
    ClockConfig,
    ClockError,
    ClockMode,
    ClockStartEvent,
    ClockStopEvent,
    RealtimeClock,
)
from chronopype.processors import TickProcessor
from chronopype_testing import DEFAULT_START, FakeClock

T0 = DEFAULT_START.timestamp()


class Recorder(TickProcessor):
    """Records (stamp, loop time, wall time) per tick; optionally sleeps in its tick."""

    def __init__(self, sleeps: dict[float, float] | None = None) -> None:
        super().__init__()
        self.sleeps = sleeps or {}
        self.ticks: list[float] = []
        self.loop_times: list[float] = []
        self.wall_times: list[float] = []

    async def async_tick(self, timestamp: float) -> None:
        self.ticks.append(timestamp)
        self.loop_times.append(asyncio.get_running_loop().time())
        self.wall_times.append(time.time())
        delay = self.sleeps.get(timestamp, self.sleeps.get(-1.0, 0.0))
        if delay:
            await asyncio.sleep(delay)


def realtime(**kwargs: object) -> RealtimeClock:
    callback = kwargs.pop("error_callback", None)
    return RealtimeClock(ClockConfig(ClockMode.REALTIME, **kwargs), callback)  # type: ignore[arg-type]


def loop_time() -> float:
    return asyncio.get_running_loop().time()


async def test_one_virtual_hour_is_exactly_3600_ticks_on_the_grid(fake_clock: FakeClock) -> None:
    clock = realtime()
    processor = Recorder()
    clock.add_processor(processor)
    starts: list[ClockStartEvent] = []
    clock.subscribe(ClockStartEvent, starts.append)
    async with clock:
        await clock.run_til(T0 + 3600)
        assert loop_time() == 3600.0
    assert starts[0].timestamp == T0
    assert len(processor.ticks) == 3600
    assert processor.ticks == [T0 + k for k in range(1, 3601)]
    assert processor.loop_times == [float(k) for k in range(1, 3601)]
    assert processor.wall_times == processor.ticks  # stamped with the wall time it ran at
    assert clock.missed_ticks == 0


async def test_the_grid_is_aligned_to_tick_size_when_start_time_is_unset(
    fake_clock: FakeClock,
) -> None:
    await asyncio.sleep(0.25)  # enter between boundaries
    clock = realtime(tick_size=0.5)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        assert clock.current_timestamp == T0
        await clock.run_til(T0 + 1.5)
    assert processor.ticks == [T0 + 0.5, T0 + 1.0, T0 + 1.5]
    assert processor.loop_times == [0.5, 1.0, 1.5]


async def test_a_future_start_time_is_waited_for(fake_clock: FakeClock) -> None:
    clock = realtime(start_time=T0 + 100.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        assert clock.current_timestamp == T0 + 100.0
        await clock.run_til(T0 + 103.0)
    assert processor.ticks == [T0 + 101.0, T0 + 102.0, T0 + 103.0]
    assert processor.loop_times == [101.0, 102.0, 103.0]


async def test_run_til_means_a_wall_time_not_a_duration(fake_clock: FakeClock) -> None:
    clock = realtime()
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await asyncio.sleep(10.0)  # no run in progress: these boundaries are not run
        await clock.run_til(T0 + 12.0)
        assert loop_time() == 12.0
        await clock.run_til(T0 + 5.0)  # already past: returns at once
        assert loop_time() == 12.0
    assert processor.ticks == [T0 + 11.0, T0 + 12.0]
    assert clock.missed_ticks == 0


async def test_run_til_between_boundaries_returns_at_that_wall_time(fake_clock: FakeClock) -> None:
    clock = realtime()
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await clock.run_til(T0 + 2.5)
        assert loop_time() == 2.5
        assert time.time() == T0 + 2.5
        await clock.run_til(T0 + 4.0)
    assert processor.ticks == [T0 + 1.0, T0 + 2.0, T0 + 3.0, T0 + 4.0]


async def test_missed_ticks_are_skipped_counted_and_logged(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock = realtime(processor_timeout=10.0)
    processor = Recorder(sleeps={T0 + 2.0: 2.5})  # tick 2 runs until loop time 4.5
    clock.add_processor(processor)
    with caplog.at_level(logging.WARNING, logger="chronopype.clocks.realtime"):
        async with clock:
            await clock.run_til(T0 + 6.0)
    # Boundary 3 passed while tick 2 ran, and boundary 4 too: 4 runs at once (late, 0.5 s),
    # 3 is skipped and counted; then the rhythm resumes on the grid.
    assert processor.ticks == [T0 + 1, T0 + 2, T0 + 4, T0 + 5, T0 + 6]
    assert processor.loop_times == [1.0, 2.0, 4.5, 5.0, 6.0]
    assert clock.missed_ticks == 1
    [record] = [r for r in caplog.records if "behind" in r.getMessage()]
    assert "skipped 1 tick(s)" in record.getMessage()
    assert "1.500000s behind" in record.getMessage()


async def test_catching_up_never_runs_past_the_target(fake_clock: FakeClock) -> None:
    clock = realtime(processor_timeout=10.0)
    processor = Recorder(sleeps={T0 + 1.0: 5.0})
    clock.add_processor(processor)
    async with clock:
        await clock.run_til(T0 + 3.0)
        assert loop_time() == 6.0
    assert processor.ticks == [T0 + 1.0, T0 + 3.0]
    assert clock.missed_ticks == 1


async def test_execution_times_are_loop_time_and_lagging_is_exact(fake_clock: FakeClock) -> None:
    clock = realtime(processor_timeout=10.0)
    slow, quick = Recorder(sleeps={-1.0: 0.3}), Recorder()
    clock.add_processor(slow)
    clock.add_processor(quick)
    async with clock:
        await clock.run_til(T0 + 5.0)
    stats = clock.get_processor_stats(slow)
    assert stats is not None
    took = 0.3
    assert stats["avg_execution_time"] == pytest.approx(took, abs=1e-9)
    assert stats["max_execution_time"] == pytest.approx(took, abs=1e-9)
    assert stats["last_success_timestamp"] == T0 + 5.0
    assert clock.get_lagging_processors(0.2) == [slow]
    assert clock.get_lagging_processors(0.5) == []
    # quick starts 0.3 s late each tick but takes no time itself
    assert quick.loop_times == pytest.approx([1.3, 2.3, 3.3, 4.3, 5.3], abs=1e-9)


async def test_retries_and_errors_use_loop_time_and_tick_stamps(fake_clock: FakeClock) -> None:
    class Broken(TickProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.attempts: list[float] = []

        def tick(self, timestamp: float) -> None:
            self.attempts.append(asyncio.get_running_loop().time())
            raise ConnectionError("down")

    reported: list[BaseException] = []
    clock = realtime(max_retries=2, error_callback=lambda p, e: reported.append(e))
    processor = Broken()
    clock.add_processor(processor)
    async with clock:
        await clock.run_til(T0 + 2.0)
    assert processor.attempts == pytest.approx([1.0, 1.1, 1.3, 2.0, 2.1, 2.3], abs=1e-9)
    assert processor.state.error_count == 2
    assert processor.state.last_error_timestamp == T0 + 2.0
    assert processor.state.last_exception is reported[-1]


async def test_realtime_retry_waits_are_capped_at_one_tick(fake_clock: FakeClock) -> None:
    attempts: list[float] = []

    class Broken(TickProcessor):
        def tick(self, timestamp: float) -> None:
            attempts.append(asyncio.get_running_loop().time())
            raise ConnectionError("down")

    clock = RealtimeClock(
        ClockConfig(ClockMode.REALTIME, max_retries=3, tick_size=0.5), retry_backoff=0.3
    )
    clock.add_processor(Broken())
    async with clock:
        await clock.run_til(T0 + 0.5)
    # Backoffs 0.3, 0.6, 1.2 s, each capped at tick_size = 0.5 s.
    assert attempts == pytest.approx([0.5, 0.8, 1.3, 1.8], abs=1e-9)


async def test_processors_added_and_removed_from_another_task_during_a_run(
    fake_clock: FakeClock,
) -> None:
    clock = realtime()
    resident, visitor = Recorder(), Recorder()
    clock.add_processor(resident)

    async def visit() -> None:
        await asyncio.sleep(2.5)
        clock.add_processor(visitor)
        await asyncio.sleep(2.0)
        clock.remove_processor(visitor)

    async with clock:
        visiting = asyncio.create_task(visit())
        await clock.run_til(T0 + 8.0)
        await visiting
    assert resident.ticks == [T0 + k for k in range(1, 9)]
    assert visitor.ticks == [T0 + 3.0, T0 + 4.0]
    assert not visitor.state.is_active


async def test_run_without_end_stops_on_shutdown_at_once(fake_clock: FakeClock) -> None:
    clock = realtime()
    processor = Recorder()
    clock.add_processor(processor)
    stops: list[ClockStopEvent] = []
    clock.subscribe(ClockStopEvent, stops.append)
    async with clock:
        run = asyncio.create_task(clock.run())
        await asyncio.sleep(5.5)
        await clock.shutdown(timeout=1.0)
        assert loop_time() == 5.5  # the run was asleep: woken, not waited for
        await run
    assert processor.ticks == [T0 + k for k in range(1, 6)]
    assert [(s.timestamp, s.total_ticks, s.error) for s in stops] == [(T0 + 5.0, 5, None)]


async def test_run_stops_at_end_time_and_rejects_targets_past_it(fake_clock: FakeClock) -> None:
    clock = realtime(start_time=T0, end_time=T0 + 3.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        with pytest.raises(ClockError, match="past end_time"):
            await clock.run_til(T0 + 4.0)
        with pytest.raises(ValueError, match="finite"):
            await clock.run_til(float("nan"))
        await clock.run()
    assert processor.ticks == [T0 + 1.0, T0 + 2.0, T0 + 3.0]


def test_a_realtime_run_is_deterministic() -> None:
    async def simulate() -> tuple[list[float], list[float], int]:
        clock = realtime(tick_size=0.25, processor_timeout=10.0)
        processor = Recorder(sleeps={T0 + 1.0: 0.6, T0 + 3.0: 1.1})
        clock.add_processor(processor)
        async with clock:
            await clock.run_til(T0 + 10.0)
        return processor.ticks, processor.loop_times, clock.missed_ticks

    first = FakeClock().run(simulate())
    assert first == FakeClock().run(simulate())
    ticks, loop_times, missed = first
    # The 0.6 s tick at 1.0 ends at 1.6: 1.5 runs late, 1.25 is skipped. The 1.1 s tick at 3.0
    # ends at 4.1: 4.0 runs late, 3.25, 3.5 and 3.75 are skipped.
    assert missed == 4
    assert len(ticks) == 40 - 4
    assert loop_times[ticks.index(T0 + 1.5)] == pytest.approx(1.6, abs=1e-9)
    assert loop_times[ticks.index(T0 + 4.0)] == pytest.approx(4.1, abs=1e-9)
    assert T0 + 1.25 not in ticks and T0 + 3.5 not in ticks


async def test_waiting_is_scheduled_on_the_loop_clock_not_the_wall_clock(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wall clock stuck at T0: a clock that waited on time.time() would never tick again.
    monkeypatch.setattr(realtime_module, "time", types.SimpleNamespace(time=lambda: T0))
    clock = realtime()
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await clock.run_til(T0 + 3.0)
    assert processor.ticks == [T0 + 1.0, T0 + 2.0, T0 + 3.0]
    assert processor.loop_times == [1.0, 2.0, 3.0]


async def test_a_past_start_time_anchors_the_grid_and_starts_at_the_next_point(
    fake_clock: FakeClock,
) -> None:
    clock = realtime(start_time=T0 - 100.5)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await clock.run_til(T0 + 2.0)
    assert processor.ticks == [T0 + 0.5, T0 + 1.5]
    assert processor.loop_times == [0.5, 1.5]
    assert clock.missed_ticks == 0  # boundaries before the run began are not "missed"


async def test_cancelling_the_task_still_stops_processors_and_sends_the_stop_event(
    fake_clock: FakeClock,
) -> None:
    clock = realtime()
    processor = Recorder()
    clock.add_processor(processor)
    stops: list[ClockStopEvent] = []
    clock.subscribe(ClockStopEvent, stops.append)

    async def forever() -> None:
        async with clock:
            await clock.run()

    task = asyncio.create_task(forever())
    await asyncio.sleep(3.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not processor.state.is_active
    assert not clock.is_running and not clock.is_in_context
    [stop] = stops
    assert (stop.timestamp, stop.total_ticks) == (T0 + 3.0, 3)
    assert isinstance(stop.error, asyncio.CancelledError)
