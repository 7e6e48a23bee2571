"""A scriptable NetworkProcessor: every check and hook does what a test tells it to.

``FakeNetworkProcessor`` is a plain ``NetworkProcessor`` subclass. It only implements the
abstract methods and hooks; what happened is read from its events (a ``TransitionRecorder``
attached at construction), and all scheduling, backoff and status logic is the base class's
own.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from chronopype.processors.events import LoopStarted
from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype.validation import outage_windows, seconds_at_least_zero
from chronopype_testing._recorder import Transition, TransitionRecorder

__all__ = ["FakeNetworkProcessor", "HookFault", "Step"]

_StepKind = Literal["returns", "raises", "hangs", "slow", "cancelled_swallowed"]

#: Outcome of a check that returned CONNECTED; every other outcome is a failed check.
CONNECTED_OUTCOME = "CONNECTED"


def _check_status(name: str, value: object) -> NetworkStatus:
    if not isinstance(value, NetworkStatus):
        raise TypeError(f"{name} must be a NetworkStatus, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, repr=False)
class Step:
    """What one ``check_network()`` call (or one hook call) does.

    Build steps with the class methods: ``Step.connected()``, ``Step.not_connected(times=1)``,
    ``Step.error()``, ``Step.returns(value)``, ``Step.raises(exc)``, ``Step.hangs()``,
    ``Step.slow(seconds, result)`` and ``Step.cancelled_swallowed(result)``. A step with
    ``times=n`` stands for n consecutive calls.
    """

    kind: _StepKind
    result: object = None
    exception: BaseException | type[BaseException] | None = None
    seconds: float = 0.0
    times: int = 1

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def connected(cls) -> Step:
        """The check returns CONNECTED."""
        return cls("returns", NetworkStatus.CONNECTED)

    @classmethod
    def not_connected(cls, times: int = 1) -> Step:
        """The next ``times`` checks return NOT_CONNECTED."""
        if isinstance(times, bool) or not isinstance(times, int):
            raise TypeError(f"times must be an int >= 1, got {times!r}")
        if times < 1:
            raise ValueError(f"times must be an int >= 1, got {times}")
        return cls("returns", NetworkStatus.NOT_CONNECTED, times=times)

    @classmethod
    def error(cls) -> Step:
        """The check returns ERROR."""
        return cls("returns", NetworkStatus.ERROR)

    @classmethod
    def returns(cls, value: object) -> Step:
        """The check returns ``value`` as is, even a value that is not a check result."""
        return cls("returns", value)

    @classmethod
    def raises(cls, exc: Exception | type[Exception]) -> Step:
        """The call raises ``exc`` (an exception instance, or a class to instantiate)."""
        is_class = isinstance(exc, type)
        if not (isinstance(exc, Exception) or (is_class and issubclass(exc, Exception))):
            raise TypeError(
                f"Step.raises() takes an Exception instance or subclass, got {exc!r}; "
                "use Step.cancelled_swallowed() or Step.hangs() for cancellation behaviour"
            )
        return cls("raises", exception=exc)

    @classmethod
    def hangs(cls) -> Step:
        """The call never returns; only a timeout or a cancellation ends it."""
        return cls("hangs")

    @classmethod
    def slow(cls, seconds: float, result: object = NetworkStatus.CONNECTED) -> Step:
        """The call takes ``seconds`` of virtual time, then returns ``result``."""
        return cls("slow", result, seconds=seconds_at_least_zero("seconds", seconds))

    @classmethod
    def cancelled_swallowed(cls, result: object = NetworkStatus.CONNECTED) -> Step:
        """The call hangs, swallows the CancelledError that ends it, and returns ``result``."""
        return cls("cancelled_swallowed", result)

    def __repr__(self) -> str:
        def value(result: object) -> str:
            if isinstance(result, NetworkStatus):
                return f"NetworkStatus.{result.name}"
            return repr(result)

        if self.kind == "returns":
            if self.result is NetworkStatus.CONNECTED:
                return "Step.connected()"
            if self.result is NetworkStatus.NOT_CONNECTED:
                return f"Step.not_connected(times={self.times})"
            if self.result is NetworkStatus.ERROR:
                return "Step.error()"
            return f"Step.returns({value(self.result)})"
        if self.kind == "raises":
            return f"Step.raises({self.exception!r})"
        if self.kind == "hangs":
            return "Step.hangs()"
        if self.kind == "slow":
            return f"Step.slow({self.seconds!r}, {value(self.result)})"
        return f"Step.cancelled_swallowed({value(self.result)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis (and IPython) pretty-print through this hook, not __repr__.
        printer.text(repr(self))

    # -- behaviour -------------------------------------------------------------------------

    def _exception_to_raise(self) -> BaseException:
        exc = self.exception
        if isinstance(exc, type):
            return exc()
        assert exc is not None
        # The same instance is raised on every call; drop the previous call's traceback.
        return exc.with_traceback(None)

    async def _perform(self) -> tuple[object, bool]:
        """Do the step; returns (value, whether a cancellation was swallowed)."""
        if self.kind == "returns":
            return self.result, False
        if self.kind == "raises":
            raise self._exception_to_raise()
        if self.kind == "slow":
            await asyncio.sleep(self.seconds)
            return self.result, False
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.kind == "hangs":
            await never
            raise AssertionError("unreachable: a hanging step's future never completes")
        try:
            await never
        except asyncio.CancelledError:
            return self.result, True
        raise AssertionError("unreachable: a hanging step's future never completes")


#: A hook fault: one Step for every call, or a sequence of Steps, one per call, after which
#: the hook succeeds.
HookFault = Step | Sequence[Step]


class _StepQueue:
    """Steps in call order, with ``times`` counted down instead of expanded."""

    __slots__ = ("_entries", "repeat")

    def __init__(self, steps: Iterable[Step], *, repeat: Step | None = None) -> None:
        self._entries: deque[list[Any]] = deque()
        self.repeat = repeat
        self.extend(steps)

    def extend(self, steps: Iterable[Step]) -> None:
        for step in steps:
            if not isinstance(step, Step):
                raise TypeError(f"script entries must be Step values, got {step!r}")
            self._entries.append([step, step.times])

    def next(self) -> Step | None:
        if self.repeat is not None:
            return self.repeat
        if not self._entries:
            return None
        entry = self._entries[0]
        entry[1] -= 1
        if entry[1] == 0:
            self._entries.popleft()
        step: Step = entry[0]
        return step

    def __len__(self) -> int:
        return sum(remaining for _, remaining in self._entries)


def _hook_queue(name: str, fault: HookFault | None, *, sync: bool) -> _StepQueue:
    if fault is None:
        return _StepQueue(())
    steps = [fault] if isinstance(fault, Step) else list(fault)
    for step in steps:
        if not isinstance(step, Step):
            raise TypeError(f"{name}= takes a Step or a sequence of Steps, got {step!r}")
        if sync and step.kind not in ("raises", "returns"):
            raise ValueError(f"{name}() is synchronous: only Step.raises(...) can fault it")
    if isinstance(fault, Step):
        return _StepQueue((), repeat=fault)
    return _StepQueue(steps)


class FakeNetworkProcessor(NetworkProcessor):
    """A real ``NetworkProcessor`` whose checks and hooks follow a script.

    Each ``check_network()`` call takes the next ``Step`` of ``script``; after the script,
    every check returns ``then`` (or, for ``with_outages``, NOT_CONNECTED inside an outage
    window and ``then`` outside). ``start_network``/``stop_network`` take a hook fault (one
    Step for every call, or a sequence of Steps, one per call); ``on_connected`` and
    ``on_disconnected`` take ``Step.raises(...)``. The timing settings may be passed too.

    ``recorder`` is a ``TransitionRecorder`` attached at construction: every event, in loop
    time (``recorder.events``). Read from it: ``checks`` (start of each check) and
    ``transitions`` (``Transition(at, old, new)``). The fake's own counts:
    ``start_network_calls`` and ``stop_network_calls``, ``pairing_violations`` (messages),
    ``ticks`` (timestamps passed to ``tick``) and ``max_concurrent_checks``.
    """

    LOGGER_NAME: ClassVar[str] = "chronopype_testing.FakeNetworkProcessor"

    def __init__(
        self,
        script: Iterable[Step] = (),
        *,
        then: NetworkStatus = NetworkStatus.CONNECTED,
        rng: random.Random | None = None,
        stats_window_size: int = 100,
        check_network_interval: float | None = None,
        check_network_timeout: float | None = None,
        network_error_wait_time: float | None = None,
        hook_timeout: float | None = None,
        start_network: HookFault | None = None,
        stop_network: HookFault | None = None,
        on_connected: HookFault | None = None,
        on_disconnected: HookFault | None = None,
    ) -> None:
        super().__init__(stats_window_size, rng=rng)
        self._then_step = Step("returns", _check_status("then", then))
        self._script = _StepQueue(script)
        self._outages: tuple[tuple[float, float], ...] = ()
        self._outage_starts: list[float] = []
        self._hook_faults = {
            "start_network": _hook_queue("start_network", start_network, sync=False),
            "stop_network": _hook_queue("stop_network", stop_network, sync=False),
            "on_connected": _hook_queue("on_connected", on_connected, sync=True),
            "on_disconnected": _hook_queue("on_disconnected", on_disconnected, sync=True),
        }
        settings = {
            "check_network_interval": check_network_interval,
            "check_network_timeout": check_network_timeout,
            "network_error_wait_time": network_error_wait_time,
            "hook_timeout": hook_timeout,
        }
        for name, value in settings.items():
            if value is not None:
                setattr(self, name, value)

        self.start_network_calls = 0
        self.stop_network_calls = 0
        self.pairing_violations: list[str] = []
        self.ticks: list[float] = []
        self.max_concurrent_checks = 0
        self._checks_running = 0
        self._network_up = False
        self._origin: float | None = None
        self.recorder = TransitionRecorder(self)

    @classmethod
    def with_outages(cls, windows: Iterable[tuple[float, float]], **kwargs: Any) -> Self:
        """A fake whose checks return NOT_CONNECTED inside the outage windows.

        Each window is half-open, ``[start, end)``, in virtual seconds after the first
        ``start()``; outside them checks return ``then``. ``kwargs`` are the constructor's;
        a ``script`` runs first.
        """
        processor = cls(**kwargs)
        processor._outages = outage_windows(windows)
        processor._outage_starts = [start for start, _ in processor._outages]
        return processor

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    # -- scripting -------------------------------------------------------------------------

    @property
    def outages(self) -> tuple[tuple[float, float], ...]:
        return self._outages

    @property
    def remaining_script(self) -> int:
        """Checks still scripted before ``then`` (or the outage schedule) takes over."""
        return len(self._script)

    @property
    def network_up(self) -> bool:
        """True from a ``start_network()`` call until its ``stop_network()`` call."""
        return self._network_up

    def queue(self, *steps: Step) -> None:
        """Append steps to the script; they run after the steps already queued."""
        self._script.extend(steps)

    @property
    def checks(self) -> list[float]:
        """Loop time of the start of every check."""
        return self.recorder.checks

    @property
    def transitions(self) -> list[Transition]:
        """Every status change, in loop time (NaN for a ``stop()`` with no loop running)."""
        return self.recorder.transitions

    def in_outage(self, loop_time: float) -> bool:
        """Whether ``loop_time`` falls inside an outage window (False before ``start()``)."""
        origin = self.started_at if self._outages else None
        if origin is None:
            return False
        since_start = loop_time - origin
        index = bisect.bisect_right(self._outage_starts, since_start) - 1
        return index >= 0 and since_start < self._outages[index][1]

    def _next_check_step(self, now: float) -> Step:
        step = self._script.next()
        if step is not None:
            return step
        if self.in_outage(now):
            return Step.not_connected()
        return self._then_step

    # -- the abstract method and hooks -----------------------------------------------------

    async def check_network(self) -> NetworkStatus:
        loop = asyncio.get_running_loop()
        started = loop.time()
        step = self._next_check_step(started)
        self._checks_running += 1
        self.max_concurrent_checks = max(self.max_concurrent_checks, self._checks_running)
        try:
            value, _ = await step._perform()
            # A scripted non-status value is the point of Step.returns(); pass it through.
            return value  # type: ignore[return-value]
        finally:
            self._checks_running -= 1

    async def start_network(self) -> None:
        self.start_network_calls += 1
        if self._network_up:
            self.pairing_violations.append(
                f"start_network() call #{self.start_network_calls} at loop time "
                f"{asyncio.get_running_loop().time()!r} began before the previous one was "
                "paired with stop_network()"
            )
        self._network_up = True
        await self._hook("start_network")

    async def stop_network(self) -> None:
        self.stop_network_calls += 1
        if not self._network_up:
            self.pairing_violations.append(
                f"stop_network() call #{self.stop_network_calls} at loop time "
                f"{asyncio.get_running_loop().time()!r} ran without a start_network() to pair with"
            )
        self._network_up = False
        await self._hook("stop_network")

    def on_connected(self) -> None:
        super().on_connected()
        self._sync_hook("on_connected")

    def on_disconnected(self) -> None:
        super().on_disconnected()
        self._sync_hook("on_disconnected")

    async def _hook(self, name: str) -> None:
        step = self._hook_faults[name].next()
        if step is not None:
            await step._perform()

    def _sync_hook(self, name: str) -> None:
        step = self._hook_faults[name].next()
        if step is not None and step.kind == "raises":
            raise step._exception_to_raise()

    # -- recording -----------------------------------------------------------------------

    def tick(self, timestamp: float) -> None:
        self.ticks.append(timestamp)
        super().tick(timestamp)

    # -- summaries -------------------------------------------------------------------------

    @property
    def started_at(self) -> float | None:
        """Loop time of the first ``start()``, the origin of outage windows."""
        if self._origin is None:
            first = next(iter(self.recorder.of_type(LoopStarted)), None)
            self._origin = None if first is None else first.at
        return self._origin

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.network_status.name} checks={len(self.checks)} "
            f"start_network={self.start_network_calls} stop_network={self.stop_network_calls}>"
        )
