"""The asyncio plumbing NetworkProcessor needs for speed and for hostile callbacks.

Written once, here, so that ``network.py`` reads as the state machine it is:

- ``bounded_call``: call a check or hook and await it until a deadline, running it first to
  its first suspension (most checks never suspend, and those need no timer), telling a
  cancellation the caller requested from one the callee leaked, and abandoning a callee that
  swallows the deadline's cancellation for longer than a grace period.
- ``start_task``: create a task, eagerly on Python 3.12+ when asked.
- ``TIMER_CONTEXT``: an empty context per thread for timer callbacks that start tasks
  eagerly (an eager task enters its own context, which therefore must not be the caller's).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ["EAGER_START", "Abandon", "bounded_call", "start_task", "timer_context"]

#: Python 3.12+ can start a task eagerly: an attempt whose check and hooks finish without
#: suspending then runs to its end in the callback that starts it, and its task never waits in
#: the loop's ready queue (in a saturated loop, thousands of them would).
EAGER_START = sys.version_info >= (3, 12)

_CoroutineType = types.CoroutineType

#: Receives a coroutine given up on (still suspended) and the cancellation to deliver to it.
Abandon = Callable[[Coroutine[Any, Any, Any], BaseException], None]


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
    coro: Coroutine[Any, Any, Any], pending: object, grace_seconds: float, abandon: Abandon
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
                    abandon(coro, exc)
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


async def bounded_call(
    call: Callable[[], Any], deadline: float, grace_seconds: float, abandon: Abandon
) -> tuple[object, BaseException | None, bool]:
    """Call ``call()`` and await what it returns until loop time ``deadline``: (its result,
    what it raised or None, whether the deadline expired).

    The deadline counts even if the callee swallowed its cancellation; one that keeps waiting
    ``grace_seconds`` past that is abandoned (see ``_drive``). A ``CancelledError`` the callee
    raises while nobody cancelled the current task (``Task.cancelling()`` is 0) is a failure
    like any other; a requested cancellation propagates.
    """
    try:
        awaitable = call()
        coro = awaitable if type(awaitable) is _CoroutineType else _awaiting(awaitable)
        pending = coro.send(None)
    except StopIteration as finished:  # never suspended: no timer needed
        return finished.value, None, False
    except (Exception, asyncio.CancelledError) as exc:  # raised synchronously: never requested
        return None, exc, False
    deadline_scope = asyncio.timeout_at(deadline)
    result: object = None
    failure: BaseException | None = None
    try:
        async with deadline_scope:
            result = await _drive(coro, pending, grace_seconds, abandon)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise
        failure = exc
    except Exception as exc:
        failure = exc
    return result, failure, deadline_scope.expired()


@types.coroutine
def _continue(coro: Coroutine[Any, Any, Any], exc: BaseException) -> Generator[Any, None, Any]:
    """Deliver ``exc`` to a suspended ``coro``, then await it to its end."""
    try:
        pending = coro.throw(exc)
    except StopIteration as finished:
        return finished.value
    while True:
        try:
            yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as thrown:
            try:
                pending = coro.throw(thrown)
            except StopIteration as finished:
                return finished.value
            continue
        try:
            pending = coro.send(None)
        except StopIteration as finished:
            return finished.value


async def finish_abandoned(coro: Coroutine[Any, Any, Any], exc: BaseException) -> None:
    """The body of an abandoned callee's own task: it runs on, its result ignored."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await _continue(coro, exc)
