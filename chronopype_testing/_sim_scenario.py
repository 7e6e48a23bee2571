"""The simulator's scenario: outage windows, how they are written, and random ones.

Times are virtual seconds from the start of the run. Outage windows are half-open,
``[start, end)``: a check that begins at ``end`` already sees the network back.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass

__all__ = [
    "MIN_OUTAGE_GAP_SECONDS",
    "Outage",
    "ScenarioError",
    "format_clock",
    "format_seconds",
    "parse_duration",
    "parse_outage",
    "random_outages",
    "validate_outages",
]

# Random outages last between these (log-uniformly), so a day shows both blips shorter
# than a check interval and long outages that reach the 300 s backoff cap.
MIN_RANDOM_OUTAGE_SECONDS = 20
MAX_RANDOM_OUTAGE_SECONDS = 1800
# Quiet time before, between and after random outages. It exceeds the 300 s backoff cap,
# so every recovery shows before the next outage begins.
MIN_OUTAGE_GAP_SECONDS = 600

_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(rf"(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m)?(?:(?P<s>{_NUMBER})s)?")
_PLAIN_SECONDS = re.compile(_NUMBER)


class ScenarioError(ValueError):
    """The scenario asked for is impossible; the message says why."""


@dataclass(frozen=True, slots=True)
class Outage:
    """The network is down for checks that begin in ``[start, end)`` (virtual seconds)."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def describe(self) -> str:
        return f"{format_clock(self.start)}-{format_clock(self.end)}"


def parse_duration(text: str) -> float:
    """Seconds from ``5400``, ``5400.5``, ``90m``, ``1h30m`` or ``1h30m15.5s``.

    Raises ``ScenarioError`` for anything else (negative values included).
    """
    stripped = text.strip()
    if _PLAIN_SECONDS.fullmatch(stripped):
        return float(stripped)
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None:
        raise ScenarioError(
            f"{text!r} is not a time: use seconds (5400, 5400.5) or h/m/s (1h30m, 90m, 45s)"
        )
    hours, minutes, seconds = (float(match[unit] or 0) for unit in "hms")
    return hours * 3600.0 + minutes * 60.0 + seconds


def parse_outage(text: str) -> Outage:
    """An ``Outage`` from ``START:END`` (see ``parse_duration`` for each side)."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ScenarioError(f"outage {text!r} must be START:END, e.g. 1h30m:1h45m or 5400:6300")
    start, end = (parse_duration(part) for part in parts)
    if end <= start:
        raise ScenarioError(f"outage {text!r} ends before it starts: END must be after START")
    return Outage(start, end)


def validate_outages(outages: list[Outage], horizon: float) -> list[Outage]:
    """The outages in time order; they must lie within ``[0, horizon]`` and not overlap."""
    ordered = sorted(outages, key=lambda outage: outage.start)
    for outage in ordered:
        if outage.end > horizon:
            raise ScenarioError(
                f"outage {outage.describe()} ends after the run does "
                f"({format_clock(horizon)}, {format_seconds(horizon)}); raise --hours"
            )
    for earlier, later in itertools.pairwise(ordered):
        if later.start <= earlier.end:
            raise ScenarioError(
                f"outages {earlier.describe()} and {later.describe()} overlap or touch; "
                "merge them into one"
            )
    return ordered


def random_outages(count: int, horizon: float, rng: random.Random) -> list[Outage]:
    """``count`` non-overlapping outages of whole seconds inside ``[0, horizon]``.

    Each lasts 20 s to 30 min (log-uniform, shorter when the run is short), with at least
    ``MIN_OUTAGE_GAP_SECONDS`` of quiet before the first, between any two and after the last.
    """
    if count == 0:
        return []
    span = math.floor(horizon)
    quiet = MIN_OUTAGE_GAP_SECONDS * (count + 1)
    longest = min(MAX_RANDOM_OUTAGE_SECONDS, (span - quiet) // count)
    if longest < MIN_RANDOM_OUTAGE_SECONDS:
        needed = quiet + MIN_RANDOM_OUTAGE_SECONDS * count
        raise ScenarioError(
            f"{count} random outages do not fit in {format_seconds(horizon)}: they need at least "
            f"{needed} s ({needed / 3600:.2f} h) for {MIN_RANDOM_OUTAGE_SECONDS} s outages with "
            f"{MIN_OUTAGE_GAP_SECONDS} s between them; raise --hours or lower --random-outages"
        )
    low, high = math.log(MIN_RANDOM_OUTAGE_SECONDS), math.log(longest)
    durations = [
        min(longest, max(MIN_RANDOM_OUTAGE_SECONDS, round(math.exp(rng.uniform(low, high)))))
        for _ in range(count)
    ]
    # Spread the spare time over the count + 1 gaps by cutting it at sorted random points.
    spare = span - quiet - sum(durations)
    cuts = sorted(rng.randint(0, spare) for _ in range(count))
    outages = []
    position = 0
    previous_cut = 0
    for duration, cut in zip(durations, cuts, strict=True):
        start = position + MIN_OUTAGE_GAP_SECONDS + (cut - previous_cut)
        outages.append(Outage(float(start), float(start + duration)))
        position = start + duration
        previous_cut = cut
    return outages


def format_clock(seconds: float) -> str:
    """``h:mm:ss`` from the start of the run, with milliseconds only when there are any."""
    millis = round(seconds * 1000)
    whole, millis = divmod(millis, 1000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{text}.{millis:03d}" if millis else text


def format_seconds(seconds: float) -> str:
    """``12 s`` or ``211.235 s``: exact to the millisecond, without trailing zeros."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text} s"
