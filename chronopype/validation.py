"""Argument checks shared by chronopype and chronopype_testing: TypeError for a wrong type,
ValueError for a wrong value, everywhere, naming the argument.

Public so that the testing package, and users' own helpers, apply the same rules: the one
copy of "a finite number of seconds" and of "outage windows" lives here."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from numbers import Real
from typing import cast


def real_number(name: str, value: object, *, unit: str = "") -> float:
    """``value`` as a float if it is a real number (not a bool) that a float can hold.

    Raises TypeError for anything else, and ValueError for NaN and for numbers too large for
    a float (``10**400``), naming ``name`` (and ``unit``, e.g. ``"seconds"``) so the caller's
    user sees which argument. Infinities pass.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        what = f"a number of {unit}" if unit else "a number"
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value!r} (too large for a float)") from None
    if math.isnan(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def finite_number(name: str, value: object, *, unit: str = "") -> float:
    """``value`` as a float if it is a finite real number (not a bool).

    Raises TypeError for anything else and ValueError for NaN, infinities and numbers too
    large for a float, naming ``name`` (and ``unit``, e.g. ``"seconds"``).
    """
    number = real_number(name, value, unit=unit)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def seconds_at_least_zero(name: str, value: object) -> float:
    """``value`` as finite, non-negative seconds (TypeError / ValueError naming ``name``)."""
    seconds = finite_number(name, value, unit="seconds")
    if seconds < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {seconds!r}")
    return seconds


def outage_windows(windows: Iterable[object]) -> tuple[tuple[float, float], ...]:
    """``(start, end)`` windows in seconds, checked and sorted by start.

    Each window needs ``0 <= start < end``; windows may touch (one ends where the next
    begins) but not overlap. The scripted fake, the OutageProxy and the strategies share
    this one rule.
    """
    checked: list[tuple[float, float]] = []
    for window in windows:
        try:
            raw_start, raw_end = cast("tuple[object, object]", window)
        except (TypeError, ValueError):
            raise TypeError(f"outage windows must be (start, end) pairs, got {window!r}") from None
        start = seconds_at_least_zero("outage start", raw_start)
        end = seconds_at_least_zero("outage end", raw_end)
        if not start < end:
            raise ValueError(f"outage window ({start!r}, {end!r}) must have start < end")
        checked.append((start, end))
    checked.sort()
    for (_, end), (next_start, _) in itertools.pairwise(checked):
        if next_start < end:
            raise ValueError(
                f"outage windows overlap: one ends at {end!r}, the next starts at {next_start!r}"
            )
    return tuple(checked)
