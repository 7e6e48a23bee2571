"""The base processor driven by a clock."""

from __future__ import annotations

from chronopype.processors.state import ProcessorState, validate_window_size

__all__ = ["TickProcessor"]


class TickProcessor:
    """Something a clock ticks.

    Lifecycle: ``start(timestamp)`` marks it active, ``stop()`` inactive; ``pause()`` and
    ``resume()`` mark it inactive and active again (0.8.3's meaning of ``is_active``: being
    ticked). Subclasses with background work (``NetworkProcessor``) override them to suspend that
    work while staying registered. ``tick``/``async_tick`` are the per-tick
    handlers; ``async_tick`` calls ``tick`` unless overridden.

    ``current_timestamp`` is ``state.last_timestamp`` (0.0 while that is None): set by ``start``
    and by whoever drives the ticks (the clock). Timing and error statistics go through
    ``record_execution`` and ``record_error``.
    """

    # "__dict__" because 0.8.3's processors took attributes (tests patch ``proc.tick``); the
    # dict is only allocated when one is set, so a slotted subclass pays one pointer for it.
    __slots__ = ("__dict__", "__weakref__", "_state")

    def __init__(self, stats_window_size: int = 100) -> None:
        self._state = ProcessorState(validate_window_size(stats_window_size))

    @property
    def state(self) -> ProcessorState:
        return self._state

    @property
    def current_timestamp(self) -> float:
        timestamp = self._state.last_timestamp
        return 0.0 if timestamp is None else timestamp

    def start(self, timestamp: float) -> None:
        self._state.last_timestamp = timestamp
        self._state.is_active = True

    def stop(self) -> None:
        self._state.is_active = False

    def pause(self) -> None:
        """Suspend: the state reads inactive until ``resume()`` (as in 0.8.3). Subclasses with
        background work (``NetworkProcessor``) override this to suspend that work instead."""
        self._state.is_active = False

    def resume(self) -> None:
        """Undo ``pause()``: the state reads active again. Only for a started processor (a
        clock calls it only for those)."""
        self._state.is_active = True

    def tick(self, timestamp: float) -> None:
        """Handle one tick; override in subclasses."""

    async def async_tick(self, timestamp: float) -> None:
        self.tick(timestamp)

    def record_execution(self, seconds: float) -> None:
        """Record a successful execution lasting ``seconds`` at the current timestamp."""
        self._state.record_execution(seconds, self._state.last_timestamp)

    def record_error(self, exc: BaseException, timestamp: float) -> None:
        self._state.record_error(exc, timestamp)
