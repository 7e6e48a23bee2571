"""NetworkProcessor v2 (issue 10): hostile callbacks, foreign cancellations, hangs that ignore
cancellation, eager task factories, input checks, defects. Each "Why" case of the issue is a
test here, on FakeClock with exact virtual times, or on a real loop with short timings where a
virtual-time loop would hide the bug."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import math
import sys
from collections.abc import Awaitable, Callable

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
    assert_paired,
    hang,
    now,
    other_tasks,
    run_scenario,
)

from chronopype import ClockConfig, ClockMode, NetworkStatus, ProcessorDefect
from chronopype_testing import FakeClock

eager_only = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="asyncio.eager_task_factory is new in Python 3.12"
)


async def finish(processor: Scripted) -> None:
    processor.stop()
    await processor.await_cleanup()
    assert processor.owned_tasks() == ()
    assert processor.owned_timer_handles() == ()
    assert other_tasks() == set()
    assert_paired(processor, settled=True)
    assert_chain_consistent(processor)
    assert not [d for d in processor.recorded_defects if d.kind == "illegal_transition"]


def swallowing(times: int, result: object = CONNECTED) -> Callable[[], Awaitable[object]]:
    """A step that waits an hour at a time and swallows the first ``times`` cancellations
    (a retry loop catching BaseException), then ends with ``result``."""

    async def step() -> object:
        for _ in range(times):
            with contextlib.suppress(BaseException):  # the hostile callee under test
                await asyncio.sleep(3600)
        return result

    return step


def leaked_cancel() -> Callable[[], Awaitable[object]]:
    """A step that suspends once, then raises a CancelledError nobody asked for (a pool's
    internal future leaking its cancellation)."""

    async def step() -> object:
        await asyncio.sleep(0.5)
        raise asyncio.CancelledError("a library's internal future")

    return step


# -- listeners calling lifecycle methods during start() ---------------------------------------


def test_listener_stopping_on_not_connected_during_start_stops_for_good(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted()
        processor.add_status_listener(
            lambda old, new: processor.stop() if new is NOT_CONNECTED else None
        )
        processor.start(0.0)
        assert processor.network_status is STOPPED
        assert not processor.check_loop_active and not processor.state.is_active
        await asyncio.sleep(600.0)
        assert processor.events == []  # no check, no start_network, ever
        assert processor.transitions == [(STOPPED, NOT_CONNECTED), (NOT_CONNECTED, STOPPED)]
        await finish(processor)

    run_scenario(caplog, scenario)


def test_listener_pausing_during_start_is_honoured(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted()
        processor.add_status_listener(
            lambda old, new: processor.pause() if new is NOT_CONNECTED else None
        )
        processor.start(0.0)
        assert processor.state.is_active and not processor.check_loop_active
        await asyncio.sleep(100.0)
        assert processor.events == []
        processor.resume()
        await asyncio.sleep(1.0)
        assert processor.times("check") == [100.0]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


def test_listener_resuming_during_start_runs_one_loop(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[NOT_CONNECTED], then=CONNECTED)
        in_flight = 0
        most = 0

        async def counted() -> object:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(1.0)
            in_flight -= 1
            return CONNECTED

        processor.checks.extend([counted] * 5)
        processor.add_status_listener(lambda old, new: processor.resume())
        processor.start(0.0)
        await asyncio.sleep(60.0)
        assert most == 1
        # One chain: t=0 NOT_CONNECTED, backoff 1 s (seed 0) ... then each 1 s check + 10 s.
        checks = processor.times("check")
        assert checks[0] == 0.0
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(checks))
        await finish(processor)

    run_scenario(caplog, scenario)


# -- listener order ------------------------------------------------------------------------


def test_a_change_made_in_a_listener_reaches_every_listener_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted()
        seen: dict[str, list[tuple[NetworkStatus, NetworkStatus]]] = {"first": [], "last": []}

        def first(old: NetworkStatus, new: NetworkStatus) -> None:
            seen["first"].append((old, new))
            if new is CONNECTED:
                processor.stop()

        processor.add_status_listener(first)
        processor.add_status_listener(lambda old, new: seen["last"].append((old, new)))
        processor.start(0.0)
        await asyncio.sleep(1.0)
        expected = [
            (STOPPED, NOT_CONNECTED),
            (NOT_CONNECTED, CONNECTING),
            (CONNECTING, CONNECTED),
            (CONNECTED, STOPPED),
        ]
        assert seen["first"] == expected
        assert seen["last"] == expected  # CONNECTING->CONNECTED before CONNECTED->STOPPED
        assert processor.transitions == expected  # Scripted's own recorder, attached first
        assert seen["last"][-1][1] is processor.network_status is STOPPED
        assert processor.count("on_connected") == 0  # stopped before it could run
        await finish(processor)

    run_scenario(caplog, scenario)


# -- cancellations the processor did not request -----------------------------------------------


def test_a_leaked_cancellation_from_check_network_is_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[CONNECTED, leaked_cancel()])
        processor.start(0.0)
        await asyncio.sleep(11.0)
        # The check at 10 raised a CancelledError at 10.5: logged, recorded, torn down, ERROR.
        assert processor.network_status is ERROR
        assert processor.check_loop_active
        assert processor.times("stop_network") == [10.5]
        assert processor.state.error_count == 1
        assert [d.kind for d in processor.recorded_defects] == []
        assert processor.transitions[-2:] == [(CONNECTED, DISCONNECTING), (DISCONNECTING, ERROR)]
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 10.0, 70.5]  # the error wait, then on
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


def test_a_leaked_cancellation_from_start_network_is_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(start_network=[leaked_cancel()])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        assert processor.network_status is ERROR
        assert processor.check_loop_active
        assert [(e.name, e.at) for e in processor.events] == [
            ("check", 0.0),
            ("start_network", 0.0),
            ("stop_network", 0.5),
            ("stop_network done", 0.5),
        ]
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 60.5]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


def test_a_synchronous_cancelled_error_from_a_check_is_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[asyncio.CancelledError("raised at once")])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        assert processor.network_status is ERROR and processor.check_loop_active
        await asyncio.sleep(60.0)
        assert processor.times("check") == [0.0, 60.0]
        await finish(processor)

    run_scenario(caplog, scenario)


def test_cancelling_the_attempt_task_from_outside_pauses_and_resume_restarts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[hang])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        (attempt,) = processor.owned_tasks()
        assert attempt.get_name() == "chronopype:Scripted:attempt"
        attempt.cancel()
        await asyncio.sleep(0)
        assert attempt.cancelled()
        assert not processor.check_loop_active  # never "active" with nothing scheduled
        assert processor.owned_tasks() == () and processor.owned_timer_handles() == ()
        assert processor.network_status is NOT_CONNECTED  # as pause() would leave it
        assert [d.kind for d in processor.recorded_defects] == ["attempt_cancelled"]
        assert processor.recorded_defects[0].at == 1.0
        processor.resume()
        await asyncio.sleep(1.0)
        assert processor.times("check") == [0.0, 1.0]
        assert processor.network_status is CONNECTED
        await finish(processor)

    run_scenario(caplog, scenario)


def test_cancelling_the_attempt_in_start_network_keeps_the_pairing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(start_network=[hang])
        processor.start(0.0)
        await asyncio.sleep(1.0)
        (attempt,) = processor.owned_tasks()
        attempt.cancel()
        await asyncio.sleep(0)
        assert not processor.check_loop_active and processor.network_status is NOT_CONNECTED
        processor.resume()  # the next start_network pairs the interrupted one first
        await asyncio.sleep(1.0)
        assert processor.names() == [
            "check",
            "start_network",
            "check",
            "stop_network",
            "stop_network done",
            "start_network",
            "start_network done",
            "on_connected",
        ]
        await finish(processor)

    run_scenario(caplog, scenario)


async def test_the_callers_own_cancellation_still_propagates(fake_clock: FakeClock) -> None:
    processor = Scripted(checks=[hang])
    processor.start(0.0)
    waiter = asyncio.ensure_future(processor.wait_for_status(CONNECTED))
    await asyncio.sleep(1.0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    processor.stop()
    cleanup = asyncio.ensure_future(processor.await_cleanup())
    await asyncio.sleep(0)
    cleanup.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cleanup
    await processor.await_cleanup()
    assert processor.owned_tasks() == ()


# -- hangs that ignore cancellation ---------------------------------------------------------


def test_a_check_swallowing_its_timeout_is_abandoned_one_timeout_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(checks=[CONNECTED, swallowing(3)])
        processor.start(0.0)
        await asyncio.sleep(10.5)
        assert processor.times("check") == [0.0, 10.0]
        # Deadline 15.0 (timeout 5): cancelled, swallowed; abandoned at 20.0 as TIMED_OUT.
        await asyncio.sleep(9.0)
        assert processor.network_status is CONNECTED
        await asyncio.sleep(1.0)
        assert processor.network_status is NOT_CONNECTED  # torn down, backoff follows
        assert processor.transitions[-2:] == [
            (CONNECTED, DISCONNECTING),
            (DISCONNECTING, NOT_CONNECTED),
        ]
        assert processor.times("stop_network") == [20.0]
        abandoned = [t for t in processor.owned_tasks() if t.get_name().endswith(":abandoned")]
        assert len(abandoned) == 1
        defects = processor.recorded_defects
        assert [(d.kind, d.at) for d in defects] == [("abandoned_task", 20.0)]
        assert "check_network()" in defects[0].message
        assert processor.state.retry_count == 1
        await asyncio.sleep(1.0)  # backoff_delay(1) for seed 0, then a check that connects
        assert processor.network_status is CONNECTED
        await finish(processor)  # the abandoned task swallows once more, then ends
        assert sum("abandoned" in r.getMessage() for r in caplog.records) == 1  # logged once

    run_scenario(caplog, scenario)


def test_start_network_swallowing_forever_is_abandoned_and_cleanup_is_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        processor = Scripted(start_network=[swallowing(3, None)], stop_network=[swallowing(3)])
        processor.hook_timeout = 2.0
        processor.start(0.0)
        await asyncio.sleep(4.5)  # deadline 2.0, abandoned at 4.0
        assert processor.network_status is CONNECTING  # releasing what it acquired
        assert processor.times("stop_network") == [4.0]  # stop_network hangs in turn
        await asyncio.sleep(4.0)  # ... abandoned at 8.0 too
        assert processor.network_status is ERROR
        assert [(d.kind, d.at) for d in processor.recorded_defects] == [
            ("abandoned_task", 4.0),
            ("abandoned_task", 8.0),
        ]
        assert processor.check_loop_active and processor.network_status is ERROR
        processor.stop()
        began = now()
        await processor.await_cleanup(timeout=3.0)
        assert now() - began <= 3.0
        assert processor.owned_tasks() == ()  # cancelled once more, the hangs ended
        assert_paired(processor, settled=True)

    run_scenario(caplog, scenario)


def test_abandoned_hang_on_a_real_loop(caplog: pytest.LogCaptureFixture) -> None:
    # Real time: the hang is a thread-free busy retry loop; a virtual clock could jump over it.
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        processor = Scripted(checks=[swallowing(2)])
        processor.check_network_timeout = 0.1
        processor.start(0.0)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)
        assert processor.network_status is CONNECTING
        began = loop.time()
        await processor.wait_for_status(NOT_CONNECTED, ERROR, timeout=2.0)
        assert processor.network_status is NOT_CONNECTED
        assert 0.19 <= loop.time() - began < 1.5  # deadline + one more timeout
        processor.stop()
        await processor.await_cleanup(timeout=1.0)
        assert processor.owned_tasks() == ()

    asyncio.run(main())
    gc.collect()
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


# -- eager task factory ----------------------------------------------------------------------


def run_eager(scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        await scenario()

    asyncio.run(main())


@eager_only
def test_eager_factory_pause_from_inside_a_check_is_honoured() -> None:
    async def scenario() -> None:
        seen_active: list[bool] = []

        class PausesItself(Scripted):
            async def check_network(self) -> NetworkStatus:
                seen_active.append(self.check_loop_active)
                self.pause()
                return await super().check_network()

        processor = PausesItself()
        processor.check_network_interval = 0.1
        processor.start(0.0)
        await asyncio.sleep(0.3)
        assert seen_active == [True]
        assert not processor.check_loop_active
        assert processor.count("check") == 1
        processor.stop()
        await processor.await_cleanup()
        assert processor.owned_tasks() == ()

    run_eager(scenario)


@eager_only
def test_eager_factory_keep_running_listener_never_doubles_checks() -> None:
    async def scenario() -> None:
        in_flight = 0
        most = 0

        class Counted(Scripted):
            async def check_network(self) -> NetworkStatus:
                nonlocal in_flight, most
                in_flight += 1
                most = max(most, in_flight)
                try:
                    return await super().check_network()
                finally:
                    in_flight -= 1

        processor = Counted(checks=[NOT_CONNECTED, CONNECTED, NOT_CONNECTED])
        processor.check_network_interval = 0.1

        def keep_running(old: NetworkStatus, new: NetworkStatus) -> None:
            if not processor.check_loop_active:
                processor.resume()

        processor.add_status_listener(keep_running)
        processor.start(0.0)
        await asyncio.sleep(1.5)
        assert most == 1
        assert len(processor.owned_tasks()) + len(processor.owned_timer_handles()) == 1
        processor.stop()
        await processor.await_cleanup()
        assert processor.owned_tasks() == ()
        assert_chain_consistent(processor)

    run_eager(scenario)


# -- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (None, TypeError),
        ("0", TypeError),
        (True, TypeError),
        (10**400, ValueError),
    ],
)
async def test_start_rejects_a_bad_timestamp(
    fake_clock: FakeClock, timestamp: object, error: type[Exception]
) -> None:
    processor = Scripted()
    with pytest.raises(error, match="timestamp"):
        processor.start(timestamp)  # type: ignore[arg-type]
    assert processor.network_status is STOPPED and not processor.state.is_active


@pytest.mark.parametrize(
    "name",
    ["check_network_interval", "check_network_timeout", "network_error_wait_time", "hook_timeout"],
)
@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_setters_reject_huge_integers(name: str, value: int) -> None:
    processor = Scripted()
    before = getattr(processor, name)
    with pytest.raises(ValueError, match=f"^{name} must be finite"):
        setattr(processor, name, value)
    assert getattr(processor, name) == before


def test_clock_config_rejects_huge_integers() -> None:
    with pytest.raises(ValueError, match="tick_size"):
        ClockConfig(ClockMode.BACKTEST, tick_size=10**400)


# -- defects ---------------------------------------------------------------------------------


def test_an_illegal_change_is_refused_logged_and_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Illegal(Scripted):
        def on_connected(self) -> None:
            super().on_connected()
            self._set_status(ERROR)  # CONNECTED -> ERROR skips the teardown

    async def scenario() -> None:
        processor = Illegal()
        processor.start(0.0)
        await asyncio.sleep(25.0)
        assert processor.network_status is CONNECTED  # refused; the loop goes on
        assert processor.times("check") == [0.0, 10.0, 20.0]
        (defect,) = processor.recorded_defects
        assert defect == ProcessorDefect(
            0.0, "illegal_transition", "CONNECTED -> ERROR is not a legal transition"
        )
        assert any(
            "CONNECTED -> ERROR is not a legal transition" in r.getMessage() for r in caplog.records
        )
        processor.stop()
        await processor.await_cleanup()

    run_scenario(caplog, scenario)


def test_listener_failures_are_defects_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        processor = Scripted()

        def hostile(old: NetworkStatus, new: NetworkStatus) -> None:
            raise asyncio.CancelledError("from a listener")

        processor.add_status_listener(hostile)
        processor.start(0.0)
        await asyncio.sleep(1.0)
        assert processor.network_status is CONNECTED
        assert {d.kind for d in processor.recorded_defects} == {"listener_error"}
        assert len(processor.recorded_defects) == 3
        await finish(processor)

    run_scenario(caplog, scenario)


def test_the_processor_fixture_fails_a_test_with_an_illegal_transition(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        """
    )
    pytester.makepyfile(
        """
        import asyncio

        from chronopype import NetworkStatus


        async def test_forces_an_illegal_change(fake_network_processor):
            processor = fake_network_processor()
            await asyncio.sleep(1)
            assert processor.network_status is NetworkStatus.CONNECTED
            processor._set_status(NetworkStatus.ERROR)  # refused, recorded
            assert processor.network_status is NetworkStatus.CONNECTED


        async def test_legal_only(fake_network_processor):
            processor = fake_network_processor()
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*at loop time 1.0: CONNECTED -> ERROR is not a legal transition*"]
    )
