"""Issue 14: code written for chronopype 0.8.3 runs unchanged.

0.8.3's own suite runs from ``make test-compat`` (tests/compat/run_083_suite.py); these are
the downstream-style checks that belong in every ``make test``: 0.8.3's import paths, its
README's processor, a class-level eventspype subscriber (when eventspype is installed), and
the core without eventspype.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chronopype_testing import FakeClock

# 0.8.3's public API inventory: module -> names (from its __init__ files and docs/api).
INVENTORY_083 = {
    "chronopype": [
        "__version__", "BaseClock", "BacktestClock", "RealtimeClock", "ClockConfig",
        "ClockMode", "ClockStartEvent", "ClockTickEvent", "ClockStopEvent", "TickProcessor",
        "ProcessorState", "ProcessorStats", "NetworkProcessor", "NetworkStatus",
        "ClockRuntime", "ClockRuntimeConfig", "ClockError", "ClockContextError",
        "ClockRuntimeError", "ProcessorError", "ProcessorTimeoutError", "Time",
        "TimestampFormat",
    ],
    "chronopype.clocks": [
        "BaseClock", "BacktestClock", "RealtimeClock", "ClockMode", "ClockStartEvent",
        "ClockTickEvent", "ClockStopEvent", "ProcessorStats", "CLOCK_REGISTRY",
        "get_clock_class",
    ],
    "chronopype.clocks.base": [
        "BaseClock", "ClockStartEvent", "ClockTickEvent", "ClockStopEvent", "ProcessorStats",
    ],
    "chronopype.clocks.backtest": ["BacktestClock"],
    "chronopype.clocks.realtime": ["RealtimeClock"],
    "chronopype.clocks.config": ["ClockConfig"],
    "chronopype.clocks.modes": ["ClockMode"],
    "chronopype.processors": ["TickProcessor", "ProcessorState", "NetworkProcessor",
                              "NetworkStatus"],
    "chronopype.processors.base": ["TickProcessor"],
    "chronopype.processors.models": ["ProcessorState"],
    "chronopype.processors.network": ["NetworkProcessor", "NetworkStatus"],
    "chronopype.exceptions": ["ClockError", "ClockContextError", "ProcessorError",
                              "ProcessorTimeoutError", "ClockRuntimeError"],
    "chronopype.runtime": ["ClockRuntime", "ClockRuntimeConfig"],
    "chronopype.runtime.clock_runtime": ["ClockRuntime"],
    "chronopype.runtime.config": ["ClockRuntimeConfig"],
    "chronopype.time": ["Time", "TimestampFormat"],
}


@pytest.mark.parametrize("module", sorted(INVENTORY_083))
def test_every_0_8_3_import_path_and_name_exists(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in INVENTORY_083[module] if not hasattr(imported, name)]
    assert missing == []


def test_the_exception_hierarchy_is_0_8_3s() -> None:
    from chronopype.exceptions import (
        ClockContextError,
        ClockError,
        ClockRuntimeError,
        ProcessorError,
        ProcessorTimeoutError,
    )

    assert issubclass(ClockContextError, ClockError)
    assert issubclass(ProcessorError, ClockError)
    assert issubclass(ProcessorTimeoutError, ProcessorError)
    assert issubclass(ProcessorTimeoutError, TimeoutError)  # ours, in addition
    assert issubclass(ClockRuntimeError, ClockError)
    assert str(ProcessorTimeoutError("took too long")) == "took too long"


async def test_the_0_8_3_readme_processor_runs_unchanged(
    fake_clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Verbatim from 0.8.3's README (its main() body, awaited here on the fake clock).
    from chronopype import ClockConfig, ClockMode
    from chronopype.clocks import RealtimeClock
    from chronopype.processors import TickProcessor

    class MyProcessor(TickProcessor):
        async def async_tick(self, timestamp: float) -> None:
            print(f"Processing at {timestamp}")

    async def main() -> None:
        config = ClockConfig(
            clock_mode=ClockMode.REALTIME,
            start_time=time.time(),
            tick_size=1.0,  # 1 second ticks
        )

        async with RealtimeClock(config) as clock:
            clock.add_processor(MyProcessor())
            await clock.run_til(config.start_time + 10)

    began = time.time()
    await main()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Processing at {began + k * 1.0}" for k in range(1, 11)]
    assert fake_clock.monotonic() == pytest.approx(10.0, abs=1e-9)


async def test_a_class_level_eventspype_subscriber_runs_unchanged(fake_clock: FakeClock) -> None:
    pytest.importorskip("eventspype", reason="eventspype is the optional 0.8.3 extra (3.13+)")
    from eventspype.sub.multisubscriber import MultiSubscriber
    from eventspype.sub.subscription import PublicationSubscription

    from chronopype import BacktestClock, BaseClock, ClockConfig, ClockMode, TickProcessor
    from chronopype.clocks.base import ClockStartEvent, ClockStopEvent, ClockTickEvent

    class Strategy(TickProcessor):
        def tick(self, timestamp: float) -> None:
            pass

    # A downstream subscriber written against 0.8.3: subscriptions at class level.
    class ClockWatcher(MultiSubscriber):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[str, float]] = []
            self.final_states: dict[object, object] = {}

        def logger(self) -> logging.Logger:
            return logging.getLogger("watcher")

        def on_start(self, event: ClockStartEvent) -> None:
            self.seen.append(("start", event.timestamp))

        def on_tick(self, event: ClockTickEvent) -> None:
            self.seen.append(("tick", event.timestamp))

        def on_stop(self, event: ClockStopEvent) -> None:
            self.seen.append(("stop", event.timestamp))
            self.final_states = dict(event.final_states)

        # A downstream subscriber written against 0.8.3: subscriptions at class level.
        start_subscription = PublicationSubscription(
            BaseClock, BaseClock.start_publication, on_start, callback_with_event_info=False
        )
        tick_subscription = PublicationSubscription(
            BaseClock, BaseClock.tick_publication, on_tick, callback_with_event_info=False
        )
        stop_subscription = PublicationSubscription(
            BaseClock, BaseClock.stop_publication, on_stop, callback_with_event_info=False
        )

    clock = BacktestClock(
        ClockConfig(clock_mode=ClockMode.BACKTEST, start_time=100.0, end_time=103.0)
    )
    strategy = Strategy()
    clock.add_processor(strategy)
    watcher = ClockWatcher()
    for subscription in (
        ClockWatcher.start_subscription,
        ClockWatcher.tick_subscription,
        ClockWatcher.stop_subscription,
    ):
        watcher.add_subscription(subscription, clock)
    callbacks: list[float] = []

    def on_tick(event: ClockTickEvent) -> None:
        callbacks.append(event.timestamp)

    clock.add_subscriber_with_callback(clock.tick_publication, on_tick, with_event_info=False)
    async with clock:
        await clock.run()
    assert watcher.seen == [
        ("start", 100.0), ("tick", 101.0), ("tick", 102.0), ("tick", 103.0), ("stop", 103.0),
    ]
    assert callbacks == [101.0, 102.0, 103.0]
    assert list(watcher.final_states) == [strategy]
    clock.remove_subscriber_with_callback(clock.tick_publication, on_tick)
    async with clock:
        await clock.run()
    assert callbacks == [101.0, 102.0, 103.0]


def test_without_eventspype_the_core_imports_and_subscribe_works(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["eventspype"] = None  # as if it were not installed
        from chronopype import BacktestClock, ClockConfig, ClockMode, ClockTickEvent
        from chronopype.clocks._publishing import EVENTSPYPE_AVAILABLE
        assert not EVENTSPYPE_AVAILABLE
        clock = BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=3.0))
        seen = []
        clock.subscribe(ClockTickEvent, lambda event: seen.append(event.timestamp))
        async def main():
            async with clock:
                await clock.run()
        asyncio.run(main())
        assert seen == [1.0, 2.0, 3.0], seen
        assert not hasattr(clock, "add_subscriber_with_callback")
        print("ok")
        """
    )
    repo = Path(__file__).resolve().parent.parent
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(repo)}, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


def test_clock_runtime_backtest_til_never_goes_backwards() -> None:
    import asyncio

    from chronopype import ClockConfig, ClockMode, ClockRuntime, ClockRuntimeConfig

    async def main() -> list[float]:
        runtime = ClockRuntime(
            ClockRuntimeConfig(
                clock_config=ClockConfig(ClockMode.BACKTEST, start_time=0.0, end_time=10.0)
            )
        )
        stamps = []
        await runtime.backtest_til(5.0)  # outside a context: only the timestamp moves
        stamps.append(runtime.clock.current_timestamp)
        await runtime.backtest_til(2.0)  # earlier: nothing happens
        stamps.append(runtime.clock.current_timestamp)
        async with runtime:
            await runtime.backtest_til(4.0)
            await runtime.backtest_til(3.0)
            stamps.append(runtime.clock.current_timestamp)
        return stamps

    assert asyncio.run(main()) == [5.0, 5.0, 4.0]


async def test_clock_runtime_stop_lets_the_callers_cancellation_through(
    fake_clock: FakeClock,
) -> None:
    import asyncio

    from chronopype import ClockConfig, ClockMode, ClockRuntime, ClockRuntimeConfig

    runtime = ClockRuntime(ClockRuntimeConfig(clock_config=ClockConfig(ClockMode.REALTIME)))
    await runtime.start()
    assert runtime.is_running

    async def stopper() -> None:
        await runtime.stop(timeout=30.0)

    # Cancel stop() itself while it waits for the run task it cancelled: 0.8.3 swallowed that
    # cancellation (contextlib.suppress(CancelledError)); it must reach the caller.
    stopping = asyncio.create_task(stopper())
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert not runtime.clock.is_in_context  # the context was still left
    assert not runtime.is_running


def test_configs_have_0_8_3s_pydantic_style_helpers() -> None:
    import dataclasses

    from chronopype import ClockConfig, ClockMode, ClockRuntimeConfig

    config = ClockConfig(clock_mode=ClockMode.BACKTEST, end_time=10.0)
    copy = config.model_copy(update={"tick_size": 2.0})
    assert (copy.tick_size, config.tick_size) == (2.0, 1.0)
    with pytest.raises(ValueError, match="tick_size"):
        config.model_copy(update={"tick_size": 0})  # copies are validated
    dumped = config.model_dump()
    assert dumped["clock_mode"] is ClockMode.BACKTEST and dumped["end_time"] == 10.0
    assert ClockConfig.model_validate(dumped) == config
    assert ClockConfig.model_validate({**dumped, "clock_mode": "BACKTEST"}) == config
    assert ClockConfig.model_validate(config) is config
    with pytest.raises(TypeError, match="takes a dict"):
        ClockConfig.model_validate([("clock_mode", ClockMode.BACKTEST)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tick_size = 2.0  # type: ignore[misc]

    runtime = ClockRuntimeConfig(clock_config=config, thread_stop_timeout_seconds=1.5)
    assert runtime.model_dump()["clock_config"] == dumped
    assert ClockRuntimeConfig.model_validate(runtime.model_dump()) == runtime
    assert (runtime.clock_mode, runtime.end_time) == (ClockMode.BACKTEST, 10.0)
    with pytest.raises(ValueError, match="clock_poll_interval_seconds"):
        runtime.model_copy(update={"clock_poll_interval_seconds": 0.0})


def test_clock_runtime_threaded_mode_starts_and_stops_its_clock() -> None:
    import threading

    from chronopype import ClockConfig, ClockMode, ClockRuntime, ClockRuntimeConfig, TickProcessor

    ticked = threading.Event()

    class Signals(TickProcessor):
        def tick(self, timestamp: float) -> None:
            ticked.set()

    runtime = ClockRuntime(
        ClockRuntimeConfig(clock_config=ClockConfig(ClockMode.REALTIME, tick_size=0.01))
    )
    processor = Signals()
    runtime.clock.add_processor(processor)
    runtime.start_threaded()
    try:
        assert runtime.get_clock_loop() is not None
        assert runtime.is_running
        assert ticked.wait(timeout=10.0)  # waits for the thread only
    finally:
        runtime.stop_threaded()
    assert not runtime.is_running
    assert runtime.get_clock_loop() is None
    assert not processor.state.is_active and not runtime.clock.is_in_context
    runtime.stop_threaded()  # twice: nothing to do
