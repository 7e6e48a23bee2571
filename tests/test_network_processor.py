"""NetworkProcessor: the pinned semantics of issue 3, point by point, on virtual time."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import random

import pytest
from network_support import (
    CONNECTED,
    CONNECTING,
    DISCONNECTING,
    ERROR,
    LOGGER_NAME,
    NOT_CONNECTED,
    STOPPED,
    Event,
    Scripted,
    assert_check_loop,
    assert_paired,
    hang,
    now,
    other_tasks,
    sleeping,
    twin_delays,
)

from chronopype import NetworkProcessor, NetworkStatus, TickProcessor
from chronopype_testing import DEFAULT_START, FakeClock

START_EPOCH = DEFAULT_START.timestamp()


# -- 1. abstract methods ----------------------------------------------------------------------


def test_network_processor_is_a_tick_processor_with_the_spec_statuses() -> None:
    assert issubclass(NetworkProcessor, TickProcessor)
    assert [(s.name, s.value) for s in NetworkStatus] == [
        ("STOPPED", 0),
        ("NOT_CONNECTED", 1),
        ("CONNECTING", 2),
        ("CONNECTED", 3),
        ("DISCONNECTING", 4),
        ("ERROR", 5),
    ]
    assert NetworkProcessor.LOGGER_NAME == "NetworkProcessor"


def test_subclass_without_check_network_cannot_be_instantiated() -> None:
    class NoCheck(NetworkProcessor):
        @classmethod
        def logger(cls) -> logging.Logger:
            return logging.getLogger("x")

    with pytest.raises(TypeError, match="check_network"):
        NoCheck()  # type: ignore[abstract]


def test_subclass_without_logger_cannot_be_instantiated() -> None:
    class NoLogger(NetworkProcessor):
        async def check_network(self) -> NetworkStatus:
            return CONNECTED

    with pytest.raises(TypeError, match="logger"):
        NoLogger()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="abstract"):
        NetworkProcessor()  # type: ignore[abstract]


def test_base_logger_body_raises_not_implemented() -> None:
    class DelegatesLogger(Scripted):
        @classmethod
        def logger(cls) -> logging.Logger:
            return super(Scripted, cls).logger()

    with pytest.raises(NotImplementedError, match="DelegatesLogger must implement"):
        DelegatesLogger.logger()


def test_defaults() -> None:
    processor = Scripted()
    assert processor.network_status is STOPPED
    assert math.isnan(processor.last_connected_timestamp)
    assert processor.check_network_interval == 10.0
    assert processor.check_network_timeout == 5.0
    assert processor.network_error_wait_time == 60.0
    assert processor.hook_timeout == 30.0
    assert processor.state.stats_window_size == 100


def test_processors_take_attributes_as_in_0_8_3_but_allocate_no_dict_until_one_is_set() -> None:
    class Slim(NetworkProcessor):
        __slots__ = ()

        @classmethod
        def logger(cls) -> logging.Logger:
            return logging.getLogger("slim")

        async def check_network(self) -> NetworkStatus:
            return CONNECTED

    slim = Slim()
    assert gc.get_referents(slim).count({}) == 0  # no instance dict materialised yet
    slim.tag = "db-1"  # type: ignore[attr-defined]
    assert slim.__dict__ == {"tag": "db-1"}
    bare = TickProcessor()
    bare.tick = print  # type: ignore[method-assign]
    assert bare.tick is print


def test_rng_is_keyword_only_and_type_checked() -> None:
    class Plain(Scripted):
        def __init__(self, *args: object, **kwargs: object) -> None:
            NetworkProcessor.__init__(self, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(TypeError):
        Plain(100, random.Random(1))
    with pytest.raises(TypeError, match=r"rng must be a random\.Random"):
        Plain(rng=42)
    assert Plain(7, rng=random.Random(1)).state.stats_window_size == 7


# -- 2. start() -------------------------------------------------------------------------------


async def test_start_sets_not_connected_then_checks_at_once(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[NOT_CONNECTED])
    processor.start(1_700_000_000.0)
    assert processor.network_status is NOT_CONNECTED
    assert processor.state.is_active
    assert processor.current_timestamp == 1_700_000_000.0
    assert processor.events == []
    await fake_clock.run_until_idle()
    assert processor.events == [Event("check", 0.0, CONNECTING)]
    assert processor.network_status is NOT_CONNECTED
    processor.stop()
    await processor.await_cleanup()


async def test_second_start_starts_no_second_loop(fake_clock: FakeClock) -> None:
    processor = Scripted()
    processor.start(1.0)
    assert_check_loop(processor, (1, 0))  # the first attempt's task, not yet run
    await asyncio.sleep(5)
    assert_check_loop(processor, (0, 1))  # idle: only the timer for the next attempt
    processor.start(2.0)
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 1))
    assert processor.current_timestamp == 1.0
    await asyncio.sleep(20)
    assert processor.times("check") == [0.0, 10.0, 20.0]
    assert processor.count("start_network") == 1
    processor.stop()
    await processor.await_cleanup()
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))


def test_start_without_running_loop_raises_and_stays_stopped() -> None:
    processor = Scripted()
    with pytest.raises(RuntimeError, match=r"start\(\) needs a running asyncio event loop"):
        processor.start(0.0)
    assert processor.network_status is STOPPED
    assert processor.state.is_active is False
    assert processor.transitions == []


# -- 3. while a check runs --------------------------------------------------------------------


async def test_status_is_connecting_only_while_checking_from_not_connected(
    fake_clock: FakeClock,
) -> None:
    processor = Scripted(checks=[ERROR, sleeping(2.0, CONNECTED), sleeping(1.0, CONNECTED)])
    (first_wait,) = twin_delays(0, [1])
    processor.start(0.0)
    await asyncio.sleep(first_wait + 1.0)
    assert processor.network_status is CONNECTING
    await asyncio.sleep(1.5)
    assert processor.network_status is CONNECTED
    connected_at = first_wait + 2.0
    await asyncio.sleep(connected_at + 10.5 - now())
    assert processor.network_status is CONNECTED  # a check from CONNECTED shows no CONNECTING
    assert [(e.at, e.status) for e in processor.events if e.name == "check"] == [
        (0.0, CONNECTING),
        (first_wait, CONNECTING),
        (connected_at + 10.0, CONNECTED),
    ]
    assert processor.transitions == [
        (STOPPED, NOT_CONNECTED),
        (NOT_CONNECTED, CONNECTING),
        (CONNECTING, ERROR),
        (ERROR, CONNECTING),
        (CONNECTING, CONNECTED),
    ]
    processor.stop()
    await processor.await_cleanup()


async def test_check_is_bounded_by_check_network_timeout(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    processor = Scripted(checks=[hang, hang])
    processor.check_network_timeout = 2.5
    first_wait, second_wait = twin_delays(0, [1, 2])
    processor.start(0.0)
    await asyncio.sleep(2.5)
    assert processor.network_status is CONNECTING
    await fake_clock.run_until_idle()
    assert processor.network_status is NOT_CONNECTED
    assert processor.state.retry_count == 1
    timeout = processor.state.last_exception
    assert isinstance(timeout, TimeoutError)
    assert "check_network_timeout=2.5" in str(timeout)
    assert processor.state.last_error_timestamp == START_EPOCH + 2.5
    await asyncio.sleep(2.5 + first_wait + 2.5 + second_wait + 1.0 - now())
    assert processor.times("check") == [
        0.0,
        2.5 + first_wait,
        2.5 + first_wait + 2.5 + second_wait,
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == [LOGGER_NAME, LOGGER_NAME]
    assert "took longer than check_network_timeout=2.5 s" in warnings[0].getMessage()
    processor.stop()
    await processor.await_cleanup()


# -- 4. result CONNECTED ----------------------------------------------------------------------


async def test_connect_runs_start_network_while_connecting_then_on_connected(
    fake_clock: FakeClock,
) -> None:
    processor = Scripted(start_network=[sleeping(2.5)])
    processor.start(0.0)
    await asyncio.sleep(2.0)
    assert processor.network_status is CONNECTING
    assert math.isnan(processor.last_connected_timestamp)
    await asyncio.sleep(1.0)
    assert processor.events[:4] == [
        Event("check", 0.0, CONNECTING),
        Event("start_network", 0.0, CONNECTING),
        Event("start_network done", 2.5, CONNECTING),
        Event("on_connected", 2.5, CONNECTED),
    ]
    assert processor.last_connected_timestamp == START_EPOCH + 2.5
    assert processor.state.retry_count == 0
    processor.stop()
    await processor.await_cleanup()


# -- 5. NOT_CONNECTED / ERROR / timeout -------------------------------------------------------


@pytest.mark.parametrize("result", [NOT_CONNECTED, ERROR])
async def test_failed_check_from_connected_disconnects_then_backs_off(
    fake_clock: FakeClock, result: NetworkStatus
) -> None:
    processor = Scripted(checks=[CONNECTED, result], stop_network=[sleeping(1.5)])
    (first_wait,) = twin_delays(0, [1])
    processor.start(0.0)
    await asyncio.sleep(11.0 + first_wait + 1.0)
    assert processor.events == [
        Event("check", 0.0, CONNECTING),
        Event("start_network", 0.0, CONNECTING),
        Event("start_network done", 0.0, CONNECTING),
        Event("on_connected", 0.0, CONNECTED),
        Event("check", 10.0, CONNECTED),
        Event("on_disconnected", 10.0, DISCONNECTING),
        Event("stop_network", 10.0, DISCONNECTING),
        Event("stop_network done", 11.5, DISCONNECTING),
        Event("check", 11.5 + first_wait, CONNECTING),
        Event("start_network", 11.5 + first_wait, CONNECTING),
        Event("start_network done", 11.5 + first_wait, CONNECTING),
        Event("on_connected", 11.5 + first_wait, CONNECTED),
    ]
    assert processor.transitions == [
        (STOPPED, NOT_CONNECTED),
        (NOT_CONNECTED, CONNECTING),
        (CONNECTING, CONNECTED),
        (CONNECTED, DISCONNECTING),
        (DISCONNECTING, result),
        (result, CONNECTING),
        (CONNECTING, CONNECTED),
    ]
    assert processor.state.retry_count == 0
    processor.stop()
    await processor.await_cleanup()
    assert_paired(processor, settled=True)


async def test_retry_count_grows_and_backoff_follows_it(fake_clock: FakeClock) -> None:
    processor = Scripted(then=NOT_CONNECTED, seed=11)
    delays = twin_delays(11, [1, 2, 3, 4, 5])
    processor.start(0.0)
    expected = [0.0]
    for delay in delays:
        expected.append(expected[-1] + delay)
    await asyncio.sleep(expected[-1] + 0.5)
    assert processor.times("check") == expected
    assert processor.state.retry_count == 6
    assert processor.count("start_network") == 0
    assert processor.count("stop_network") == 0
    processor.stop()
    await processor.await_cleanup()


async def test_status_never_sticks_at_connecting(fake_clock: FakeClock) -> None:
    processor = Scripted(then=NOT_CONNECTED)
    processor.start(0.0)
    for _ in range(8):
        await asyncio.sleep(0.5)  # every check is instant, so mid-wait we must see the result
        assert processor.network_status is NOT_CONNECTED
        await processor.wait_for_status(CONNECTING)
        await fake_clock.run_until_idle()
    assert processor.network_status is NOT_CONNECTED
    assert (
        processor.transitions[1:] == [(NOT_CONNECTED, CONNECTING), (CONNECTING, NOT_CONNECTED)] * 9
    )
    processor.stop()
    await processor.await_cleanup()


async def test_error_shows_without_a_previous_connected(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[ERROR, ERROR])
    first_wait, second_wait = twin_delays(0, [1, 2])
    processor.start(0.0)
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    assert processor.transitions == [
        (STOPPED, NOT_CONNECTED),
        (NOT_CONNECTED, CONNECTING),
        (CONNECTING, ERROR),
    ]
    assert processor.state.retry_count == 1
    await asyncio.sleep(first_wait + second_wait + 0.5)
    assert processor.times("check") == [0.0, first_wait, first_wait + second_wait]
    assert processor.network_status is CONNECTED
    processor.stop()
    await processor.await_cleanup()
    assert processor.count("start_network") == processor.count("stop_network") == 1


# -- 6. check_network raises or returns nonsense ----------------------------------------------


async def test_check_raising_is_logged_recorded_and_waits_error_time(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    boom = RuntimeError("boom")
    processor = Scripted(checks=[boom])
    processor.start(0.0)
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    assert processor.state.last_exception is boom
    assert processor.state.error_count == 1
    assert processor.state.retry_count == 1
    assert processor.state.last_error_timestamp == START_EPOCH
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.name == LOGGER_NAME
    assert record.exc_info is not None and record.exc_info[1] is boom
    assert "check_network() failed" in record.getMessage()
    await asyncio.sleep(60.5)
    assert processor.times("check") == [0.0, 60.0]
    assert processor.network_status is CONNECTED
    assert processor.state.retry_count == 0
    processor.stop()
    await processor.await_cleanup()


async def test_check_raising_while_connected_disconnects_to_error(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[CONNECTED, OSError("reset")])
    processor.start(0.0)
    await asyncio.sleep(10.5)
    assert processor.network_status is ERROR
    assert processor.names()[4:] == [
        "check",
        "on_disconnected",
        "stop_network",
        "stop_network done",
    ]
    assert processor.transitions[-2:] == [(CONNECTED, DISCONNECTING), (DISCONNECTING, ERROR)]
    await asyncio.sleep(60.0)
    assert processor.times("check") == [0.0, 10.0, 70.0]
    processor.stop()
    await processor.await_cleanup()
    assert_paired(processor, settled=True)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (None, "returned None"),
        (CONNECTING, "returned <NetworkStatus.CONNECTING: 2>"),
        (STOPPED, "returned <NetworkStatus.STOPPED: 0>"),
        (True, "returned True"),
    ],
)
async def test_bad_check_result_is_an_error_naming_the_value(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture, bad: object, shown: str
) -> None:
    async def returns_bad() -> object:
        return bad

    processor = Scripted(checks=[returns_bad])
    processor.start(0.0)
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    assert isinstance(processor.state.last_exception, TypeError)
    assert shown in str(processor.state.last_exception)
    assert any(shown in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    await asyncio.sleep(60.5)
    assert processor.times("check") == [0.0, 60.0]
    processor.stop()
    await processor.await_cleanup()


# -- 7. backoff -------------------------------------------------------------------------------


class FixedJitter(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return self.value


def processor_with(rng: random.Random | None) -> NetworkProcessor:
    class Bare(NetworkProcessor):
        @classmethod
        def logger(cls) -> logging.Logger:
            return logging.getLogger("bare")

        async def check_network(self) -> NetworkStatus:
            return CONNECTED

    return Bare(rng=rng)


def test_backoff_base_doubles_to_the_cap() -> None:
    rng = FixedJitter(0.0)
    processor = processor_with(rng)
    delays = [processor.backoff_delay(n) for n in range(1, 12)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]
    assert rng.calls == [(-0.1, 0.1)] * 11
    assert processor.backoff_delay(10**9) == 300.0


def test_backoff_jitter_and_clamp() -> None:
    up = processor_with(FixedJitter(0.1))
    assert up.backoff_delay(1) == pytest.approx(1.1)
    assert up.backoff_delay(9) == pytest.approx(281.6)
    assert up.backoff_delay(10) == 300.0
    down = processor_with(FixedJitter(-0.1))
    assert down.backoff_delay(1) == 1.0
    assert down.backoff_delay(2) == pytest.approx(1.8)
    assert down.backoff_delay(10) == pytest.approx(270.0)


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        (0, ValueError),
        (-3, ValueError),
        (True, TypeError),
        (1.0, TypeError),
        ("2", TypeError),
        (None, TypeError),
    ],
)
def test_backoff_rejects_bad_n(bad: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="n must be an int >= 1"):
        processor_with(random.Random(0)).backoff_delay(bad)  # type: ignore[arg-type]


def test_default_rngs_are_independent_per_instance() -> None:
    first, second = processor_with(None), processor_with(None)
    a = [first.backoff_delay(5) for _ in range(5)]
    b = [second.backoff_delay(5) for _ in range(5)]
    assert a != b
    assert first.rng is not second.rng
    assert all(14.4 <= d <= 17.6 for d in a + b)


def test_seeded_rngs_reproduce() -> None:
    assert twin_delays(3, [1, 2, 3, 4]) == twin_delays(3, [1, 2, 3, 4])
    assert twin_delays(3, [4]) != twin_delays(4, [4])


# -- 8. wait accounting -----------------------------------------------------------------------


async def test_instant_checks_land_every_interval(fake_clock: FakeClock) -> None:
    processor = Scripted()
    processor.start(0.0)
    await asyncio.sleep(35.0)
    assert processor.times("check") == [0.0, 10.0, 20.0, 30.0]
    processor.stop()
    await processor.await_cleanup()


async def test_waits_start_after_the_check_and_hooks_end(fake_clock: FakeClock) -> None:
    processor = Scripted(
        checks=[sleeping(1.5, CONNECTED), sleeping(0.25, CONNECTED)],
        start_network=[sleeping(3.0)],
    )
    processor.check_network_interval = 4.0
    processor.start(0.0)
    await asyncio.sleep(15.0)
    # 0 + 1.5 (check) + 3.0 (start_network) + 4 = 8.5; + 0.25 + 4 = 12.75
    assert processor.times("check") == [0.0, 8.5, 12.75]
    assert list(processor.state.execution_times) == [1.5, 0.25, 0.0]
    processor.stop()
    await processor.await_cleanup()


# -- 11. stop() -------------------------------------------------------------------------------


async def test_stop_from_connected(fake_clock: FakeClock) -> None:
    processor = Scripted()
    processor.start(0.0)
    await asyncio.sleep(3.0)
    processor.stop()
    assert processor.network_status is STOPPED
    assert processor.state.is_active is False
    assert processor.names()[-1] == "on_disconnected"
    assert processor.count("stop_network") == 0  # runs in the background
    await processor.await_cleanup()
    assert processor.events[-2:] == [
        Event("stop_network", 3.0, STOPPED),
        Event("stop_network done", 3.0, STOPPED),
    ]
    processor.stop()
    await processor.await_cleanup()
    assert processor.count("on_disconnected") == 1
    assert processor.count("stop_network") == 1
    assert processor.transitions[-1] == (CONNECTED, STOPPED)
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    await asyncio.sleep(100.0)
    assert processor.times("check") == [0.0]


async def test_stop_interrupts_a_hanging_check_and_never_stops_unstarted_network(
    fake_clock: FakeClock,
) -> None:
    processor = Scripted(checks=[hang])
    processor.start(0.0)
    await asyncio.sleep(2.0)
    processor.stop()
    assert processor.network_status is STOPPED
    await processor.await_cleanup()
    await asyncio.sleep(100.0)
    assert processor.names() == ["check"]
    assert processor.transitions[-1] == (CONNECTING, STOPPED)
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))


async def test_stop_during_start_network_pairs_it(fake_clock: FakeClock) -> None:
    processor = Scripted(start_network=[hang])
    processor.start(0.0)
    await asyncio.sleep(1.0)
    processor.stop()
    await processor.await_cleanup()
    assert processor.names() == ["check", "start_network", "stop_network", "stop_network done"]
    assert processor.count("on_disconnected") == 0
    assert processor.times("stop_network") == [1.0]
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))


async def test_await_cleanup_times_out_with_a_warning_and_cancels(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    processor = Scripted(stop_network=[hang])
    processor.start(0.0)
    await asyncio.sleep(1.0)
    processor.stop()
    await processor.await_cleanup(timeout=2.0)
    assert now() == 3.0
    assert processor.names()[-1] == "stop_network"  # started, never finished
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "did not finish within 2.0 s" in warning.getMessage()
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    await processor.await_cleanup()  # nothing left: returns at once, runs nothing again
    assert now() == 3.0
    assert processor.count("stop_network") == 1


async def test_stop_network_in_cleanup_is_bounded_by_hook_timeout(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    processor = Scripted(stop_network=[hang])
    processor.hook_timeout = 1.5
    processor.start(0.0)
    await asyncio.sleep(1.0)
    processor.stop()
    await processor.await_cleanup(timeout=10.0)
    assert now() == 2.5
    assert isinstance(processor.state.last_exception, TimeoutError)
    assert "stop_network() took longer than hook_timeout=1.5 s" in str(
        processor.state.last_exception
    )
    assert any("stop_network() failed" in r.getMessage() for r in caplog.records)
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))


@pytest.mark.parametrize(
    ("bad", "exc"),
    [(-1.0, ValueError), (math.nan, ValueError), ("5", TypeError), (None, TypeError)],
)
async def test_await_cleanup_validates_timeout(
    fake_clock: FakeClock, bad: object, exc: type[Exception]
) -> None:
    with pytest.raises(exc, match="timeout"):
        await Scripted().await_cleanup(bad)  # type: ignore[arg-type]


# -- 12. pause() / resume() -------------------------------------------------------------------


async def test_pause_keeps_connected_and_resume_checks_at_once(fake_clock: FakeClock) -> None:
    processor = Scripted()
    processor.start(0.0)
    await asyncio.sleep(5.0)
    processor.pause()
    assert processor.network_status is CONNECTED
    await fake_clock.run_until_idle()
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    await asyncio.sleep(95.0)
    assert processor.times("check") == [0.0]
    processor.resume()
    processor.resume()  # already running: no second loop
    assert_check_loop(processor, (1, 0))
    await asyncio.sleep(15.0)
    assert processor.times("check") == [0.0, 100.0, 110.0]
    assert_check_loop(processor, (0, 1))
    assert processor.count("start_network") == 1
    assert processor.count("stop_network") == 0
    processor.stop()
    await processor.await_cleanup()


@pytest.mark.parametrize("before", [NOT_CONNECTED, ERROR])
async def test_pause_reverts_an_interrupted_connecting(
    fake_clock: FakeClock, before: NetworkStatus
) -> None:
    first = NOT_CONNECTED if before is NOT_CONNECTED else ERROR
    processor = Scripted(checks=[first, hang])
    (first_wait,) = twin_delays(0, [1])
    processor.start(0.0)
    await asyncio.sleep(first_wait + 1.0)
    assert processor.network_status is CONNECTING
    processor.pause()
    assert processor.network_status is before
    await asyncio.sleep(1000.0)
    assert processor.network_status is before
    assert len(processor.times("check")) == 2
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))
    processor.stop()
    await processor.await_cleanup()


async def test_pause_during_start_network_pairs_it_before_the_next_start(
    fake_clock: FakeClock,
) -> None:
    processor = Scripted(start_network=[hang])
    processor.start(0.0)
    await asyncio.sleep(1.0)
    processor.pause()
    assert processor.network_status is NOT_CONNECTED
    await asyncio.sleep(1.0)
    processor.resume()
    await asyncio.sleep(1.0)
    assert processor.network_status is CONNECTED
    assert [(e.name, e.at) for e in processor.events] == [
        ("check", 0.0),
        ("start_network", 0.0),
        ("check", 2.0),
        ("stop_network", 2.0),
        ("stop_network done", 2.0),
        ("start_network", 2.0),
        ("start_network done", 2.0),
        ("on_connected", 2.0),
    ]
    processor.stop()
    await processor.await_cleanup()
    assert_paired(processor, settled=True)


async def test_pause_during_disconnect_lands_on_the_target(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[CONNECTED, ERROR], stop_network=[hang])
    processor.start(0.0)
    await asyncio.sleep(11.0)
    assert processor.network_status is DISCONNECTING
    processor.pause()
    assert processor.network_status is ERROR
    processor.stop()
    await processor.await_cleanup()
    assert processor.count("on_disconnected") == 1
    assert processor.count("stop_network") == 1
    assert_paired(processor, settled=True)


async def test_resume_does_nothing_unless_active(fake_clock: FakeClock) -> None:
    processor = Scripted()
    processor.resume()
    assert processor.network_status is STOPPED
    processor.start(0.0)
    await asyncio.sleep(1.0)
    processor.stop()
    processor.resume()
    processor.pause()
    await processor.await_cleanup()
    await asyncio.sleep(50.0)
    assert processor.network_status is STOPPED
    assert processor.times("check") == [0.0]
    assert other_tasks() == set()
    assert_check_loop(processor, (0, 0))


# -- 13. setters ------------------------------------------------------------------------------

SETTINGS = [
    "check_network_interval",
    "check_network_timeout",
    "network_error_wait_time",
    "hook_timeout",
]


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize(
    ("value", "stored"), [(2, 2.0), (0.25, 0.25), (0.1, 0.1), (0.05, 0.1), (0, 0.1), (-7, 0.1)]
)
def test_setters_store_seconds_with_a_floor(name: str, value: float, stored: float) -> None:
    processor = Scripted()
    setattr(processor, name, value)
    assert getattr(processor, name) == stored
    assert type(getattr(processor, name)) is float


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_setters_reject_non_finite(name: str, value: float) -> None:
    processor = Scripted()
    before = getattr(processor, name)
    with pytest.raises(ValueError, match=f"^{name} must be finite"):
        setattr(processor, name, value)
    assert getattr(processor, name) == before


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("value", [True, False, None, "5", b"5"])
def test_setters_reject_non_numbers(name: str, value: object) -> None:
    processor = Scripted()
    with pytest.raises(TypeError, match=f"^{name} must be a number of seconds"):
        setattr(processor, name, value)


# -- 14. listeners and wait_for_status --------------------------------------------------------


async def test_listener_sees_every_change_and_can_unsubscribe(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[CONNECTED, NOT_CONNECTED])
    seen: list[tuple[NetworkStatus, NetworkStatus]] = []
    unsubscribe = processor.add_status_listener(lambda old, new: seen.append((old, new)))
    processor.start(0.0)
    await asyncio.sleep(10.5)
    assert seen == processor.transitions
    assert len(seen) == 5
    unsubscribe()
    unsubscribe()  # a second call is harmless
    processor.stop()
    assert len(seen) == 5
    assert processor.transitions[-1] == (NOT_CONNECTED, STOPPED)
    await processor.await_cleanup()
    with pytest.raises(TypeError, match="callable"):
        processor.add_status_listener(42)  # type: ignore[arg-type]


async def test_listener_exception_is_logged_not_propagated(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    processor = Scripted()

    def explode(old: NetworkStatus, new: NetworkStatus) -> None:
        raise ValueError(f"listener broke on {new.name}")

    processor.add_status_listener(explode)
    after: list[NetworkStatus] = []
    processor.add_status_listener(lambda old, new: after.append(new))
    processor.start(0.0)
    await asyncio.sleep(25.0)
    assert processor.network_status is CONNECTED
    assert processor.times("check") == [0.0, 10.0, 20.0]
    assert after == [NOT_CONNECTED, CONNECTING, CONNECTED]
    failures = [r for r in caplog.records if "status listener" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.exc_info is not None for r in failures)
    processor.stop()
    await processor.await_cleanup()


async def test_wait_for_status(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[NOT_CONNECTED, NOT_CONNECTED])
    assert await processor.wait_for_status(STOPPED) is STOPPED
    processor.start(0.0)
    assert await processor.wait_for_status(NOT_CONNECTED, ERROR) is NOT_CONNECTED
    assert now() == 0.0
    first_wait, second_wait = twin_delays(0, [1, 2])
    assert await processor.wait_for_status(CONNECTED) is CONNECTED
    assert now() == first_wait + second_wait
    with pytest.raises(TimeoutError):
        await processor.wait_for_status(ERROR, timeout=7.5)
    assert now() == first_wait + second_wait + 7.5
    processor.stop()
    await processor.await_cleanup()
    assert processor._waiters == []


async def test_wait_for_status_validates_arguments(fake_clock: FakeClock) -> None:
    processor = Scripted()
    with pytest.raises(TypeError, match="at least one"):
        await processor.wait_for_status()
    with pytest.raises(TypeError, match="NetworkStatus values"):
        await processor.wait_for_status("CONNECTED")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        await processor.wait_for_status(CONNECTED, timeout=-1)


# -- state bookkeeping ------------------------------------------------------------------------


async def test_check_latencies_go_into_state(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[sleeping(0.5, CONNECTED), sleeping(1.25, CONNECTED)])
    processor.start(0.0)
    await asyncio.sleep(12.0)
    assert list(processor.state.execution_times) == [0.5, 1.25]
    assert processor.state.successful_count == 2
    assert processor.state.last_success_timestamp == START_EPOCH + 11.75
    assert processor.state.max_execution_time == 1.25
    processor.stop()
    await processor.await_cleanup()
