"""chronopype: time-driven, network-aware processors.

``TickProcessor`` is what a clock ticks; ``NetworkProcessor`` keeps a connection healthy
(periodic checks, timeouts, backoff with jitter, paired start/stop hooks); the clocks
(``BacktestClock``, ``RealtimeClock``) drive them. Standard library only.
"""

from chronopype.clocks import (
    BacktestClock,
    BaseClock,
    ClockConfig,
    ClockMode,
    ClockStartEvent,
    ClockStopEvent,
    ClockTickEvent,
    RealtimeClock,
)
from chronopype.processors import NetworkProcessor, NetworkStatus, ProcessorState, TickProcessor

__all__ = [
    "BacktestClock",
    "BaseClock",
    "ClockConfig",
    "ClockMode",
    "ClockStartEvent",
    "ClockStopEvent",
    "ClockTickEvent",
    "NetworkProcessor",
    "NetworkStatus",
    "ProcessorState",
    "RealtimeClock",
    "TickProcessor",
]
