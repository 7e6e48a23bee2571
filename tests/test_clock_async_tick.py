"""Issue 14, point 8: an async_tick that finishes without suspending pays for no timer, and
one that suspends is awaited exactly as before (timeout, cancellation, its own errors)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from chronopype.clocks import BacktestClock, ClockConfig, ClockMode, ProcessorTimeoutError
from chronopype.processors import TickProcessor
from chronopype_testing import FakeClock


class NoSuspend(TickProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    async def async_tick(self, timestamp: float) -> None:
        self.stamps.append(timestamp)


def backtest(end_time: float, **kwargs: Any) -> BacktestClock:
    return BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=end_time, **kwargs))


def test_an_async_tick_that_never_suspends_schedules_no_timer() -> None:
    timers: list[float] = []

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        call_at = loop.call_at

        def counting_call_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            timers.append(when)
            return call_at(when, *args, **kwargs)

        loop.call_at = counting_call_at  # type: ignore[method-assign,assignment]
        clock = backtest(200.0, processor_timeout=5.0)
        processor = NoSuspend()
        clock.add_processor(processor)
        async with clock:
            await clock.run()
        return processor.stamps

    assert asyncio.run(main()) == [float(k) for k in range(1, 201)]
    assert timers == []


async def test_a_suspending_async_tick_is_still_timed_out(fake_clock: FakeClock) -> None:
    class SuspendsThenHangs(TickProcessor):
        async def async_tick(self, timestamp: float) -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(10.0)

    errors: list[BaseException] = []
    clock = BacktestClock(
        ClockConfig(ClockMode.BACKTEST, end_time=1.0, processor_timeout=2.0, max_retries=0),
        lambda p, e: errors.append(e),
    )
    clock.add_processor(SuspendsThenHangs())
    async with clock:
        await clock.run()
    [error] = errors
    assert isinstance(error, ProcessorTimeoutError)
    assert asyncio.get_running_loop().time() == pytest.approx(2.0, abs=1e-9)


async def test_values_and_errors_after_a_suspension_reach_the_clock(fake_clock: FakeClock) -> None:
    boom = LookupError("after a suspension")

    class Flaky(TickProcessor):
        async def async_tick(self, timestamp: float) -> None:
            await asyncio.sleep(0.5)
            if timestamp == 2.0:
                raise boom

    clock = backtest(3.0, max_retries=0)
    flaky = Flaky()
    clock.add_processor(flaky)
    async with clock:
        await clock.run()
    assert flaky.state.last_exception is boom
    assert (flaky.state.successful_count, flaky.state.error_count) == (2, 1)
    # The execution times are CPU-side (perf_counter), not the virtual half seconds.
    assert flaky.state.max_execution_time < 0.5


async def test_cancelling_the_run_reaches_a_suspended_async_tick(fake_clock: FakeClock) -> None:
    seen: list[str] = []

    class Waits(TickProcessor):
        async def async_tick(self, timestamp: float) -> None:
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    clock = backtest(5.0, processor_timeout=10.0)
    clock.add_processor(Waits())
    async with clock:
        run = asyncio.create_task(clock.run())
        await asyncio.sleep(0.25)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert seen == ["cancelled"]
    assert not clock.is_running


async def test_an_async_tick_returning_another_awaitable_is_awaited(fake_clock: FakeClock) -> None:
    class Awaitable:
        def __init__(self, stamps: list[float], timestamp: float) -> None:
            self.stamps, self.timestamp = stamps, timestamp

        def __await__(self) -> Generator[Any, None, None]:
            yield from asyncio.sleep(0.1).__await__()
            self.stamps.append(self.timestamp)

    class Legacy(TickProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.stamps: list[float] = []

        def async_tick(self, timestamp: float) -> Awaitable:  # type: ignore[override]
            return Awaitable(self.stamps, timestamp)

    clock = backtest(3.0)
    legacy = Legacy()
    clock.add_processor(legacy)
    async with clock:
        await clock.run()
    assert legacy.stamps == [1.0, 2.0, 3.0]


# -- hostile ticks: the guarantees NetworkProcessor's checks and hooks have (processors/_aio.py)


class Counts(TickProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def tick(self, timestamp: float) -> None:
        self.stamps.append(timestamp)


class RaisesCancelled(TickProcessor):
    """Raises CancelledError nobody asked for: before, after a suspension, or from tick()."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where
        if where == "sync":
            self.tick = self._raise  # type: ignore[method-assign]

    def _raise(self, timestamp: float) -> None:
        raise asyncio.CancelledError("raised by the processor")

    async def async_tick(self, timestamp: float) -> None:
        if self.where == "suspended":
            await asyncio.sleep(0.25)
        raise asyncio.CancelledError("raised by the processor")


@pytest.mark.parametrize("where", ["before-suspending", "suspended", "sync"])
async def test_a_cancelled_error_nobody_requested_is_that_ticks_failure(
    fake_clock: FakeClock, where: str
) -> None:
    errors: list[BaseException] = []
    clock = BacktestClock(
        ClockConfig(ClockMode.BACKTEST, end_time=3.0, max_retries=0),
        lambda p, e: errors.append(e),
    )
    hostile, bystander = RaisesCancelled(where), Counts()
    clock.add_processor(hostile)
    clock.add_processor(bystander)
    async with clock:
        await clock.run()  # before: CancelledError escaped here and ended the run at tick 1
    assert bystander.stamps == [1.0, 2.0, 3.0]
    assert [type(e) for e in errors] == [asyncio.CancelledError] * 3
    assert (hostile.state.successful_count, hostile.state.error_count) == (0, 3)
    assert asyncio.get_running_loop().time() == pytest.approx(
        0.75 if where == "suspended" else 0.0, abs=1e-9
    )


@pytest.mark.parametrize("task_factory", ["default", "eager"])
async def test_a_tick_that_swallows_its_timeout_is_abandoned_one_more_timeout_later(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture, task_factory: str
) -> None:
    cancellations: list[float] = []
    loop = asyncio.get_running_loop()
    if task_factory == "eager":
        if not hasattr(asyncio, "eager_task_factory"):
            pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
        loop.set_task_factory(asyncio.eager_task_factory)

    class SwallowsOnce(TickProcessor):
        async def async_tick(self, timestamp: float) -> None:
            try:
                await asyncio.sleep(100.0)
            except asyncio.CancelledError:
                cancellations.append(loop.time())  # the timeout's: swallowed
            try:
                await asyncio.sleep(100.0)
            except asyncio.CancelledError:
                cancellations.append(loop.time())  # delivered in its own task: it gives up
                raise

    errors: list[tuple[BaseException, float]] = []
    clock = BacktestClock(
        ClockConfig(ClockMode.BACKTEST, end_time=1.0, processor_timeout=2.0, max_retries=0),
        lambda p, e: errors.append((e, loop.time())),
    )
    clock.add_processor(SwallowsOnce())
    async with clock:
        await clock.run()
        # Timed out at 2 s, swallowed it; abandoned one more timeout later, at 4 s.
        [(error, at)] = errors
        assert isinstance(error, ProcessorTimeoutError) and at == pytest.approx(4.0, abs=1e-9)
    # It got the cancellation it was abandoned with, in a task of its own, and ended: by the
    # time the context is left at the latest (an eager task runs it at once).
    assert cancellations == pytest.approx([2.0, 4.0], abs=1e-9)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not [r for r in caplog.records if "still running" in r.getMessage()]
    [warning] = [r for r in caplog.records if "ignored its cancellation" in r.getMessage()]
    assert "async_tick(1.0)" in warning.getMessage()
    assert "in task 'chronopype:BacktestClock:abandoned'" in warning.getMessage()
