"""Clocks as eventspype publishers, when eventspype is installed (as for every 0.8.3 user).

With eventspype, every clock is an ``eventspype`` ``MultiPublisher`` with 0.8.3's class-level
publications (``BaseClock.start_publication``, ``tick_publication``, ``stop_publication``), so
``add_subscriber``, ``add_subscriber_with_callback``, ``PublicationSubscription(BaseClock,
BaseClock.tick_publication, ...)`` and the rest work unchanged. Without it, the core stays
importable and ``clock.subscribe()`` is how events are received. eventspype is an optional
extra (``chronopype[eventspype]``): it needs Python 3.13, the core supports 3.11.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chronopype.clocks.events import ClockEvent, ClockStartEvent, ClockStopEvent, ClockTickEvent

__all__ = ["EVENTSPYPE_AVAILABLE", "ClockPublisher"]

# Imported by name, not statically: the core type-checks (and runs) without eventspype.
try:
    MultiPublisher: Any = importlib.import_module("eventspype.pub.multipublisher").MultiPublisher
    EventPublication: Any = importlib.import_module("eventspype.pub.publication").EventPublication
except ImportError:
    MultiPublisher = None

EVENTSPYPE_AVAILABLE = MultiPublisher is not None

if TYPE_CHECKING or MultiPublisher is None:

    class ClockPublisher:
        """Without eventspype there are no publications; ``clock.subscribe()`` still works."""

        start_publication: Any = None
        tick_publication: Any = None
        stop_publication: Any = None

        def __init__(self) -> None:
            pass

        def _wants(self, event_type: type[ClockEvent]) -> bool:
            return False

        def _publish_event(self, event: ClockEvent) -> None:
            pass

else:

    class ClockPublisher(MultiPublisher):
        """An eventspype ``MultiPublisher`` with 0.8.3's three clock publications."""

        start_publication = EventPublication(event_class=ClockStartEvent, event_tag="clock_start")
        tick_publication = EventPublication(event_class=ClockTickEvent, event_tag="clock_tick")
        stop_publication = EventPublication(event_class=ClockStopEvent, event_tag="clock_stop")

        def __init__(self) -> None:
            MultiPublisher.__init__(self)
            # Publications that ever had a subscriber: publishing validates the publication
            # against the class hierarchy, too slow for every tick of a clock nobody watches.
            self._subscribed_events: set[type[ClockEvent]] = set()

        def add_subscriber(self, publication: Any, subscriber: Any) -> None:
            super().add_subscriber(publication, subscriber)
            self._subscribed_events.add(publication.event_class)

        def _wants(self, event_type: type[ClockEvent]) -> bool:
            return event_type in self._subscribed_events

        def _publish_event(self, event: ClockEvent) -> None:
            event_type = type(event)
            if event_type not in self._subscribed_events:
                return
            publication = _PUBLICATIONS[event_type]
            self.publish(getattr(type(self), publication), event)

    _PUBLICATIONS = {
        ClockStartEvent: "start_publication",
        ClockTickEvent: "tick_publication",
        ClockStopEvent: "stop_publication",
    }
