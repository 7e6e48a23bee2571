"""NetworkProcessor fault matrix: whatever a check, hook, logger or caller does, the status stays
consistent, start_network/stop_network stay paired, and no task outlives stop() + await_cleanup().

Each scenario runs on its own FakeClock through ``run_scenario``, which afterwards collects
garbage and fails on any "Task was destroyed but it is pending" from asyncio.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from network_support import (
    CONNECTED,
    CONNECTING,
    DISCONNECTING,
    ERROR,
    NOT_CONNECTED,
    STOPPED,
    Scripted,
    assert_chain_consistent,
    assert_check_loop,
    assert_paired,
    hang,
    now,
    other_tasks,
    run_scenario,
    sleeping,
    swallowing_cancel,
    twin_delays,
)

from chronopype import NetworkProcessor, NetworkStatus
from chronopype_testing import FakeClock
from chronopype_testing._fixtures import _owned_timers


async def finish(processor: Scripted) -> None:
    """stop() + await_cleanup(), then the invariants every scenario must end with."""
    processor.stop()
    assert processor.network_status is STOPPED
    await processor.await_cleanup()
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    assert_paired(processor, settled=True)
    assert_chain_consistent(processor)
    assert processor.network_status is STOPPED


def error_records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and text in r.getMessage()]


# -- check faults -----------------------------------------------------------------------------


def test_check_keeps_raising(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(then=RuntimeError("down"))
        processor.start(0.0)
        await asyncio.sleep(130.0)
        assert processor.network_status is ERROR
        assert processor.times("check") == [0.0, 60.0, 120.0]
        assert processor.state.retry_count == 3
        assert processor.state.error_count == 3
        assert processor.state.consecutive_errors == 3
        assert len(error_records(caplog, "check_network() failed")) == 3
        await finish(processor)

    run_scenario(caplog, scenario)


def test_check_hangs(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[CONNECTED, hang])
        (first_wait,) = twin_delays(0, [1])
        processor.start(0.0)
        await asyncio.sleep(14.0)
        assert processor.network_status is CONNECTED  # the hanging check runs from CONNECTED
        await asyncio.sleep(1.5)
        assert processor.network_status is NOT_CONNECTED
        assert processor.times("stop_network") == [15.0]
        await asyncio.sleep(first_wait)
        assert processor.times("check") == [0.0, 10.0, 15.0 + first_wait]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


def test_check_swallows_the_timeout_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[swallowing_cancel(CONNECTED)], then=NOT_CONNECTED)
        processor.start(0.0)
        await asyncio.sleep(5.5)
        # It returned CONNECTED, but only after overrunning its bound: that is a timeout.
        assert processor.network_status is NOT_CONNECTED
        assert processor.count("start_network") == 0
        assert isinstance(processor.state.last_exception, TimeoutError)
        await finish(processor)

    run_scenario(caplog, scenario)


@pytest.mark.parametrize("action", ["pause", "stop"])
def test_check_swallows_cancellation_from_pause_or_stop(
    caplog: pytest.LogCaptureFixture, action: str
) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[swallowing_cancel(CONNECTED)])
        processor.start(0.0)
        await asyncio.sleep(2.0)
        getattr(processor, action)()
        expected = NOT_CONNECTED if action == "pause" else STOPPED
        assert processor.network_status is expected
        await asyncio.sleep(100.0)
        # The check returned CONNECTED after swallowing: the interrupted attempt is ignored.
        assert processor.network_status is expected
        assert processor.names() == ["check"]
        assert other_tasks() == set()
        assert_check_loop(processor, (0, 0))
        if action == "pause":
            processor.resume()
            await asyncio.sleep(1.0)
            assert processor.network_status is CONNECTED
            assert processor.times("check") == [0.0, 102.0]
        await finish(processor)

    run_scenario(caplog, scenario)


@pytest.mark.parametrize("bad", [None, "CONNECTED", 3, NetworkStatus.DISCONNECTING])
def test_check_returns_a_non_status(caplog: pytest.LogCaptureFixture, bad: object) -> None:
    async def scenario() -> None:
        async def returns_bad() -> object:
            return bad

        processor = Scripted(checks=[CONNECTED, returns_bad])
        processor.start(0.0)
        await asyncio.sleep(10.5)
        assert processor.network_status is ERROR
        assert processor.count("stop_network") == 1
        assert error_records(caplog, f"returned {bad!r}")
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 10.0, 70.0]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


# -- hook faults ------------------------------------------------------------------------------


def test_start_network_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        failure = ConnectionRefusedError("no pool")
        processor = Scripted(start_network=[failure])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        assert processor.network_status is ERROR
        assert processor.names() == [
            "check",
            "start_network",
            "stop_network",
            "stop_network done",
        ]
        assert processor.state.last_exception is failure
        (record,) = error_records(caplog, "start_network() failed")
        assert record.exc_info is not None and record.exc_info[1] is failure
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 60.0]
        assert processor.network_status is CONNECTED
        assert processor.state.retry_count == 0
        await finish(processor)

    run_scenario(caplog, scenario)


def test_start_network_hangs(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(start_network=[hang])
        processor.start(0.0)
        await asyncio.sleep(29.0)
        assert processor.network_status is CONNECTING
        await asyncio.sleep(2.0)
        assert processor.network_status is ERROR
        assert processor.times("stop_network") == [30.0]
        assert "hook_timeout=30.0" in str(processor.state.last_exception)
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 90.0]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


@pytest.mark.parametrize("action", ["pause", "stop"])
def test_start_network_swallows_cancellation(caplog: pytest.LogCaptureFixture, action: str) -> None:
    async def scenario() -> None:
        processor = Scripted(start_network=[swallowing_cancel(None)])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        getattr(processor, action)()
        await asyncio.sleep(1.0)
        assert processor.network_status is (NOT_CONNECTED if action == "pause" else STOPPED)
        assert processor.count("on_connected") == 0
        if action == "pause":
            processor.resume()
            await asyncio.sleep(1.0)
            assert [(e.name, e.at) for e in processor.events] == [
                ("check", 0.0),
                ("start_network", 0.0),
                ("start_network done", 1.0),  # swallowed the cancellation and returned
                ("check", 2.0),
                ("stop_network", 2.0),
                ("stop_network done", 2.0),
                ("start_network", 2.0),
                ("start_network done", 2.0),
                ("on_connected", 2.0),
            ]
            assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


def test_stop_network_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[CONNECTED, NOT_CONNECTED], stop_network=[OSError("gone")])
        (first_wait,) = twin_delays(0, [1])
        processor.start(0.0)
        await asyncio.sleep(10.5)
        assert processor.network_status is NOT_CONNECTED
        assert len(error_records(caplog, "stop_network() failed")) == 1
        await asyncio.sleep(first_wait)
        assert processor.network_status is CONNECTED
        assert processor.times("start_network") == [0.0, 10.0 + first_wait]
        await finish(processor)
        assert processor.count("stop_network") == 2

    run_scenario(caplog, scenario)


def test_stop_network_hangs_while_disconnecting(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[CONNECTED, NOT_CONNECTED], stop_network=[hang])
        processor.hook_timeout = 12.0
        (first_wait,) = twin_delays(0, [1])
        processor.start(0.0)
        await asyncio.sleep(21.0)
        assert processor.network_status is DISCONNECTING
        await asyncio.sleep(1.5)
        assert processor.network_status is NOT_CONNECTED
        await asyncio.sleep(first_wait)
        assert processor.times("check") == [0.0, 10.0, 22.0 + first_wait]
        await finish(processor)

    run_scenario(caplog, scenario)


def test_on_connected_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(on_connected=[KeyError("oops")])
        processor.start(0.0)
        await asyncio.sleep(15.0)
        assert processor.network_status is CONNECTED
        assert processor.times("check") == [0.0, 10.0]
        assert len(error_records(caplog, "on_connected() failed")) == 1
        await finish(processor)

    run_scenario(caplog, scenario)


def test_on_disconnected_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[CONNECTED, ERROR], on_disconnected=[KeyError("oops")])
        processor.start(0.0)
        await asyncio.sleep(10.5)
        assert processor.network_status is ERROR
        assert processor.times("stop_network") == [10.0]
        assert len(error_records(caplog, "on_disconnected() failed")) == 1
        await finish(processor)

    run_scenario(caplog, scenario)


def test_on_disconnected_raising_in_stop(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(on_disconnected=[KeyError("oops")])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        await finish(processor)
        assert len(error_records(caplog, "on_disconnected() failed")) == 1

    run_scenario(caplog, scenario)


def test_broken_logger_never_kills_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    class DefaultLogger(Scripted):
        @classmethod
        def logger(cls) -> logging.Logger:
            return super(Scripted, cls).logger()  # the base body: NotImplementedError

    async def scenario() -> None:
        processor = DefaultLogger(checks=[RuntimeError("a"), CONNECTED, RuntimeError("b")])
        processor.start(0.0)
        await asyncio.sleep(75.0)
        assert processor.times("check") == [0.0, 60.0, 70.0]
        assert processor.network_status is ERROR
        assert processor.count("stop_network") == 1
        await finish(processor)

    run_scenario(caplog, scenario)
    fallback = [r for r in caplog.records if r.name == "chronopype.processors.network"]
    assert sum("logger() failed" in r.getMessage() for r in fallback) == 1
    assert sum("check_network() failed" in r.getMessage() for r in fallback) == 2


# -- caller faults ----------------------------------------------------------------------------


def test_stop_without_a_running_loop(caplog: pytest.LogCaptureFixture) -> None:
    processor = Scripted()
    clock = FakeClock()

    async def connect() -> None:
        processor.start(0.0)
        await asyncio.sleep(1.0)
        assert processor.network_status is CONNECTED

    clock.run(connect())  # the runner cancels the sleeping loop task on exit
    processor.stop()
    assert processor.network_status is STOPPED
    assert processor.count("on_disconnected") == 1
    assert processor.count("stop_network") == 0
    processor.stop()

    async def cleanup() -> None:
        await processor.await_cleanup()
        assert processor.times("stop_network") == [1.0]
        await processor.await_cleanup()
        assert other_tasks() == set()
        assert_check_loop(processor, (0, 0))

    clock.run(cleanup())
    assert processor.count("stop_network") == 1
    assert processor.count("on_disconnected") == 1
    assert_paired(processor, settled=True)
    assert_chain_consistent(processor)
    gc.collect()
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


def test_stop_before_start_and_without_loop_is_harmless() -> None:
    processor = Scripted()
    processor.stop()
    processor.stop()
    assert processor.network_status is STOPPED
    assert processor.events == []
    assert processor.transitions == []
    FakeClock().run(processor.await_cleanup())
    assert processor.events == []


def test_resume_without_a_running_loop_raises_clearly() -> None:
    processor = Scripted()
    clock = FakeClock()

    async def start_and_pause() -> None:
        processor.start(0.0)
        await asyncio.sleep(1.0)
        processor.pause()

    clock.run(start_and_pause())
    with pytest.raises(RuntimeError, match=r"resume\(\) needs a running asyncio event loop"):
        processor.resume()
    assert processor.network_status is CONNECTED
    processor.stop()
    clock.run(processor.await_cleanup())
    assert_paired(processor, settled=True)


def test_start_and_stop_twice(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted()
        for round_start in (0.0, 50.0):
            await asyncio.sleep(round_start - now())
            processor.start(round_start)
            processor.start(round_start)
            await asyncio.sleep(15.0)
            assert processor.network_status is CONNECTED
            processor.stop()
            processor.stop()
            await processor.await_cleanup()
            await processor.await_cleanup()
            assert other_tasks() == set()
            assert_check_loop(processor, (0, 0))
        assert processor.times("check") == [0.0, 10.0, 50.0, 60.0]
        assert processor.times("start_network") == [0.0, 50.0]
        assert processor.times("stop_network") == [15.0, 65.0]
        assert processor.count("on_disconnected") == 2
        await finish(processor)

    run_scenario(caplog, scenario)


def test_restart_before_cleanup_runs_stop_network_first(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(stop_network=[sleeping(2.0)])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        processor.stop()
        processor.start(1.0)  # no await_cleanup() in between
        await asyncio.sleep(5.0)
        assert [(e.name, e.at) for e in processor.events][5:] == [
            ("stop_network", 1.0),
            ("stop_network done", 3.0),
            ("check", 3.0),
            ("start_network", 3.0),
            ("start_network done", 3.0),
            ("on_connected", 3.0),
        ]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


@pytest.mark.parametrize("yield_between", [False, True])
def test_a_thousand_pause_resume_cycles(
    caplog: pytest.LogCaptureFixture, yield_between: bool
) -> None:
    async def scenario() -> None:
        processor = Scripted()
        processor.start(0.0)
        await asyncio.sleep(5.0)
        for _ in range(1000):
            processor.pause()
            assert processor.network_status is CONNECTED
            processor.resume()
            if yield_between:
                await asyncio.sleep(0)
        assert now() == 5.0
        await asyncio.sleep(12.0)
        assert processor.network_status is CONNECTED
        assert other_tasks() == set()  # idle: no task, exactly one timer survives
        assert_check_loop(processor, (0, 1))
        checks = processor.times("check")
        assert checks[0] == 0.0
        assert checks[-2:] == [5.0, 15.0]
        assert set(checks[1:-1]) <= {5.0}
        assert processor.count("start_network") == 1
        assert processor.count("stop_network") == 0
        await finish(processor)

    run_scenario(caplog, scenario)


def test_pause_resume_cycles_while_connecting(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(then=sleeping(0.5, NOT_CONNECTED))
        processor.start(0.0)
        await asyncio.sleep(0.25)
        for _ in range(1000):
            processor.pause()
            assert processor.network_status is NOT_CONNECTED
            processor.resume()
            await asyncio.sleep(0)
            assert processor.network_status in (NOT_CONNECTED, CONNECTING)
        assert len(other_tasks()) == 1  # the resumed attempt, its check in flight
        assert_check_loop(processor, (1, 0))
        await asyncio.sleep(0.75)
        assert processor.network_status is NOT_CONNECTED
        assert processor.state.retry_count == 1
        await finish(processor)

    run_scenario(caplog, scenario)


# -- the thundering herd ----------------------------------------------------------------------


def test_a_hundred_processors_failing_together_spread_out(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        fleet = [Scripted(checks=[NOT_CONNECTED, NOT_CONNECTED], seed=seed) for seed in range(100)]
        for processor in fleet:
            processor.start(0.0)
        await asyncio.sleep(4.0)
        checks = [processor.times("check") for processor in fleet]
        assert all(len(times) == 3 and times[0] == 0.0 for times in checks)
        third = [times[2] for times in checks]
        assert len(set(third)) == 100
        second_waits = [times[2] - times[1] for times in checks]
        assert all(1.8 <= wait <= 2.2 for wait in second_waits)
        covered = max(second_waits) - min(second_waits)
        assert covered >= 0.8 * 0.4, f"third checks spread over only {covered:.3f} s"
        for processor in fleet:
            processor.stop()
        for processor in fleet:
            await processor.await_cleanup()
        assert other_tasks() == set()
        for processor in fleet:
            assert_check_loop(processor, (0, 0))
        for processor in fleet:
            assert_paired(processor, settled=True)

    run_scenario(caplog, scenario)


# -- the doorway ------------------------------------------------------------------------------


def test_every_change_passes_the_doorway_in_a_chaotic_run(caplog: pytest.LogCaptureFixture) -> None:
    class Spy(Scripted):
        def __init__(self) -> None:
            super().__init__(
                checks=[
                    CONNECTED,
                    RuntimeError("x"),
                    hang,
                    ERROR,
                    CONNECTED,
                    None,
                    CONNECTED,
                    NOT_CONNECTED,
                ],
                start_network=[OSError("first"), None, hang],
                stop_network=[hang],
            )
            self.doorway: list[tuple[NetworkStatus, NetworkStatus]] = []

        def _set_status(self, new: NetworkStatus) -> None:
            if new is not self.network_status:
                self.doorway.append((self.network_status, new))
            super()._set_status(new)

    async def scenario() -> None:
        processor = Spy()
        processor.hook_timeout = 3.0
        processor.start(0.0)
        for _ in range(40):
            await asyncio.sleep(7.0)
            if processor.network_status is CONNECTING:
                processor.pause()
                processor.resume()
        await finish(processor)
        assert processor.doorway == processor.transitions
        assert {new for _, new in processor.transitions} == set(NetworkStatus)

    run_scenario(caplog, scenario)


def test_status_changes_only_through_set_status() -> None:
    # Belt and braces for the doorway: no other code in the module assigns the status.
    import inspect

    from chronopype.processors import network

    source = inspect.getsource(network)
    assignments = [line.strip() for line in source.splitlines() if "self._status =" in line]
    assert assignments == ["self._status = NetworkStatus.STOPPED", "self._status = new"]
    assert NetworkProcessor._set_status.__doc__


def test_unexpected_error_in_the_loop_is_logged_and_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenBackoff(Scripted):
        def backoff_delay(self, n: int) -> float:
            raise ArithmeticError(f"no delay for {n}")

    async def scenario() -> None:
        processor = BrokenBackoff(checks=[NOT_CONNECTED, NOT_CONNECTED])
        processor.start(0.0)
        await asyncio.sleep(130.0)
        assert processor.times("check") == [0.0, 60.0, 120.0]
        assert processor.network_status is CONNECTED
        first, _ = error_records(caplog, "the network check loop failed")
        assert first.exc_info is not None and isinstance(first.exc_info[1], ArithmeticError)
        assert processor.state.error_count == 2
        # The defect is caught before the status settles: CONNECTING -> ERROR, never the
        # illegal NOT_CONNECTED -> ERROR (machine.defect_status).
        assert processor.transitions[1:4] == [
            (NOT_CONNECTED, CONNECTING),
            (CONNECTING, ERROR),
            (ERROR, CONNECTING),
        ]
        assert [d.kind for d in processor.recorded_defects] == ["loop_error", "loop_error"]
        assert [d.at for d in processor.recorded_defects] == [0.0, 60.0]
        await finish(processor)

    run_scenario(caplog, scenario)


def test_listener_stopping_the_processor_mid_transition(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted()

        def stop_when_connected(old: NetworkStatus, new: NetworkStatus) -> None:
            if new is CONNECTED:
                processor.stop()

        processor.add_status_listener(stop_when_connected)
        processor.start(0.0)
        await asyncio.sleep(1.0)
        assert processor.network_status is STOPPED
        # on_connected is skipped: the processor was stopped before it could run.
        assert processor.names() == [
            "check",
            "start_network",
            "start_network done",
            "on_disconnected",
            "stop_network",
            "stop_network done",
        ]
        assert processor.times("stop_network") == [0.0]
        await finish(processor)

    run_scenario(caplog, scenario)


def test_stop_while_the_idle_timer_sits_in_a_stopped_event_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor = Scripted()
    first_loop = FakeClock().new_event_loop()

    async def connect() -> None:
        processor.start(0.0)
        await asyncio.sleep(1.0)

    try:
        first_loop.run_until_complete(connect())  # leaves the idle timer pending, no task
        (idle_timer,) = _owned_timers(processor, first_loop)
        assert asyncio.all_tasks(first_loop) == set()
        assert isinstance(idle_timer, asyncio.TimerHandle) and idle_timer.when() == 10.0
        processor.stop()  # no running loop: the timer is cancelled all the same
        assert processor.network_status is STOPPED
        assert idle_timer.cancelled()
        assert not processor.check_loop_active

        async def cleanup() -> None:
            await processor.await_cleanup()
            assert now() == 0.0  # nothing of the other loop to wait for

        FakeClock().run(cleanup())
        assert processor.count("stop_network") == 1
        assert_paired(processor, settled=True)
        # The first loop runs again, past the cancelled timer's deadline: no attempt starts.
        first_loop.run_until_complete(asyncio.sleep(30.0))
        assert processor.times("check") == [0.0]
        assert asyncio.all_tasks(first_loop) == set()
        assert _owned_timers(processor, first_loop) == []
    finally:
        first_loop.close()
    gc.collect()
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


def test_stop_while_the_attempt_task_sits_in_a_stopped_event_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor = Scripted(start_network=[hang])
    first_loop = FakeClock().new_event_loop()

    async def connect() -> None:
        processor.start(0.0)
        await asyncio.sleep(1.0)

    try:
        first_loop.run_until_complete(connect())  # leaves the attempt task in start_network()
        (attempt,) = asyncio.all_tasks(first_loop)
        assert _owned_timers(processor, first_loop) == []
        processor.stop()  # no running loop; the cancellation waits for first_loop to run again
        assert processor.network_status is STOPPED
        assert not processor.check_loop_active

        async def cleanup() -> None:
            await processor.await_cleanup()
            assert now() == 0.0  # did not wait for the other loop's task

        FakeClock().run(cleanup())
        assert processor.count("stop_network") == 1
        assert_paired(processor, settled=True)
        first_loop.run_until_complete(asyncio.wait((attempt,)))
        assert attempt.cancelled()
        assert processor.names() == ["check", "start_network", "stop_network", "stop_network done"]
        assert _owned_timers(processor, first_loop) == []
    finally:
        first_loop.close()
    gc.collect()
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


def test_start_network_swallowing_its_timeout_still_counts_as_timed_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(start_network=[swallowing_cancel(None)])
        processor.hook_timeout = 4.0
        processor.start(0.0)
        await asyncio.sleep(5.0)
        assert processor.network_status is ERROR
        assert [(e.name, e.at) for e in processor.events] == [
            ("check", 0.0),
            ("start_network", 0.0),
            ("start_network done", 4.0),
            ("stop_network", 4.0),
            ("stop_network done", 4.0),
        ]
        assert "start_network() took longer than hook_timeout=4.0 s" in str(
            processor.state.last_exception
        )
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 64.0]
        await finish(processor)

    run_scenario(caplog, scenario)
