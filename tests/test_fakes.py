"""FakeNetworkProcessor and Step: scripts, hook faults, outages and records, on virtual time."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from chronopype import NetworkProcessor, NetworkStatus
from chronopype_testing import (
    CheckRecord,
    FakeClock,
    FakeNetworkProcessor,
    Step,
    Transition,
)
from chronopype_testing._fixtures import FakeNetworkProcessorFactory

CONNECTED = NetworkStatus.CONNECTED
NOT_CONNECTED = NetworkStatus.NOT_CONNECTED
CONNECTING = NetworkStatus.CONNECTING
DISCONNECTING = NetworkStatus.DISCONNECTING
ERROR = NetworkStatus.ERROR
STOPPED = NetworkStatus.STOPPED


def backoff(rng: random.Random, failures: int) -> float:
    """The spec's backoff, drawn from a mirror of the processor's rng."""
    base = min(2.0 ** (failures - 1), 300.0)
    return min(max(base * (1 + rng.uniform(-0.1, 0.1)), 1.0), 300.0)


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


def test_fake_only_overrides_public_hooks_and_lifecycle_methods() -> None:
    # "Nothing in the base logic is re-implemented": every base attribute the fake
    # overrides is a public hook or a recording wrapper around the base method.
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
        "start",
        "stop",
        "pause",
        "resume",
        "backoff_delay",
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
    assert [r.outcome for r in processor.check_log[:6]] == [
        "CONNECTED",
        "NOT_CONNECTED",
        "NOT_CONNECTED",
        "NOT_CONNECTED",
        "CONNECTED",
        "ERROR",
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
    assert processor.check_log[0] == CheckRecord(0.0, 2.5, "cancelled", 1)
    assert processor.network_status is NOT_CONNECTED
    assert processor.backoff_waits[0].at == 2.5


async def test_slow_step_takes_virtual_time(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.slow(3.0, CONNECTED)])
    await fake_clock.advance(2.999)
    assert processor.network_status is CONNECTING
    await fake_clock.advance(0.001)
    assert processor.check_log[0] == CheckRecord(0.0, 3.0, "CONNECTED", 1)
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
    assert processor.check_log[0].outcome == "raised ConnectionRefusedError"
    assert processor.checks == [0.0, 45.0]
    assert processor.network_status is CONNECTED
    assert isinstance(processor.state.last_exception, ConnectionRefusedError)


async def test_swallowed_cancellation_still_counts_as_a_timeout(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.cancelled_swallowed(CONNECTED)])
    await fake_clock.advance(5.0)
    assert processor.check_log[0] == CheckRecord(0.0, 5.0, "cancellation swallowed", 1)
    assert processor.network_status is NOT_CONNECTED
    assert processor.start_network_calls == 0


async def test_error_and_odd_return_values(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.error(), Step.returns(None)], then=NOT_CONNECTED)
    await fake_clock.run_until_idle()
    assert processor.network_status is ERROR
    assert processor.backoff_waits[0].failures == 1
    retry = processor.backoff_waits[0].at + processor.backoff_waits[0].delay
    await fake_clock.advance_to(retry)
    assert processor.checks == [0.0, retry]
    assert processor.check_log[1].outcome == "None"
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
    assert [r.outcome for r in processor.check_log] == ["CONNECTED", "ERROR"]
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
    for record in processor.check_log:
        down = 120.0 <= record.started < 130.0
        assert record.outcome == ("NOT_CONNECTED" if down else "CONNECTED"), record
    assert [r.started for r in processor.check_log[:3]] == [100.0, 110.0, 120.0]
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
    assert all(r.outcome == "NOT_CONNECTED" for r in processor.check_log if r.started < 15.0)


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
    runs = [record.run for record in processor.check_log]
    assert runs == sorted(runs)
    assert processor.current_run == 101


def test_stop_without_a_loop_records_the_last_loop_time() -> None:
    clock = FakeClock()
    processor = FakeNetworkProcessor(rng=random.Random(0))

    async def run_a_while() -> None:
        processor.start(clock.time())
        await asyncio.sleep(42.0)

    clock.run(run_a_while())
    processor.stop()  # no loop running any more
    assert processor.transitions[-1] == Transition(42.0, CONNECTED, STOPPED)
    clock.run(processor.await_cleanup())
    assert (processor.start_network_calls, processor.stop_network_calls) == (1, 1)
