"""Per-processor bookkeeping: lifecycle flags, error counters and a bounded latency window."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from numbers import Real
from typing import overload

__all__ = ["FLOAT32_MAX", "ExecutionWindow", "ProcessorState", "validate_window_size"]

_ZERO_FLOAT32 = (0.0,)


def validate_window_size(value: object, *, name: str = "stats_window_size") -> int:
    """Return ``value`` if it is an int >= 1 (bools are rejected), else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return value


# The largest finite float32: the window stores execution times as C floats.
FLOAT32_MAX = 3.4028234663852886e38


def _validate_seconds(value: object) -> float:
    if type(value) is float and 0.0 <= value <= FLOAT32_MAX:  # the hot path, no ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"execution time must be a real number of seconds, got {value!r} "
            f"({type(value).__name__})"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0.0:
        raise ValueError(f"execution time must be finite and >= 0 seconds, got {seconds}")
    if seconds > FLOAT32_MAX:
        raise ValueError(
            f"execution time must be at most {FLOAT32_MAX} seconds (the largest float32), "
            f"got {seconds}"
        )
    return seconds


class ExecutionWindow(Sequence[float]):
    """The last ``maxlen`` execution times, oldest first; appending to a full window drops the
    oldest, as a ``deque(maxlen=...)`` does.

    A ring of C floats (float32), allocated in full when the window is created: 4 bytes per
    entry, no float objects, nothing for the garbage collector to traverse, and memory that
    stays flat however long the processor runs. Fleets of thousands of processors each keep
    one of these. The price is precision: a value reads back rounded to float32, about 7
    significant digits (``0.3`` reads back as ``0.30000001192092896``; a 10 s time keeps
    about microsecond resolution), plenty for latency statistics. Values above the largest
    float32 (about 3.4e38) would read back as ``inf``: ``ProcessorState`` rejects them.
    """

    __slots__ = ("_count", "_oldest", "_values", "maxlen")

    def __init__(self, values: Iterable[float] = (), *, maxlen: int) -> None:
        self.maxlen: int = validate_window_size(maxlen, name="maxlen")
        self._values = array("f", _ZERO_FLOAT32) * self.maxlen
        self._count = 0
        self._oldest = 0  # index of the oldest entry once the ring is full
        for value in values:
            self.append(value)

    def append(self, seconds: float) -> None:
        count = self._count
        if count < self.maxlen:
            self._values[count] = seconds
            self._count = count + 1
            return
        oldest = self._oldest
        self._values[oldest] = seconds
        oldest += 1
        self._oldest = 0 if oldest == count else oldest

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.append(value)

    def clear(self) -> None:
        self._count = 0
        self._oldest = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[float]:
        values, count, oldest = self._values, self._count, self._oldest
        if count < self.maxlen:
            return iter(values[:count])
        if not oldest:
            return iter(values)
        return iter(values[oldest:] + values[:oldest])

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[float]: ...
    def __getitem__(self, index: int | slice) -> float | Sequence[float]:
        if isinstance(index, slice):
            return list(self)[index]
        size = self._count
        position = index + size if index < 0 else index
        if not 0 <= position < size:
            raise IndexError("ExecutionWindow index out of range")
        return self._values[(self._oldest + position) % size]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionWindow):
            return NotImplemented
        return self.maxlen == other.maxlen and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a deque

    def __repr__(self) -> str:
        return f"ExecutionWindow({list(self)!r}, maxlen={self.maxlen})"


class ProcessorState:
    """Mutable state of one processor.

    Counters (``successful_count``, ``error_count``) run for the processor's whole life; the
    latency statistics (``avg_execution_time`` and friends) only cover the last
    ``stats_window_size`` executions, so memory stays bounded however long a processor runs.
    Recording is O(1); statistics are computed when read, over at most the window.
    An empty window reports 0.0 for every statistic.

    ``retry_count`` is owned by whoever retries (e.g. ``NetworkProcessor`` counts consecutive
    failed connectivity checks there). ``max_consecutive_retries`` is a limit that drivers
    (clocks) may consult before giving up on a processor; this class does not enforce it.
    """

    __slots__ = (
        "_execution_times",
        "consecutive_errors",
        "error_count",
        "is_active",
        "last_error",
        "last_error_time",
        "last_success_time",
        "last_timestamp",
        "max_consecutive_retries",
        "retry_count",
        "successful_count",
    )

    def __init__(self, stats_window_size: int = 100, *, max_consecutive_retries: int = 3) -> None:
        window = validate_window_size(stats_window_size)
        if isinstance(max_consecutive_retries, bool) or not isinstance(
            max_consecutive_retries, int
        ):
            raise TypeError(
                "max_consecutive_retries must be an int >= 0, got "
                f"{max_consecutive_retries!r} ({type(max_consecutive_retries).__name__})"
            )
        if max_consecutive_retries < 0:
            raise ValueError(
                f"max_consecutive_retries must be an int >= 0, got {max_consecutive_retries}"
            )
        self.last_timestamp: float = 0.0
        self.is_active: bool = False
        self.retry_count: int = 0
        self.max_consecutive_retries: int = max_consecutive_retries
        self.error_count: int = 0
        self.consecutive_errors: int = 0
        self.last_error: BaseException | None = None
        self.last_error_time: float | None = None
        self.last_success_time: float | None = None
        self.successful_count: int = 0
        self._execution_times = ExecutionWindow(maxlen=window)

    # -- recording -------------------------------------------------------------------------

    def record_execution(self, seconds: float, timestamp: float | None = None) -> None:
        """Record one successful execution that took ``seconds``; resets consecutive errors."""
        self._execution_times.append(_validate_seconds(seconds))
        self.successful_count += 1
        self.consecutive_errors = 0
        if timestamp is not None:
            self.last_success_time = timestamp

    def record_error(self, exc: BaseException, timestamp: float) -> None:
        """Record one failed execution."""
        if not isinstance(exc, BaseException):
            raise TypeError(f"exc must be an exception, got {exc!r} ({type(exc).__name__})")
        self.error_count += 1
        self.consecutive_errors += 1
        self.last_error = exc
        self.last_error_time = timestamp

    # -- derived ---------------------------------------------------------------------------

    @property
    def execution_times(self) -> ExecutionWindow:
        """The window of the last ``stats_window_size`` execution times, oldest first."""
        return self._execution_times

    @execution_times.setter
    def execution_times(self, values: Iterable[float]) -> None:
        """Replace the window's contents; a ``maxlen`` on ``values`` (such as a
        ``deque(..., maxlen=n)``) resizes the window, keeping the newest entries."""
        maxlen = getattr(values, "maxlen", None)
        if maxlen is None:
            maxlen = self._execution_times.maxlen
        self._execution_times = ExecutionWindow(
            (_validate_seconds(value) for value in values), maxlen=maxlen
        )

    @property
    def stats_window_size(self) -> int:
        return self._execution_times.maxlen

    @property
    def total_count(self) -> int:
        return self.successful_count + self.error_count

    @property
    def failed_count(self) -> int:
        return self.error_count

    @property
    def error_rate(self) -> float:
        """Failed / total over the whole life; 0.0 before anything was recorded."""
        total = self.total_count
        return self.error_count / total if total else 0.0

    @property
    def avg_execution_time(self) -> float:
        times = self.execution_times
        return math.fsum(times) / len(times) if times else 0.0

    @property
    def max_execution_time(self) -> float:
        return max(self.execution_times, default=0.0)

    @property
    def std_execution_time(self) -> float:
        """Population standard deviation over the window."""
        times = self.execution_times
        if len(times) < 2:
            return 0.0
        mean = math.fsum(times) / len(times)
        return math.sqrt(math.fsum((t - mean) ** 2 for t in times) / len(times))

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0..100, linear interpolation) of the window's times."""
        if isinstance(p, bool) or not isinstance(p, Real):
            raise TypeError(f"percentile must be a number in [0, 100], got {p!r}")
        q = float(p)
        if not 0.0 <= q <= 100.0:  # also rejects NaN
            raise ValueError(f"percentile must be in [0, 100], got {p}")
        if not self.execution_times:
            return 0.0
        ordered = sorted(self.execution_times)
        rank = (len(ordered) - 1) * q / 100.0
        low = math.floor(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)

    def __repr__(self) -> str:
        return (
            f"ProcessorState(active={self.is_active}, last_timestamp={self.last_timestamp}, "
            f"ok={self.successful_count}, errors={self.error_count}, "
            f"retry_count={self.retry_count})"
        )
