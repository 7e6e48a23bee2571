"""BacktestClock: an exact tick grid, virtual retries, and a failure policy that never skips."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from chronopype.clocks import (
    BacktestClock,
    ClockConfig,
    ClockContextError,
    ClockError,
    ClockMode,
    ClockStopEvent,
    ProcessorTimeoutError,
)
from chronopype.processors import TickProcessor
from chronopype_testing import FakeClock


class Recorder(TickProcessor):
    """Records tick timestamps; ``fail`` decides, per call, whether the tick raises."""

    def __init__(self, fail: Callable[[float], BaseException | None] | None = None) -> None:
        super().__init__()
        self.ticks: list[float] = []
        self.attempt_times: list[float] = []  # loop time of every call
        self.fail = fail

    def tick(self, timestamp: float) -> None:
        self.attempt_times.append(asyncio.get_running_loop().time())
        error = self.fail(timestamp) if self.fail is not None else None
        if error is not None:
            raise error
        self.ticks.append(timestamp)


class Sleeper(TickProcessor):
    """An async processor that sleeps ``seconds`` of loop time per tick."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.ticks: list[float] = []
        self.cancelled = 0

    async def async_tick(self, timestamp: float) -> None:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.ticks.append(timestamp)


def backtest(**kwargs: object) -> BacktestClock:
    callback = kwargs.pop("error_callback", None)
    backoff = kwargs.pop("retry_backoff", 0.1)
    return BacktestClock(
        ClockConfig(ClockMode.BACKTEST, **kwargs),  # type: ignore[arg-type]
        callback,  # type: ignore[arg-type]
        retry_backoff=backoff,  # type: ignore[arg-type]
    )


def loop_time() -> float:
    return asyncio.get_running_loop().time()


# -- the grid -------------------------------------------------------------------------------


async def test_zero_to_1000_at_a_tenth_is_exactly_10000_ticks(fake_clock: FakeClock) -> None:
    clock = backtest(tick_size=0.1, start_time=0.0, end_time=1000.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert len(processor.ticks) == 10_000
    assert processor.ticks[-1] == 1000.0
    assert processor.ticks[:-1] == [k * 0.1 for k in range(1, 10_000)]
    assert all(a < b for a, b in zip(processor.ticks, processor.ticks[1:], strict=False))
    assert clock.current_timestamp == 1000.0
    assert clock.tick_counter == 10_000


async def test_epoch_range_ends_exactly_on_end_time(fake_clock: FakeClock) -> None:
    start = 1_700_000_000.0
    clock = backtest(tick_size=0.1, start_time=start, end_time=start + 100.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert len(processor.ticks) == 1000
    assert processor.ticks[0] == start + 0.1
    assert processor.ticks[-1] == start + 100.0


async def test_a_range_that_is_not_whole_ticks_stops_at_the_last_grid_point(
    fake_clock: FakeClock,
) -> None:
    clock = backtest(tick_size=3.0, end_time=10.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        await clock.run()
        with pytest.raises(ClockError, match="step"):
            await clock.step()
    assert processor.ticks == [3.0, 6.0, 9.0]
    assert clock.current_timestamp == 9.0


async def test_step_step_to_fast_forward_and_run_til_land_on_exact_targets(
    fake_clock: FakeClock,
) -> None:
    clock = backtest(tick_size=0.1, end_time=1.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        assert clock.current_timestamp == 0.0
        await clock.run_til(0.3)
        assert clock.current_timestamp == 0.3
        assert await clock.step() == 0.4
        await clock.fast_forward(0.3)
        assert clock.current_timestamp == 0.7
        assert await clock.step_to(0.9) == 0.9
        await clock.fast_forward(0.0)
        assert await clock.step_to(0.95) == 0.9  # between grid points: nothing due yet
        await clock.run()
        await clock.run()  # at the end already: nothing more to do
    assert len(processor.ticks) == 10
    assert processor.ticks[2] == 0.3
    assert processor.ticks[-1] == 1.0


async def test_bad_run_arguments_raise_precise_errors(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=10.0)
    with pytest.raises(ClockContextError):
        await clock.run()
    with pytest.raises(ClockContextError):
        await clock.step()
    async with clock:
        await clock.run_til(5.0)
        with pytest.raises(ClockError, match="past end_time"):
            await clock.run_til(11.0)
        with pytest.raises(ValueError, match="before the current timestamp"):
            await clock.run_til(4.0)
        with pytest.raises(ValueError, match="finite"):
            await clock.step_to(float("nan"))
        with pytest.raises(ValueError, match="n must be"):
            await clock.step(0)
        with pytest.raises(TypeError, match="n must be"):
            await clock.step(1.5)  # type: ignore[arg-type]
        with pytest.raises(ClockError, match="only 5 left"):
            await clock.step(6)
        with pytest.raises(ValueError, match="seconds"):
            await clock.fast_forward(-1.0)
        with pytest.raises(ClockError, match="past end_time"):
            await clock.fast_forward(6.0)
        assert clock.current_timestamp == 5.0


async def test_only_one_run_at_a_time(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=10.0)
    clock.add_processor(Sleeper(1.0))
    async with clock:
        first = asyncio.create_task(clock.run())
        await asyncio.sleep(0.5)
        assert clock.is_running
        with pytest.raises(ClockError, match="already running"):
            await clock.step()
        await first
    assert not clock.is_running


async def test_context_rules_and_reentry(fake_clock: FakeClock) -> None:
    clock = backtest(start_time=100.0, end_time=103.0)
    processor = Recorder()
    clock.add_processor(processor)
    with pytest.raises(ClockContextError):
        await clock.__aexit__(None, None, None)
    async with clock:
        assert processor.state.is_active
        assert processor.current_timestamp == 100.0
        with pytest.raises(ClockContextError, match="already"):
            await clock.__aenter__()
        await clock.run()
    assert not processor.state.is_active
    async with clock:  # a new context replays from start_time
        assert clock.current_timestamp == 100.0
        assert clock.tick_counter == 0
        await clock.run()
    assert processor.ticks == [101.0, 102.0, 103.0] * 2


# -- failures -------------------------------------------------------------------------------


async def test_a_failing_processor_does_not_stop_the_others_or_the_run(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    def always(timestamp: float) -> BaseException:
        raised.append(ValueError(f"bad data at {timestamp}"))
        return raised[-1]

    reported: list[tuple[TickProcessor, BaseException]] = []
    clock = backtest(
        end_time=3.0, max_retries=2, error_callback=lambda p, e: reported.append((p, e))
    )
    before, failing, after = Recorder(), Recorder(always), Recorder()
    for processor in (before, failing, after):
        clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert before.ticks == after.ticks == [1.0, 2.0, 3.0]
    # Three attempts per tick, retried at once: simulated time does not pass within a tick.
    assert failing.attempt_times == [0.0] * 9
    # The callback gets the processor's own exception from its last attempt.
    assert [(p, e) for p, e in reported] == [
        (failing, raised[2]),
        (failing, raised[5]),
        (failing, raised[8]),
    ]
    state = failing.state
    assert state.error_count == 3
    assert state.last_exception is raised[8]
    assert state.last_error_timestamp == 3.0  # tick time, not wall time
    assert state.successful_count == 0
    assert "retry 2/2" in caplog.text


async def test_a_retry_that_succeeds_is_a_success(fake_clock: FakeClock) -> None:
    failures = iter([RuntimeError("transient")])
    reported: list[BaseException] = []
    clock = backtest(end_time=2.0, error_callback=lambda p, e: reported.append(e))
    processor = Recorder(lambda ts: next(failures, None))
    clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert processor.ticks == [1.0, 2.0]
    assert reported == []
    assert processor.state.error_count == 0
    assert processor.state.successful_count == 2


async def test_backtest_retries_take_no_loop_time(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=100.0, max_retries=3)
    processor = Recorder(lambda ts: RuntimeError("always"))
    clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert loop_time() == 0.0
    assert processor.state.error_count == 100
    assert len(processor.attempt_times) == 400
    # 0.8.3's meaning: the failed attempts of the last tick, and the most ever reached.
    assert (processor.state.retry_count, processor.state.max_consecutive_retries) == (4, 4)


def test_backtest_retries_never_sleep_in_real_time_on_a_plain_loop() -> None:
    # Without a fake clock: with a real backoff sleep this would take 100 * 70 s, and the
    # guard below would fail it after 30 s instead of hanging.
    async def main() -> tuple[int, int]:
        clock = backtest(end_time=100.0, max_retries=3, retry_backoff=10.0)
        processor = Recorder(lambda ts: RuntimeError("always"))
        clock.add_processor(processor)
        async with asyncio.timeout(30.0), clock:
            await clock.run()
        return processor.state.error_count, len(processor.attempt_times)

    assert asyncio.run(main()) == (100, 400)


async def test_a_retry_that_succeeds_resets_retry_count(fake_clock: FakeClock) -> None:
    failures = iter([RuntimeError("a"), RuntimeError("b")])
    clock = backtest(end_time=2.0, max_retries=3)
    processor = Recorder(lambda ts: next(failures, None))
    clock.add_processor(processor)
    async with clock:
        await clock.step()
        assert (processor.state.retry_count, processor.state.max_consecutive_retries) == (0, 2)


async def test_retry_backoff_zero_retries_without_waiting(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=5.0, retry_backoff=0.0)
    processor = Recorder(lambda ts: RuntimeError("always"))
    clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert loop_time() == 0.0
    assert len(processor.attempt_times) == 5 * 4


async def test_fail_fast_raises_the_processors_own_exception(fake_clock: FakeClock) -> None:
    boom = KeyError("boom")
    stops: list[ClockStopEvent] = []
    clock = backtest(end_time=5.0, max_retries=0, fail_fast=True)
    clock.subscribe(ClockStopEvent, stops.append)
    failing, after = Recorder(lambda ts: boom if ts == 2.0 else None), Recorder()
    clock.add_processor(failing)
    clock.add_processor(after)
    with pytest.raises(KeyError) as caught:
        async with clock:
            await clock.run()
    assert caught.value is boom
    # fail_fast finishes the tick (as in concurrent mode), then stops the run.
    assert after.ticks == [1.0, 2.0]
    assert failing.state.last_exception is boom
    assert failing.state.last_error_timestamp == 2.0
    assert [(s.timestamp, s.total_ticks, s.error) for s in stops] == [(2.0, 2, boom)]


class RaisesTimeoutSync(TickProcessor):
    def __init__(self, error: TimeoutError) -> None:
        super().__init__()
        self.error = error

    def tick(self, timestamp: float) -> None:
        raise self.error


class RaisesTimeoutAsync(RaisesTimeoutSync):
    async def async_tick(self, timestamp: float) -> None:
        await asyncio.sleep(0.25)
        raise self.error


@pytest.mark.parametrize("kind", [RaisesTimeoutSync, RaisesTimeoutAsync])
async def test_a_processors_own_timeout_error_is_recorded_not_swallowed(
    fake_clock: FakeClock, kind: type[RaisesTimeoutSync]
) -> None:
    own = TimeoutError("my upstream timed out")
    reported: list[BaseException] = []
    clock = backtest(end_time=1.0, max_retries=0, error_callback=lambda p, e: reported.append(e))
    processor = kind(own)
    clock.add_processor(processor)
    async with clock:
        await clock.run()
    assert reported == [own]
    assert reported[0] is own
    assert not isinstance(reported[0], ProcessorTimeoutError)
    assert processor.state.last_exception is own
    assert processor.state.error_count == 1
    assert clock.get_processor_state(processor) is processor.state


async def test_the_clock_times_out_a_slow_async_tick_on_the_loop_clock(
    fake_clock: FakeClock,
) -> None:
    reported: list[BaseException] = []
    clock = backtest(
        end_time=1.0,
        processor_timeout=1.0,
        max_retries=1,
        error_callback=lambda p, e: reported.append(e),
    )
    slow = Sleeper(5.0)
    clock.add_processor(slow)
    async with clock:
        await clock.run()
    # attempt (1 s), then at once the retry (1 s)
    assert loop_time() == pytest.approx(2.0, abs=1e-9)
    assert slow.cancelled == 2
    assert slow.ticks == []
    [error] = reported
    assert isinstance(error, ProcessorTimeoutError)
    assert isinstance(error, TimeoutError)
    assert (error.processor, error.timeout, error.timestamp) == (slow, 1.0, 1.0)
    assert slow.state.last_exception is error


async def test_concurrent_processors_share_the_tick_time(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=2.0, concurrent_processors=True, processor_timeout=5.0)
    first, second = Sleeper(0.5), Sleeper(0.75)
    clock.add_processor(first)
    clock.add_processor(second)
    async with clock:
        await clock.run()
    assert first.ticks == second.ticks == [1.0, 2.0]
    assert loop_time() == pytest.approx(1.5, abs=1e-9)  # 2 ticks x the slower one


async def test_concurrent_fail_fast_lets_every_processor_finish_its_tick_first(
    fake_clock: FakeClock,
) -> None:
    boom = RuntimeError("boom")

    class FailsLater(TickProcessor):
        async def async_tick(self, timestamp: float) -> None:
            await asyncio.sleep(0.1)
            raise boom

    clock = backtest(
        end_time=3.0, concurrent_processors=True, fail_fast=True, max_retries=0,
        processor_timeout=5.0,
    )
    slow = Sleeper(1.0)
    clock.add_processor(FailsLater())
    clock.add_processor(slow)
    async with clock:
        with pytest.raises(RuntimeError) as caught:
            await clock.run()
    assert caught.value is boom
    assert slow.ticks == [1.0]


# -- statistics -----------------------------------------------------------------------------


async def test_counts_are_not_capped_by_the_window_and_times_are_tick_times(
    fake_clock: FakeClock,
) -> None:
    clock = backtest(end_time=50.0, stats_window_size=10, max_retries=0)
    processor = Recorder(lambda ts: ValueError("tenth") if ts % 10 == 0 else None)
    clock.add_processor(processor)
    assert processor.state.stats_window_size == 10
    async with clock:
        await clock.run()
    stats = clock.get_processor_stats(processor)
    assert stats is not None
    assert stats["total_ticks"] == 50
    assert stats["successful_ticks"] == 45
    assert stats["failed_ticks"] == stats["error_count"] == 5
    assert stats["error_rate"] == 10.0  # a percentage, as in 0.8.3
    assert stats["last_error_timestamp"] == 50.0
    assert stats["last_success_timestamp"] == 49.0
    assert stats["last_timestamp"] == 50.0
    assert stats["is_paused"] is False
    assert len(processor.state.execution_times) == 10
    # The clock keeps no copy: the stats are the processor's own state.
    assert processor.state.total_count == 50
    clock.remove_processor(processor)
    assert clock.get_processor_stats(processor) is None
    assert processor.state.total_count == 50


def test_error_callback_that_raises_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_callback(processor: TickProcessor, error: BaseException) -> None:
        raise RuntimeError("callback bug")

    async def main() -> list[float]:
        clock = backtest(end_time=3.0, max_retries=0, error_callback=broken_callback)
        failing, other = Recorder(lambda ts: ValueError("x")), Recorder()
        clock.add_processor(failing)
        clock.add_processor(other)
        async with clock:
            await clock.run()
        return other.ticks

    with caplog.at_level(logging.ERROR):
        assert FakeClock().run(main()) == [1.0, 2.0, 3.0]
    assert caplog.text.count("error_callback raised") == 3


async def test_a_long_backtest_lets_other_tasks_run(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=10_000.0)
    processor = Recorder()
    clock.add_processor(processor)
    async with clock:
        stopper = asyncio.get_running_loop().call_soon(clock.request_stop)
        await clock.run()
        stopper.cancel()
    # The run yielded to the loop long before its end, and the request took effect there.
    assert 1.0 <= clock.current_timestamp < 1000.0
    assert processor.ticks[-1] == clock.current_timestamp
