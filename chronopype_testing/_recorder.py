"""Recording a NetworkProcessor's events, and asserting on them readably.

``TransitionRecorder`` is an observer (``NetworkProcessor.add_observer``): everything it
knows, times included, comes from the processor's events, so it works the same for the fake
and for any subclass of yours. Every assertion here fails with an aligned ASCII timeline
(one row per status, time on the x-axis) and an event table, never with a bare list diff,
and ends with the seed line that reproduces the run under the chronopype pytest plugin.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from chronopype.processors.backoff import BACKOFF_JITTER, backoff_bounds, jittered_backoff
from chronopype.processors.events import (
    CheckStarted,
    LoopPaused,
    LoopStopped,
    ProcessorEvent,
    StatusChanged,
    WaitScheduled,
)
from chronopype.processors.machine import LEGAL_TRANSITIONS, WaitKind
from chronopype.processors.network import NetworkProcessor, NetworkStatus

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
_E = TypeVar("_E", bound=ProcessorEvent)

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
    """The interval ``base * (1 +/- jitter)``, clamped to the backoff floor and cap (the
    core's ``jittered_backoff`` at both ends of the jitter)."""
    return jittered_backoff(base, -jitter), jittered_backoff(base, jitter)


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


# Every recorder alive, so assert_backoff_schedule(processor) finds the one attached to it.
_recorders: weakref.WeakSet[TransitionRecorder] = weakref.WeakSet()


class TransitionRecorder:
    """Records every event of a NetworkProcessor (``events``) and its status transitions
    (``transitions``, in loop time), as an observer: works with any ``NetworkProcessor``,
    including your own subclass. Attach it before ``start()`` to see everything; ``close()``
    detaches it.

    ``seed`` is the seed shown in failure messages; by default the chronopype pytest
    plugin's seed for the running test.
    """

    def __init__(self, processor: NetworkProcessor, *, seed: int | None = None) -> None:
        if not isinstance(processor, NetworkProcessor):
            raise TypeError(
                f"TransitionRecorder needs a NetworkProcessor, got {type(processor).__name__}"
            )
        self.processor = processor
        self._seed = seed
        self.events: list[ProcessorEvent] = []
        self.transitions: list[Transition] = []
        self._unsubscribe: Callable[[], None] | None = processor.add_observer(self._record)
        _recorders.add(self)

    def _record(self, event: ProcessorEvent) -> None:
        self.events.append(event)
        if type(event) is StatusChanged:
            self.transitions.append(Transition(event.at, event.old, event.new))

    @property
    def attached(self) -> bool:
        """Whether it still records (``close()`` not called)."""
        return self._unsubscribe is not None

    @property
    def checks(self) -> list[float]:
        """Loop time of the start of every check."""
        return [event.at for event in self.events if type(event) is CheckStarted]

    def of_type(self, kind: type[_E]) -> list[_E]:
        """The recorded events of class ``kind``, in order."""
        return [event for event in self.events if isinstance(event, kind)]

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

    @property
    def timeline(self) -> list[tuple[float, NetworkStatus]]:
        """``(seconds after the first recorded transition, new status)`` pairs.

        Like ``transitions``, ``statuses`` and ``seed``, a property: what the recorder
        holds is read as attributes; what it does (``assert_*``, ``close``) are methods."""
        if not self.transitions:
            return []
        origin = self.transitions[0].at
        return [(transition.at - origin, transition.new) for transition in self.transitions]

    def assert_statuses(self, expected: Iterable[NetworkStatus]) -> None:
        """Assert the exact sequence of new statuses (the initial STOPPED is not listed)."""
        __tracebackhide__ = True  # pytest: show the caller's line, not ours
        wanted = _statuses_argument(expected)
        actual = self.timeline
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
        actual = self.timeline
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


class _Wait(NamedTuple):
    """A backoff wait and what followed it: the next check of the same run (``next_check``),
    or ``None`` with ``ended_by`` naming the pause()/stop() that cut it short (or
    ``"still waiting"`` at the end of the recording)."""

    event: WaitScheduled
    next_check: float | None
    ended_by: str


def _backoff_waits(events: Sequence[ProcessorEvent]) -> list[_Wait]:
    """Every BACKOFF wait in ``events``, each with the check that ended it. A check that
    starts a run (after start() or resume()) follows no wait of its run, so it is never a
    retry."""
    waits: list[_Wait] = []
    pending: WaitScheduled | None = None
    for event in events:
        if pending is not None and event.run == pending.run:
            if type(event) is CheckStarted:
                waits.append(_Wait(pending, event.at, "next check"))
                pending = None
            elif type(event) is LoopPaused or type(event) is LoopStopped:
                waits.append(_Wait(pending, None, f"{type(event).__name__} at {event.at!r}"))
                pending = None
        if type(event) is WaitScheduled:
            if pending is not None:  # cannot happen: a wait ends before the next is armed
                waits.append(_Wait(pending, None, "another wait"))
                pending = None
            if event.kind is WaitKind.BACKOFF:
                pending = event
    if pending is not None:
        waits.append(_Wait(pending, None, "still waiting"))
    return waits


def _attached_recorder(processor: NetworkProcessor) -> TransitionRecorder:
    candidates = [r for r in _recorders if r.processor is processor and r.attached]
    if not candidates:
        raise TypeError(
            f"assert_backoff_schedule needs events: attach a TransitionRecorder to this "
            f"{type(processor).__name__} before start() (TransitionRecorder(processor), or the "
            "transition_recorder fixture), or pass the recorder"
        )
    # The one that saw most: attached first.
    return max(candidates, key=lambda recorder: len(recorder.events))


def _gap_matches(wait: WaitScheduled, next_check: float) -> bool:
    # The timer fires at at + delay exactly; allow only float rounding of that sum.
    return abs(next_check - (wait.at + wait.delay)) <= 1e-9 * max(1.0, abs(wait.at))


def assert_backoff_schedule(
    processor_or_recorder: NetworkProcessor | TransitionRecorder,
    expected_bases: Sequence[float] | None = None,
    *,
    jitter: float = BACKOFF_JITTER,
    seed: int | None = None,
) -> None:
    """Assert, from the processor's events, every backoff wait it scheduled:

    - the next check of the same run started exactly ``delay`` seconds after the wait
      began (the end of the failed attempt, hooks included); a wait cut short by
      ``pause()``/``stop()`` has no next check to compare, and the first check after
      ``start()``/``resume()`` is never a retry;
    - the delay lies in its band: ``base * (1 +/- jitter)`` clamped to [1, 300] s, where
      the bases are ``expected_bases`` in order (at least that many waits must have
      happened) or, when None, the core's ``backoff_bounds(retry_count)`` for each wait.

    Takes a ``TransitionRecorder``, or any ``NetworkProcessor`` with one attached.
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not ours
    bases = None if expected_bases is None else list(expected_bases)
    if bases is not None:
        if not bases:
            raise ValueError("expected_bases must name at least one base delay")
        for base in bases:
            if isinstance(base, bool) or not isinstance(base, int | float) or not base > 0:
                raise ValueError(f"expected_bases must be positive seconds, got {base!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1:
        raise ValueError(f"jitter must be a fraction in [0, 1), got {jitter!r}")
    if isinstance(processor_or_recorder, TransitionRecorder):
        recorder = processor_or_recorder
    elif isinstance(processor_or_recorder, NetworkProcessor):
        recorder = _attached_recorder(processor_or_recorder)
    else:
        raise TypeError(
            "assert_backoff_schedule needs a NetworkProcessor or a TransitionRecorder, got "
            f"{type(processor_or_recorder).__name__}"
        )
    waits = _backoff_waits(recorder.events)
    checked = waits if bases is None else waits[: len(bases)]
    rows: list[tuple[_Wait, tuple[float, float], str | None]] = []
    for index, wait in enumerate(checked):
        event = wait.event
        if bases is None:
            band = backoff_bounds(event.retry_count, jitter=jitter)
        else:
            band = backoff_band(float(bases[index]), float(jitter))
        problem = None
        if not band[0] - 1e-9 <= event.delay <= band[1] + 1e-9:
            problem = "delay outside its band"
        elif wait.next_check is not None and not _gap_matches(event, wait.next_check):
            problem = "next check not exactly delay seconds after the wait began"
        rows.append((wait, band, problem))
    missing = 0 if bases is None else len(bases) - len(checked)
    if not missing and all(problem is None for *_, problem in rows):
        return

    transitions = recorder.transitions
    origin = transitions[0].at if transitions else (waits[0].event.at if waits else 0.0)
    bad = [index for index, (*_, problem) in enumerate(rows) if problem is not None]
    if bad:
        headline = f"backoff wait #{bad[0] + 1}: {rows[bad[0]][2]} (jitter {jitter:g})"
    else:
        headline = (
            f"observed {len(checked)} backoff wait(s), expected at least {len(checked) + missing}"
        )
    lines = [
        headline,
        "      #  wait began at     retries  delay         band              next check at",
    ]
    for index, (wait, band, problem) in enumerate(rows):
        event = wait.event
        flag = ">>" if problem else "  "
        following = (
            _seconds(wait.next_check - origin) if wait.next_check is not None else wait.ended_by
        )
        lines.append(
            f"  {flag}{index + 1:>3}  {_seconds(event.at - origin):<16}  {event.retry_count:<7}  "
            f"{_seconds(event.delay):<12}  [{band[0]:g}, {band[1]:g}]".ljust(78)
            + f"{following}"
        )
    for index in range(len(rows), len(rows) + missing):
        assert bases is not None
        lines.append(f"  >>{index + 1:>3}  (no such backoff wait; expected base {bases[index]:g})")
    if transitions:
        actual = [(t.at - origin, t.new) for t in transitions]
        marks = [rows[i][0].event.at - origin for i in bad[:1]]
        lines.extend(render_timeline(actual, mark=marks))
    if seed is None:
        seed = recorder.seed
    lines.append(seed_line(seed))
    raise AssertionError("\n".join(lines))


def illegal_transitions(transitions: Sequence[Transition]) -> list[str]:
    """A message for each transition ``chronopype.processors.LEGAL_TRANSITIONS`` does not
    allow, and for each transition whose ``old`` is not the previous transition's ``new``."""
    problems: list[str] = []
    previous: NetworkStatus | None = None
    for number, transition in enumerate(transitions, start=1):
        if previous is not None and transition.old is not previous:
            problems.append(
                f"transition #{number} at loop time {transition.at!r} starts from "
                f"{transition.old.name}, but the previous one ended in {previous.name}"
            )
        if (transition.old, transition.new) not in LEGAL_TRANSITIONS:
            problems.append(
                f"transition #{number} at loop time {transition.at!r}: "
                f"{transition.old.name} -> {transition.new.name} is not a legal transition"
            )
        previous = transition.new
    return problems
