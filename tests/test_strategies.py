"""Hypothesis strategies and on_fake_clock: every example on its own fresh virtual clock."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_budget import examples

from chronopype import NetworkStatus
from chronopype.processors import AttemptOutcome
from chronopype.processors.events import CheckFinished
from chronopype_testing import FakeClock, FakeNetworkProcessor, Step
from chronopype_testing._recorder import illegal_transitions
from chronopype_testing.strategies import (
    check_steps,
    network_scripts,
    on_fake_clock,
    outage_timelines,
)

FAST = settings(max_examples=examples(60), deadline=None)


@FAST
@given(outage_timelines(horizon=3600.0, max_outages=5))
def test_outage_timelines_are_sorted_disjoint_windows_inside_the_horizon(
    windows: list[tuple[float, float]],
) -> None:
    assert len(windows) <= 5
    for start, end in windows:
        assert 0.0 <= start < end <= 3600.0
    for (_, end), (next_start, _) in itertools.pairwise(windows):
        assert end < next_start
    FakeNetworkProcessor.with_outages(windows)  # and the fake accepts them as they are


@FAST
@given(network_scripts(max_steps=4))
def test_network_scripts_are_lists_of_steps(script: list[Step]) -> None:
    assert len(script) <= 4
    assert all(isinstance(step, Step) for step in script)


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_steps must be an int >= 0"):
        network_scripts(max_steps=-1)
    with pytest.raises(ValueError, match="horizon must be a positive number"):
        outage_timelines(horizon=0)
    with pytest.raises(ValueError, match="min_outages <= max_outages"):
        outage_timelines(max_outages=1, min_outages=2)


_RETURNED = {
    NetworkStatus.CONNECTED: AttemptOutcome.CONNECTED,
    NetworkStatus.NOT_CONNECTED: AttemptOutcome.NOT_CONNECTED,
    NetworkStatus.ERROR: AttemptOutcome.ERROR_RETURNED,
}


def expected_outcome(step: Step, timeout: float) -> tuple[AttemptOutcome, type | None]:
    """The outcome a step's check is classified as, and the type of the error it carries."""
    if step.kind == "raises":
        assert isinstance(step.exception, type)
        return AttemptOutcome.RAISED, step.exception
    if step.kind in ("hangs", "cancelled_swallowed") or (
        step.kind == "slow" and step.seconds >= timeout
    ):
        return AttemptOutcome.TIMED_OUT, TimeoutError
    outcome = _RETURNED.get(step.result) if isinstance(step.result, NetworkStatus) else None
    if outcome is None:  # a value that is not a check result
        return AttemptOutcome.RAISED, TypeError
    return outcome, None


def finished(processor: FakeNetworkProcessor) -> list[CheckFinished]:
    return processor.recorder.of_type(CheckFinished)


@settings(max_examples=examples(80), deadline=None)
@given(script=network_scripts(max_steps=6), then=st.sampled_from(list(NetworkStatus)[1:4]))
@on_fake_clock
async def test_each_scripted_step_is_one_check(script: list[Step], then: NetworkStatus) -> None:
    loop = asyncio.get_running_loop()
    assert loop.time() == 0.0  # a fresh clock: nothing carried over from earlier examples
    processor = FakeNetworkProcessor(script, then=then, rng=random.Random(0))
    processor.start(0.0)
    calls = [step for step in script for _ in range(step.times)]
    for _ in range(10_000):  # a minute of virtual time per turn; the bound is only a backstop
        if len(finished(processor)) > len(calls):
            break
        await asyncio.sleep(60.0)
    else:
        raise AssertionError(f"only {len(finished(processor))} checks for {len(calls)} steps")
    processor.stop()
    await processor.await_cleanup()

    timeout = processor.check_network_timeout
    outcomes = [
        (event.outcome, None if event.error is None else type(event.error))
        for event in finished(processor)
    ]
    assert outcomes[: len(calls)] == [expected_outcome(step, timeout) for step in calls]
    assert outcomes[len(calls)] == expected_outcome(Step.returns(then), timeout)
    assert illegal_transitions(processor.transitions) == []
    assert processor.start_network_calls == processor.stop_network_calls
    assert processor.pairing_violations == []


@settings(max_examples=examples(40), deadline=None)
@given(windows=outage_timelines(horizon=6 * 3600.0, max_outages=6))
@on_fake_clock
async def test_outage_checks_follow_the_windows(
    windows: list[tuple[float, float]], clock: FakeClock
) -> None:
    assert clock.monotonic() == 0.0
    processor = FakeNetworkProcessor.with_outages(windows, rng=random.Random(1))
    processor.check_network_interval = 60.0
    processor.start(clock.time())
    await asyncio.sleep(6 * 3600.0)
    processor.stop()
    await processor.await_cleanup()
    for event in finished(processor):
        started = event.at - event.duration
        down = any(start <= started < end for start, end in windows)
        assert event.outcome is (AttemptOutcome.NOT_CONNECTED if down else AttemptOutcome.CONNECTED)
    assert clock.monotonic() == 6 * 3600.0


def test_on_fake_clock_hides_the_clock_parameter_and_rejects_misuse() -> None:
    import inspect

    async def takes_clock(value: int, clock: FakeClock) -> None:
        assert clock.monotonic() == 0.0
        await asyncio.sleep(value)
        assert clock.monotonic() == value
        seen.append(clock)

    seen: list[FakeClock] = []
    wrapped = on_fake_clock(takes_clock)
    assert list(inspect.signature(wrapped).parameters) == ["value"]
    wrapped(5)
    wrapped(7)
    assert len(seen) == 2 and seen[0] is not seen[1]

    with pytest.raises(TypeError, match="needs an async def function"):
        on_fake_clock(lambda: None)  # type: ignore[arg-type,return-value]

    @given(st.integers())
    async def given_first(value: int) -> None:
        pass

    with pytest.raises(TypeError, match="below @given"):
        on_fake_clock(given_first)
    with pytest.raises(ValueError, match="io_grace"):
        on_fake_clock(io_grace=-1.0)


def test_check_steps_cover_every_kind() -> None:
    kinds: set[str] = set()

    @settings(max_examples=examples(300), deadline=None, database=None)
    @given(check_steps())
    def collect(step: Step) -> None:
        kinds.add(step.kind)

    collect()
    assert kinds == {"returns", "raises", "hangs", "slow", "cancelled_swallowed"}
