"""TransitionRecorder, the ASCII timeline it fails with, and assert_backoff_schedule."""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Iterable

import pytest
from network_support import CONNECTED, CONNECTING, DISCONNECTING, ERROR, NOT_CONNECTED, STOPPED

from chronopype import NetworkProcessor, NetworkStatus
from chronopype_testing import (
    FakeClock,
    FakeNetworkProcessor,
    Step,
    Transition,
    TransitionRecorder,
    assert_backoff_schedule,
)
from chronopype_testing._fixtures import FakeNetworkProcessorFactory, TransitionRecorderFactory
from chronopype_testing._recorder import illegal_transitions, render_timeline, seed_line


class ScriptedService(NetworkProcessor):
    """A user's own subclass: nothing from chronopype_testing inside."""

    def __init__(self, results: Iterable[NetworkStatus], *, rng: random.Random) -> None:
        super().__init__(rng=rng)
        self.results = deque(results)

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.scripted_service")

    async def check_network(self) -> NetworkStatus:
        return self.results.popleft() if self.results else CONNECTED


def seed_of(request: pytest.FixtureRequest) -> str:
    from chronopype_testing._fixtures import session_seed

    return seed_line(session_seed(request.config))


# -- recording -----------------------------------------------------------------------------------


async def test_records_a_users_subclass_in_loop_time(
    fake_clock: FakeClock, transition_recorder: TransitionRecorderFactory
) -> None:
    service = ScriptedService([NOT_CONNECTED], rng=random.Random(5))
    recorder = transition_recorder(service)
    await fake_clock.advance(3.0)  # loop time, not the processor, is the clock
    service.start(fake_clock.time())
    await fake_clock.advance(5.0)
    service.stop()
    await service.await_cleanup()
    first_retry = recorder.transitions[3].at
    assert 4.0 <= first_retry <= 4.1
    assert recorder.transitions == [
        Transition(3.0, STOPPED, NOT_CONNECTED),
        Transition(3.0, NOT_CONNECTED, CONNECTING),
        Transition(3.0, CONNECTING, NOT_CONNECTED),
        Transition(first_retry, NOT_CONNECTED, CONNECTING),
        Transition(first_retry, CONNECTING, CONNECTED),
        Transition(8.0, CONNECTED, STOPPED),
    ]
    recorder.assert_statuses(
        [NOT_CONNECTED, CONNECTING, NOT_CONNECTED, CONNECTING, CONNECTED, STOPPED]
    )
    recorder.assert_timeline(
        [
            (0.0, NOT_CONNECTED),
            (0.0, CONNECTING),
            (0.0, NOT_CONNECTED),
            (1.05, CONNECTING),
            (1.05, CONNECTED),
            (5.0, STOPPED),
        ],
        tolerance=0.05,
    )


async def test_close_detaches_and_a_late_recorder_sees_only_what_follows(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.connected(), Step.not_connected()])
    await fake_clock.run_until_idle()
    with TransitionRecorder(processor) as recorder:
        # An observer like any other: no special case for the fake, no history it did not see.
        assert recorder.statuses == []
        await fake_clock.advance(10.0)
        assert recorder.statuses == [DISCONNECTING, NOT_CONNECTED]
        assert processor.transitions[0].new is NOT_CONNECTED  # the fake's own recorder
    processor.stop()
    assert recorder.statuses[-1] is NOT_CONNECTED
    assert processor.transitions[-1].new is STOPPED


def test_bad_arguments_are_rejected_precisely() -> None:
    with pytest.raises(TypeError, match="needs a NetworkProcessor, got str"):
        TransitionRecorder("processor")  # type: ignore[arg-type]
    recorder = TransitionRecorder(FakeNetworkProcessor())
    with pytest.raises(TypeError, match="NetworkStatus values"):
        recorder.assert_statuses(["CONNECTED"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"\(seconds, NetworkStatus\) pairs"):
        recorder.assert_timeline([CONNECTED])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="finite numbers of seconds"):
        recorder.assert_timeline([(float("inf"), CONNECTED)])
    with pytest.raises(ValueError, match="tolerance must be finite and >= 0"):
        recorder.assert_timeline([], tolerance=-1.0)


# -- failure messages ----------------------------------------------------------------------------


async def test_wrong_timeline_fails_with_an_aligned_ascii_timeline(
    fake_network_processor: FakeNetworkProcessorFactory,
    transition_recorder: TransitionRecorderFactory,
    fake_clock: FakeClock,
    request: pytest.FixtureRequest,
) -> None:
    processor = fake_network_processor([Step.connected(), Step.not_connected()])
    recorder = processor.recorder  # attached at construction, so it saw start()
    await fake_clock.advance(20.0)
    processor.stop()
    retry = f"{processor.checks[2]:.6f}".rstrip("0")
    assert 11.0 <= processor.checks[2] <= 11.1  # lands in the column right after 10.5 s
    with pytest.raises(AssertionError) as failure:
        recorder.assert_timeline(
            [
                (0.0, NOT_CONNECTED),
                (0.0, CONNECTING),
                (0.0, CONNECTED),
                (20.0, STOPPED),
            ]
        )
    assert str(failure.value) == "\n".join(
        [
            "FakeNetworkProcessor timeline differs (tolerance 1e-06 s): first difference at #4: "
            "expected STOPPED at t=20 s, got DISCONNECTING at t=10 s",
            "timeline (x: 0.5s per column; * status entered, - status held)",
            "                   0s        5s        10s       15s       20s",
            "                   |----+----|----+----|----+----|----+----|-",
            "  expected",
            "    STOPPED                                                *-",
            "    NOT_CONNECTED  *",
            "    CONNECTING     *",
            "    CONNECTED      *---------------------------------------",
            "    DISCONNECTING",
            "  actual",
            "    STOPPED                                                *-",
            "    NOT_CONNECTED  *                   *-",
            "    CONNECTING     *                     *",
            "    CONNECTED      *-------------------  *-----------------",
            "    DISCONNECTING                      *",
            "                                       ^                   ^",
            "      #  expected               actual",
            "      1  NOT_CONNECTED at 0 s   NOT_CONNECTED at 0 s",
            "      2  CONNECTING at 0 s      CONNECTING at 0 s",
            "      3  CONNECTED at 0 s       CONNECTED at 0 s",
            "  >>  4  STOPPED at 20 s        DISCONNECTING at 10 s",
            "      5  (none)                 NOT_CONNECTED at 10 s",
            f"      6  (none)                 CONNECTING at {retry} s",
            f"      7  (none)                 CONNECTED at {retry} s",
            "      8  (none)                 STOPPED at 20 s",
            seed_of(request),
        ]
    )


async def test_wrong_statuses_fail_with_rows_per_status(
    transition_recorder: TransitionRecorderFactory,
    fake_clock: FakeClock,
    request: pytest.FixtureRequest,
) -> None:
    service = ScriptedService([NOT_CONNECTED, NOT_CONNECTED], rng=random.Random(1))
    recorder = transition_recorder(service)
    service.start(fake_clock.time())
    await fake_clock.advance(10.0)
    service.stop()
    with pytest.raises(AssertionError) as failure:
        recorder.assert_statuses([NOT_CONNECTED, CONNECTING, CONNECTED])
    lines = str(failure.value).splitlines()
    assert lines[0] == (
        "ScriptedService made 8 transition(s), expected 3; first difference at #3: "
        "expected CONNECTED, got NOT_CONNECTED"
    )
    expected_block = lines[lines.index("  expected") + 1 : lines.index("  actual")]
    assert [row.split()[0] for row in expected_block] == [
        "STOPPED",
        "NOT_CONNECTED",
        "CONNECTING",
        "CONNECTED",
    ]
    assert "  >>  3  CONNECTED       NOT_CONNECTED at 0 s" in lines
    actual_block = lines[lines.index("  actual") + 1 : lines.index("  actual") + 5]
    assert actual_block == [
        "    STOPPED                                                          *-",
        "    NOT_CONNECTED  *----*---------",
        "    CONNECTING     *    *         *",
        "    CONNECTED                     *----------------------------------",
    ]
    assert lines[-1] == seed_of(request)


def test_render_timeline_aligns_rows_and_places_marks() -> None:
    lines = render_timeline(
        [(0.0, NOT_CONNECTED), (0.0, CONNECTING), (0.0, CONNECTED), (30.0, DISCONNECTING)],
        [(0.0, NOT_CONNECTED), (10.0, CONNECTING)],
        mark=[10.0],
        width=40,
    )
    assert lines[0] == "timeline (x: 1s per column; * status entered, - status held)"
    assert lines[1:] == [
        "                   0s        10s       20s       30s",
        "                   |----+----|----+----|----+----|-",
        "  expected",
        "    NOT_CONNECTED  *---------",
        "    CONNECTING               *---------------------",
        "    CONNECTED",
        "    DISCONNECTING",
        "  actual",
        "    NOT_CONNECTED  *",
        "    CONNECTING     *",
        "    CONNECTED      *-----------------------------",
        "    DISCONNECTING                                *-",
        "                             ^",
    ]


def test_seed_line_and_illegal_transitions() -> None:
    assert seed_line(1234) == "chronopype seed: 1234 (re-run with --chronopype-seed=1234)"
    assert "not running under the chronopype pytest plugin" in seed_line(None)
    assert illegal_transitions(
        [
            Transition(0.0, STOPPED, NOT_CONNECTED),
            Transition(1.0, NOT_CONNECTED, CONNECTED),
            Transition(2.0, ERROR, CONNECTING),
        ]
    ) == [
        "transition #2 at loop time 1.0: NOT_CONNECTED -> CONNECTED is not a legal transition",
        "transition #3 at loop time 2.0 starts from ERROR, but the previous one ended in CONNECTED",
    ]


# -- backoff schedules ---------------------------------------------------------------------------


async def test_backoff_schedule_of_a_fake(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.not_connected(times=6)])
    await fake_clock.advance(100.0)
    assert_backoff_schedule(processor, [1, 2, 4, 8, 16, 32])
    with pytest.raises(AssertionError) as too_many:
        assert_backoff_schedule(processor, [1, 2, 4, 8, 16, 32, 64])
    assert str(too_many.value).startswith("observed 6 backoff wait(s), expected at least 7")
    assert "(no such backoff wait; expected base 64)" in str(too_many.value)
    with pytest.raises(AssertionError) as wrong:
        assert_backoff_schedule(processor, [1, 2, 8])
    message = str(wrong.value)
    assert message.startswith("backoff wait #3: delay outside its band (jitter 0.1)")
    assert "[7.2, 8.8]" in message
    assert "  >>  3  " in message
    assert "  actual" in message and "    NOT_CONNECTED" in message


async def test_backoff_schedule_of_a_users_subclass_through_a_recorder(
    transition_recorder: TransitionRecorderFactory, fake_clock: FakeClock
) -> None:
    service = ScriptedService([NOT_CONNECTED] * 4 + [ERROR], rng=random.Random(9))
    recorder = transition_recorder(service)
    service.start(fake_clock.time())
    await fake_clock.advance(120.0)
    assert_backoff_schedule(recorder, [1, 2, 4, 8, 16])
    service.stop()


async def test_a_resume_check_is_never_a_retry(
    fake_network_processor: FakeNetworkProcessorFactory, fake_clock: FakeClock
) -> None:
    processor = fake_network_processor([Step.not_connected(times=3)])
    await fake_clock.run_until_idle()
    processor.pause()  # cuts the first backoff wait (1 s) short
    await fake_clock.advance(500.0)
    processor.resume()
    await fake_clock.advance(100.0)
    # check at 0 fails; the pause splits it from the check at 500 (no retry: it starts a
    # run), which fails and waits backoff_delay(2); the retry fails and waits backoff_delay(3).
    assert processor.checks[:2] == [0.0, 500.0]
    assert_backoff_schedule(processor, [1, 2, 4])
    assert_backoff_schedule(processor)  # the core's bands for each retry count
    with pytest.raises(AssertionError) as wrong:
        assert_backoff_schedule(processor, [2, 4])
    assert str(wrong.value).startswith("backoff wait #1: delay outside its band")
    assert "LoopPaused at 0.0" in str(wrong.value)


def test_backoff_arguments_are_checked() -> None:
    class Bare(NetworkProcessor):
        @classmethod
        def logger(cls) -> logging.Logger:
            return logging.getLogger("tests.bare")

        async def check_network(self) -> NetworkStatus:
            return CONNECTED

    with pytest.raises(TypeError, match="attach a TransitionRecorder to this Bare before start"):
        assert_backoff_schedule(Bare(), [1])
    fake = FakeNetworkProcessor()
    with pytest.raises(ValueError, match="at least one base delay"):
        assert_backoff_schedule(fake, [])
    with pytest.raises(ValueError, match="positive seconds"):
        assert_backoff_schedule(fake, [0])
    with pytest.raises(ValueError, match=r"jitter must be a fraction in \[0, 1\)"):
        assert_backoff_schedule(fake, [1], jitter=1.5)
