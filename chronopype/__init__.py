"""chronopype: time-driven, network-aware processors.

``TickProcessor`` is what a clock ticks; ``NetworkProcessor`` keeps a connection healthy
(periodic checks, timeouts, backoff with jitter, paired start/stop hooks); the clocks
(``BacktestClock``, ``RealtimeClock``) drive them. Standard library only.
"""

from importlib.metadata import PackageNotFoundError, version

from chronopype.clocks import (
    BacktestClock,
    BaseClock,
    ClockConfig,
    ClockMode,
    ClockStartEvent,
    ClockStopEvent,
    ClockTickEvent,
    ProcessorStats,
    RealtimeClock,
)
from chronopype.exceptions import (
    ClockContextError,
    ClockError,
    ClockRuntimeError,
    ProcessorError,
    ProcessorTimeoutError,
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
from chronopype.runtime import ClockRuntime, ClockRuntimeConfig
from chronopype.time import Time, TimestampFormat

try:
    __version__ = version("chronopype")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "LEGAL_TRANSITIONS",
    "AttemptOutcome",
    "BacktestClock",
    "BaseClock",
    "ClockConfig",
    "ClockContextError",
    "ClockError",
    "ClockMode",
    "ClockRuntime",
    "ClockRuntimeConfig",
    "ClockRuntimeError",
    "ClockStartEvent",
    "ClockStopEvent",
    "ClockTickEvent",
    "Decision",
    "NetworkProcessor",
    "NetworkStatus",
    "ProcessorDefect",
    "ProcessorError",
    "ProcessorState",
    "ProcessorStats",
    "ProcessorTimeoutError",
    "RealtimeClock",
    "TickProcessor",
    "WaitKind",
    "decide",
    "Time",
    "TimestampFormat",
    "__version__",
]
