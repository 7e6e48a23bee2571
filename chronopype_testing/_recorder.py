"""Recording a NetworkProcessor's status transitions, and asserting on them readably.

Every assertion here fails with an aligned ASCII timeline (one row per status, time on the
x-axis) and an event table, never with a bare list diff, and ends with the seed line that
reproduces the run under the chronopype pytest plugin.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from chronopype.processors.network import (
    BACKOFF_CAP_SECONDS,
    BACKOFF_FLOOR_SECONDS,
    NetworkProcessor,
    NetworkStatus,
)

__all__ = [
    "LEGAL_TRANSITIONS",
    "Transition",
    "TransitionRecorder",
    "assert_backoff_schedule",
    "illegal_transitions",
    "backoff_band",
    "render_timeline",
    "seed_line",
]

_S = NetworkStatus

#: Every status change a NetworkProcessor may make (issue 3's pinned semantics): start,
#: a check beginning, its result, pause reverting an interrupted attempt, and stop.
LEGAL_TRANSITIONS: dict[NetworkStatus, frozenset[NetworkStatus]] = {
    _S.STOPPED: frozenset({_S.NOT_CONNECTED}),
    _S.NOT_CONNECTED: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.ERROR: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.NOT_CONNECTED, _S.ERROR, _S.STOPPED}),
    _S.CONNECTED: frozenset({_S.DISCONNECTING, _S.STOPPED}),
    _S.DISCONNECTING: frozenset({_S.NOT_CONNECTED, _S.ERROR, _S.STOPPED}),
}

# Set by the chronopype pytest plugin while a test runs, so that failure messages of
# recorders the test built itself still name the seed to re-run with.
_active_seed: int | None = None

_CHART_WIDTH = 60
_TABLE_CONTEXT = 8  # event-table rows shown on each side of the first difference
_DEFAULT_TOLERANCE = 1e-6


class Transition(NamedTuple):
    """One status change: ``at`` is the loop time (``loop.time()``) in seconds."""

    at: float
    old: NetworkStatus
    new: NetworkStatus


def seed_line(seed: int | None) -> str:
    """The line every chronopype failure message ends with."""
    if seed is None:
        return "chronopype seed: none (not running under the chronopype pytest plugin)"
    return f"chronopype seed: {seed} (re-run with --chronopype-seed={seed})"


def backoff_band(base: float, jitter: float) -> tuple[float, float]:
    """The interval ``base * (1 +/- jitter)``, clamped to the backoff floor and cap."""

    def clamp(seconds: float) -> float:
        return min(max(seconds, BACKOFF_FLOOR_SECONDS), BACKOFF_CAP_SECONDS)

    return clamp(base * (1.0 - jitter)), clamp(base * (1.0 + jitter))


def _loop_time_or(
    fallback: asyncio.AbstractEventLoop | None,
) -> tuple[float, asyncio.AbstractEventLoop | None]:
    """Loop time now, and the loop it came from.

    ``stop()`` may run with no loop running; the last loop seen still tells the time then
    (a FakeClock loop keeps its time after it closes).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        if fallback is None:
            return math.nan, None
        return fallback.time(), fallback
    return loop.time(), loop


class _TimeSource:
    """Loop time for status listeners, which may be called with or without a running loop."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        now, self._loop = _loop_time_or(self._loop)
        return now


# -- rendering ---------------------------------------------------------------------------------


def _seconds(t: float) -> str:
    if math.isnan(t):
        return "nan"
    text = f"{t:.6f}".rstrip("0").rstrip(".")
    return f"{text or '0'} s"


def _axis_label(seconds: float) -> str:
    if seconds < 120 or seconds == 0:
        value, unit = seconds, "s"
    elif seconds < 7200:
        value, unit = seconds / 60, "m"
    else:
        value, unit = seconds / 3600, "h"
    return f"{value:.6g}{unit}"


def _nice_step(span: float, columns: int) -> float:
    """The smallest 1/2/5 x 10^k seconds per column that fits ``span`` into ``columns``."""
    raw = max(span / columns, 1e-9)
    exponent = math.floor(math.log10(raw))
    for mantissa in (1.0, 2.0, 5.0, 10.0):
        step = mantissa * 10.0**exponent
        if step >= raw * (1 - 1e-12):
            return step
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class _Chart:
    step: float
    columns: int

    def column(self, t: float) -> int:
        if math.isnan(t):
            return 0
        return min(self.columns - 1, max(0, math.floor(t / self.step + 1e-9)))


def _status_row(
    chart: _Chart, events: Sequence[tuple[float, NetworkStatus]], status: NetworkStatus
) -> str:
    # '*' marks the column where the status was entered, '-' the columns it was held.
    cells = [" "] * chart.columns
    for index, (t, entered) in enumerate(events):
        if entered is not status:
            continue
        first = chart.column(t)
        last = chart.column(events[index + 1][0]) if index + 1 < len(events) else chart.columns
        for col in range(first + 1, last):
            if cells[col] == " ":
                cells[col] = "-"
        cells[first] = "*"
    return "".join(cells).rstrip()


def render_timeline(
    actual: Sequence[tuple[float, NetworkStatus]],
    expected: Sequence[tuple[float, NetworkStatus]] | None = None,
    *,
    mark: Sequence[float] = (),
    width: int = _CHART_WIDTH,
) -> list[str]:
    """Draw timelines (times in seconds from the first transition) as aligned ASCII rows.

    One row per status that occurs in either timeline, labelled with its name; ``*`` marks
    the column where a status was entered and ``-`` the columns it was held. ``mark`` puts a
    ``^`` under the columns of those times.
    """
    everything = [t for t, _ in actual] + [t for t, _ in expected or ()]
    finite = [t for t in everything if math.isfinite(t)]
    span = max([*finite, 0.0]) - min([*finite, 0.0])
    step = _nice_step(span if span > 0 else 1.0, width - 2)
    chart = _Chart(step, math.floor(span / step + 1e-9) + 2)
    statuses = sorted(
        {s for _, s in actual} | {s for _, s in expected or ()}, key=lambda s: s.value
    )
    label_width = max([len(s.name) for s in statuses] + [len("expected")]) + 6
    pad = " " * label_width

    labels = [" "] * (chart.columns + 12)
    for col in range(0, chart.columns, 10):
        text = _axis_label(col * step)
        labels[col : col + len(text)] = text
    ruler = "".join(
        "|" if col % 10 == 0 else "+" if col % 5 == 0 else "-" for col in range(chart.columns)
    )
    lines = [
        f"timeline (x: {_axis_label(step)} per column; * status entered, - status held)",
        pad + "".join(labels).rstrip(),
        pad + ruler,
    ]
    blocks = (
        [("actual", actual)] if expected is None else [("expected", expected), ("actual", actual)]
    )
    for title, events in blocks:
        lines.append(f"  {title}")
        for status in statuses:
            row = _status_row(chart, events, status)
            lines.append(f"    {status.name:<{label_width - 4}}{row}".rstrip())
    if mark:
        cells = [" "] * chart.columns
        for t in mark:
            cells[chart.column(t)] = "^"
        lines.append(pad + "".join(cells).rstrip())
    return lines


def _event_table(
    actual: Sequence[tuple[float, NetworkStatus]],
    expected: Sequence[tuple[float | None, NetworkStatus]],
    first_difference: int,
) -> list[str]:
    def cell(events: Sequence[tuple[float | None, NetworkStatus]], index: int) -> str:
        if index >= len(events):
            return "(none)"
        t, status = events[index]
        return status.name if t is None else f"{status.name} at {_seconds(t)}"

    rows = max(len(actual), len(expected))
    first = max(0, first_difference - _TABLE_CONTEXT)
    last = min(rows, first_difference + _TABLE_CONTEXT + 1)
    left = [cell(expected, i) for i in range(first, last)]
    width = max([len(text) for text in left] + [len("expected")]) + 3
    lines = [f"      #  {'expected':<{width}}actual"]
    if first > 0:
        lines.append(f"         ... {first} matching transition(s) before")
    for offset, index in enumerate(range(first, last)):
        flag = ">>" if index == first_difference else "  "
        lines.append(f"  {flag}{index + 1:>3}  {left[offset]:<{width}}{cell(actual, index)}")
    if last < rows:
        lines.append(f"         ... {rows - last} more transition(s)")
    return lines


# -- recorder ----------------------------------------------------------------------------------


class TransitionRecorder:
    """Records every status transition of a NetworkProcessor, in loop time.

    Works with any ``NetworkProcessor`` (including your own subclass) through
    ``add_status_listener``. Attached to a ``FakeNetworkProcessor``, it starts with the
    transitions the fake recorded before the recorder existed. ``close()`` detaches it.

    ``seed`` is the seed shown in failure messages; by default the chronopype pytest
    plugin's seed for the running test.
    """

    def __init__(self, processor: NetworkProcessor, *, seed: int | None = None) -> None:
        if not isinstance(processor, NetworkProcessor):
            raise TypeError(
                f"TransitionRecorder needs a NetworkProcessor, got {type(processor).__name__}"
            )
        from chronopype_testing._fakes import FakeNetworkProcessor

        self.processor = processor
        self._seed = seed
        self._time = _TimeSource()
        self.transitions: list[Transition] = (
            list(processor.transitions) if isinstance(processor, FakeNetworkProcessor) else []
        )
        self._unsubscribe: Callable[[], None] | None = processor.add_status_listener(self._record)

    def _record(self, old: NetworkStatus, new: NetworkStatus) -> None:
        self.transitions.append(Transition(self._time.now(), old, new))

    @property
    def seed(self) -> int | None:
        return self._seed if self._seed is not None else _active_seed

    def close(self) -> None:
        """Stop recording (idempotent)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __enter__(self) -> TransitionRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def statuses(self) -> list[NetworkStatus]:
        """The new status of every recorded transition, in order."""
        return [transition.new for transition in self.transitions]

    def timeline(self) -> list[tuple[float, NetworkStatus]]:
        """``(seconds after the first recorded transition, new status)`` pairs."""
        if not self.transitions:
            return []
        origin = self.transitions[0].at
        return [(transition.at - origin, transition.new) for transition in self.transitions]

    def assert_statuses(self, expected: Iterable[NetworkStatus]) -> None:
        """Assert the exact sequence of new statuses (the initial STOPPED is not listed)."""
        __tracebackhide__ = True  # pytest: show the caller's line, not ours
        wanted = _statuses_argument(expected)
        actual = self.timeline()
        if [status for _, status in actual] == wanted:
            return
        first = _first_difference([s for _, s in actual], wanted)
        header = [
            f"{type(self.processor).__name__} made {len(actual)} transition(s), expected "
            f"{len(wanted)}; first difference at #{first + 1}: expected "
            f"{_name_at(wanted, first)}, got {_name_at([s for _, s in actual], first)}",
        ]
        # Expected statuses carry no times: draw each at the actual time of the same number.
        last_time = actual[-1][0] if actual else 0.0
        drawn = [
            (actual[i][0] if i < len(actual) else last_time, status)
            for i, status in enumerate(wanted)
        ]
        mark = [actual[first][0] if first < len(actual) else last_time]
        lines = [
            *header,
            "expected statuses are drawn at the actual time of the same transition number",
            *render_timeline(actual, drawn, mark=mark),
            *_event_table(actual, [(None, s) for s in wanted], first),
            seed_line(self.seed),
        ]
        raise AssertionError("\n".join(lines))

    def assert_timeline(
        self,
        expected: Iterable[tuple[float, NetworkStatus]],
        *,
        tolerance: float = _DEFAULT_TOLERANCE,
    ) -> None:
        """Assert statuses and times; each ``t`` is seconds after the first recorded transition.

        Times match when they differ by at most ``tolerance`` seconds.
        """
        __tracebackhide__ = True  # pytest: show the caller's line, not ours
        wanted = _timeline_argument(expected)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
            raise TypeError(f"tolerance must be a number of seconds, got {tolerance!r}")
        if not tolerance >= 0 or not math.isfinite(tolerance):
            raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}")
        actual = self.timeline()
        first = _first_timeline_difference(actual, wanted, tolerance)
        if first is None:
            return
        mark = [events[first][0] for events in (actual, wanted) if first < len(events)]
        header = (
            f"{type(self.processor).__name__} timeline differs (tolerance {tolerance:g} s): "
            f"first difference at #{first + 1}: expected {_event_at(wanted, first)}, "
            f"got {_event_at(actual, first)}"
        )
        lines = [
            header,
            *render_timeline(actual, wanted, mark=mark),
            *_event_table(actual, list(wanted), first),
            seed_line(self.seed),
        ]
        raise AssertionError("\n".join(lines))


def _statuses_argument(expected: Iterable[NetworkStatus]) -> list[NetworkStatus]:
    wanted = list(expected)
    for status in wanted:
        if not isinstance(status, NetworkStatus):
            raise TypeError(f"expected statuses must be NetworkStatus values, got {status!r}")
    return wanted


def _timeline_argument(
    expected: Iterable[tuple[float, NetworkStatus]],
) -> list[tuple[float, NetworkStatus]]:
    wanted: list[tuple[float, NetworkStatus]] = []
    for entry in expected:
        try:
            t, status = entry
        except (TypeError, ValueError):
            raise TypeError(
                f"timeline entries must be (seconds, NetworkStatus) pairs, got {entry!r}"
            ) from None
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise TypeError(f"timeline times must be finite numbers of seconds, got {t!r}")
        if not isinstance(status, NetworkStatus):
            raise TypeError(f"timeline statuses must be NetworkStatus values, got {status!r}")
        wanted.append((float(t), status))
    return wanted


def _first_difference(actual: Sequence[NetworkStatus], wanted: Sequence[NetworkStatus]) -> int:
    for index, (got, want) in enumerate(zip(actual, wanted, strict=False)):
        if got is not want:
            return index
    return min(len(actual), len(wanted))


def _first_timeline_difference(
    actual: Sequence[tuple[float, NetworkStatus]],
    wanted: Sequence[tuple[float, NetworkStatus]],
    tolerance: float,
) -> int | None:
    for index, ((got_t, got), (want_t, want)) in enumerate(zip(actual, wanted, strict=False)):
        if got is not want or not abs(got_t - want_t) <= tolerance:
            return index
    if len(actual) == len(wanted):
        return None
    return min(len(actual), len(wanted))


def _name_at(statuses: Sequence[NetworkStatus], index: int) -> str:
    return statuses[index].name if index < len(statuses) else "no further transition"


def _event_at(events: Sequence[tuple[float, NetworkStatus]], index: int) -> str:
    if index >= len(events):
        return "no further transition"
    t, status = events[index]
    return f"{status.name} at t={_seconds(t)}"


# -- backoff -----------------------------------------------------------------------------------


class _CheckStart(NamedTuple):
    at: float
    failed: bool
    segment: int


def _check_starts_from_transitions(transitions: Sequence[Transition]) -> list[_CheckStart]:
    """Check starts a status history reveals, split into segments at each STOPPED.

    A check from a non-connected status starts with the move to CONNECTING and failed if
    NOT_CONNECTED or ERROR follows. A successful check while CONNECTED leaves no trace; a
    failed one shows as the move to DISCONNECTING, which stands in for its start.
    """
    starts: list[_CheckStart] = []
    segment = 0
    for index, transition in enumerate(transitions):
        if transition.new is _S.STOPPED:
            segment += 1
        elif transition.new is _S.CONNECTING:
            following = transitions[index + 1].new if index + 1 < len(transitions) else None
            failed = following in (_S.NOT_CONNECTED, _S.ERROR)
            starts.append(_CheckStart(transition.at, failed, segment))
        elif transition.new is _S.DISCONNECTING:
            starts.append(_CheckStart(transition.at, True, segment))
    return starts


def _check_starts(
    source: NetworkProcessor | TransitionRecorder,
) -> tuple[list[_CheckStart], list[Transition]]:
    from chronopype_testing._fakes import FakeNetworkProcessor

    if isinstance(source, TransitionRecorder):
        return _check_starts_from_transitions(source.transitions), source.transitions
    if isinstance(source, FakeNetworkProcessor):
        starts = [
            _CheckStart(record.started, record.outcome != "CONNECTED", record.run)
            for record in source.check_log
        ]
        return starts, source.transitions
    raise TypeError(
        "assert_backoff_schedule needs a FakeNetworkProcessor or a TransitionRecorder "
        f"(attach one to your processor before start()), got {type(source).__name__}"
    )


def assert_backoff_schedule(
    processor_or_recorder: NetworkProcessor | TransitionRecorder,
    expected_bases: Sequence[float],
    *,
    jitter: float = 0.1,
    seed: int | None = None,
) -> None:
    """Assert the first ``len(expected_bases)`` retry gaps lie in ``base * (1 +/- jitter)``.

    A retry gap runs from the start of a failed check to the start of the next check of
    the same run (no start/stop/pause/resume in between); bands are clamped to [1, 300] s.
    Fails if fewer gaps were observed than bases given. For a ``TransitionRecorder`` the
    check starts are read off the transitions (see ``_check_starts_from_transitions``).
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not ours
    bases = list(expected_bases)
    if not bases:
        raise ValueError("expected_bases must name at least one base delay")
    for base in bases:
        if isinstance(base, bool) or not isinstance(base, int | float) or not base > 0:
            raise ValueError(f"expected_bases must be positive seconds, got {base!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1:
        raise ValueError(f"jitter must be a fraction in [0, 1), got {jitter!r}")
    starts, transitions = _check_starts(processor_or_recorder)
    gaps: list[tuple[float, float]] = []
    for current, following in itertools.pairwise(starts):
        if current.failed and current.segment == following.segment:
            gaps.append((current.at, following.at))
    verdicts: list[tuple[float, float, float, tuple[float, float], bool]] = []
    for base, (failed_at, next_at) in zip(bases, gaps, strict=False):
        band = backoff_band(float(base), float(jitter))
        gap = next_at - failed_at
        verdicts.append((failed_at, next_at, base, band, band[0] - 1e-9 <= gap <= band[1] + 1e-9))
    if len(gaps) >= len(bases) and all(ok for *_, ok in verdicts):
        return

    origin = transitions[0].at if transitions else (starts[0].at if starts else 0.0)
    bad = [index for index, verdict in enumerate(verdicts) if not verdict[-1]]
    if bad:
        headline = f"retry gap #{bad[0] + 1} is outside its backoff band (jitter {jitter:g})"
    else:
        headline = f"observed {len(gaps)} retry gap(s), expected at least {len(bases)}"
    lines = [headline, "      #  failed check at   next check at   gap           base     band"]
    for index, (failed_at, next_at, base, band, ok) in enumerate(verdicts):
        flag = "  " if ok else ">>"
        lines.append(
            f"  {flag}{index + 1:>3}  {_seconds(failed_at - origin):<16}  "
            f"{_seconds(next_at - origin):<14}  {_seconds(next_at - failed_at):<12}  "
            f"{base:<7g}  [{band[0]:g}, {band[1]:g}]"
        )
    for index in range(len(verdicts), len(bases)):
        lines.append(
            f"  >>{index + 1:>3}  {'(no such retry gap)':<48}{bases[index]:<7g}"
        )
    if transitions:
        actual = [(t.at - origin, t.new) for t in transitions]
        marks = [verdicts[i][1] - origin for i in bad[:1]]
        lines.extend(render_timeline(actual, mark=marks))
    if seed is None:
        recorder_seed = (
            processor_or_recorder.seed
            if isinstance(processor_or_recorder, TransitionRecorder)
            else None
        )
        seed = recorder_seed if recorder_seed is not None else _active_seed
    lines.append(seed_line(seed))
    raise AssertionError("\n".join(lines))


def illegal_transitions(transitions: Sequence[Transition]) -> list[str]:
    """A message for each transition ``LEGAL_TRANSITIONS`` does not allow, and for each
    transition whose ``old`` is not the previous transition's ``new``."""
    problems: list[str] = []
    previous: NetworkStatus | None = None
    for number, transition in enumerate(transitions, start=1):
        if previous is not None and transition.old is not previous:
            problems.append(
                f"transition #{number} at loop time {transition.at!r} starts from "
                f"{transition.old.name}, but the previous one ended in {previous.name}"
            )
        if transition.new not in LEGAL_TRANSITIONS[transition.old]:
            problems.append(
                f"transition #{number} at loop time {transition.at!r}: "
                f"{transition.old.name} -> {transition.new.name} is not a legal transition"
            )
        previous = transition.new
    return problems
