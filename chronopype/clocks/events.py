"""Events a clock publishes, and the plain-callback hub that delivers them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from chronopype.clocks.config import ClockMode

if TYPE_CHECKING:
    from chronopype.processors import ProcessorState, TickProcessor

__all__ = ["ClockEvent", "ClockStartEvent", "ClockStopEvent", "ClockTickEvent", "EventHub"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClockEvent:
    """Base of every clock event; ``timestamp`` is the clock's timestamp when it was sent."""

    timestamp: float


@dataclass(frozen=True, slots=True)
class ClockStartEvent(ClockEvent):
    """Sent when ``async with clock`` is entered, after the processors were started."""

    mode: ClockMode
    tick_size: float


@dataclass(frozen=True, slots=True)
class ClockTickEvent(ClockEvent):
    """Sent after every processor due in a tick was ticked.

    ``processors`` are the processors that were ticked, in order (a list, as in 0.8.3);
    ``tick_counter`` counts the ticks since the context was entered, starting at 1.
    """

    tick_counter: int
    processors: list[TickProcessor]


@dataclass(frozen=True, slots=True)
class ClockStopEvent(ClockEvent):
    """Sent exactly once per context, however it ends.

    ``final_states`` maps each registered processor to a copy of its ``state`` when the
    processors had been stopped (0.8.3's field). ``error`` is the exception the ``async with``
    body (or the run) ended with, else None.
    """

    total_ticks: int
    final_states: dict[TickProcessor, ProcessorState] = field(default_factory=dict)
    error: BaseException | None = None


EventT = TypeVar("EventT", bound=ClockEvent)
_EVENT_TYPES = (ClockStartEvent, ClockTickEvent, ClockStopEvent)


class EventHub:
    """Delivers events to callbacks subscribed to their exact class.

    A callback that raises is logged and does not stop the clock or the other callbacks.
    Subscribing or unsubscribing from inside a callback applies from the next event.
    """

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        # Tuples, replaced on every change, so publishing never copies and never sees a
        # half-applied change.
        self._callbacks: dict[type[ClockEvent], tuple[Callable[[Any], object], ...]] = {}

    def subscribe(
        self, event_type: type[EventT], callback: Callable[[EventT], object]
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every ``event_type`` event; returns an unsubscriber.

        The unsubscriber removes this subscription only, and may be called more than once.
        """
        if event_type not in _EVENT_TYPES:
            raise TypeError(
                "event_type must be one of "
                f"{', '.join(t.__name__ for t in _EVENT_TYPES)}, got {event_type!r}"
            )
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        self._callbacks[event_type] = (*self._callbacks.get(event_type, ()), callback)
        subscribed = True

        def unsubscribe() -> None:
            nonlocal subscribed
            if not subscribed:
                return
            subscribed = False
            current = list(self._callbacks.get(event_type, ()))
            current.remove(callback)
            self._callbacks[event_type] = tuple(current)

        return unsubscribe

    def has_subscribers(self, event_type: type[ClockEvent]) -> bool:
        return bool(self._callbacks.get(event_type))

    def publish(self, event: ClockEvent) -> None:
        for callback in self._callbacks.get(type(event), ()):
            try:
                callback(event)
            except Exception:
                logger.exception("%s subscriber %r raised", type(event).__name__, callback)
