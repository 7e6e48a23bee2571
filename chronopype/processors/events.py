"""What a NetworkProcessor tells its observers: one frozen value per fact.

``NetworkProcessor.add_observer(callback)`` calls ``callback(event)`` with one of the classes
below for every fact, in the order the facts happen. Events are built only while at least one
observer (or status listener) is attached, so an unobserved processor pays nothing.

Every event carries:

- ``processor``: the processor it is about (one observer can watch a whole fleet);
- ``at``: the event loop's time (``loop.time()``; on a FakeClock, virtual seconds);
- ``wall``: ``time.time()`` at the same moment;
- ``run``: the identity of the ``start()``/``resume()`` the event belongs to: 1 for the first
  ``start()``, then one more for every ``start()`` or ``resume()`` of that processor. Every
  attempt, wait and hook of one check loop carries its run, so "after resume()" is
  ``event.run != earlier.run``; ``pause()``/``stop()`` and what they change carry the run they
  ended (or, for a ``stop()`` while paused, the last one).

The facts, in the order of one failed attempt from CONNECTED::

    CheckStarted -> CheckFinished(outcome=NOT_CONNECTED) -> StatusChanged(CONNECTED,
    DISCONNECTING) -> HookStarted("on_disconnected") -> HookFinished -> HookStarted(
    "stop_network") -> HookFinished -> StatusChanged(DISCONNECTING, NOT_CONNECTED) ->
    WaitScheduled(BACKOFF, delay, retry_count=1)

``WaitScheduled.at`` is when the wait begins (the end of the attempt, hooks included): the
next ``CheckStarted`` of the same run comes at exactly ``at + delay`` unless ``pause()`` or
``stop()`` (a ``LoopPaused``/``LoopStopped``) comes first. A check interrupted by ``pause()``
or ``stop()`` has a ``CheckStarted`` and no ``CheckFinished``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from chronopype.processors.machine import AttemptOutcome, NetworkStatus, WaitKind

if TYPE_CHECKING:
    from chronopype.processors.network import NetworkProcessor

__all__ = [
    "CheckFinished",
    "CheckStarted",
    "HookFailed",
    "HookFinished",
    "HookName",
    "HookStarted",
    "LoopPaused",
    "LoopStarted",
    "LoopStopped",
    "Observer",
    "ProcessorEvent",
    "StatusChanged",
    "WaitScheduled",
]

_Event = TypeVar("_Event", bound=type[Any])


def _fast_init(cls: _Event) -> _Event:
    """Give a frozen, slotted dataclass an ``__init__`` that sets each slot through its
    descriptor. The generated one goes through ``object.__setattr__`` for every field (about
    3x slower), and an observed processor builds about three events per check."""
    names = [field.name for field in fields(cls)]
    namespace: dict[str, Any] = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    parameters = []
    for field in fields(cls):
        if field.default is MISSING:
            parameters.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            parameters.append(f"{field.name}=_default_{field.name}")
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    source = f"def __init__(self, {', '.join(parameters)}):\n{body}"
    exec(source, namespace)  # our own field names, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls


#: The hooks whose runs are reported.
HookName = Literal["start_network", "stop_network", "on_connected", "on_disconnected"]


@dataclass(frozen=True, slots=True)
class ProcessorEvent:
    """Fields every event has (see the module docstring)."""

    processor: NetworkProcessor
    at: float
    wall: float
    run: int


@_fast_init
@dataclass(frozen=True, slots=True)
class StatusChanged(ProcessorEvent):
    """The status changed from ``old`` to ``new`` (what status listeners hear)."""

    old: NetworkStatus
    new: NetworkStatus


@_fast_init
@dataclass(frozen=True, slots=True)
class CheckStarted(ProcessorEvent):
    """``check_network()`` begins; ``status`` is the status while it runs (CONNECTING or
    CONNECTED)."""

    status: NetworkStatus


@_fast_init
@dataclass(frozen=True, slots=True)
class CheckFinished(ProcessorEvent):
    """``check_network()`` ended (returned, raised or timed out) after ``duration`` seconds of
    loop time, classified as ``outcome``. ``error`` is what it raised (or the TimeoutError /
    TypeError standing for a timeout or a bad value), else None."""

    outcome: AttemptOutcome
    duration: float
    error: BaseException | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class WaitScheduled(ProcessorEvent):
    """The wait before the next attempt begins now: ``kind`` (interval, backoff or error
    wait), ``delay`` seconds, after which ``retry_count`` consecutive failures stand (0 after a
    success; the ``n`` of ``backoff_delay(n)`` for a backoff)."""

    kind: WaitKind
    delay: float
    retry_count: int


@_fast_init
@dataclass(frozen=True, slots=True)
class HookStarted(ProcessorEvent):
    """A hook begins."""

    hook: HookName


@_fast_init
@dataclass(frozen=True, slots=True)
class HookFinished(ProcessorEvent):
    """A hook returned after ``duration`` seconds of loop time."""

    hook: HookName
    duration: float


@_fast_init
@dataclass(frozen=True, slots=True)
class HookFailed(ProcessorEvent):
    """A hook raised, or ran over ``hook_timeout`` (``error`` is then a TimeoutError)."""

    hook: HookName
    duration: float
    error: BaseException


@_fast_init
@dataclass(frozen=True, slots=True)
class LoopStarted(ProcessorEvent):
    """``start()`` (``resumed`` False) or ``resume()`` (True) began the check loop ``run``."""

    resumed: bool


@_fast_init
@dataclass(frozen=True, slots=True)
class LoopPaused(ProcessorEvent):
    """The check loop ``run`` ended while the processor stays active: ``pause()``, or
    (``cancelled_from_outside``) its attempt task was cancelled by someone else."""

    cancelled_from_outside: bool = False


@_fast_init
@dataclass(frozen=True, slots=True)
class LoopStopped(ProcessorEvent):
    """``stop()`` made the processor inactive."""


#: What ``add_observer`` takes.
Observer = Callable[[ProcessorEvent], None]
