"""Where blocked tasks wait: short await chains for VirtualTimeDeadlock and friends.

A task's await chain runs from its coroutine inward (``cr_await``) to the future it
waits on. Only the user's own frames are shown: frames of the standard library,
installed packages and chronopype itself are hidden, so the first line of each chain
is a line the user wrote.
"""

from __future__ import annotations

import asyncio
import os
import sysconfig
from collections.abc import Iterable
from typing import Any

import chronopype
import chronopype_testing

__all__ = ["describe_blocked_tasks"]

# At most this many tasks and user frames per task, so a report stays under ~30 lines.
_MAX_TASKS = 8
_MAX_FRAMES = 3


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {
        paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths
    }
    for package in (chronopype, chronopype_testing):
        roots.add(os.path.dirname(os.path.abspath(package.__file__ or "")))
    return tuple(os.path.join(os.path.abspath(root), "") for root in roots if root)


_LIBRARY_ROOTS = _library_roots()


def _is_user_file(filename: str) -> bool:
    return not os.path.abspath(filename).startswith(_LIBRARY_ROOTS)


def _await_chain(task: asyncio.Task[Any]) -> tuple[list[str], str]:
    """The task's frames from the outside in as ``file:line in name``, and what it awaits."""
    frames: list[tuple[str, bool]] = []
    awaitable: Any = task.get_coro()
    innermost: Any = None
    while awaitable is not None:
        frame = (
            getattr(awaitable, "cr_frame", None)
            or getattr(awaitable, "gi_frame", None)
            or getattr(awaitable, "ag_frame", None)
        )
        if frame is None:
            innermost = awaitable
            break
        filename = frame.f_code.co_filename
        name = getattr(awaitable, "__qualname__", "?")
        frames.append((f"{_short(filename)}:{frame.f_lineno} in {name}", _is_user_file(filename)))
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
    shown = [text for text, mine in frames if mine]
    if not shown and frames:
        shown = [frames[-1][0]]  # nothing of the user's: the innermost frame at least
    return shown[-_MAX_FRAMES:], _what_it_awaits(innermost)


def _what_it_awaits(awaitable: Any) -> str:
    if awaitable is None:
        return ""
    # A future's __await__ iterator is opaque: the future is not reachable from it.
    if isinstance(awaitable, asyncio.Future) or type(awaitable).__name__ == "FutureIter":
        return "a future"
    return type(awaitable).__name__


def _short(filename: str) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith(os.pardir) else relative


def describe_blocked_tasks(tasks: Iterable[asyncio.Task[Any]]) -> list[str]:
    """Lines naming each pending task and its await chain, user frames only."""
    pending = sorted((task for task in tasks if not task.done()), key=lambda t: t.get_name())
    lines: list[str] = []
    for task in pending[:_MAX_TASKS]:
        frames, awaits = _await_chain(task)
        lines.append(f"  - task {task.get_name()}" + (f" (awaiting {awaits})" if awaits else ""))
        lines.extend(f"      {frame}" for frame in frames)
    if len(pending) > _MAX_TASKS:
        lines.append(f"  ... and {len(pending) - _MAX_TASKS} more tasks")
    if not pending:
        lines.append("  (none: the loop was asked to run with nothing to do)")
    return lines
