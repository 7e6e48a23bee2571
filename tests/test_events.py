"""NetworkProcessor events (issue 11): add_observer, exact event sequences on FakeClock, exact
backoff waits for a user's own subclass, hostile observers, structured log records, and the
core's backoff functions."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any

import pytest
from network_support import CONNECTED, CONNECTING, DISCONNECTING, ERROR, NOT_CONNECTED, STOPPED

import chronopype.processors.network as network_module
from chronopype import NetworkProcessor, NetworkStatus
from chronopype.processors import AttemptOutcome, WaitKind
from chronopype.processors import events as ev
from chronopype.processors.backoff import (
    BACKOFF_CAP_SECONDS,
    BACKOFF_JITTER,
    backoff_base,
    backoff_bounds,
    jittered_backoff,
)
from chronopype_testing import FakeClock, TransitionRecorder, assert_backoff_schedule

LOGGER = "tests.events.service"


class Service(NetworkProcessor):
    """A user's own subclass: nothing from chronopype_testing inside. Each check takes
    ``check_seconds`` of (virtual) time and returns the next scripted status."""

    def __init__(
        self, results: Iterable[NetworkStatus], *, rng: random.Random, check_seconds: float = 0.0
    ) -> None:
        super().__init__(rng=rng)
        self.results = deque(results)
        self.check_seconds = check_seconds
        self.check_network_interval = 10.0

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(LOGGER)

    async def check_network(self) -> NetworkStatus:
        if self.check_seconds:
            await asyncio.sleep(self.check_seconds)
        return self.results.popleft() if self.results else CONNECTED


def drawn_backoffs(seed: int, count: int) -> list[float]:
    """The waits ``backoff_delay(1..count)`` draws from ``random.Random(seed)``, computed with
    the core's own functions."""
    mirror = random.Random(seed)
    return [
        jittered_backoff(backoff_base(n), mirror.uniform(-BACKOFF_JITTER, BACKOFF_JITTER))
        for n in range(1, count + 1)
    ]


def brief(event: ev.ProcessorEvent) -> tuple[Any, ...]:
    """An event as (loop time, class name, its own fields), without processor and wall time."""
    own = [
        getattr(event, field.name)
        for field in dataclasses.fields(event)
        if field.name not in ("processor", "at", "wall", "run", "error")
    ]
    return (event.at, type(event).__name__, *own)


# -- the event sequence ------------------------------------------------------------------------


async def test_exact_event_sequence_of_a_scripted_outage(fake_clock: FakeClock) -> None:
    service = Service([CONNECTED, NOT_CONNECTED, NOT_CONNECTED, CONNECTED], rng=random.Random(5))
    events: list[ev.ProcessorEvent] = []
    service.add_observer(events.append)
    service.start(fake_clock.time())
    await fake_clock.advance(15.0)  # the last retry is at most 1.1 + 2.2 s after 10 s
    service.stop()
    await service.await_cleanup()

    d1, d2 = drawn_backoffs(5, 2)
    down, retry, back = 10.0, 10.0 + d1, 10.0 + d1 + d2

    def hooks(at: float, name: str) -> list[tuple[Any, ...]]:
        return [(at, "HookStarted", name), (at, "HookFinished", name, 0.0)]

    assert [brief(event) for event in events] == [
        (0.0, "LoopStarted", False),
        (0.0, "StatusChanged", STOPPED, NOT_CONNECTED),
        (0.0, "StatusChanged", NOT_CONNECTED, CONNECTING),
        (0.0, "CheckStarted", CONNECTING),
        (0.0, "CheckFinished", AttemptOutcome.CONNECTED, 0.0),
        *hooks(0.0, "start_network"),
        (0.0, "StatusChanged", CONNECTING, CONNECTED),
        *hooks(0.0, "on_connected"),
        (0.0, "WaitScheduled", WaitKind.INTERVAL, 10.0, 0),
        (down, "CheckStarted", CONNECTED),
        (down, "CheckFinished", AttemptOutcome.NOT_CONNECTED, 0.0),
        (down, "StatusChanged", CONNECTED, DISCONNECTING),
        *hooks(down, "on_disconnected"),
        *hooks(down, "stop_network"),
        (down, "StatusChanged", DISCONNECTING, NOT_CONNECTED),
        (down, "WaitScheduled", WaitKind.BACKOFF, d1, 1),
        (retry, "StatusChanged", NOT_CONNECTED, CONNECTING),
        (retry, "CheckStarted", CONNECTING),
        (retry, "CheckFinished", AttemptOutcome.NOT_CONNECTED, 0.0),
        (retry, "StatusChanged", CONNECTING, NOT_CONNECTED),
        (retry, "WaitScheduled", WaitKind.BACKOFF, d2, 2),
        (back, "StatusChanged", NOT_CONNECTED, CONNECTING),
        (back, "CheckStarted", CONNECTING),
        (back, "CheckFinished", AttemptOutcome.CONNECTED, 0.0),
        *hooks(back, "start_network"),
        (back, "StatusChanged", CONNECTING, CONNECTED),
        *hooks(back, "on_connected"),
        (back, "WaitScheduled", WaitKind.INTERVAL, 10.0, 0),
        (15.0, "LoopStopped"),
        (15.0, "StatusChanged", CONNECTED, STOPPED),
        *hooks(15.0, "on_disconnected"),
        *hooks(15.0, "stop_network"),  # the cleanup that stop() scheduled
    ]
    assert all(event.run == 1 and event.processor is service for event in events)
    # Wall time moves with loop time on FakeClock (time-machine keeps time.time() in step).
    offsets = {round(event.wall - event.at, 3) for event in events}
    assert len(offsets) == 1


async def test_events_are_frozen_and_slotted(fake_clock: FakeClock) -> None:
    service = Service([], rng=random.Random(0))
    events: list[ev.ProcessorEvent] = []
    service.add_observer(events.append)
    service.start(fake_clock.time())
    await fake_clock.run_until_idle()
    service.stop()
    for event in events:
        assert not hasattr(event, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.at = 1.0  # type: ignore[misc]


async def test_resume_begins_a_new_run_and_pause_ends_it(fake_clock: FakeClock) -> None:
    service = Service([NOT_CONNECTED] * 3, rng=random.Random(2))
    recorder = TransitionRecorder(service)
    service.start(fake_clock.time())
    await fake_clock.run_until_idle()
    service.pause()
    await fake_clock.advance(100.0)
    service.resume()
    await fake_clock.advance(100.0)
    loops = [(*brief(e), e.run) for e in recorder.of_type(ev.LoopStarted)]
    loops += [(*brief(e), e.run) for e in recorder.of_type(ev.LoopPaused)]
    assert loops == [
        (0.0, "LoopStarted", False, 1),
        (100.0, "LoopStarted", True, 2),
        (0.0, "LoopPaused", False, 1),
    ]
    checks = recorder.of_type(ev.CheckStarted)
    assert [(c.at, c.run) for c in checks[:2]] == [(0.0, 1), (100.0, 2)]
    # The retry count goes on across the pause: the resume check's failure is the second.
    waits = recorder.of_type(ev.WaitScheduled)
    assert [(w.run, w.retry_count) for w in waits[:3]] == [(1, 1), (2, 2), (2, 3)]
    service.stop()


# -- backoff, exactly, for any processor --------------------------------------------------------


async def test_slow_failing_checks_wait_exactly_their_backoff_from_the_end_of_the_attempt(
    fake_clock: FakeClock,
) -> None:
    # Each check takes 0.5 s and fails; the waits are measured from its end, so the gap from
    # one check's start to the next is 0.5 + backoff_delay(n), and that is correct.
    service = Service([NOT_CONNECTED] * 3, rng=random.Random(11), check_seconds=0.5)
    recorder = TransitionRecorder(service)
    service.start(fake_clock.time())
    await fake_clock.advance(20.0)
    d1, d2, d3 = drawn_backoffs(11, 3)
    assert recorder.checks[:4] == [
        0.0,
        0.5 + d1,
        0.5 + d1 + 0.5 + d2,
        0.5 + d1 + 0.5 + d2 + 0.5 + d3,
    ]
    waits = recorder.of_type(ev.WaitScheduled)[:3]
    assert [(w.kind, w.delay, w.retry_count) for w in waits] == [
        (WaitKind.BACKOFF, d1, 1),
        (WaitKind.BACKOFF, d2, 2),
        (WaitKind.BACKOFF, d3, 3),
    ]
    assert [f.duration for f in recorder.of_type(ev.CheckFinished)[:3]] == [0.5, 0.5, 0.5]
    assert_backoff_schedule(service, [1, 2, 4])  # no fake involved: found by its recorder
    assert_backoff_schedule(recorder)  # bands from the core's backoff_bounds(retry_count)
    service.stop()


async def test_a_wrong_wait_is_caught_exactly(fake_clock: FakeClock) -> None:
    # A subclass whose backoff grows 3x per failure: in the band for [1, 3, 9], not [1, 2, 4].
    class Triple(Service):
        def backoff_delay(self, n: int) -> float:
            return float(3 ** (n - 1))

    service = Triple([NOT_CONNECTED] * 3, rng=random.Random(0), check_seconds=0.5)
    recorder = TransitionRecorder(service)
    service.start(fake_clock.time())
    await fake_clock.advance(30.0)
    assert_backoff_schedule(recorder, [1, 3, 9], jitter=0.0)
    with pytest.raises(AssertionError) as failure:
        assert_backoff_schedule(recorder, [1, 2, 4])
    message = str(failure.value)
    assert message.startswith("backoff wait #2: delay outside its band (jitter 0.1)")
    assert "[1.8, 2.2]" in message
    service.stop()


async def test_pause_and_resume_on_a_users_subclass(fake_clock: FakeClock) -> None:
    service = Service([NOT_CONNECTED] * 4, rng=random.Random(4))
    recorder = TransitionRecorder(service)
    service.start(fake_clock.time())
    await fake_clock.advance(0.5)  # inside the first wait (>= 0.9 s)
    service.pause()
    await fake_clock.advance(50.0)
    service.resume()  # checks at once: not a retry, whatever the gap
    await fake_clock.advance(30.0)
    assert recorder.checks[:2] == [0.0, 50.5]
    assert_backoff_schedule(service, [1, 2, 4, 8])
    assert_backoff_schedule(service)
    service.stop()


def test_assert_backoff_schedule_without_events_says_what_to_do() -> None:
    service = Service([], rng=random.Random(0))
    with pytest.raises(TypeError, match="attach a TransitionRecorder to this Service"):
        assert_backoff_schedule(service, [1])
    recorder = TransitionRecorder(service)
    recorder.close()
    with pytest.raises(TypeError, match="attach a TransitionRecorder"):
        assert_backoff_schedule(service, [1])  # a closed recorder sees nothing more
    with pytest.raises(TypeError, match="NetworkProcessor or a TransitionRecorder, got int"):
        assert_backoff_schedule(3, [1])  # type: ignore[arg-type]


# -- hostile observers ---------------------------------------------------------------------------


async def test_an_observer_that_raises_is_recorded_and_the_loop_goes_on(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service([NOT_CONNECTED], rng=random.Random(1))
    raised: list[type] = []

    def hostile(event: ev.ProcessorEvent) -> None:
        raised.append(type(event))
        if isinstance(event, ev.CheckStarted):
            raise asyncio.CancelledError("from an observer")
        raise RuntimeError("observer bug")

    service.add_observer(hostile)
    recorder = TransitionRecorder(service)  # after the hostile one: still told everything
    service.start(fake_clock.time())
    await fake_clock.advance(25.0)
    assert service.network_status is CONNECTED
    (d1,) = drawn_backoffs(1, 1)
    assert recorder.checks == [0.0, d1, d1 + 10.0, d1 + 20.0]
    assert len(raised) == len(recorder.events)
    defects = [d for d in service.recorded_defects if d.kind == "observer_error"]
    assert len(defects) == min(len(raised), 100)
    assert "failed on CheckStarted: CancelledError('from an observer')" in defects[3].message
    assert any("observer bug" in r.getMessage() or r.exc_info for r in caplog.records)
    service.stop()


async def test_an_observer_that_calls_stop_stops_everything(fake_clock: FakeClock) -> None:
    service = Service([NOT_CONNECTED, CONNECTED], rng=random.Random(1))
    started_networks: list[float] = []
    original = service.start_network

    async def counting_start_network() -> None:
        started_networks.append(asyncio.get_running_loop().time())
        await original()

    service.start_network = counting_start_network  # type: ignore[method-assign]

    def stopper(event: ev.ProcessorEvent) -> None:
        # Stops on the second check's start: from inside the attempt, before the check runs.
        if isinstance(event, ev.CheckStarted) and event.at > 0:
            event.processor.stop()

    service.add_observer(stopper)
    recorder = TransitionRecorder(service)
    service.start(fake_clock.time())
    await fake_clock.advance(100.0)
    await service.await_cleanup()
    assert service.network_status is STOPPED and not service.check_loop_active
    assert len(recorder.checks) == 2  # the second check began (event) but never ran on
    assert service.results == deque([CONNECTED])  # ... its check_network() was not called
    assert started_networks == []
    assert [brief(e)[1:] for e in recorder.events[-4:]] == [
        ("StatusChanged", NOT_CONNECTED, CONNECTING),
        ("CheckStarted", CONNECTING),
        ("LoopStopped",),
        ("StatusChanged", CONNECTING, STOPPED),
    ]
    assert service.owned_tasks() == ()


async def test_observer_events_are_delivered_in_order_after_a_reentrant_pause(
    fake_clock: FakeClock,
) -> None:
    service = Service([], rng=random.Random(0))
    seen: dict[str, list[str]] = {"first": [], "second": []}

    def first(event: ev.ProcessorEvent) -> None:
        seen["first"].append(type(event).__name__)
        if isinstance(event, ev.StatusChanged) and event.new is CONNECTED:
            event.processor.pause()

    service.add_observer(first)
    service.add_observer(lambda event: seen["second"].append(type(event).__name__))
    service.start(fake_clock.time())
    await fake_clock.run_until_idle()
    # Both heard the same events in the same order; the pause's LoopPaused came after the
    # StatusChanged that caused it had reached every observer.
    assert seen["first"] == seen["second"]
    assert seen["first"] == [
        "LoopStarted",
        "StatusChanged",  # STOPPED -> NOT_CONNECTED
        "StatusChanged",  # NOT_CONNECTED -> CONNECTING
        "CheckStarted",
        "CheckFinished",
        "HookStarted",  # start_network
        "HookFinished",
        "StatusChanged",  # CONNECTING -> CONNECTED: the first observer pauses here
        "LoopPaused",  # (on_connected and the wait belong to the run it ended: skipped)
    ]
    assert not service.check_loop_active
    service.stop()


def test_add_observer_checks_its_argument_and_unsubscribes_once() -> None:
    service = Service([], rng=random.Random(0))
    with pytest.raises(TypeError, match="observer must be callable, got 3"):
        service.add_observer(3)  # type: ignore[arg-type]
    heard: list[ev.ProcessorEvent] = []
    unsubscribe = service.add_observer(heard.append)
    unsubscribe()
    unsubscribe()  # idempotent
    service.stop()
    assert heard == []


async def test_status_listeners_are_a_filter_on_status_events(fake_clock: FakeClock) -> None:
    service = Service([NOT_CONNECTED], rng=random.Random(0))
    pairs: list[tuple[NetworkStatus, NetworkStatus]] = []
    statuses: list[tuple[NetworkStatus, NetworkStatus]] = []
    service.add_status_listener(lambda old, new: pairs.append((old, new)))
    service.add_observer(
        lambda e: statuses.append((e.old, e.new)) if isinstance(e, ev.StatusChanged) else None
    )
    service.start(fake_clock.time())
    await fake_clock.advance(5.0)
    service.stop()
    assert (
        pairs
        == statuses
        == [
            (STOPPED, NOT_CONNECTED),
            (NOT_CONNECTED, CONNECTING),
            (CONNECTING, NOT_CONNECTED),
            (NOT_CONNECTED, CONNECTING),
            (CONNECTING, CONNECTED),
            (CONNECTED, STOPPED),
        ]
    )


async def test_no_event_is_built_without_an_observer(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    for name in ev.__all__:
        cls = getattr(ev, name)
        if isinstance(cls, type) and issubclass(cls, ev.ProcessorEvent):

            def counting(*args: Any, _name: str = name, **kwargs: Any) -> None:
                built.append(_name)

            monkeypatch.setattr(network_module, name, counting, raising=False)
    service = Service([NOT_CONNECTED, NOT_CONNECTED, CONNECTED], rng=random.Random(0))
    service.start(fake_clock.time())
    await fake_clock.advance(30.0)
    service.pause()
    service.resume()
    service.stop()
    await service.await_cleanup()
    assert built == []
    assert service.recorded_defects == ()


# -- structured logs -----------------------------------------------------------------------------


async def test_every_log_record_carries_the_event_fields(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(Service):
        async def check_network(self) -> NetworkStatus:
            raise ConnectionRefusedError("refused")

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    service = Failing([], rng=random.Random(0))
    service.check_network_timeout = 1.0
    service.start(fake_clock.time())
    await fake_clock.run_until_idle()
    service.stop()
    records = [r for r in caplog.records if r.name == LOGGER]
    assert records
    for record in records:
        assert record.processor == "Failing"  # type: ignore[attr-defined]
        assert record.run == 1  # type: ignore[attr-defined]
    failed = [r for r in records if "check_network() failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].outcome == "RAISED"  # type: ignore[attr-defined]
    assert failed[0].status == "CONNECTING"  # type: ignore[attr-defined]
    assert failed[0].retry_count == 0  # type: ignore[attr-defined]
    (wait,) = [r for r in records if "next check in" in r.getMessage()]
    assert wait.levelno == logging.DEBUG
    assert wait.delay == service.network_error_wait_time  # type: ignore[attr-defined]
    assert wait.wait_kind == "ERROR_WAIT"  # type: ignore[attr-defined]
    assert (wait.status, wait.retry_count) == ("ERROR", 1)  # type: ignore[attr-defined]


# -- the backoff formula, once, in the core ------------------------------------------------------


def test_backoff_base_doubles_to_the_cap_and_never_overflows() -> None:
    assert [backoff_base(n) for n in range(1, 11)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0,
    ]  # fmt: skip
    assert backoff_base(10**400) == BACKOFF_CAP_SECONDS
    assert backoff_bounds(10**400) == (270.0, 300.0)
    assert backoff_bounds(1) == (1.0, 1.1)  # the floor clamps 0.9 up to 1
    assert backoff_bounds(3) == (3.6, 4.4)
    assert backoff_bounds(3, jitter=0.0) == (4.0, 4.0)
    with pytest.raises(TypeError, match="n must be an int >= 1"):
        backoff_base(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an int >= 1"):
        backoff_base(True)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        backoff_base(0)


def test_backoff_delay_is_the_core_formula() -> None:
    service = Service([], rng=random.Random(3))
    mirror = random.Random(3)
    for n in (1, 2, 5, 9, 10, 10**400):
        low, high = backoff_bounds(n)
        delay = service.backoff_delay(n)
        assert delay == jittered_backoff(
            backoff_base(n), mirror.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
        )
        assert low <= delay <= high
    with pytest.raises(ValueError, match=r"backoff_delay\(n\): n must be an int >= 1"):
        service.backoff_delay(0)


# -- the simulator reads events ------------------------------------------------------------------


class SlottedService(NetworkProcessor):
    """A user class with __slots__ whose checks time out, raise, return ERROR, then recover."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.check_network_timeout = 1.0
        self.check_network_interval = 10.0
        self.network_error_wait_time = 5.0

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(LOGGER)

    async def check_network(self) -> NetworkStatus:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(3600)  # timed out
        if self.calls == 2:
            raise ConnectionResetError("reset")
        return ERROR if self.calls == 3 else CONNECTED


def test_the_simulator_records_any_processor_from_events() -> None:
    from chronopype_testing._sim_run import CheckOutcome, Settings, simulate
    from chronopype_testing._sim_scenario import Outage

    class Observer:
        def __init__(self) -> None:
            self.checks: list[CheckOutcome] = []
            self.statuses: list[tuple[float, NetworkStatus, NetworkStatus]] = []

        def settings_known(self, interval: float, timeout: float, error_wait: float) -> None:
            assert (interval, timeout, error_wait) == (10.0, 1.0, 5.0)

        def check_finished(self, outcome: CheckOutcome) -> None:
            self.checks.append(outcome)

        def status_changed(self, at: float, old: NetworkStatus, new: NetworkStatus) -> None:
            self.statuses.append((at, old, new))

    observer = Observer()
    run = simulate(SlottedService, [Outage(100.0, 130.0)], 200.0, Settings(), 3, observer)
    assert run.leaked_tasks == []
    whys = [check.why for check in observer.checks]
    assert whys[:4] == ["timed out", "raised", "error", "connected"]
    assert observer.checks[0] == CheckOutcome(0.0, 1.0, False, "timed out")
    (d1,) = drawn_backoffs(3, 1)
    assert observer.checks[1] == CheckOutcome(1.0 + d1, 1.0 + d1, False, "raised")
    assert observer.checks[2].started == 1.0 + d1 + 5.0  # the error wait after a raise
    assert "outage" in whys and whys[-1] == "connected"
    outage_checks = [check.started for check in observer.checks if check.why == "outage"]
    assert all(100.0 <= started < 130.0 for started in outage_checks)
    assert observer.statuses[0] == (0.0, STOPPED, NOT_CONNECTED)
    assert observer.statuses[-1][2] is STOPPED
