"""Clock configuration: which clock, which tick grid, and the failure policy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from chronopype._model import ModelStyle
from chronopype.clocks._grid import check_resolution, grid_index
from chronopype.validation import finite_number

__all__ = ["ClockConfig", "ClockMode"]


_LATEST_WALL_TIME = float(2**32)

# 0.8.3's bound, kept: a clock applies the window to every processor it registers.
MAX_STATS_WINDOW_SIZE = 10_000


class ClockMode(Enum):
    """Which kind of clock a configuration is for."""

    REALTIME = 1
    BACKTEST = 2


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return value


@dataclass(frozen=True, slots=True)
class ClockConfig(ModelStyle):
    """How a clock ticks and how it treats failing processors.

    Times are epoch seconds. Ticks fall on the grid ``start_time + k * tick_size`` for
    k = 1, 2, ...; ``end_time`` bounds the run (0 means no end, which only a realtime clock
    accepts). A realtime clock with ``start_time=0`` aligns its grid to the wall clock when
    it is entered.

    Failure policy: a tick that raises, or whose ``async_tick`` runs longer than
    ``processor_timeout`` seconds, is retried up to ``max_retries`` times with exponential
    backoff; then the error is recorded in the processor's ``state`` and passed to the
    clock's ``error_callback`` and, unless ``fail_fast`` is set, the run goes on.
    ``concurrent_processors`` ticks a tick's processors concurrently instead of in order.
    ``stats_window_size`` is applied to each processor's execution-time window when it is
    registered.

    Invalid values raise ``TypeError`` (wrong type) or ``ValueError`` (NaN, infinity, out of
    range, or inconsistent with another field); the message names the field.
    """

    clock_mode: ClockMode
    tick_size: float = 1.0
    start_time: float = 0.0
    end_time: float = 0.0
    processor_timeout: float = 1.0
    max_retries: int = 3
    concurrent_processors: bool = False
    stats_window_size: int = 100
    fail_fast: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.clock_mode, ClockMode):
            raise TypeError(f"clock_mode must be a ClockMode, got {self.clock_mode!r}")
        tick_size = finite_number("tick_size", self.tick_size)
        if tick_size <= 0:
            raise ValueError(f"tick_size must be > 0, got {tick_size!r}")
        start_time = finite_number("start_time", self.start_time)
        if start_time < 0:
            raise ValueError(f"start_time must be >= 0 (epoch seconds), got {start_time!r}")
        end_time = finite_number("end_time", self.end_time)
        if end_time < 0:
            raise ValueError(f"end_time must be >= 0 (0 means no end), got {end_time!r}")
        if end_time != 0 and end_time <= start_time:
            raise ValueError(
                f"end_time ({end_time!r}) must be after start_time ({start_time!r}), "
                "or 0 for no end"
            )
        # The largest timestamp the grid reaches; a realtime clock without a start time
        # starts at the wall clock, so allow for epoch times up to 2**32 s (year 2106).
        largest = max(start_time, end_time)
        if self.clock_mode is ClockMode.REALTIME and start_time == 0:
            largest = max(largest, _LATEST_WALL_TIME)
        check_resolution(tick_size, largest)
        if end_time != 0 and grid_index(start_time, tick_size, end_time)[0] < 1:
            raise ValueError(
                f"end_time - start_time ({end_time - start_time!r}) is shorter than one "
                f"tick_size ({tick_size!r}): the clock would never tick"
            )
        processor_timeout = finite_number("processor_timeout", self.processor_timeout)
        if processor_timeout <= 0:
            raise ValueError(f"processor_timeout must be > 0, got {processor_timeout!r}")
        _count("max_retries", self.max_retries, 0)
        if _count("stats_window_size", self.stats_window_size, 1) > MAX_STATS_WINDOW_SIZE:
            raise ValueError(
                f"stats_window_size must be <= {MAX_STATS_WINDOW_SIZE}, "
                f"got {self.stats_window_size}"
            )
        _flag("concurrent_processors", self.concurrent_processors)
        _flag("fail_fast", self.fail_fast)
        # Normalise ints to floats so that arithmetic on the grid never mixes types.
        object.__setattr__(self, "tick_size", tick_size)
        object.__setattr__(self, "start_time", start_time)
        object.__setattr__(self, "end_time", end_time)
        object.__setattr__(self, "processor_timeout", processor_timeout)

    @classmethod
    def _coerce(cls, values: dict[str, Any]) -> dict[str, Any]:
        mode = values.get("clock_mode")
        if isinstance(mode, str) and mode in ClockMode.__members__:
            values["clock_mode"] = ClockMode[mode]
        elif isinstance(mode, int) and not isinstance(mode, bool):
            values["clock_mode"] = ClockMode(mode)
        return values
