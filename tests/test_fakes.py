"""FakeNetworkProcessor and Step: scripts, hook faults, outages and records, on virtual time."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from network_support import CONNECTED, CONNECTING, DISCONNECTING, ERROR, NOT_CONNECTED, STOPPED

from chronopype import NetworkProcessor, NetworkStatus
from chronopype.processors import AttemptOutcome
from chronopype.processors.backoff import BACKOFF_JITTER, backoff_base, jittered_backoff
from chronopype.processors.events import CheckFinished, CheckStarted, LoopStarted, WaitScheduled
from chronopype_testing import (
    FakeClock,
    FakeNetworkProcessor,
    Step,
    Transition,
)
from chronopype_testing._fixtures import FakeNetworkProcessorFactory


def backoff(rng: random.Random, failures: int) -> float:
    """The core's backoff, drawn from a mirror of the processor's rng."""
    return jittered_backoff(backoff_base(failures), rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER))


def outcomes(processor: FakeNetworkProcessor) -> list[AttemptOutcome]:
    return [event.outcome for event in processor.recorder.of_type(CheckFinished)]


# -- Step ----------------------------------------------------------------------------------------


def test_step_constructors_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="times must be an int >= 1"):
        Step.not_connected(times=0)
    with pytest.raises(TypeError, match="times must be an int"):
        Step.not_connected(times=True)
    with pytest.raises(TypeError, match="cancelled_swallowed"):
        Step.raises(asyncio.CancelledError())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Exception instance or subclass"):
        Step.raises("boom")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds must be finite and >= 0"):
        Step.slow(-1.0, CONNECTED)
    with pytest.raises(ValueError, match="seconds must be finite"):
        Step.slow(math.nan, CONNECTED)
    with pytest.raises(TypeError, match="seconds must be a number"):
        Step.slow("3", CONNECTED)  # type: ignore[arg-type]


def test_step_reprs_read_like_the_calls_that_made_them() -> None:
    assert repr(Step.connected()) == "Step.connected()"
    assert repr(Step.not_connected(times=3)) == "Step.not_connected(times=3)"
    assert repr(Step.error()) == "Step.error()"
    assert repr(Step.returns(None)) == "Step.returns(None)"
    assert repr(Step.raises(OSError)) == "Step.raises(<class 'OSError'>)"
    assert repr(Step.hangs()) == "Step.hangs()"
    assert repr(Step.slow(2.5, ERROR)) == "Step.slow(2.5, NetworkStatus.ERROR)"
    assert repr(Step.cancelled_swallowed()) == "Step.cancelled_swallowed(NetworkStatus.CONNECTED)"


def test_fake_overrides_only_hooks_no_lifecycle_methods() -> None:
    # "Nothing in the base logic is re-implemented": the fake overrides public hooks (and
    # records ticks); what happened is read from events, not from lifecycle wrappers.
    overridden = {
        name
        for name in vars(FakeNetworkProcessor)
        if hasattr(NetworkProcessor, name) and not name.startswith("__") and name != "_abc_impl"
    }
    assert overridden == {
        "LOGGER_NAME",
        "logger",
        "check_network",
        "start_network",
        "stop_network",
        "on_connected",
        "on_disconnected",
        "tick",
    }
    assert issubclass(FakeNetworkProcessor, NetworkProcessor)


# -- scripts -------------------------------------------------------------------------------------


async def test_script_runs_in_order_then_repeats_then(fake_clock: FakeClock) -> None:
    mirror = random.Random(7)
    processor = FakeNetworkProcessor(
        [Step.connected(), Step.not_connected(times=3), Step.connected()],
        then=ERROR,
        rng=random.Random(7),
    )
    processor.start(fake_clock.time())
    await fake_clock.advance(60.0)

    first_retry = 10.0 + backoff(mirror, 1)
    second_retry = first_retry + backoff(mirror, 2)
    connected_again = second_retry + backoff(mirror, 3)
    then_check = connected_again + 10.0
    assert processor.checks[:5] == [0.0, 10.0, first_retry, second_retry, connected_again]
    assert outcomes(processor)[:6] == [
        AttemptOutcome.CONNECTED,
        AttemptOutcome.NOT_CONNECTED,
        AttemptOutcome.NOT_CONNECTED,
        AttemptOutcome.NOT_CONNECTED,
        AttemptOutcome.CONNECTED,
        AttemptOutcome.ERROR_RETURNED,
    ]
    assert processor.checks[5] == then_check
    assert processor.remaining_script == 0
    assert processor.start_network_calls == 2
    assert processor.stop_network_calls == 2
    processor.stop()
    await processor.await_cleanup()


async def test_transitions_are_recorded_in_loop_time(fake_clock: FakeClock) -> None:
    processor = FakeNetworkProcessor([Step.connected(), Step.not_connected()], rng=random.Random(1))
    await fake_clock.advance(5.0)  # the loop's clock, not the processor, sets the origin
    processor.start(fake_clock.time())
    await fake_clock.advance(10.0)
    processor.stop()
    await processor.await_cleanup()
    assert processor.transitions == [
        Transition(5.0, STOPPED, NOT_CONNECTED),
        Transition(5.0, NOT_CONNECTED, CONNECTING),
        Transition(5.0, CONNECTING, CONNECTED),
        Transition(15.0, CONNECTED, DISCONNECTING),
        Transition(15.0, DISCONNECTING, NOT_CONNECTED),
        Transition(15.0, NOT_CONNECTED, STOPPED),
    ]
    assert processor.started_at == 5.0


# Same-instant wakeups run in scheduling order, so a test that must see what the processor
# did at exactly t uses clock.advance(), which runs everything due at t before returning.


async def test_hang_is_ended_by_the_check_timeout(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.hangs()], check_network_timeout=2.5)
    await fake_clock.advance(2.0)
    assert processor.network_status is CONNECTING
    await fake_clock.advance(0.5)
    finished = processor.recorder.of_type(CheckFinished)[0]
    assert (finished.at, finished.duration, finished.outcome) == (
        2.5,
        2.5,
        AttemptOutcome.TIMED_OUT,
    )
    assert processor.network_status is NOT_CONNECTED
    assert processor.recorder.of_type(WaitScheduled)[0].at == 2.5


async def test_slow_step_takes_virtual_time(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.slow(3.0, CONNECTED)])
    await fake_clock.advance(2.999)
    assert processor.network_status is CONNECTING
    await fake_clock.advance(0.001)
    finished = processor.recorder.of_type(CheckFinished)[0]
    assert (finished.at, finished.duration, finished.outcome) == (
        3.0,
        3.0,
        AttemptOutcome.CONNECTED,
    )
    assert processor.network_status is CONNECTED
    await fake_clock.advance(10.0)
    assert processor.checks == [0.0, 13.0]  # the interval counts from the end of the attempt


async def test_raising_check_means_error_and_the_error_wait(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor(
        [Step.raises(ConnectionRefusedError("refused"))], network_error_wait_time=45.0
    )
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    await fake_clock.advance(45.0)
    assert outcomes(processor)[0] is AttemptOutcome.RAISED
    assert isinstance(processor.recorder.of_type(CheckFinished)[0].error, ConnectionRefusedError)
    assert processor.checks == [0.0, 45.0]
    assert processor.network_status is CONNECTED
    assert isinstance(processor.state.last_exception, ConnectionRefusedError)


async def test_swallowed_cancellation_still_counts_as_a_timeout(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.cancelled_swallowed(CONNECTED)])
    await fake_clock.advance(5.0)
    finished = processor.recorder.of_type(CheckFinished)[0]
    assert (finished.at, finished.duration, finished.outcome) == (
        5.0,
        5.0,
        AttemptOutcome.TIMED_OUT,
    )
    assert processor.network_status is NOT_CONNECTED
    assert processor.start_network_calls == 0


async def test_error_and_odd_return_values(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.error(), Step.returns(None)], then=NOT_CONNECTED)
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    wait = processor.recorder.of_type(WaitScheduled)[0]
    assert wait.retry_count == 1
    retry = wait.at + wait.delay
    await fake_clock.advance_to(retry)
    assert processor.checks == [0.0, retry]
    assert outcomes(processor)[1] is AttemptOutcome.RAISED
    assert isinstance(processor.recorder.of_type(CheckFinished)[1].error, TypeError)
    assert processor.network_status is ERROR
    assert "returned None" in str(processor.state.last_exception)
    await fake_clock.advance(processor.network_error_wait_time)
    assert processor.checks[-1] == retry + 60.0


async def test_queue_appends_to_the_script(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.connected()], check_network_interval=1.0)
    processor.queue(Step.error(), Step.not_connected(times=2))
    assert processor.remaining_script == 4
    await fake_clock.run_until_idle()
    assert processor.remaining_script == 3
    await fake_clock.advance(1.0)
    assert outcomes(processor) == [AttemptOutcome.CONNECTED, AttemptOutcome.ERROR_RETURNED]
    assert processor.remaining_script == 2


# -- outages -------------------------------------------------------------------------------------


async def test_outages_are_half_open_windows_after_start(fake_clock: FakeClock) -> None:
    processor = FakeNetworkProcessor.with_outages([(20.0, 30.0)], rng=random.Random(3))
    assert not processor.in_outage(25.0)  # nothing is down before start()
    await fake_clock.advance(100.0)
    processor.start(fake_clock.time())
    assert processor.in_outage(120.0)
    assert processor.in_outage(129.999)
    assert not processor.in_outage(130.0)
    assert not processor.in_outage(119.999)
    await fake_clock.advance(60.0)
    for started, outcome in zip(processor.checks, outcomes(processor), strict=True):
        down = 120.0 <= started < 130.0
        expected = AttemptOutcome.NOT_CONNECTED if down else AttemptOutcome.CONNECTED
        assert outcome is expected, (started, outcome)
    assert processor.checks[:3] == [100.0, 110.0, 120.0]
    assert processor.network_status is CONNECTED
    processor.stop()
    await processor.await_cleanup()


def test_outage_windows_are_validated() -> None:
    with pytest.raises(ValueError, match="overlap"):
        FakeNetworkProcessor.with_outages([(0, 10), (5, 20)])
    with pytest.raises(ValueError, match="start < end"):
        FakeNetworkProcessor.with_outages([(10, 10)])
    with pytest.raises(ValueError, match="outage start must be finite and >= 0"):
        FakeNetworkProcessor.with_outages([(-1, 10)])
    with pytest.raises(TypeError, match=r"\(start, end\) pairs"):
        FakeNetworkProcessor.with_outages([(1, 2, 3)])  # type: ignore[list-item]
    touching = FakeNetworkProcessor.with_outages([(10, 20), (0, 10)])
    assert touching.outages == ((0.0, 10.0), (10.0, 20.0))


async def test_outage_fixture_argument(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor(outages=[(0.0, 15.0)], then=CONNECTED)
    await fake_clock.run_until_idle()
    assert processor.network_status is NOT_CONNECTED
    await asyncio.sleep(3600.0)
    assert processor.network_status is CONNECTED
    early = [
        outcome
        for started, outcome in zip(processor.checks, outcomes(processor), strict=True)
        if started < 15.0
    ]
    assert early and all(outcome is AttemptOutcome.NOT_CONNECTED for outcome in early)


# -- hook faults ---------------------------------------------------------------------------------


async def test_start_network_fault_pairs_with_stop_network(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor(start_network=[Step.raises(OSError("no pool"))])
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    assert (processor.start_network_calls, processor.stop_network_calls) == (1, 1)
    await fake_clock.advance(60.0)  # the error wait; then the sequence is used up and it works
    assert processor.network_status is CONNECTED
    assert (processor.start_network_calls, processor.stop_network_calls) == (2, 1)
    assert processor.pairing_violations == []


async def test_hanging_start_network_is_bounded_by_hook_timeout(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor(start_network=Step.hangs(), hook_timeout=7.0)
    await fake_clock.advance(6.9)
    assert processor.network_status is CONNECTING
    await fake_clock.advance(0.1)
    assert processor.network_status is ERROR
    assert (processor.start_network_calls, processor.stop_network_calls) == (1, 1)


async def test_sync_hook_faults(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor(
        [Step.connected(), Step.not_connected()],
        on_connected=Step.raises(RuntimeError("listener bug")),
        on_disconnected=Step.raises(RuntimeError("listener bug")),
    )
    await fake_clock.advance(10.0)
    # The hooks raised, and the transitions happened anyway.
    assert [t.new for t in processor.transitions][-2:] == [DISCONNECTING, NOT_CONNECTED]
    assert processor.stop_network_calls == 1


def test_sync_hooks_take_only_raises() -> None:
    with pytest.raises(ValueError, match="on_connected\\(\\) is synchronous"):
        FakeNetworkProcessor(on_connected=Step.hangs())
    with pytest.raises(TypeError, match="start_network= takes a Step"):
        FakeNetworkProcessor(start_network=["hang"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="then must be a NetworkStatus"):
        FakeNetworkProcessor(then="CONNECTED")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="script entries must be Step values"):
        FakeNetworkProcessor([NetworkStatus.CONNECTED])  # type: ignore[list-item]


# -- records -------------------------------------------------------------------------------------


async def test_pairing_violations_are_recorded(fake_clock: FakeClock) -> None:
    processor = FakeNetworkProcessor()
    await processor.stop_network()
    assert processor.pairing_violations == [
        "stop_network() call #1 at loop time 0.0 ran without a start_network() to pair with"
    ]
    await processor.start_network()
    await processor.start_network()
    assert "call #2" in processor.pairing_violations[1]
    assert processor.network_up is True


async def test_ticks_and_concurrency_records(
    fake_network_processor: FakeNetworkProcessorFactory,
) -> None:
    processor = fake_network_processor([Step.slow(1.0, CONNECTED)] * 3)
    await processor.async_tick(1.5)
    processor.tick(2.5)
    assert processor.ticks == [1.5, 2.5]
    for _ in range(50):
        processor.pause()
        processor.resume()
        await asyncio.sleep(0.25)
    assert processor.max_concurrent_checks == 1
    runs = [event.run for event in processor.recorder.of_type(CheckStarted)]
    assert runs == sorted(runs)
    assert [event.run for event in processor.recorder.of_type(LoopStarted)] == list(range(1, 52))


def test_stop_without_a_loop_is_recorded_without_a_loop_time() -> None:
    clock = FakeClock()
    processor = FakeNetworkProcessor(rng=random.Random(0))

    async def run_a_while() -> None:
        processor.start(clock.time())
        await asyncio.sleep(42.0)

    clock.run(run_a_while())
    processor.stop()  # no loop running any more: no loop time to tell
    last = processor.transitions[-1]
    assert (last.old, last.new) == (CONNECTED, STOPPED)
    assert math.isnan(last.at)
    clock.run(processor.await_cleanup())
    assert (processor.start_network_calls, processor.stop_network_calls) == (1, 1)
