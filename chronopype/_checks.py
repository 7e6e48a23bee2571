"""Argument checks shared by chronopype and chronopype_testing."""

from __future__ import annotations

import math
from numbers import Real


def finite_number(name: str, value: object, *, unit: str = "") -> float:
    """``value`` as a float if it is a finite real number (not a bool).

    Raises TypeError for anything else and ValueError for NaN and infinities, naming
    ``name`` (and ``unit``, e.g. ``"seconds"``) so the caller's user sees which argument.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        what = f"a number of {unit}" if unit else "a number"
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number
