"""The registry is the single source of truth: changes during a run, even from inside a tick,
are never lost, never resurrected, and never crash the run. Lifecycle and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chronopype.clocks import (
    BacktestClock,
    ClockConfig,
    ClockError,
    ClockMode,
    ClockStartEvent,
    ClockStopEvent,
    ClockTickEvent,
)
from chronopype.processors import TickProcessor
from chronopype_testing import FakeClock


class Recorder(TickProcessor):
    """Records ticks and lifecycle calls; ``action`` runs inside the tick."""

    def __init__(self, name: str, action: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self.name = name
        self.ticks: list[float] = []
        self.calls: list[str] = []
        self.action = action

    def __repr__(self) -> str:
        return f"Recorder({self.name})"

    def start(self, timestamp: float) -> None:
        super().start(timestamp)
        self.calls.append(f"start@{timestamp:g}")

    def stop(self) -> None:
        super().stop()
        self.calls.append("stop")

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def tick(self, timestamp: float) -> None:
        self.ticks.append(timestamp)
        if self.action is not None:
            self.action(timestamp)


def backtest(end_time: float = 5.0, **kwargs: object) -> BacktestClock:
    return BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=end_time, **kwargs))  # type: ignore[arg-type]


def at(when: float, action: Callable[[], None]) -> Callable[[float], None]:
    def run(timestamp: float) -> None:
        if timestamp == when:
            action()

    return run


# -- pausing --------------------------------------------------------------------------------


async def test_run_til_does_not_reactivate_paused_processors(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=10.0)
    active, paused = Recorder("active"), Recorder("paused")
    clock.add_processor(active)
    clock.add_processor(paused)
    clock.pause_processor(paused)
    async with clock:
        await clock.run_til(3.0)
        await clock.step_to(5.0)
        await clock.fast_forward(1.0)
        assert clock.is_paused(paused)
        assert clock.get_active_processors() == [active]
        clock.resume_processor(paused)
        await clock.run()
    assert active.ticks == [float(t) for t in range(1, 11)]
    assert paused.ticks == [7.0, 8.0, 9.0, 10.0]
    # A processor paused before the context is started and then paused again, so that its
    # background work (if any) stays suspended until it is resumed.
    assert paused.calls == ["start@0", "pause", "resume", "stop"]


async def test_pause_and_resume_are_idempotent_and_only_forwarded_once(
    fake_clock: FakeClock,
) -> None:
    clock = backtest()
    processor = Recorder("p")
    clock.add_processor(processor)
    async with clock:
        clock.pause_processor(processor)
        clock.pause_processor(processor)
        clock.resume_processor(processor)
        clock.resume_processor(processor)
    assert processor.calls == ["start@0", "pause", "resume", "stop"]


# -- changes from inside a tick --------------------------------------------------------------


async def test_a_processor_added_inside_a_tick_is_ticked_from_the_next_tick(
    fake_clock: FakeClock,
) -> None:
    clock = backtest()
    late = Recorder("late")
    adder = Recorder("adder", at(3.0, lambda: clock.add_processor(late)))
    clock.add_processor(adder)
    async with clock:
        await clock.run()
    assert late.ticks == [4.0, 5.0]
    assert late.calls == ["start@3", "stop"]


async def test_a_processor_removed_inside_a_tick_is_never_ticked_again(
    fake_clock: FakeClock,
) -> None:
    clock = backtest()
    victim = Recorder("victim")
    remover = Recorder("remover", at(2.0, lambda: clock.remove_processor(victim)))
    clock.add_processor(remover)
    clock.add_processor(victim)  # comes after the remover in the same tick
    async with clock:
        await clock.run()
    assert remover.ticks == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert victim.ticks == [1.0]
    assert victim.calls == ["start@0", "stop"]
    assert clock.processors == [remover]


async def test_removing_itself_inside_its_own_tick_is_not_undone(fake_clock: FakeClock) -> None:
    clock = backtest()
    leaver = Recorder("leaver")
    leaver.action = at(2.0, lambda: clock.remove_processor(leaver))
    other = Recorder("other")
    clock.add_processor(leaver)
    clock.add_processor(other)
    async with clock:
        await clock.run()
    assert leaver.ticks == [1.0, 2.0]
    assert other.ticks == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert leaver not in clock.processors
    assert clock.get_processor_stats(leaver) is None
    assert leaver.state.successful_count == 2  # its last tick still counted, in its own state


async def test_pausing_itself_inside_its_own_tick_is_not_undone(fake_clock: FakeClock) -> None:
    clock = backtest()
    pauser = Recorder("pauser")
    pauser.action = at(2.0, lambda: clock.pause_processor(pauser))
    clock.add_processor(pauser)
    async with clock:
        await clock.run_til(4.0)
        assert clock.is_paused(pauser)
        await clock.run()
    assert pauser.ticks == [1.0, 2.0]
    stats = clock.get_processor_stats(pauser)
    assert stats is not None and stats["is_paused"]


async def test_resume_inside_a_tick_applies_from_the_next_tick(fake_clock: FakeClock) -> None:
    clock = backtest()
    sleeper = Recorder("sleeper")
    waker = Recorder("waker", at(3.0, lambda: clock.resume_processor(sleeper)))
    clock.add_processor(sleeper)  # before the waker, so it is not due again in tick 3
    clock.add_processor(waker)
    clock.pause_processor(sleeper)
    async with clock:
        await clock.run()
    assert sleeper.ticks == [4.0, 5.0]


async def test_remove_and_readd_in_one_tick_ticks_once_per_tick(fake_clock: FakeClock) -> None:
    clock = backtest()
    phoenix = Recorder("phoenix")

    def cycle() -> None:
        clock.remove_processor(phoenix)
        clock.add_processor(phoenix)

    clock.add_processor(Recorder("cycler", at(2.0, cycle)))
    clock.add_processor(phoenix)
    async with clock:
        await clock.run()
    assert phoenix.ticks == [1.0, 3.0, 4.0, 5.0]
    assert phoenix.calls == ["start@0", "stop", "start@2", "stop"]


async def test_tick_event_lists_the_processors_that_were_ticked(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=3.0)
    first, second = Recorder("first"), Recorder("second")
    first.action = at(2.0, lambda: clock.pause_processor(second))
    clock.add_processor(first)
    clock.add_processor(second)
    events: list[ClockTickEvent] = []
    clock.subscribe(ClockTickEvent, events.append)
    async with clock:
        await clock.run()
    assert [(e.timestamp, e.tick_counter, e.processors) for e in events] == [
        (1.0, 1, [first, second]),
        (2.0, 2, [first]),
        (3.0, 3, [first]),
    ]


# -- registry errors ------------------------------------------------------------------------


async def test_registry_errors_are_precise(fake_clock: FakeClock) -> None:
    clock, other_clock = backtest(), backtest()
    processor = Recorder("p")
    clock.add_processor(processor)
    with pytest.raises(ClockError, match="already registered with this clock"):
        clock.add_processor(processor)
    with pytest.raises(ClockError, match="another clock"):
        other_clock.add_processor(processor)
    with pytest.raises(TypeError, match="TickProcessor"):
        clock.add_processor(object())  # type: ignore[arg-type]
    stranger = Recorder("stranger")
    for method in (clock.remove_processor, clock.pause_processor, clock.resume_processor):
        with pytest.raises(ClockError, match="not registered"):
            method(stranger)
    clock.remove_processor(processor)
    other_clock.add_processor(processor)  # free again once removed
    assert other_clock.processors == [processor]


async def test_a_processor_that_fails_to_start_is_not_registered(fake_clock: FakeClock) -> None:
    class WontStart(Recorder):
        def start(self, timestamp: float) -> None:
            raise OSError("no port")

    clock = backtest()
    async with clock:
        with pytest.raises(ClockError, match="Failed to start processor") as caught:
            clock.add_processor(WontStart("w"))
        assert isinstance(caught.value.__cause__, OSError)
        assert clock.processors == []


async def test_enter_unwinds_started_processors_when_one_fails_to_start(
    fake_clock: FakeClock,
) -> None:
    class WontStart(Recorder):
        def start(self, timestamp: float) -> None:
            raise OSError("no port")

    clock = backtest()
    good = Recorder("good")
    clock.add_processor(good)
    clock.add_processor(WontStart("bad"))
    with pytest.raises(ClockError, match="Failed to start processor"):
        async with clock:
            pytest.fail("the body must not run")
    assert good.calls == ["start@0", "stop"]
    assert not clock.is_in_context


# -- lifecycle: stop events and shutdown ----------------------------------------------------


async def test_stop_event_is_sent_when_the_body_raises(fake_clock: FakeClock) -> None:
    clock = backtest()
    processor = Recorder("p")
    clock.add_processor(processor)
    events: list[object] = []
    clock.subscribe(ClockStartEvent, events.append)
    clock.subscribe(ClockStopEvent, events.append)
    failure = RuntimeError("body failed")
    with pytest.raises(RuntimeError) as caught:
        async with clock:
            await clock.step(2)
            raise failure
    assert caught.value is failure
    start, stop = events
    assert start == ClockStartEvent(timestamp=0.0, mode=ClockMode.BACKTEST, tick_size=1.0)
    assert isinstance(stop, ClockStopEvent)
    assert (stop.timestamp, stop.total_ticks, stop.error) == (2.0, 2, failure)
    # final_states (0.8.3): a copy of each state after the processors were stopped.
    assert list(stop.final_states) == [processor]
    final = stop.final_states[processor]
    assert final is not processor.state
    assert (final.is_active, final.successful_count, final.last_timestamp) == (False, 2, 2.0)
    assert processor.calls == ["start@0", "stop"]


class SlowCleanup(Recorder):
    """Has an ``await_cleanup`` that takes ``seconds`` of loop time."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds
        self.cleanup_cancelled = False

    async def await_cleanup(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cleanup_cancelled = True
            raise


async def test_shutdown_honours_its_timeout(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock = backtest()
    stuck = SlowCleanup("stuck", 100.0)
    clock.add_processor(stuck)
    stops: list[ClockStopEvent] = []
    clock.subscribe(ClockStopEvent, stops.append)
    loop = asyncio.get_running_loop()
    async with clock:
        await clock.step()
        began = loop.time()
        await clock.shutdown(timeout=2.0)
        assert loop.time() - began == 2.0
        assert stuck.cleanup_cancelled
        assert "did not finish within the shutdown timeout" in caplog.text
        with pytest.raises(ClockError, match="shut down"):
            await clock.run()
        await clock.shutdown(timeout=2.0)  # already shut down: nothing to do
    assert len(stops) == 1  # not sent again on exit
    assert stuck.calls == ["start@0", "stop"]


async def test_shutdown_waits_for_cleanup_that_fits_in_the_timeout(fake_clock: FakeClock) -> None:
    clock = backtest()
    quick, removed = SlowCleanup("quick", 1.5), SlowCleanup("removed", 0.5)
    clock.add_processor(quick)
    clock.add_processor(removed)
    loop = asyncio.get_running_loop()
    async with clock:
        clock.remove_processor(removed)  # its cleanup is still awaited by the clock
        began = loop.time()
        await clock.shutdown(timeout=10.0)
        assert loop.time() - began == 1.5
    assert not quick.cleanup_cancelled
    assert not removed.cleanup_cancelled


async def test_shutdown_from_another_task_stops_a_run_between_ticks(
    fake_clock: FakeClock,
) -> None:
    class Slow(Recorder):
        async def async_tick(self, timestamp: float) -> None:
            await asyncio.sleep(1.0)
            self.ticks.append(timestamp)

    clock = backtest(end_time=100.0, processor_timeout=5.0)
    processor = Slow("slow")
    clock.add_processor(processor)
    stops: list[ClockStopEvent] = []
    clock.subscribe(ClockStopEvent, stops.append)
    async with clock:
        run = asyncio.create_task(clock.run())
        await asyncio.sleep(3.5)
        await clock.shutdown(timeout=5.0)
        assert asyncio.get_running_loop().time() == 4.0  # the tick under way finished
        await run  # returned normally
    assert processor.ticks == [1.0, 2.0, 3.0, 4.0]
    assert [(s.timestamp, s.total_ticks) for s in stops] == [(4.0, 4)]


async def test_request_stop_from_a_tick_callback_ends_the_run_after_that_tick(
    fake_clock: FakeClock,
) -> None:
    clock = backtest(end_time=100.0)
    processor = Recorder("p")
    clock.add_processor(processor)

    def stop_at_seven(event: ClockTickEvent) -> None:
        if event.timestamp == 7.0:
            clock.request_stop()

    clock.subscribe(ClockTickEvent, stop_at_seven)
    async with clock:
        await clock.run()
        assert clock.current_timestamp == 7.0
        await clock.step()  # a new run starts afresh
    assert processor.ticks == [float(t) for t in range(1, 9)]


async def test_shutdown_cancels_a_run_that_outlasts_its_timeout(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Stuck(Recorder):
        async def async_tick(self, timestamp: float) -> None:
            await asyncio.sleep(100.0)

    clock = backtest(end_time=10.0, processor_timeout=50.0)
    clock.add_processor(Stuck("stuck"))
    stops: list[ClockStopEvent] = []
    clock.subscribe(ClockStopEvent, stops.append)
    loop = asyncio.get_running_loop()
    async with clock:
        run = asyncio.create_task(clock.run())
        await asyncio.sleep(1.0)
        await clock.shutdown(timeout=2.0)
        assert loop.time() == 3.0
        with pytest.raises(asyncio.CancelledError):
            await run
        assert not clock.is_running
    assert "cancelling its task" in caplog.text
    assert [(s.timestamp, s.total_ticks) for s in stops] == [(1.0, 0)]
