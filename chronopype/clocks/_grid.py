"""The tick grid ``start + k * tick_size``: membership and indexing, exact at any epoch.

Every clock stamps tick k as ``start + k * tick_size``, one multiplication and one addition
from the integer index, so nothing accumulates. Deciding whether a time lies on the grid must
allow for rounding, and at epoch magnitudes (1.7e9 s) a float's spacing is 2.4e-7 s: a target
such as ``start + 0.3`` differs from ``start + 3 * 0.1`` by about that much, which a tolerance
relative to the tick alone would call off-grid. So the tolerance scales with the magnitude of
the timestamps (a few units in the last place) and, for targets accumulated by user code, with
the span (1e-9 relative); it never exceeds a quarter tick, so distinct ticks never merge. A
``tick_size`` too small for the magnitude of the times (see :func:`check_resolution`) is
refused, so that the quarter-tick bound always leaves room for the rounding allowance.
"""

from __future__ import annotations

import math

__all__ = ["MIN_TICK_ULPS", "check_resolution", "grid_index", "grid_time"]

# A tick must span at least this many float spacings (ulps) of the largest timestamp: the
# rounding allowance below is _ULPS ulps and must stay under a quarter tick.
MIN_TICK_ULPS = 64
_ULPS = 4
_SPAN_TOLERANCE = 1e-9


def grid_time(start: float, tick_size: float, index: int) -> float:
    """Grid point ``index``: computed from the index, never accumulated."""
    return start + index * tick_size


def _tolerance(start: float, tick_size: float, t: float) -> float:
    magnitude = max(abs(start), abs(t))
    allowance = _ULPS * math.ulp(magnitude) + _SPAN_TOLERANCE * max(tick_size, abs(t - start))
    return min(allowance, tick_size / 4)


def grid_index(start: float, tick_size: float, t: float) -> tuple[int, bool]:
    """The index of the last grid point at or before ``t``, and whether ``t`` is (within
    rounding) that grid point itself."""
    nearest = round((t - start) / tick_size)
    if abs(t - grid_time(start, tick_size, nearest)) <= _tolerance(start, tick_size, t):
        return nearest, True
    index = math.floor((t - start) / tick_size)
    # The division itself rounds: settle on the last point that really is at or before t.
    while grid_time(start, tick_size, index + 1) <= t:
        index += 1
    while index > 0 and grid_time(start, tick_size, index) > t:
        index -= 1
    return index, False


def check_resolution(tick_size: float, largest_time: float) -> None:
    """Refuse (ValueError) a ``tick_size`` the floats near ``largest_time`` cannot resolve:
    it must span at least :data:`MIN_TICK_ULPS` float spacings (``math.ulp``) there."""
    spacing = math.ulp(abs(largest_time))
    if tick_size < MIN_TICK_ULPS * spacing:
        raise ValueError(
            f"tick_size ({tick_size!r}) is below the float resolution of the timestamps: at "
            f"{largest_time!r} s floats are {spacing!r} s apart, and a tick must span at least "
            f"{MIN_TICK_ULPS} of those ({MIN_TICK_ULPS * spacing!r} s)"
        )
