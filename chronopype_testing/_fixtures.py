"""pytest fixtures and hooks for scripted processors, recorders and seeds.

``chronopype_testing.plugin`` imports everything public here, so the ``chronopype``
plugin entry point provides it. Nothing here needs pytest-asyncio: processors start on
the running fake-clock loop of the test, and their cleanup runs right after the test body
(as part of the test's call phase, so a leak or a broken pairing fails the test itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import random
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype_testing import _recorder
from chronopype_testing._fakes import FakeNetworkProcessor, Step
from chronopype_testing._recorder import TransitionRecorder, illegal_transitions, seed_line

if TYPE_CHECKING:
    from chronopype_testing._loop import FakeClock

__all__ = [
    "DEFAULT_SEED",
    "FakeNetworkProcessorFactory",
    "TransitionRecorderFactory",
    "chronopype_rng",
    "derive_rng",
    "fake_network_processor",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "session_seed",
    "transition_recorder",
]

#: The seed used when neither ``--chronopype-seed`` nor the ``chronopype_seed`` ini value is
#: given. Fixed, so that a plain ``pytest`` run is reproducible with no flags at all.
DEFAULT_SEED = 0

#: Fixtures whose values depend on the seed; a failing test that used one prints the seed.
SEEDED_FIXTURES = frozenset({"fake_network_processor", "transition_recorder", "chronopype_rng"})

_SEED = pytest.StashKey[int]()
_FACTORY = pytest.StashKey["FakeNetworkProcessorFactory"]()


def session_seed(config: pytest.Config) -> int:
    """``--chronopype-seed``, else the ``chronopype_seed`` ini value, else ``DEFAULT_SEED``."""
    seed = config.stash.get(_SEED, None)
    if seed is not None:
        return seed
    option = config.getoption("chronopype_seed", default=None)
    if option is not None:
        seed = int(option)
    else:
        text = str(config.getini("chronopype_seed") or "").strip()
        try:
            seed = int(text) if text else DEFAULT_SEED
        except ValueError:
            raise pytest.UsageError(
                f"ini option chronopype_seed must be an integer, got {text!r}"
            ) from None
    config.stash[_SEED] = seed
    return seed


def derive_rng(seed: int, nodeid: str, label: str) -> random.Random:
    """An rng that depends only on the seed, the test's node id and what it is for.

    String seeds are hashed with SHA-512 by ``random.Random``, so the result is the same in
    every process, whatever ``PYTHONHASHSEED`` is.
    """
    return random.Random(f"{seed}:{nodeid}:{label}")


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


class FakeNetworkProcessorFactory:
    """Builds ``FakeNetworkProcessor``s, started on the test's fake clock.

    Call it like the constructor (``outages=[(start, end), ...]`` selects
    ``FakeNetworkProcessor.with_outages``). Each processor without an explicit ``rng`` gets
    one derived from the chronopype seed, the test's node id and its creation number.
    """

    def __init__(self, clock: FakeClock, seed: int, nodeid: str) -> None:
        self._clock = clock
        self._seed = seed
        self._nodeid = nodeid
        self._loop: asyncio.AbstractEventLoop | None = None
        self.processors: list[FakeNetworkProcessor] = []
        self._finished = False

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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "fake_network_processor(...) starts the processor on the test's fake-clock "
                "loop, so call it from an async test (async def) or an async fixture"
            ) from None
        if self._finished:
            raise RuntimeError("fake_network_processor(...) called after the test's cleanup ran")
        if self._loop is not None and loop is not self._loop:
            raise RuntimeError("fake_network_processor(...) called from a different event loop")
        if rng is None:
            rng = derive_rng(
                self._seed, self._nodeid, f"fake_network_processor#{len(self.processors)}"
            )
        if outages is None:
            processor = FakeNetworkProcessor(script, rng=rng, **kwargs)
        else:
            processor = FakeNetworkProcessor.with_outages(outages, script=script, rng=rng, **kwargs)
        self._loop = loop
        processor.start(self._clock.time())
        self.processors.append(processor)
        return processor

    # -- cleanup -----------------------------------------------------------------------------

    async def finish_in_loop(self) -> list[str]:
        """Like ``finish()``, from a coroutine on the processors' own (running) loop."""
        if self._finished or not self.processors:
            self._finished = True
            return []
        if asyncio.get_running_loop() is not self._loop:
            return []  # finish() will do it once this loop is idle or gone
        self._finished = True
        autojump = self._clock.autojump
        self._clock.autojump = True
        try:
            return await self._cleanup()
        finally:
            self._clock.autojump = autojump

    def finish(self) -> list[str]:
        """Stop every processor, await its cleanup, and return what went wrong (idempotent).

        Runs on the processors' loop if it is still open, else on a new loop of the clock.
        """
        if self._finished or not self.processors:
            self._finished = True
            return []
        self._finished = True
        loop = self._loop
        autojump = self._clock.autojump
        # Cleanup may have to wait out hook timeouts; virtual time makes that free.
        self._clock.autojump = True
        try:
            if loop is not None and not loop.is_closed() and not loop.is_running():
                return loop.run_until_complete(self._cleanup())
            # The loop is gone (the test ran under FakeClock.run): the clock makes a new one,
            # continuing at the same virtual time, and stop_network() runs there.
            return self._clock.run(self._cleanup())
        finally:
            self._clock.autojump = autojump

    async def _cleanup(self) -> list[str]:
        loop = asyncio.get_running_loop()
        for processor in self.processors:
            processor.stop()
        for processor in self.processors:
            await processor.await_cleanup(timeout=processor.hook_timeout * 2 + 5.0)
        await self._clock.run_until_idle()
        problems: list[str] = []
        leaked: list[asyncio.Task[Any]] = []
        for number, processor in enumerate(self.processors, start=1):
            name = f"fake_network_processor #{number} ({processor!r})"
            tasks = _owned_tasks(processor, loop)
            if tasks:
                leaked.extend(tasks)
                names = ", ".join(sorted(task.get_name() for task in tasks))
                problems.append(
                    f"{name} leaked {len(tasks)} task(s) after await_cleanup(): {names}"
                )
            timers = _owned_timers(processor, loop)
            if timers:
                for timer in timers:
                    timer.cancel()
                problems.append(
                    f"{name} leaked {len(timers)} pending timer(s) after await_cleanup(): "
                    + ", ".join(repr(timer) for timer in timers)
                )
            problems.extend(f"{name}: {message}" for message in processor.pairing_violations)
            if processor.start_network_calls != processor.stop_network_calls:
                problems.append(
                    f"{name}: start_network() ran {processor.start_network_calls} time(s) but "
                    f"stop_network() {processor.stop_network_calls} time(s)"
                )
            problems.extend(
                f"{name}: {message}" for message in illegal_transitions(processor.transitions)
            )
            problems.extend(  # refused by the processor, so absent from its transitions
                f"{name}: at loop time {defect.at!r}: {defect.message}"
                for defect in processor.recorded_defects
                if defect.kind == "illegal_transition"
            )
            if processor.network_status is not NetworkStatus.STOPPED:
                problems.append(f"{name}: status is {processor.network_status.name} after stop()")
        for task in leaked:
            task.cancel()
        if leaked:
            await asyncio.wait(leaked)
        return problems


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


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def fake_network_processor(
    request: pytest.FixtureRequest, fake_clock: FakeClock
) -> Generator[FakeNetworkProcessorFactory, None, None]:
    """Factory for scripted ``chronopype_testing.FakeNetworkProcessor``s, returned started.

    ``fake_network_processor([Step.connected(), Step.not_connected(times=3)], then=...,
    outages=[(60, 120)], start_network=Step.hangs(), check_network_interval=...)`` takes the
    constructor's arguments, builds the processor and starts it on this test's fake clock,
    so call it from an async test. Each processor's rng derives from ``--chronopype-seed``
    and the test's node id. Right after the test body every processor is stopped and its
    cleanup awaited; the test fails if a task leaked, the start/stop_network pairing broke,
    or a transition was illegal.
    """
    factory = FakeNetworkProcessorFactory(
        fake_clock, session_seed(request.config), request.node.nodeid
    )
    request.node.stash[_FACTORY] = factory
    yield factory
    # Normally done already, right after the test body (see pytest_runtest_call).
    problems = factory.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def transition_recorder(
    request: pytest.FixtureRequest,
) -> Generator[TransitionRecorderFactory, None, None]:
    """Factory: ``transition_recorder(processor)`` attaches a ``TransitionRecorder``.

    Works with any ``NetworkProcessor``, your own subclass included; attach before
    ``start()`` to record everything. Its failure messages (an ASCII timeline of expected
    and actual) name the seed to re-run with. Recorders detach at teardown.
    """
    factory = TransitionRecorderFactory(session_seed(request.config))
    yield factory
    factory.close()


@pytest.fixture
def chronopype_rng(request: pytest.FixtureRequest) -> random.Random:
    """A ``random.Random`` derived from ``--chronopype-seed`` and this test's node id.

    Pass it as ``rng=`` to your own ``NetworkProcessor`` so its backoff jitter reproduces.
    """
    return derive_rng(session_seed(request.config), request.node.nodeid, "chronopype_rng")


# -- hooks ---------------------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> str:
    return f"chronopype seed: {session_seed(config)}"


def _cleanup_problems(problems: list[str]) -> None:
    if problems:
        pytest.fail(
            "\n".join(["chronopype cleanup after the test body:", *problems]), pytrace=False
        )


def _then_clean_up(
    test: Callable[..., Coroutine[Any, Any, object]], factory: FakeNetworkProcessorFactory
) -> Callable[..., Coroutine[Any, Any, None]]:
    """The async test, followed on its own loop by the processors' cleanup.

    Cleaning up before the loop ends is what lets a leaked task be seen at all: once the
    runner closes the loop, it has cancelled every task that was left.
    """

    @functools.wraps(test)
    async def test_then_clean_up(*args: Any, **kwargs: Any) -> None:
        try:
            await test(*args, **kwargs)
        except Exception:
            with contextlib.suppress(Exception):  # the test's own failure matters more
                await factory.finish_in_loop()
            raise
        _cleanup_problems(await factory.finish_in_loop())

    return test_then_clean_up


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    previous_seed = _recorder._active_seed
    _recorder._active_seed = session_seed(item.config)
    factory = item.stash.get(_FACTORY, None)
    swapped: tuple[pytest.Function, object] | None = None
    if (
        factory is not None
        and isinstance(item, pytest.Function)
        and inspect.iscoroutinefunction(item.obj)
    ):
        swapped = (item, item.obj)
        item.obj = _then_clean_up(item.obj, factory)
    try:
        try:
            result = yield
        except BaseException:
            if factory is not None:
                try:
                    factory.finish()
                except Exception as cleanup_error:  # the test's own failure matters more
                    item.add_report_section(
                        "call",
                        "chronopype cleanup",
                        f"cleanup after the failure raised {cleanup_error!r}",
                    )
            raise
        _cleanup_problems(factory.finish() if factory is not None else [])
        return result
    finally:
        if swapped is not None:
            function, test = swapped
            function.obj = test
        _recorder._active_seed = previous_seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    uses_seed = SEEDED_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if report.failed and uses_seed and "chronopype seed:" not in report.longreprtext:
        report.sections.append(("chronopype seed", seed_line(session_seed(item.config))))
    return report
