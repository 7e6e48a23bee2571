"""The two ways a check runs: finished without suspending (no timer armed) or suspended (bounded
from its start), plus checks that are not coroutines, on virtual time."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable

import pytest
from network_support import (
    CONNECTED,
    ERROR,
    LOGGER_NAME,
    NOT_CONNECTED,
    Scripted,
    assert_check_loop,
    now,
    other_tasks,
    twin_delays,
)

from chronopype import NetworkStatus
from chronopype_testing import FakeClock

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def stop(processor: Scripted) -> None:
    processor.stop()
    await processor.await_cleanup()
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))


async def test_a_check_that_never_suspends_arms_no_timer(fake_clock: FakeClock) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    original_call_at = loop.call_at

    def recording_call_at(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
        armed.append(when)
        return original_call_at(when, *args, **kwargs)  # type: ignore[arg-type]

    loop.call_at = recording_call_at  # type: ignore[method-assign]
    try:
        processor = Scripted()
        processor.start(0.0)
        await asyncio.sleep(25.0)
    finally:
        del loop.call_at
    assert processor.times("check") == [0.0, 10.0, 20.0]
    # Only the waits between checks (and this test's own sleep): no 5 s check timeout.
    assert sorted(set(armed) - {25.0}) == [10.0, 20.0, 30.0]
    assert list(processor.state.execution_times) == [0.0, 0.0, 0.0]
    await stop(processor)


async def test_a_check_that_suspends_is_timed_from_its_start(fake_clock: FakeClock) -> None:
    async def slow_connected() -> NetworkStatus:
        await asyncio.sleep(1.5)
        await asyncio.sleep(0)
        await asyncio.sleep(1.0)
        return CONNECTED

    processor = Scripted([slow_connected])
    processor.start(0.0)
    await asyncio.sleep(13.0)
    assert processor.network_status is CONNECTED
    assert processor.times("start_network") == [2.5]
    assert processor.times("check") == [0.0, 12.5]
    assert list(processor.state.execution_times) == [2.5, 0.0]
    await stop(processor)


async def test_a_check_suspending_past_its_timeout_times_out_exactly(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    checked_out: list[BaseException] = []

    async def three_slow_steps() -> NetworkStatus:
        try:
            for _ in range(3):
                await asyncio.sleep(2.0)
        except asyncio.CancelledError as cancelled:
            checked_out.append(cancelled)
            raise
        return CONNECTED

    processor = Scripted([three_slow_steps])
    processor.start(0.0)
    (first_wait,) = twin_delays(0, [1])
    await asyncio.sleep(5.0 + first_wait + 0.5)
    assert processor.times("check") == [0.0, 5.0 + first_wait]
    assert len(checked_out) == 1  # the cancellation reached the check's own await
    assert processor.state.retry_count == 0  # the second check connected
    assert processor.state.error_count == 1
    assert "check_network() took longer than check_network_timeout=5.0 s" in str(
        processor.state.last_exception
    )
    warnings = [r for r in caplog.records if r.name == LOGGER_NAME and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Scripted: check_network() took longer than check_network_timeout=5.0 s: timed out"
    ]
    await stop(processor)


async def test_pause_reaches_a_check_suspended_after_its_first_step(
    fake_clock: FakeClock,
) -> None:
    seen: list[str] = []

    async def two_steps() -> NetworkStatus:
        await asyncio.sleep(1.0)
        try:
            await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            seen.append(f"cancelled at {now()}")
            raise
        return CONNECTED

    processor = Scripted([two_steps])
    processor.start(0.0)
    await asyncio.sleep(1.5)
    processor.pause()
    await asyncio.sleep(0)
    assert seen == ["cancelled at 1.5"]
    assert processor.network_status is NOT_CONNECTED
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    processor.resume()
    await asyncio.sleep(0)
    assert processor.network_status is CONNECTED
    assert processor.times("check") == [0.0, 1.5]
    await stop(processor)


class AwaitableCheck(Scripted):
    """check_network is a plain method returning some other awaitable."""

    def __init__(self, make: object) -> None:
        super().__init__()
        self.make = make

    def check_network(self) -> Awaitable[NetworkStatus]:  # type: ignore[override]
        self._record("check")
        return self.make()  # type: ignore[operator, no-any-return]


async def test_a_future_returned_by_check_network_is_awaited_and_bounded(
    fake_clock: FakeClock,
) -> None:
    loop = asyncio.get_running_loop()

    def resolves_in_two_seconds() -> asyncio.Future[NetworkStatus]:
        future: asyncio.Future[NetworkStatus] = loop.create_future()
        loop.call_later(2.0, future.set_result, CONNECTED)
        return future

    processor = AwaitableCheck(resolves_in_two_seconds)
    processor.start(0.0)
    await asyncio.sleep(2.5)
    assert processor.network_status is CONNECTED
    assert list(processor.state.execution_times) == [2.0]
    processor.make = loop.create_future  # never resolves: the timeout cancels it at 17.0
    await asyncio.sleep(15.0)
    assert processor.times("check") == [0.0, 12.0]
    assert processor.network_status is NOT_CONNECTED
    assert processor.state.retry_count == 1
    await stop(processor)


async def test_a_check_returning_a_non_awaitable_is_an_error(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    processor = AwaitableCheck(lambda: CONNECTED)
    processor.start(0.0)
    await asyncio.sleep(0)
    assert processor.network_status is ERROR
    assert isinstance(processor.state.last_exception, TypeError)
    assert "can't be used in 'await' expression" in str(processor.state.last_exception)
    await asyncio.sleep(60.0)
    assert processor.times("check") == [0.0, 60.0]
    await stop(processor)


async def test_checks_share_the_loop_task_context_and_leave_the_caller_alone(
    fake_clock: FakeClock,
) -> None:
    seen: list[str] = []

    async def remembers() -> NetworkStatus:
        seen.append(request_id.get())
        request_id.set(f"set by the check at {now()}")
        await asyncio.sleep(0.5)
        return CONNECTED

    processor = Scripted(then=remembers)
    token = request_id.set("caller")
    processor.start(0.0)
    request_id.reset(token)
    await asyncio.sleep(21.25)
    assert seen == ["caller", "set by the check at 0.0", "set by the check at 10.5"]
    assert request_id.get() == "-"
    await stop(processor)


# -- the timer-driven loop: what starts an attempt ---------------------------------------------


async def test_pausing_from_a_listener_inside_a_timer_started_attempt(
    fake_clock: FakeClock,
) -> None:
    """pause() reaches an attempt its idle timer started, even from inside it (on 3.12+ that
    attempt starts eagerly, before its task is known): the loop ends there, and resume()
    starts exactly one new one."""
    processor = Scripted(checks=[NOT_CONNECTED])
    (first_wait,) = twin_delays(0, [1])
    paused_at: list[float] = []

    def pause_on_second_connecting(old: NetworkStatus, new: NetworkStatus) -> None:
        if new is NetworkStatus.CONNECTING and processor.times("check"):
            paused_at.append(now())
            assert processor.check_loop_active  # the attempt is the running loop
            processor.pause()
            assert not processor.check_loop_active

    processor.start(0.0)
    await asyncio.sleep(0.5)
    assert_check_loop(processor, (0, 1))
    processor.add_status_listener(pause_on_second_connecting)
    await asyncio.sleep(100.0)
    assert paused_at == [first_wait]
    assert processor.times("check") == [0.0]  # the interrupted attempt never checked
    assert processor.network_status is NOT_CONNECTED
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    processor.resume()  # the listener pauses again at once: CONNECTING comes first
    assert_check_loop(processor, (1, 0))
    await asyncio.sleep(0)
    assert paused_at == [first_wait, 100.5]
    assert_check_loop(processor, (0, 0))
    await stop(processor)


@pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="eager tasks are new in Python 3.12"
)
async def test_attempts_under_an_eager_task_factory(fake_clock: FakeClock) -> None:
    """An eager factory starts each attempt inside the idle timer's callback: it must not run
    in the attempts' own context (entering it twice fails), and the schedule is unchanged."""
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def remembers() -> NetworkStatus:
        seen.append(request_id.get())
        request_id.set(f"set by the check at {now()}")
        return CONNECTED

    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        processor = Scripted(then=remembers)
        token = request_id.set("caller")
        processor.start(0.0)  # eager: the first attempt already ran, and armed the timer
        request_id.reset(token)
        assert processor.times("check") == [0.0]
        assert_check_loop(processor, (0, 1))
        await asyncio.sleep(25.0)
        assert processor.times("check") == [0.0, 10.0, 20.0]
        assert seen == ["caller", "set by the check at 0.0", "set by the check at 10.0"]
        assert processor.network_status is CONNECTED
        assert_check_loop(processor, (0, 1))
        await stop(processor)
    finally:
        loop.set_task_factory(None)
