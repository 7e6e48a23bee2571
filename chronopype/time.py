"""Time-unit constants and epoch-timestamp unit detection and conversion (0.8.3's API).

Differences from 0.8.3, all fixes: the unit is told by magnitude, so negative timestamps and
millisecond timestamps with 11 or 12 digits (1970-04 to 2001-09) are recognised;
``convert_ts`` keeps the input's type (an int stays an int whenever the result is a whole
number, computed without going through float, so nanosecond ints stay exact).
"""

from __future__ import annotations

from enum import Enum
from fractions import Fraction

__all__ = ["Time", "TimestampFormat"]


class Time:
    """Common durations, in seconds (a month is 30 days, a year 365)."""

    SECOND = 1
    MILLISECOND = SECOND / 1000
    MINUTE = 60 * SECOND
    HOUR = 60 * MINUTE
    TWELVE_HOURS = 12 * HOUR
    DAY = 24 * HOUR
    WEEK = 7 * DAY
    MONTH = 30 * DAY
    YEAR = 365 * DAY


class TimestampFormat(Enum):
    """Units of an epoch timestamp; each value is the digit count of a present-day timestamp."""

    SECONDS = 10
    MILLISECONDS = 13
    MICROSECONDS = 16
    NANOSECONDS = 19

    @staticmethod
    def get_format(ts: float | int | str) -> TimestampFormat:
        """The unit of ``ts``, told by its number of integer digits (sign ignored).

        Up to 10 digits are seconds, 11-13 milliseconds, 14-16 microseconds and 17-19
        nanoseconds; more raise ``ValueError``. (Milliseconds before 1970-04-26 have at most 10
        digits and so read as seconds: the two cannot be told apart.)
        """
        digits = len(str(abs(int(_number(ts)))))
        for unit in _UNITS:
            if digits <= unit.value:
                return unit
        raise ValueError(f"Invalid timestamp format: {ts}. Expected s, ms, us or ns timestamp")

    @staticmethod
    def convert_ts(timestamp: str | int | float, out_format: TimestampFormat) -> int | float:
        """Convert ``timestamp`` (any unit, detected by :meth:`get_format`) to ``out_format``.

        A float stays a float. An int (or a string holding an int) stays an int whenever the
        result is a whole number, computed exactly; otherwise it becomes the correctly rounded
        float. Raises ``ValueError`` for other types.
        """
        if isinstance(timestamp, bool) or not isinstance(timestamp, str | int | float):
            raise ValueError(f"Invalid timestamp type: {type(timestamp)}")
        if not isinstance(out_format, TimestampFormat):
            raise TypeError(f"out_format must be a TimestampFormat, got {out_format!r}")
        value = _number(timestamp)
        in_format = TimestampFormat.get_format(value)
        shift = out_format.value - in_format.value
        if isinstance(value, float):
            scale = float(10 ** abs(shift))
            return value * scale if shift >= 0 else value / scale
        exact = Fraction(value) * Fraction(10) ** shift
        return int(exact) if exact.denominator == 1 else float(exact)


_UNITS = (
    TimestampFormat.SECONDS,
    TimestampFormat.MILLISECONDS,
    TimestampFormat.MICROSECONDS,
    TimestampFormat.NANOSECONDS,
)


def _number(ts: object) -> int | float:
    if isinstance(ts, str):
        text = ts.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise ValueError(f"Invalid timestamp type: {type(ts)}")
    return ts
