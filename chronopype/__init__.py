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
from chronopype.processors import NetworkProcessor, NetworkStatus, ProcessorState, TickProcessor
from chronopype.runtime import ClockRuntime, ClockRuntimeConfig
from chronopype.time import Time, TimestampFormat

try:
    __version__ = version("chronopype")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
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
    "NetworkProcessor",
    "NetworkStatus",
    "ProcessorError",
    "ProcessorState",
    "ProcessorStats",
    "ProcessorTimeoutError",
    "RealtimeClock",
    "TickProcessor",
    "Time",
    "TimestampFormat",
    "__version__",
]
