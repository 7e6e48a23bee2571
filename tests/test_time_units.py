"""chronopype.time (0.8.3's API) without 0.8.3's defects: unit by magnitude, exact ints."""

from __future__ import annotations

import pytest

from chronopype.time import Time, TimestampFormat

NS = 1_700_000_000_123_456_789


def test_int_nanoseconds_stay_exact() -> None:
    assert TimestampFormat.convert_ts(NS, TimestampFormat.NANOSECONDS) == NS
    micro = TimestampFormat.convert_ts(NS - 789, TimestampFormat.MICROSECONDS)
    assert micro == 1_700_000_000_123_456 and type(micro) is int
    seconds = TimestampFormat.convert_ts(NS, TimestampFormat.SECONDS)
    assert type(seconds) is float and seconds == NS / 10**9  # correctly rounded
    assert TimestampFormat.convert_ts(1_700_000_000, TimestampFormat.NANOSECONDS) == (
        1_700_000_000 * 10**9
    )


def test_floats_stay_floats_and_strings_are_parsed() -> None:
    assert TimestampFormat.convert_ts(1.5e9, TimestampFormat.MILLISECONDS) == 1.5e12
    assert type(TimestampFormat.convert_ts(1.5e9, TimestampFormat.SECONDS)) is float
    assert TimestampFormat.convert_ts("1700000000123", TimestampFormat.SECONDS) == 1700000000.123
    assert TimestampFormat.convert_ts("1700000000000", TimestampFormat.SECONDS) == 1700000000


@pytest.mark.parametrize(
    ("ts", "unit"),
    [
        (-1_700_000_000, TimestampFormat.SECONDS),  # before 1970, in seconds
        (-1.5, TimestampFormat.SECONDS),
        (631_152_000_000, TimestampFormat.MILLISECONDS),  # 1990-01-01 in ms: 12 digits
        (99_999_999_999, TimestampFormat.MILLISECONDS),  # 11 digits
        (-631_152_000_000, TimestampFormat.MILLISECONDS),
        (631_152_000_000_000, TimestampFormat.MICROSECONDS),  # 15 digits
        (631_152_000_000_000_000, TimestampFormat.NANOSECONDS),  # 18 digits
    ],
)
def test_units_are_told_by_magnitude(ts: int | float, unit: TimestampFormat) -> None:
    assert TimestampFormat.get_format(ts) is unit


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="Invalid timestamp format"):
        TimestampFormat.get_format(10**19)
    with pytest.raises(ValueError, match="Invalid timestamp type"):
        TimestampFormat.convert_ts(None, TimestampFormat.SECONDS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid timestamp type"):
        TimestampFormat.convert_ts(True, TimestampFormat.SECONDS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="out_format"):
        TimestampFormat.convert_ts(1, "SECONDS")  # type: ignore[arg-type]


def test_constants() -> None:
    assert (Time.MINUTE, Time.DAY, Time.YEAR) == (60, 86_400, 365 * 86_400)
    assert Time.MILLISECOND == 0.001
