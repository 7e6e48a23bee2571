"""What the plugin's processor fixtures are made of: the factories and the safety net.

``chronopype_testing.plugin`` defines the fixtures and loads this module on their first use.
Nothing here needs pytest-asyncio: processors start on the running fake-clock loop of the
test, and their cleanup runs right after the test body (as part of the test's call phase,
so a leak or a broken pairing fails the test itself).
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from chronopype.processors.network import NetworkProcessor, NetworkStatus, ProcessorDefect
from chronopype_testing._fakes import FakeNetworkProcessor, Step
from chronopype_testing._recorder import Transition, TransitionRecorder, illegal_transitions
from chronopype_testing._seeds import derive_rng, session_seed

if TYPE_CHECKING:
    from chronopype_testing._loop import FakeClock

__all__ = [
    "FakeNetworkProcessorFactory",
    "ManagedProcessorFactory",
    "SafetyNet",
    "TransitionRecorderFactory",
    "derive_rng",
    "session_seed",
]

_SAFETY_NET = pytest.StashKey["SafetyNet"]()


def _loop_time(loop: asyncio.AbstractEventLoop | None) -> float:
    if loop is None or loop.is_closed():
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return math.nan
    return loop.time()


class _PairingWatch:
    """Counts one processor's ``start_network()``/``stop_network()`` calls as they begin.

    Installs counting wrappers as instance attributes over the two hooks (the core calls
    ``self.start_network()``, so an instance attribute is what it runs), which works for any
    subclass whose instances have a ``__dict__``. Every wrapper is removed by ``remove()``.
    """

    def __init__(self, processor: NetworkProcessor) -> None:
        self.processor = processor
        self.starts = 0
        self.stops = 0
        self.violations: list[str] = []
        self._open = False
        self.installed = hasattr(processor, "__dict__")
        if self.installed:
            original_start = processor.start_network
            original_stop = processor.stop_network

            async def start_network() -> None:
                self._began("start")
                await original_start()

            async def stop_network() -> None:
                self._began("stop")
                await original_stop()

            processor.__dict__["start_network"] = start_network
            processor.__dict__["stop_network"] = stop_network

    def _began(self, hook: str) -> None:
        now = _loop_time(None)
        if hook == "start":
            self.starts += 1
            if self._open:
                self.violations.append(
                    f"start_network() call #{self.starts} at loop time {now!r} began before "
                    "the previous one was paired with stop_network()"
                )
            self._open = True
        else:
            self.stops += 1
            if not self._open:
                self.violations.append(
                    f"stop_network() call #{self.stops} at loop time {now!r} ran without a "
                    "start_network() to pair with"
                )
            self._open = False

    def problems(self) -> list[str]:
        if not self.installed:
            return []
        found = list(self.violations)
        if self.starts != self.stops:
            found.append(
                f"start_network() ran {self.starts} time(s) but stop_network() "
                f"{self.stops} time(s)"
            )
        return found

    def remove(self) -> None:
        if self.installed:
            self.processor.__dict__.pop("start_network", None)
            self.processor.__dict__.pop("stop_network", None)


class _Watched:
    """One processor under the safety net, and what is known about it."""

    def __init__(self, label: str, processor: NetworkProcessor, *, started_by_net: bool) -> None:
        self.label = label
        self.processor = processor
        self.started_by_net = started_by_net
        self.pairing = _PairingWatch(processor)
        self.transitions: list[Transition] = []
        self._unsubscribe = processor.add_status_listener(self._record)
        self.left_running = False

    def _record(self, old: NetworkStatus, new: NetworkStatus) -> None:
        self.transitions.append(Transition(_loop_time(None), old, new))

    def detach(self) -> None:
        self._unsubscribe()
        self.pairing.remove()

    @property
    def name(self) -> str:
        return f"{self.label} ({self.processor!r})"


class SafetyNet:
    """Stops a test's processors after its body, awaits their cleanup, and reports what is
    wrong: a processor the test started and left running, a leaked task or timer, an unpaired
    ``start_network()``/``stop_network()``, an illegal transition or another recorded defect.

    It uses only public facts: ``owned_tasks()``, ``owned_timer_handles()`` and
    ``recorded_defects`` of each processor, status listeners, the hooks' calls, and which
    tasks of the loop started after the first processor joined (by name).
    """

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.watched: list[_Watched] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks_before: set[asyncio.Task[Any]] = set()
        self.finished = False

    def watch(
        self, label: str, processor: NetworkProcessor, *, started_by_net: bool
    ) -> _Watched:
        loop = asyncio.get_running_loop()
        if self.finished:
            raise RuntimeError(f"{label}: the test's cleanup already ran")
        if self._loop is None:
            self._loop = loop
            self._tasks_before = set(asyncio.all_tasks(loop))
        elif loop is not self._loop:
            raise RuntimeError(f"{label}: called from a different event loop than before")
        if any(entry.processor is processor for entry in self.watched):
            raise ValueError(f"{label}: {processor!r} is already managed in this test")
        entry = _Watched(label, processor, started_by_net=started_by_net)
        self.watched.append(entry)
        return entry

    # -- cleanup ---------------------------------------------------------------------------

    async def finish_in_loop(self) -> list[str]:
        """Like ``finish()``, from a coroutine on the processors' own (running) loop."""
        if self.finished or not self.watched:
            self.finished = True
            return []
        if asyncio.get_running_loop() is not self._loop:
            return []  # finish() will do it once this loop is idle or gone
        self.finished = True
        return await self._with_autojump(self._cleanup())

    def finish(self) -> list[str]:
        """Stop every processor, await its cleanup, and return what went wrong (idempotent).

        Runs on the processors' loop if it is still open, else on a new loop of the clock.
        """
        if self.finished or not self.watched:
            self.finished = True
            return []
        self.finished = True
        loop = self._loop
        if loop is not None and not loop.is_closed() and not loop.is_running():
            return loop.run_until_complete(self._with_autojump(self._cleanup()))
        # The loop is gone (the test ran under FakeClock.run): the clock makes a new one,
        # continuing at the same virtual time, and stop_network() runs there.
        return self._clock.run(self._with_autojump(self._cleanup()))

    async def _with_autojump(self, cleanup: Coroutine[Any, Any, list[str]]) -> list[str]:
        # Cleanup may have to wait out hook timeouts; virtual time makes that free.
        autojump = self._clock.autojump
        self._clock.autojump = True
        try:
            return await cleanup
        finally:
            self._clock.autojump = autojump

    async def _cleanup(self) -> list[str]:
        loop = asyncio.get_running_loop()
        for entry in self.watched:
            if entry.processor.state.is_active and not entry.started_by_net:
                entry.left_running = True
            entry.processor.stop()
        for entry in self.watched:
            processor = entry.processor
            await processor.await_cleanup(timeout=processor.hook_timeout * 2 + 5.0)
        await self._clock.run_until_idle()
        problems: list[str] = []
        to_cancel: set[asyncio.Task[Any]] = set()
        for entry in self.watched:
            problems.extend(self._problems_of(entry, to_cancel))
        # Tasks started while the processors ran and still pending: the processors'
        # helpers (or the test's) that nobody ended. Never the test's own task.
        current = asyncio.current_task()
        strays = sorted(
            (
                task
                for task in asyncio.all_tasks(loop)
                if task is not current and task not in self._tasks_before
                and task not in to_cancel
            ),
            key=lambda task: task.get_name(),
        )
        if strays:
            owners = ", ".join(entry.label for entry in self.watched)
            problems.append(
                f"{len(strays)} task(s) started during the test are still pending after "
                f"{owners} stopped and cleaned up: "
                + ", ".join(task.get_name() for task in strays)
            )
            to_cancel.update(strays)
        for entry in self.watched:
            entry.detach()
        for task in to_cancel:
            task.cancel()
        if to_cancel:
            await asyncio.wait(to_cancel, timeout=5.0)
        return problems

    @staticmethod
    def _problems_of(entry: _Watched, to_cancel: set[asyncio.Task[Any]]) -> list[str]:
        processor = entry.processor
        name = entry.name
        problems: list[str] = []
        if entry.left_running:
            problems.append(
                f"{name} was still running when the test ended: the test started it, so "
                "the test must stop() it (and await await_cleanup()); the safety net "
                "stopped it"
            )
        tasks = processor.owned_tasks()
        if tasks:
            to_cancel.update(tasks)
            names = ", ".join(sorted(task.get_name() for task in tasks))
            problems.append(f"{name} leaked {len(tasks)} task(s) after await_cleanup(): {names}")
        timers = processor.owned_timer_handles()
        if timers:
            for timer in timers:
                timer.cancel()
            problems.append(
                f"{name} leaked {len(timers)} pending timer(s) after await_cleanup(): "
                + ", ".join(repr(timer) for timer in timers)
            )
        problems.extend(f"{name}: {message}" for message in entry.pairing.problems())
        seen = illegal_transitions(entry.transitions)
        problems.extend(f"{name}: {message}" for message in seen)
        problems.extend(
            f"{name}: at loop time {defect.at!r}: {defect.message}"
            for defect in illegal_transition_defects(processor, seen)
        )
        if processor.network_status is not NetworkStatus.STOPPED:
            problems.append(f"{name}: status is {processor.network_status.name} after stop()")
        return problems


# -- loop readers for the core's own tests ----------------------------------------------------
# These read the event loop directly (frame locals, the loop's private timer lists), which is
# what the NetworkProcessor tests want: a check of the processor that does not trust its own
# report. The plugin and NetworkProcessorMachine use only the processor's public report.


def _owned_tasks(
    processor: NetworkProcessor, loop: asyncio.AbstractEventLoop
) -> list[asyncio.Task[Any]]:
    """Pending tasks on ``loop`` whose coroutine holds ``processor`` in a local variable.

    That covers the processor's own methods (``self``) and helpers it was handed to.
    """
    owned: list[asyncio.Task[Any]] = []
    for task in asyncio.all_tasks(loop):
        frame = getattr(task.get_coro(), "cr_frame", None)
        if frame is None:
            continue
        if any(value is processor for value in frame.f_locals.values()):
            owned.append(task)
    return owned


def _owned_timers(
    processor: NetworkProcessor, loop: asyncio.AbstractEventLoop
) -> list[asyncio.Handle]:
    """Timers and scheduled callbacks on ``loop``, not cancelled and not yet run, whose
    callback is a method of ``processor`` or takes it as an argument: between attempts, the
    idle timer of its check loop (``NetworkProcessor.check_loop_active``) is exactly one of
    these (or, once it fired, the callback it scheduled to start the next attempt).

    Reads the loop's timer heap (``_timers`` of the virtual-time loop, ``_scheduled`` of any
    other asyncio event loop) and its ready queue (``_ready``).
    """
    virtual = getattr(loop, "_timers", None)
    if virtual is not None:
        handles: list[object] = [entry[2] for entry in virtual]
    else:
        handles = list(getattr(loop, "_scheduled", ()))
    handles.extend(getattr(loop, "_ready", ()))
    owned: list[asyncio.Handle] = []
    for handle in handles:
        if not isinstance(handle, asyncio.Handle) or handle.cancelled():
            continue
        callback = getattr(handle, "_callback", None)
        arguments = getattr(handle, "_args", None) or ()
        if getattr(callback, "__self__", None) is processor or any(
            argument is processor for argument in arguments
        ):
            owned.append(handle)
    return owned


def _is_attempt_task(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` runs one attempt of a NetworkProcessor's check loop."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_name == "_run_attempt"


def _check_loop_parts(
    processor: NetworkProcessor, loop: asyncio.AbstractEventLoop
) -> tuple[list[asyncio.Task[Any]], list[asyncio.Handle]]:
    """What ``processor``'s check loop consists of on ``loop``, read from the loop itself:
    (pending attempt tasks, pending idle timers). While the loop runs that is exactly one
    task and no timer, or no task and one timer; after ``pause()``/``stop()``, nothing."""
    attempts = [task for task in _owned_tasks(processor, loop) if _is_attempt_task(task)]
    return attempts, _owned_timers(processor, loop)


def illegal_transition_defects(
    processor: NetworkProcessor, already_reported: list[str]
) -> list[ProcessorDefect]:
    """The processor's own ``illegal_transition`` defects not among ``already_reported``
    (a core that refuses an illegal change records it here only; one that makes it shows
    it to status listeners too)."""
    return [
        defect
        for defect in processor.recorded_defects
        if defect.kind == "illegal_transition"
        and not any(defect.message in message for message in already_reported)
    ]


def safety_net(request: pytest.FixtureRequest, clock: FakeClock) -> SafetyNet:
    """The test's one SafetyNet, shared by ``fake_network_processor`` and ``managed_processor``."""
    node: pytest.Item = request.node
    net = node.stash.get(_SAFETY_NET, None)
    if net is None:
        net = node.stash[_SAFETY_NET] = SafetyNet(clock)
    return net


def _running_loop_for(fixture: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{fixture}(...) starts the processor on the test's fake-clock loop, so call it "
            "from an async test (async def) or an async fixture"
        ) from None


class FakeNetworkProcessorFactory:
    """Builds ``FakeNetworkProcessor``s, started on the test's fake clock.

    Call it like the constructor (``outages=[(start, end), ...]`` selects
    ``FakeNetworkProcessor.with_outages``). Each processor without an explicit ``rng`` gets
    one derived from the chronopype seed, the test's node id and its creation number.
    """

    def __init__(self, net: SafetyNet, clock: FakeClock, seed: int, nodeid: str) -> None:
        self._net = net
        self._clock = clock
        self._seed = seed
        self._nodeid = nodeid
        self.processors: list[FakeNetworkProcessor] = []

    @property
    def seed(self) -> int:
        return self._seed

    def __call__(
        self,
        script: Iterable[Step] = (),
        *,
        outages: Iterable[tuple[float, float]] | None = None,
        rng: random.Random | None = None,
        **kwargs: Any,
    ) -> FakeNetworkProcessor:
        _running_loop_for("fake_network_processor")
        if rng is None:
            rng = derive_rng(
                self._seed, self._nodeid, f"fake_network_processor#{len(self.processors)}"
            )
        if outages is None:
            processor = FakeNetworkProcessor(script, rng=rng, **kwargs)
        else:
            processor = FakeNetworkProcessor.with_outages(outages, script=script, rng=rng, **kwargs)
        label = f"fake_network_processor #{len(self.processors) + 1}"
        self._net.watch(label, processor, started_by_net=True)
        processor.start(self._clock.time())
        self.processors.append(processor)
        return processor


_P = TypeVar("_P", bound=NetworkProcessor)


class ManagedProcessorFactory:
    """``managed_processor(processor)``: puts your own ``NetworkProcessor`` under the same
    safety net as the fake's, and returns it.

    A processor that is not started yet is started on the test's fake clock (at the clock's
    wall time) and stopped by the net after the test body. One the test started itself the
    test must also stop: if it is still running when the test body ends, the test fails
    (the net stops it anyway). Either way, after the body the net stops it, awaits
    ``await_cleanup()`` and fails the test on a leaked task or timer, an unpaired
    ``start_network()``/``stop_network()``, an illegal transition or a status other than
    STOPPED. Hand the processor over before it starts to have every hook call counted.
    """

    def __init__(self, net: SafetyNet, clock: FakeClock) -> None:
        self._net = net
        self._clock = clock
        self.processors: list[NetworkProcessor] = []

    def __call__(self, processor: _P) -> _P:
        if not isinstance(processor, NetworkProcessor):
            raise TypeError(
                f"managed_processor() takes a NetworkProcessor, got {type(processor).__name__}"
            )
        _running_loop_for("managed_processor")
        started_here = not processor.state.is_active
        label = f"managed_processor #{len(self.processors) + 1}"
        self._net.watch(label, processor, started_by_net=started_here)
        if started_here:
            processor.start(self._clock.time())
        self.processors.append(processor)
        return processor


class TransitionRecorderFactory:
    """Attaches ``TransitionRecorder``s that print the test's seed; detaches them at teardown."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.recorders: list[TransitionRecorder] = []

    def __call__(self, processor: NetworkProcessor) -> TransitionRecorder:
        recorder = TransitionRecorder(processor, seed=self._seed)
        self.recorders.append(recorder)
        return recorder

    def close(self) -> None:
        for recorder in self.recorders:
            recorder.close()


def finish_at_teardown(net: SafetyNet) -> None:
    # Normally done already, right after the test body (see then_clean_up and the plugin).
    problems = net.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# -- running a test under the safety net -----------------------------------------------------


def cleanup_failure(problems: list[str]) -> str:
    return "\n".join(["chronopype cleanup after the test body:", *problems])


def safety_net_of(item: pytest.Item) -> SafetyNet | None:
    return item.stash.get(_SAFETY_NET, None)


def then_clean_up(
    test: Callable[..., Coroutine[Any, Any, object]], net: SafetyNet
) -> Callable[..., Coroutine[Any, Any, None]]:
    """The async test, followed on its own loop by the processors' cleanup.

    Cleaning up before the loop ends is what lets a leaked task be seen at all: once the
    runner closes the loop, it has cancelled every task that was left. When the test body
    fails, its error propagates unchanged; the cleanup then runs from the hook (``finish()``)
    and its findings go to a report section after the error.
    """

    @functools.wraps(test)
    async def test_then_clean_up(*args: Any, **kwargs: Any) -> None:
        await test(*args, **kwargs)
        problems = await net.finish_in_loop()
        if problems:
            pytest.fail(cleanup_failure(problems), pytrace=False)

    return test_then_clean_up
