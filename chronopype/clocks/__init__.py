"""Clocks that drive processors: a fast backtest replay and a wall-clock realtime one."""

from chronopype.clocks.backtest import BacktestClock
from chronopype.clocks.base import BaseClock, ErrorCallback, ProcessorStats
from chronopype.clocks.config import ClockConfig, ClockMode
from chronopype.clocks.errors import ClockContextError, ClockError, ProcessorTimeoutError
from chronopype.clocks.events import ClockEvent, ClockStartEvent, ClockStopEvent, ClockTickEvent
from chronopype.clocks.realtime import RealtimeClock

# Which clock class implements each mode (0.8.3's registry, kept for its users).
CLOCK_REGISTRY: dict[ClockMode, type[BaseClock]] = {
    ClockMode.BACKTEST: BacktestClock,
    ClockMode.REALTIME: RealtimeClock,
}


def get_clock_class(mode: ClockMode) -> type[BaseClock]:
    """The clock class for ``mode``; ValueError if no clock implements it."""
    try:
        return CLOCK_REGISTRY[mode]
    except (KeyError, TypeError):
        raise ValueError(f"No clock implementation found for mode: {mode!r}") from None


__all__ = [
    "CLOCK_REGISTRY",
    "BacktestClock",
    "BaseClock",
    "ClockConfig",
    "ClockContextError",
    "ClockError",
    "ClockEvent",
    "ClockMode",
    "ClockStartEvent",
    "ClockStopEvent",
    "ClockTickEvent",
    "ErrorCallback",
    "ProcessorStats",
    "ProcessorTimeoutError",
    "RealtimeClock",
    "get_clock_class",
]
