"""The asyncio plumbing NetworkProcessor and the clocks need for speed and hostile callbacks.

Written once, here, so that ``network.py`` reads as the state machine it is, and a clock's
``async_tick`` calls get the same guarantees as a processor's checks and hooks:

- ``begin_call`` + ``await_bounded``: call a check or hook and await it until a deadline,
  running it first to its first suspension (most checks never suspend, and those need no
  timer), telling a cancellation the caller requested from one the callee leaked, and
  abandoning a callee that swallows the deadline's cancellation for longer than a grace
  period (``finish_abandoned`` is what then drives it).
- ``start_task``: create a task, eagerly on Python 3.12+ when asked.
- ``timer_context()``: an empty context per thread for timer callbacks that start tasks
  eagerly (an eager task enters its own context, which therefore must not be the caller's).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = [
    "EAGER_START",
    "Abandon",
    "await_bounded",
    "begin_call",
    "finish_abandoned",
    "start_task",
    "timer_context",
]

#: Python 3.12+ can start a task eagerly: an attempt whose check and hooks finish without
#: suspending then runs to its end in the callback that starts it, and its task never waits in
#: the loop's ready queue (in a saturated loop, thousands of them would).
EAGER_START = sys.version_info >= (3, 12)

_CoroutineType = types.CoroutineType

#: Receives a coroutine given up on (still suspended), the cancellation to deliver to it, and
#: the label ``await_bounded`` was given.
Abandon = Callable[[Coroutine[Any, Any, Any], BaseException, str], None]


class _TimerContexts(threading.local):
    def __init__(self) -> None:
        self.context = contextvars.Context()


_timer_contexts = _TimerContexts()


def timer_context() -> contextvars.Context:
    """The calling thread's empty context for timer callbacks that may start eager tasks."""
    return _timer_contexts.context


def start_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    *,
    name: str,
    context: contextvars.Context | None,
    eager: bool,
) -> asyncio.Task[None]:
    """``loop.create_task(coro)``, or, when ``eager`` (3.12+ only), a task started at once."""
    if eager:
        return asyncio.Task(  # type: ignore[call-arg]  # eager_start is new in 3.12
            coro, loop=loop, name=name, context=context, eager_start=True
        )
    return loop.create_task(coro, name=name, context=context)


class _Grace:
    """Armed when a callee survived a cancellation: when it fires, the callee is abandoned."""

    __slots__ = ("fired", "handle", "task")

    def __init__(self, task: asyncio.Task[Any], seconds: float) -> None:
        self.fired = False
        self.task = task
        self.handle = task.get_loop().call_later(seconds, self.fire)

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


@types.coroutine
def _drive(
    coro: Coroutine[Any, Any, Any],
    pending: object,
    grace_seconds: float,
    abandon: Abandon,
    label: str,
) -> Generator[Any, None, Any]:
    """Await ``coro``, which already ran up to its first suspension, where it yielded
    ``pending``: hand that to the task and go on as a plain ``await coro`` would, except that
    once ``coro`` survives a cancellation it gets ``grace_seconds`` to finish; then it is
    handed to ``abandon`` and the cancellation that ended the grace propagates here."""
    grace: _Grace | None = None
    try:
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation: deliver it to the callee
                if grace is not None and grace.fired:
                    grace.task.uncancel()  # our own request; the caller sees the one before
                    abandon(coro, exc, label)
                    raise
                try:
                    pending = coro.throw(exc)
                except StopIteration as finished:
                    return finished.value
                if grace is None:  # it swallowed the cancellation and waits on
                    task = asyncio.current_task()
                    if task is not None:
                        grace = _Grace(task, grace_seconds)
                continue
            try:
                pending = coro.send(None)
            except StopIteration as finished:
                return finished.value
    finally:
        if grace is not None:
            grace.handle.cancel()


async def _awaiting(awaitable: Any) -> Any:
    return await awaitable


def begin_call(
    call: Callable[..., Any], *args: Any
) -> tuple[Coroutine[Any, Any, Any] | None, Any, BaseException | None]:
    """Call ``call(*args)`` and run what it returns up to its first suspension.

    ``(coroutine, what it yielded, None)`` if it suspended, for ``await_bounded``; else
    ``(None, its result, None)`` or ``(None, None, what it raised)``. A callee that finishes
    without suspending (a pool's cached state, a flag, the default no-op hooks) can never be
    timed out by the loop, so it needs no timer and no task switch. A ``CancelledError``
    raised here, synchronously, was never requested: it is a failure like any other.
    """
    try:
        awaitable = call(*args)
        coro = awaitable if type(awaitable) is _CoroutineType else _awaiting(awaitable)
        return coro, coro.send(None), None
    except StopIteration as finished:
        return None, finished.value, None
    except (Exception, asyncio.CancelledError) as exc:
        return None, None, exc


async def await_bounded(
    coro: Coroutine[Any, Any, Any],
    pending: object,
    deadline: float,
    grace_seconds: float,
    abandon: Abandon,
    label: str,
) -> tuple[object, BaseException | None, bool]:
    """Await ``coro`` (suspended by ``begin_call`` where it yielded ``pending``) until loop
    time ``deadline``: (its result, what it raised or None, whether the deadline expired).

    The deadline counts even if the callee swallowed its cancellation; one that keeps waiting
    ``grace_seconds`` past that is abandoned (see ``_drive``). A ``CancelledError`` the callee
    raises while nobody cancelled the current task (``Task.cancelling()`` is 0) is a failure
    like any other; a requested cancellation propagates.
    """
    deadline_scope = asyncio.timeout_at(deadline)
    result: object = None
    failure: BaseException | None = None
    try:
        async with deadline_scope:
            result = await _drive(coro, pending, grace_seconds, abandon, label)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise
        failure = exc
    except Exception as exc:
        failure = exc
    return result, failure, deadline_scope.expired()


class _Continuation(Coroutine[Any, Any, None]):
    """The body of an abandoned callee's own task: delivers ``exc`` to the suspended ``coro``
    and drives it to its end, its result and failure ignored.

    A coroutine object of its own rather than an ``async def``: a task cancelled before its
    first step never runs an ``async def`` body at all, which would drop ``coro`` suspended
    (to be closed by the garbage collector, wherever that happens to run). This one hands
    that first cancellation to ``coro`` like any other."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], exc: BaseException) -> None:
        self._coro = coro
        self._pending: BaseException | None = exc

    def send(self, value: Any) -> Any:
        pending, self._pending = self._pending, None
        if pending is not None:
            return self._forward(pending)
        try:
            return self._coro.send(None)
        except StopIteration:
            raise StopIteration from None
        except (Exception, asyncio.CancelledError):
            raise StopIteration from None

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._pending = None
        return self._forward(typ if isinstance(typ, BaseException) else typ())

    def _forward(self, exc: BaseException) -> Any:
        try:
            return self._coro.throw(exc)
        except (StopIteration, Exception, asyncio.CancelledError):
            raise StopIteration from None

    def close(self) -> None:
        self._coro.close()

    def __next__(self) -> Any:
        return self.send(None)

    def __iter__(self) -> _Continuation:
        return self

    def __await__(self) -> Generator[Any, None, None]:
        return self


def finish_abandoned(
    coro: Coroutine[Any, Any, Any], exc: BaseException
) -> Coroutine[Any, Any, None]:
    """What an abandoned callee's own task runs (see ``_Continuation``)."""
    return _Continuation(coro, exc)
