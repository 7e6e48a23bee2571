"""Hypothesis strategies and a state machine for NetworkProcessors on virtual time.

* ``network_scripts(max_steps=...)`` draws lists of ``Step``s for ``FakeNetworkProcessor``.
* ``outage_timelines(horizon=...)`` draws sorted, non-overlapping ``(start, end)`` windows.
* ``on_fake_clock`` runs each example of an async ``@given`` test on its own fresh
  ``FakeClock`` loop (pytest-asyncio would run every example on one loop, so virtual time
  would carry over from one example to the next).
* ``NetworkProcessorMachine`` is a ``RuleBasedStateMachine`` (subclass it freely) whose
  every example owns one ``asyncio.Runner`` on a fresh ``FakeClock``. It drives a
  ``FakeNetworkProcessor`` by default, or your own ``NetworkProcessor`` subclass: override
  ``make_processor``.

Nothing here reads the wall clock, so examples replay exactly; use
``settings(deadline=None)``, since one example may cover days of virtual time.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import os
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar, overload

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chronopype.processors.backoff import backoff_bounds
from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype_testing._fakes import FakeNetworkProcessor, HookFault, Step
from chronopype_testing._fixtures import _PairingWatch, illegal_transition_defects
from chronopype_testing._loop import DEFAULT_IO_GRACE, DEFAULT_START, FakeClock
from chronopype_testing._recorder import (
    Transition,
    _backoff_waits,
    _gap_matches,
    illegal_transitions,
)

__all__ = [
    "NetworkProcessorMachine",
    "backoff_bounds",
    "check_steps",
    "hook_faults",
    "network_scripts",
    "on_fake_clock",
    "outage_timelines",
]

_T = TypeVar("_T")

_CHECK_RESULTS = (NetworkStatus.CONNECTED, NetworkStatus.NOT_CONNECTED, NetworkStatus.ERROR)
_EXCEPTIONS: tuple[type[Exception], ...] = (
    ConnectionRefusedError,
    ConnectionResetError,
    OSError,
    TimeoutError,
    RuntimeError,
)
# Float noise allowed when comparing a scheduled check time with the time it ran.
_TIME_EPSILON = 1e-9


def _seconds(max_seconds: float) -> st.SearchStrategy[float]:
    # Round values shrink to readable counterexamples; arbitrary floats still get drawn.
    return st.one_of(
        st.sampled_from([0.0, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]).filter(lambda s: s <= max_seconds),
        st.floats(0.0, max_seconds, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    )


def check_steps(*, max_seconds: float = 30.0, hangs: bool = True) -> st.SearchStrategy[Step]:
    """Single ``Step``s: every kind, with latencies up to ``max_seconds`` virtual seconds."""
    results = st.sampled_from(_CHECK_RESULTS)
    kinds: list[st.SearchStrategy[Step]] = [
        st.just(Step.connected()),
        st.integers(1, 5).map(lambda times: Step.not_connected(times=times)),
        st.just(Step.error()),
        st.sampled_from(_EXCEPTIONS).map(Step.raises),
        st.builds(Step.slow, _seconds(max_seconds), results),
    ]
    if hangs:
        kinds += [st.just(Step.hangs()), results.map(Step.cancelled_swallowed)]
    return st.one_of(kinds)


def network_scripts(
    max_steps: int = 10, *, min_steps: int = 0, max_seconds: float = 30.0, hangs: bool = True
) -> st.SearchStrategy[list[Step]]:
    """Lists of ``Step``s for ``FakeNetworkProcessor(script=...)``."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise ValueError(f"max_steps must be an int >= 0, got {max_steps!r}")
    return st.lists(
        check_steps(max_seconds=max_seconds, hangs=hangs), min_size=min_steps, max_size=max_steps
    )


def hook_faults(*, max_seconds: float = 60.0) -> st.SearchStrategy[Step | None]:
    """A fault for ``start_network=``/``stop_network=``, or None (mostly None)."""
    faults = st.one_of(
        st.sampled_from(_EXCEPTIONS).map(Step.raises),
        st.just(Step.hangs()),
        _seconds(max_seconds).map(Step.slow),
        st.just(Step.cancelled_swallowed(None)),
    )
    return st.one_of(st.none(), st.none(), st.none(), faults)


def outage_timelines(
    horizon: float = 86_400.0, *, max_outages: int = 12, min_outages: int = 0
) -> st.SearchStrategy[list[tuple[float, float]]]:
    """Sorted, non-overlapping ``[start, end)`` windows inside ``[0, horizon]``.

    Windows never touch: each ends strictly before the next starts.
    """
    if not (isinstance(horizon, int | float) and math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a positive number of seconds, got {horizon!r}")
    if not 0 <= min_outages <= max_outages:
        raise ValueError(f"need 0 <= min_outages <= max_outages, got {min_outages}, {max_outages}")
    points = st.lists(
        st.floats(0.0, float(horizon), allow_nan=False, allow_subnormal=False),
        min_size=2 * min_outages,
        max_size=2 * max_outages,
        unique=True,
    )

    def pair_up(values: list[float]) -> list[tuple[float, float]]:
        ordered = sorted(values)
        return [(ordered[i], ordered[i + 1]) for i in range(0, len(ordered) - 1, 2)]

    return points.map(pair_up)


# The exponent at which 2 ** (n - 1) reaches the cap: beyond it every base is the cap, so the
# power is never computed for a large n (2.0 ** 1024 overflows).
# -- a fresh clock per example -----------------------------------------------------------------


@overload
def on_fake_clock(test: Callable[..., Coroutine[Any, Any, None]], /) -> Callable[..., None]: ...


@overload
def on_fake_clock(
    *, start: float | datetime = ..., autojump: bool = ..., io_grace: float = ...
) -> Callable[[Callable[..., Coroutine[Any, Any, None]]], Callable[..., None]]: ...


def on_fake_clock(
    test: Callable[..., Coroutine[Any, Any, None]] | None = None,
    /,
    *,
    start: float | datetime = DEFAULT_START,
    autojump: bool = True,
    io_grace: float = DEFAULT_IO_GRACE,
) -> Any:
    """Run an async test on a new ``FakeClock`` loop per call, i.e. per Hypothesis example.

    Put it *below* ``@given``::

        @given(script=network_scripts())
        @on_fake_clock
        async def test_it(script): ...

    A parameter named ``clock`` receives that example's ``FakeClock`` (and is hidden from
    pytest and Hypothesis).
    """
    FakeClock(start=start, autojump=autojump, io_grace=io_grace)  # validate options now

    def decorate(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
        if getattr(test, "is_hypothesis_test", False):
            raise TypeError("apply @on_fake_clock below @given, directly on the async function")
        if not inspect.iscoroutinefunction(test):
            raise TypeError(f"@on_fake_clock needs an async def function, got {test!r}")
        signature = inspect.signature(test)
        wants_clock = "clock" in signature.parameters

        @functools.wraps(test)
        def run_on_fresh_clock(*args: Any, **kwargs: Any) -> None:
            clock = FakeClock(start=start, autojump=autojump, io_grace=io_grace)
            if wants_clock:
                kwargs["clock"] = clock
            clock.run(test(*args, **kwargs))

        if wants_clock:
            visible = [p for p in signature.parameters.values() if p.name != "clock"]
            run_on_fresh_clock.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=visible
            )
        return run_on_fresh_clock

    if test is not None:
        return decorate(test)
    return decorate


# -- the state machine ---------------------------------------------------------------------------


def machine_examples(default: int = 200) -> int:
    """Examples per run: ``CHRONOPYPE_MACHINE_EXAMPLES`` (``make test-deep`` sets 2000)."""
    text = os.environ.get("CHRONOPYPE_MACHINE_EXAMPLES", "").strip()
    if not text:
        return default
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"CHRONOPYPE_MACHINE_EXAMPLES must be an int, got {text!r}") from None
    if count < 1:
        raise ValueError(f"CHRONOPYPE_MACHINE_EXAMPLES must be >= 1, got {count}")
    return count


class NetworkProcessorMachine(RuleBasedStateMachine):
    """Drives a NetworkProcessor through random lifecycles on virtual time.

    Rules: start, stop (from inside or outside the loop), pause, resume, advance (virtual
    seconds), queue_check (the next check's outcome; fakes only) and await_cleanup.
    Invariants: every transition is legal; exactly one check loop runs while active and not
    paused; the start/stop_network pairing holds; STOPPED exactly when stopped; nothing
    leaks after cleanup; for a ``FakeNetworkProcessor``, every retry waits
    ``backoff_delay`` exactly, within its band.

    Each example owns a new ``FakeClock`` and an ``asyncio.Runner`` on it, closed in
    ``teardown``. The factory hook is ``make_processor``: override it to return a
    ``FakeNetworkProcessor`` subclass, other settings, or your own ``NetworkProcessor``
    subclass (take ``rng`` and ignore the fake's options)::

        class InventoryMachine(NetworkProcessorMachine):
            def make_processor(self, *, rng, **fake_options):
                return Inventory(rng=rng)

    The machine reads only the processor's public API (``owned_tasks()``,
    ``owned_timer_handles()``, status listeners, the hooks' calls, task names). Add rules
    and invariants as usual.
    """

    #: Where each example's FakeClock starts.
    clock_start: float | datetime = DEFAULT_START

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(start=self.clock_start)
        self.runner = asyncio.Runner(loop_factory=self.clock.new_event_loop)
        self._processor: NetworkProcessor | None = None
        self._pairing: _PairingWatch | None = None
        self._transitions: list[Transition] = []
        self.active = False
        self.paused = False
        self._transitions_checked = 0
        self._backoffs_checked = 0

    @property
    def processor(self) -> NetworkProcessor:
        if self._processor is None:
            raise RuntimeError("the processor is made by the machine's initialize rule")
        return self._processor

    def make_processor(
        self,
        *,
        script: list[Step],
        then: NetworkStatus,
        rng: random.Random,
        start_network: HookFault | None,
        stop_network: HookFault | None,
    ) -> NetworkProcessor:
        """The processor under test (the factory hook): override to change its settings or
        class; any ``NetworkProcessor`` subclass works. ``rng`` is the example's seeded rng;
        the other arguments configure the default ``FakeNetworkProcessor``."""
        return FakeNetworkProcessor(
            script, then=then, rng=rng, start_network=start_network, stop_network=stop_network
        )

    def run(self, action: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``action()`` on this example's loop, then everything it made ready."""

        async def then_idle() -> _T:
            result = await action()
            await self.clock.run_until_idle()
            return result

        return self.runner.run(then_idle())

    def call_in_loop(self, method: Callable[[], None]) -> None:
        """Call ``method`` from inside the running loop, then let the loop settle."""

        async def call() -> None:
            method()

        self.run(call)

    # -- rules ---------------------------------------------------------------------------------

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        script=network_scripts(max_steps=6),
        then=st.sampled_from(_CHECK_RESULTS),
        start_fault=hook_faults(),
        stop_fault=hook_faults(),
    )
    def create_processor(
        self,
        seed: int,
        script: list[Step],
        then: NetworkStatus,
        start_fault: Step | None,
        stop_fault: Step | None,
    ) -> None:
        processor = self.make_processor(
            script=script,
            then=then,
            rng=random.Random(seed),
            start_network=start_fault,
            stop_network=stop_fault,
        )
        if not isinstance(processor, NetworkProcessor):
            raise TypeError(
                f"make_processor() must return a NetworkProcessor, got {type(processor).__name__}"
            )
        self._processor = processor
        if not isinstance(processor, FakeNetworkProcessor):  # the fake records these itself
            self._pairing = _PairingWatch(processor)
            processor.add_status_listener(self._record_transition)

    def _record_transition(self, old: NetworkStatus, new: NetworkStatus) -> None:
        self._transitions.append(Transition(self.clock.monotonic(), old, new))

    @property
    def fake(self) -> FakeNetworkProcessor | None:
        """The processor, when it is a ``FakeNetworkProcessor`` (whose records say more)."""
        return self._processor if isinstance(self._processor, FakeNetworkProcessor) else None

    @property
    def transitions(self) -> list[Transition]:
        fake = self.fake
        return fake.transitions if fake is not None else self._transitions

    def pairing(self) -> tuple[list[str], int, int]:
        """(violations, start_network calls, stop_network calls) so far."""
        fake = self.fake
        if fake is not None:
            return fake.pairing_violations, fake.start_network_calls, fake.stop_network_calls
        watch = self._pairing
        assert watch is not None
        return watch.violations, watch.starts, watch.stops

    @rule()
    def start(self) -> None:
        processor = self.processor
        self.call_in_loop(lambda: processor.start(self.clock.time()))
        if not self.active:
            self.active, self.paused = True, False

    @rule(from_loop=st.booleans())
    def stop(self, from_loop: bool) -> None:
        if from_loop:
            self.call_in_loop(self.processor.stop)
        else:
            self.processor.stop()  # stop() must also work with no loop running
            self.run(self.clock.run_until_idle)  # let the cancelled loop unwind
        self.active = self.paused = False
        assert self.processor.network_status is NetworkStatus.STOPPED, (
            f"status after stop() is {self.processor.network_status.name}"
        )

    @rule()
    def pause(self) -> None:
        self.call_in_loop(self.processor.pause)
        if self.active:
            self.paused = True

    @rule()
    def resume(self) -> None:
        self.call_in_loop(self.processor.resume)
        if self.active:
            self.paused = False

    @rule(seconds=_seconds(900.0))
    def advance(self, seconds: float) -> None:
        self.run(lambda: self.clock.advance(seconds))

    @rule(step=check_steps())
    def queue_check(self, step: Step) -> None:
        fake = self.fake
        if fake is not None:  # a user's processor has no script: the step is drawn, unused
            fake.queue(step)

    @rule()
    def await_cleanup(self) -> None:
        processor = self.processor
        # Long enough for any hook to hit hook_timeout; virtual time makes it free.
        self.run(lambda: processor.await_cleanup(timeout=processor.hook_timeout * 2 + 5.0))
        if processor.state.is_active:
            return
        pending = sorted(task.get_name() for task in self._pending_tasks())
        assert not pending, f"tasks still pending after stop() and await_cleanup(): {pending}"
        timers = processor.owned_timer_handles()
        assert not timers, f"timers still pending after stop() and await_cleanup(): {timers}"
        _, starts, stops = self.pairing()
        assert starts == stops, (
            f"after cleanup start_network ran {starts} time(s), stop_network {stops}"
        )

    # -- invariants ----------------------------------------------------------------------------

    def _attempt_tasks(self) -> list[asyncio.Task[Any]]:
        """Pending, uncancelled tasks named as the processor's attempts (an orphaned second
        check loop is one the processor's own report would not show)."""
        cls = type(self.processor).__name__
        # The core's attempt-task name: "chronopype:<class>:attempt" (the older spelling,
        # "<class> network check", can go once every core in use names them so).
        names = (f"chronopype:{cls}:attempt", f"{cls} network check")
        return [
            task
            for task in asyncio.all_tasks(self.runner.get_loop())
            if task.get_name() in names and not task.cancelling()
        ]

    def _pending_tasks(self) -> set[asyncio.Task[Any]]:
        return {*self.processor.owned_tasks(), *self._attempt_tasks()}

    @invariant()
    def transitions_are_legal(self) -> None:
        if self._processor is None:
            return
        transitions = self.transitions
        if transitions and self._transitions_checked == 0:
            assert transitions[0].old is NetworkStatus.STOPPED, transitions[0]
        fresh = transitions[max(0, self._transitions_checked - 1) :]
        problems = illegal_transitions(fresh)
        problems += [
            defect.message for defect in illegal_transition_defects(self.processor, problems)
        ]
        assert not problems, "\n".join(problems)
        self._transitions_checked = len(transitions)

    @invariant()
    def one_check_loop_while_running(self) -> None:
        if self._processor is None:
            return
        # The timer-driven loop is, while running, either one attempt task or (between
        # attempts) one idle timer, never both; nothing once paused or stopped.
        attempts, timers = self._attempt_tasks(), self.processor.owned_timer_handles()
        expected = 1 if self.active and not self.paused else 0
        loops = len(attempts) + len(timers)
        assert loops == expected, (
            f"{loops} check loop(s) running, expected {expected} "
            f"({len(attempts)} attempt task(s), {len(timers)} idle timer(s); "
            f"active={self.active}, paused={self.paused})"
        )
        assert self.processor.check_loop_active is (expected == 1), (
            f"check_loop_active is {self.processor.check_loop_active}, expected {expected == 1}"
        )
        fake = self.fake
        assert fake is None or fake.max_concurrent_checks <= 1, "two checks ran at once"

    @invariant()
    def network_pairing_holds(self) -> None:
        if self._processor is None:
            return
        violations, starts, stops = self.pairing()
        assert not violations, "\n".join(violations)
        unpaired = starts - stops
        assert unpaired in (0, 1), f"{unpaired} start_network() call(s) without stop_network()"

    @invariant()
    def stopped_exactly_when_inactive(self) -> None:
        if self._processor is None:
            return
        status = self.processor.network_status
        assert self.processor.state.is_active is self.active
        assert (status is NetworkStatus.STOPPED) is (not self.active), (
            f"status {status.name} while active={self.active}"
        )

    @invariant()
    def retry_waits_follow_backoff(self) -> None:
        processor = self.fake
        if processor is None:
            return
        # Read from the fake's events; the band is the core's (backoff_bounds).
        waits = _backoff_waits(processor.recorder.events)
        while self._backoffs_checked < len(waits):
            wait, event = waits[self._backoffs_checked], waits[self._backoffs_checked].event
            low, high = backoff_bounds(event.retry_count)
            assert low <= event.delay <= high, (
                f"backoff_delay({event.retry_count}) = {event.delay!r}, outside [{low}, {high}]"
            )
            if wait.next_check is not None:
                assert _gap_matches(event, wait.next_check), (
                    f"retry after {event.retry_count} failure(s) ran at {wait.next_check!r}, "
                    f"expected {event.at!r} + {event.delay!r}"
                )
            elif wait.ended_by == "still waiting":
                due = event.at + event.delay
                if self.clock.monotonic() < due - _TIME_EPSILON:
                    return  # the retry is still to come; look again after the next rule
                raise AssertionError(
                    f"no retry at {due!r}, {event.delay!r} s after the failure at {event.at!r} "
                    f"(now {self.clock.monotonic()!r})"
                )
            self._backoffs_checked += 1

    # -- teardown ------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self._processor is not None:
                processor = self._processor
                processor.stop()
                self.run(lambda: processor.await_cleanup(timeout=processor.hook_timeout * 2 + 5.0))
        finally:
            if self._pairing is not None:
                self._pairing.remove()
            self.runner.close()


# Scripts for chronopype_testing.OutageProxy, built on outage_timelines (defined above).
from chronopype_testing._proxy_strategies import (  # noqa: E402
    fault_scripts as fault_scripts,
)
