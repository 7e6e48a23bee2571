"""Per-processor bookkeeping: lifecycle flags, error counters and a bounded latency window."""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from numbers import Real
from typing import Any, Self, overload

__all__ = ["ExecutionWindow", "ProcessorState", "validate_window_size"]


def validate_window_size(value: object, *, name: str = "stats_window_size") -> int:
    """Return ``value`` if it is an int >= 1 (bools are rejected), else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return value


def _validate_seconds(value: object) -> float:
    if type(value) is float and 0.0 <= value < math.inf:  # the hot path, no ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"execution time must be a real number of seconds, got {value!r} "
            f"({type(value).__name__})"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0.0:
        raise ValueError(f"execution time must be finite and >= 0 seconds, got {seconds}")
    return seconds


class ExecutionWindow(Sequence[float]):
    """The last ``maxlen`` execution times, oldest first; appending to a full window drops the
    oldest, as a ``deque(maxlen=...)`` does.

    A ring of C doubles that grows with its first ``maxlen`` values and never after: 8 bytes
    per entry, no float objects, nothing for the garbage collector to traverse, and memory that
    stays flat however long the processor runs (and small while it has recorded little).
    Fleets of thousands of processors each keep one of these. Values read back exactly as
    recorded (chronopype 0.8.3 kept a list of floats, and code written for it compares them
    exactly).
    """

    __slots__ = ("_count", "_oldest", "_values", "maxlen")

    def __init__(self, values: Iterable[float] = (), *, maxlen: int) -> None:
        self.maxlen: int = validate_window_size(maxlen, name="maxlen")
        self._values = array("d")
        self._count = 0
        self._oldest = 0  # index of the oldest entry once the ring is full
        for value in values:
            self.append(value)

    def append(self, seconds: float) -> None:
        count = self._count
        if count < self.maxlen:
            values = self._values
            if count < len(values):
                values[count] = seconds  # refilling after clear()
            else:
                values.append(seconds)
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
        # A list compares by contents: chronopype 0.8.3's execution_times was a list.
        if isinstance(other, list):
            return list(self) == other
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

    **chronopype 0.8.3 names keep their 0.8.3 types and meanings**: ``last_timestamp`` is None
    until set; ``error_rate`` is a percentage (``error_fraction`` is the same as a fraction);
    ``last_error`` is the error's message (``last_exception`` the exception itself);
    ``last_error_time``/``last_success_time`` are naive local ``datetime`` objects of the tick
    timestamps (``last_error_timestamp``/``last_success_timestamp`` are the epoch floats);
    ``retry_count`` is the current run of consecutive retries and ``max_consecutive_retries``
    the longest such run so far (raising ``retry_count`` raises it); ``std_dev_execution_time``
    is the sample standard deviation. 0.8.3's copy-style methods (``record_error``,
    ``update_execution_time``, ``update_retry_count``, ``reset_retries``) update this state
    and return it, and ``model_copy(update=...)`` returns an updated copy. The state itself
    is mutable (0.8.3's was a frozen model): assignments are allowed.

    ``retry_count`` is written by whoever retries: the clock while it retries a failing tick
    (0 again after a success), ``NetworkProcessor`` for consecutive failed checks.
    """

    __slots__ = (
        "_execution_times",
        "_last_error_message",
        "_max_consecutive_retries",
        "_retry_count",
        "consecutive_errors",
        "error_count",
        "is_active",
        "last_error_timestamp",
        "last_exception",
        "last_success_timestamp",
        "last_timestamp",
        "successful_count",
    )

    def __init__(
        self,
        stats_window_size: int = 100,
        *,
        last_timestamp: float | None = None,
        is_active: bool = False,
        retry_count: int = 0,
        max_consecutive_retries: int = 0,
        execution_times: Iterable[float] = (),
        error_count: int = 0,
        consecutive_errors: int = 0,
        last_error: str | BaseException | None = None,
        last_error_time: datetime | float | None = None,
        last_success_time: datetime | float | None = None,
    ) -> None:
        window = validate_window_size(stats_window_size)
        self.last_timestamp: float | None = last_timestamp
        self.is_active: bool = is_active
        self._max_consecutive_retries = _count("max_consecutive_retries", max_consecutive_retries)
        self._retry_count = 0
        self.retry_count = retry_count
        self.error_count: int = _count("error_count", error_count)
        self.consecutive_errors: int = _count("consecutive_errors", consecutive_errors)
        self.last_exception: BaseException | None = None
        self._last_error_message: str | None = None
        self.last_error = last_error
        self.last_error_timestamp: float | None = None
        self.last_error_time = last_error_time
        self.last_success_timestamp: float | None = None
        self.last_success_time = last_success_time
        self._execution_times = ExecutionWindow(maxlen=window)
        self.execution_times = execution_times
        self.successful_count: int = len(self._execution_times)

    # -- recording -------------------------------------------------------------------------

    def record_execution(self, seconds: float, timestamp: float | None = None) -> None:
        """Record one successful execution that took ``seconds``; resets consecutive errors."""
        self._execution_times.append(_validate_seconds(seconds))
        self.successful_count += 1
        self.consecutive_errors = 0
        if timestamp is not None:
            self.last_success_timestamp = timestamp

    def record_error(self, exc: BaseException, timestamp: float) -> ProcessorState:
        """Record one failed execution at tick ``timestamp``; returns this state (0.8.3 code
        writes ``state = state.record_error(...)``)."""
        if not isinstance(exc, BaseException):
            raise TypeError(f"exc must be an exception, got {exc!r} ({type(exc).__name__})")
        self.error_count += 1
        self.consecutive_errors += 1
        self.last_exception = exc
        self._last_error_message = None
        self.last_error_timestamp = timestamp
        return self

    # -- 0.8.3's copy-style API ------------------------------------------------------------

    def update_execution_time(self, execution_time: float, window_size: int) -> ProcessorState:
        """Record a success of ``execution_time`` seconds now (wall time), keeping the last
        ``window_size`` times; returns this state."""
        if validate_window_size(window_size, name="window_size") != self.stats_window_size:
            self.execution_times = deque(self._execution_times, maxlen=window_size)
        self.record_execution(execution_time, time.time())
        return self

    def update_retry_count(self, retry_count: int) -> ProcessorState:
        """Set ``retry_count`` (raising ``max_consecutive_retries`` with it); returns this state."""
        self.retry_count = retry_count
        return self

    def reset_retries(self) -> ProcessorState:
        """Set ``retry_count`` to 0 (``max_consecutive_retries`` stays); returns this state."""
        self.retry_count = 0
        return self

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        """An independent copy, with the attributes in ``update`` set on it."""
        copy = type(self)(self.stats_window_size)
        for name in _COPIED:
            setattr(copy, name, getattr(self, name))
        copy._execution_times = ExecutionWindow(
            self._execution_times, maxlen=self.stats_window_size
        )
        for name, value in (update or {}).items():
            if not hasattr(copy, name):
                raise ValueError(f"ProcessorState has no field {name!r}")
            setattr(copy, name, value)
        return copy

    # -- 0.8.3 names -----------------------------------------------------------------------

    @property
    def retry_count(self) -> int:
        """Consecutive retries in the current run of failures (0 after a success)."""
        return self._retry_count

    @retry_count.setter
    def retry_count(self, value: int) -> None:
        self._retry_count = value
        if value > self._max_consecutive_retries:
            self._max_consecutive_retries = value

    @property
    def max_consecutive_retries(self) -> int:
        """The largest ``retry_count`` reached so far."""
        return self._max_consecutive_retries

    @max_consecutive_retries.setter
    def max_consecutive_retries(self, value: int) -> None:
        self._max_consecutive_retries = _count("max_consecutive_retries", value)

    @property
    def last_error(self) -> str | None:
        """The message (``str(exc)``) of the last recorded error, or None."""
        if self._last_error_message is None and self.last_exception is not None:
            self._last_error_message = str(self.last_exception)
        return self._last_error_message

    @last_error.setter
    def last_error(self, value: str | BaseException | None) -> None:
        if isinstance(value, BaseException):
            self.last_exception, self._last_error_message = value, None
        elif value is None or isinstance(value, str):
            self.last_exception, self._last_error_message = None, value
        else:
            raise TypeError(f"last_error must be a str, an exception or None, got {value!r}")

    @property
    def last_error_time(self) -> datetime | None:
        """When the last error was recorded (tick time), as a naive local datetime."""
        return _as_datetime(self.last_error_timestamp)

    @last_error_time.setter
    def last_error_time(self, value: datetime | float | None) -> None:
        self.last_error_timestamp = _as_timestamp("last_error_time", value)

    @property
    def last_success_time(self) -> datetime | None:
        """When the last success was recorded, as a naive local datetime."""
        return _as_datetime(self.last_success_timestamp)

    @last_success_time.setter
    def last_success_time(self, value: datetime | float | None) -> None:
        self.last_success_timestamp = _as_timestamp("last_success_time", value)

    @property
    def total_ticks(self) -> int:
        return self.total_count

    @property
    def successful_ticks(self) -> int:
        return self.successful_count

    @property
    def failed_ticks(self) -> int:
        return self.error_count

    @property
    def total_execution_time(self) -> float:
        """Sum of the window's execution times."""
        return math.fsum(self._execution_times)

    @property
    def std_dev_execution_time(self) -> float:
        """Sample standard deviation over the window (as 0.8.3 reported it)."""
        times = self._execution_times
        if len(times) < 2:
            return 0.0
        mean = math.fsum(times) / len(times)
        return math.sqrt(math.fsum((t - mean) ** 2 for t in times) / (len(times) - 1))

    def get_execution_percentile(self, percentile: float) -> float:
        return self.percentile(percentile)

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
    def error_fraction(self) -> float:
        """Failed / total over the whole life; 0.0 before anything was recorded."""
        total = self.total_count
        return self.error_count / total if total else 0.0

    @property
    def error_rate(self) -> float:
        """Failed ticks as a percentage (0..100) of all ticks over the whole life."""
        return self.error_fraction * 100.0

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


# Plain attributes model_copy carries over (the window is copied separately).
_COPIED = (
    "last_timestamp",
    "is_active",
    "_retry_count",
    "_max_consecutive_retries",
    "error_count",
    "consecutive_errors",
    "last_exception",
    "_last_error_message",
    "last_error_timestamp",
    "last_success_timestamp",
    "successful_count",
)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 0, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value}")
    return value


def _as_datetime(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp)


def _as_timestamp(name: str, value: datetime | float | None) -> float | None:
    if value is None or isinstance(value, datetime):
        return None if value is None else value.timestamp()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a datetime, epoch seconds or None, got {value!r}")
    return float(value)
