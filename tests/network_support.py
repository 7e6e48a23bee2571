"""A scripted NetworkProcessor that records what happened, and when, in loop time."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from chronopype import NetworkProcessor, NetworkStatus
from chronopype_testing import FakeClock

# A step says what one call does: return a status (checks only), raise, or run a coroutine.
Step = NetworkStatus | BaseException | Callable[[], Awaitable[object]] | None

CONNECTED = NetworkStatus.CONNECTED
NOT_CONNECTED = NetworkStatus.NOT_CONNECTED
CONNECTING = NetworkStatus.CONNECTING
DISCONNECTING = NetworkStatus.DISCONNECTING
ERROR = NetworkStatus.ERROR
STOPPED = NetworkStatus.STOPPED

LOGGER_NAME = "tests.network"


@dataclass(frozen=True)
class Event:
    name: str
    at: float
    status: NetworkStatus


def now() -> float:
    return asyncio.get_running_loop().time()


async def hang() -> None:
    """Block until cancelled (a bounded wait around it will cancel it)."""
    await asyncio.get_running_loop().create_future()


def sleeping(seconds: float, result: object = None) -> Callable[[], Awaitable[object]]:
    async def step() -> object:
        await asyncio.sleep(seconds)
        return result

    return step


def swallowing_cancel(result: object) -> Callable[[], Awaitable[object]]:
    """A step that waits an hour, but returns ``result`` when cancelled instead of ending."""

    async def step() -> object:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return result
        return result

    return step


class Scripted(NetworkProcessor):
    """Checks and hooks follow scripts; every call is recorded with its loop time and status."""

    LOGGER_NAME = LOGGER_NAME

    def __init__(
        self,
        checks: Iterable[Step] = (),
        *,
        then: Step = CONNECTED,
        seed: int = 0,
        start_network: Iterable[Step] = (),
        stop_network: Iterable[Step] = (),
        on_connected: Iterable[Step] = (),
        on_disconnected: Iterable[Step] = (),
    ) -> None:
        super().__init__(rng=random.Random(seed))
        self.checks: deque[Step] = deque(checks)
        self.then = then
        self.hook_steps: dict[str, deque[Step]] = {
            "start_network": deque(start_network),
            "stop_network": deque(stop_network),
            "on_connected": deque(on_connected),
            "on_disconnected": deque(on_disconnected),
        }
        self.events: list[Event] = []
        self.transitions: list[tuple[NetworkStatus, NetworkStatus]] = []
        self.add_status_listener(lambda old, new: self.transitions.append((old, new)))

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    def _record(self, name: str) -> None:
        try:
            at = now()
        except RuntimeError:  # a sync hook called by stop() outside any loop
            at = float("nan")
        self.events.append(Event(name, at, self.network_status))

    async def _run(self, step: Step) -> object:
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return await step()
        return step

    async def check_network(self) -> NetworkStatus:
        self._record("check")
        step = self.checks.popleft() if self.checks else self.then
        return await self._run(step)  # type: ignore[return-value]

    async def _hook(self, name: str) -> None:
        self._record(name)
        steps = self.hook_steps[name]
        if steps:
            await self._run(steps.popleft())
        self._record(name + " done")

    async def start_network(self) -> None:
        await self._hook("start_network")

    async def stop_network(self) -> None:
        await self._hook("stop_network")

    def _sync_hook(self, name: str) -> None:
        self._record(name)
        steps = self.hook_steps[name]
        step = steps.popleft() if steps else None
        if isinstance(step, BaseException):
            raise step

    def on_connected(self) -> None:
        super().on_connected()
        self._sync_hook("on_connected")

    def on_disconnected(self) -> None:
        super().on_disconnected()
        self._sync_hook("on_disconnected")

    # -- views used by assertions ----------------------------------------------------------

    def times(self, name: str) -> list[float]:
        return [event.at for event in self.events if event.name == name]

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def count(self, name: str) -> int:
        return sum(1 for event in self.events if event.name == name)


def twin_delays(seed: int, failures: Iterable[int]) -> list[float]:
    """The backoff delays a Scripted(seed=seed) draws for these consecutive-failure counts."""
    twin = Scripted(seed=seed)
    return [twin.backoff_delay(n) for n in failures]


def assert_paired(processor: Scripted, *, settled: bool) -> None:
    """start_network/stop_network calls alternate, starting with a start; when ``settled``
    (after stop() and await_cleanup()), every start has its stop."""
    calls = [e.name for e in processor.events if e.name in ("start_network", "stop_network")]
    for index, name in enumerate(calls):
        expected = "start_network" if index % 2 == 0 else "stop_network"
        assert name == expected, f"hook call #{index} was {name}: {calls}"
    if settled:
        assert len(calls) % 2 == 0, f"a start_network was never paired: {calls}"


def other_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


def check_loop_parts(processor: NetworkProcessor) -> tuple[int, int]:
    """(attempt tasks, idle timers) of ``processor``'s check loop, read from the running loop:
    (0, 1) between attempts, (1, 0) during one, (0, 0) when paused or stopped."""
    attempts, timers = loop_check_parts(processor, asyncio.get_running_loop())
    return len(attempts), len(timers)


def assert_check_loop(processor: NetworkProcessor, parts: tuple[int, int]) -> None:
    """The check loop is exactly ``parts`` (see ``check_loop_parts``), and the processor's
    own ``check_loop_active`` agrees."""
    assert check_loop_parts(processor) == parts
    assert processor.check_loop_active is (parts != (0, 0))


def assert_chain_consistent(processor: Scripted) -> None:
    """Every recorded transition starts where the previous one ended, and ends at the current
    status: no status change bypassed the listeners."""
    previous = STOPPED
    for old, new in processor.transitions:
        assert old is previous, processor.transitions
        assert new is not old
        previous = new
    assert previous is processor.network_status


def run_scenario(caplog: pytest.LogCaptureFixture, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on a FakeClock of its own, then collect garbage and fail on any
    "Task was destroyed but it is pending" from asyncio."""
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        await scenario()

    FakeClock().run(main())
    gc.collect()
    destroyed = [r for r in caplog.records if "Task was destroyed" in r.getMessage()]
    assert destroyed == []


# -- loop readers -------------------------------------------------------------------------------
# Test support, not the toolkit: these read the event loop directly (frame locals, the loop's
# private timer lists), which is what the NetworkProcessor tests want: a check of the processor
# that does not trust its own report. The plugin and NetworkProcessorMachine use only the
# processor's public report.


def owned_tasks_from_frames(
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


def owned_timers_from_loop(
    processor: NetworkProcessor, loop: asyncio.AbstractEventLoop
) -> list[asyncio.Handle]:
    """Timers and scheduled callbacks on ``loop``, not cancelled and not yet run, whose
    callback is a method of ``processor`` or takes it as an argument: between attempts, the
    idle timer of its check loop (``NetworkProcessor.check_loop_active``) is exactly one of
    these (or, once it fired, the callback it scheduled to start the next attempt).

    Reads the loop's timers (``_timers`` of the virtual-time loop: deadline -> its timers;
    ``_scheduled`` of any other asyncio event loop) and its ready queue (``_ready``).
    """
    virtual = getattr(loop, "_timers", None)
    if virtual is not None:
        handles: list[object] = [timer for bucket in virtual.values() for timer in bucket]
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


def is_attempt_task(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` runs one attempt of a NetworkProcessor's check loop."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_name == "_run_attempt"


def loop_check_parts(
    processor: NetworkProcessor, loop: asyncio.AbstractEventLoop
) -> tuple[list[asyncio.Task[Any]], list[asyncio.Handle]]:
    """What ``processor``'s check loop consists of on ``loop``, read from the loop itself:
    (pending attempt tasks, pending idle timers). While the loop runs that is exactly one
    task and no timer, or no task and one timer; after ``pause()``/``stop()``, nothing."""
    attempts = [task for task in owned_tasks_from_frames(processor, loop) if is_attempt_task(task)]
    return attempts, owned_timers_from_loop(processor, loop)
