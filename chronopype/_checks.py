"""Argument checks shared by chronopype and chronopype_testing: TypeError for a wrong type,
ValueError for a wrong value, everywhere, naming the argument."""

from __future__ import annotations

import math
from numbers import Real


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
