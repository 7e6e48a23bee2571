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
from chronopype.processors import (
    LEGAL_TRANSITIONS,
    AttemptOutcome,
    Decision,
    NetworkProcessor,
    NetworkStatus,
    ProcessorDefect,
    ProcessorState,
    TickProcessor,
    WaitKind,
    decide,
)

__all__ = [
    "LEGAL_TRANSITIONS",
    "AttemptOutcome",
    "BacktestClock",
    "BaseClock",
    "ClockConfig",
    "ClockMode",
    "ClockStartEvent",
    "ClockStopEvent",
    "ClockTickEvent",
    "Decision",
    "NetworkProcessor",
    "NetworkStatus",
    "ProcessorDefect",
    "ProcessorState",
    "RealtimeClock",
    "TickProcessor",
    "WaitKind",
    "decide",
]
