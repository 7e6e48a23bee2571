"""Clocks that drive processors: a fast backtest replay and a wall-clock realtime one."""

from chronopype.clocks.backtest import BacktestClock
from chronopype.clocks.base import BaseClock, ErrorCallback, ProcessorStats
from chronopype.clocks.config import ClockConfig, ClockMode
from chronopype.clocks.errors import ClockContextError, ClockError, ProcessorTimeoutError
from chronopype.clocks.events import ClockEvent, ClockStartEvent, ClockStopEvent, ClockTickEvent
from chronopype.clocks.realtime import RealtimeClock

__all__ = [
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
]
