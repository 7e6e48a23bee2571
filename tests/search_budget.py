"""How many examples the property tests try.

``make test`` (and CI) runs each property test at its full count. ``make quick`` sets
``CHRONOPYPE_EXAMPLES_SCALE=0.1`` for the edit-test loop: the same properties, a shallower search.
"""

from __future__ import annotations

import os

_SCALE_VARIABLE = "CHRONOPYPE_EXAMPLES_SCALE"


def _scale() -> float:
    text = os.environ.get(_SCALE_VARIABLE, "").strip() or "1"
    try:
        scale = float(text)
    except ValueError:
        raise ValueError(f"{_SCALE_VARIABLE} must be a number, got {text!r}") from None
    if not 0 < scale <= 100:
        raise ValueError(f"{_SCALE_VARIABLE} must be in (0, 100], got {scale}")
    return scale


SCALE = _scale()


def examples(full: int) -> int:
    """``full`` examples, scaled; never fewer than 5."""
    return max(5, round(full * SCALE))
