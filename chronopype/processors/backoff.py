"""The backoff formula, once: pure functions that ``NetworkProcessor.backoff_delay`` uses and
that tests, the Hypothesis machine and the simulator read bounds from.

After ``n`` consecutive failures the wait is ``backoff_base(n) * (1 + draw)``, ``draw``
uniform in ``[-BACKOFF_JITTER, +BACKOFF_JITTER]``, clamped to ``[BACKOFF_FLOOR_SECONDS,
BACKOFF_CAP_SECONDS]``. Standard library only; no function here overflows for any ``n``.
"""

from __future__ import annotations

from typing import Final

from chronopype.validation import real_number

__all__ = [
    "BACKOFF_CAP_SECONDS",
    "BACKOFF_FLOOR_SECONDS",
    "BACKOFF_JITTER",
    "backoff_base",
    "backoff_bounds",
    "jittered_backoff",
]

BACKOFF_CAP_SECONDS: Final = 300.0
BACKOFF_FLOOR_SECONDS: Final = 1.0
BACKOFF_JITTER: Final = 0.1
# 2 ** (_LAST_DOUBLING - 1) = 256 is the last power of two below the cap.
_LAST_DOUBLING: Final = 9


def _failures(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int >= 1 (consecutive failures), got {n!r}")
    if n < 1:
        raise ValueError(f"n must be an int >= 1 (consecutive failures), got {n}")
    return n


def backoff_base(n: int) -> float:
    """The wait before jitter after ``n`` (>= 1) consecutive failures: 1, 2, 4 ... 256, then
    300 s for every larger ``n``. TypeError for a non-int (or bool), ValueError for n < 1."""
    n = _failures(n)
    if n > _LAST_DOUBLING:  # never build 2 ** n for a huge n
        return BACKOFF_CAP_SECONDS
    return min(float(2 ** (n - 1)), BACKOFF_CAP_SECONDS)


def jittered_backoff(base: float, draw: float) -> float:
    """``base * (1 + draw)`` clamped to ``[BACKOFF_FLOOR_SECONDS, BACKOFF_CAP_SECONDS]``;
    ``draw`` is the jitter fraction (``backoff_delay`` draws it uniformly in
    ``[-BACKOFF_JITTER, BACKOFF_JITTER]``)."""
    seconds = real_number("base", base, unit="seconds") * (1.0 + real_number("draw", draw))
    return min(max(seconds, BACKOFF_FLOOR_SECONDS), BACKOFF_CAP_SECONDS)


def backoff_bounds(n: int, *, jitter: float = BACKOFF_JITTER) -> tuple[float, float]:
    """``(lowest, highest)`` wait ``backoff_delay(n)`` can return (with ``jitter`` as the
    jitter fraction, ``BACKOFF_JITTER`` unless given): every draw lands in this band."""
    base = backoff_base(n)
    return jittered_backoff(base, -jitter), jittered_backoff(base, jitter)
