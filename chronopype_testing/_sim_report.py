"""The simulator's reports: the text report, the side-by-side comparison, and JSON.

Every number comes from a finished ``RunAnalysis`` in exact virtual time; the text reports
round to the millisecond, the JSON report does not round at all.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chronopype.processors.network import BACKOFF_JITTER
from chronopype_testing._sim_analysis import (
    MINUTE,
    OutageResult,
    RunAnalysis,
    WaitCause,
    nearest_rank,
)
from chronopype_testing._sim_run import CheckOutcome
from chronopype_testing._sim_scenario import Outage, format_clock, format_seconds

__all__ = [
    "OUTAGE_MARK",
    "ReportHeader",
    "band_rows",
    "compare_report",
    "json_report",
    "never_connected_warning",
    "status_band",
    "text_report",
]

_GLYPHS = {
    "unicode": {0: " ", 1: "█", 2: "░", 3: "·", 4: "!"},
    "ascii": {0: " ", 1: "#", 2: "~", 3: ".", 4: "!"},
}
_MARKS = {"unicode": ("✓", "✗", "±"), "ascii": ("ok", "x", "+/-")}
_LEGEND = (
    (1, "connected"),
    (2, "connecting/disconnecting"),
    (3, "not connected"),
    (4, "error"),
)
OUTAGE_MARK = "^"
# Check marks per report line before it wraps.
_LINE_WIDTH = 100


@dataclass(frozen=True, slots=True)
class ReportHeader:
    """What the run was asked to do, as the user wrote it."""

    hours: float
    seed: int
    processor_name: str
    outage_source: str


# -- the terminal timeline --------------------------------------------------------------------


def _outage_minutes(outages: Sequence[Outage], minutes: int) -> list[int]:
    """For each minute, the number of the outage overlapping it (0 for none)."""
    marks = [0] * minutes
    for number, outage in enumerate(outages, start=1):
        first = int(outage.start // MINUTE)
        for minute in range(first, min(minutes, math.ceil(outage.end / MINUTE))):
            marks[minute] = number
    return marks


def _outages(analysis: RunAnalysis) -> list[Outage]:
    return [result.outage for result in analysis.outages]


def band_rows(analysis: RunAnalysis, *, ascii_only: bool = False) -> list[tuple[str, str]]:
    """Per hour: one glyph per minute (the worst status within it), and the outage marks
    under it (``OUTAGE_MARK`` where an outage overlaps the minute, else a space)."""
    glyphs = _GLYPHS["ascii" if ascii_only else "unicode"]
    severities = analysis.minute_severity
    marks = _outage_minutes(_outages(analysis), len(severities))
    rows = []
    for first in range(0, len(severities), 60):
        cells = "".join(glyphs[severity] for severity in severities[first : first + 60])
        underline = "".join(OUTAGE_MARK if number else " " for number in marks[first : first + 60])
        rows.append((cells, underline))
    return rows


def status_band(analysis: RunAnalysis, *, ascii_only: bool = False) -> list[str]:
    """The terminal timeline: a ruler, then one line per hour, each followed by an outage
    line when an outage touches that hour."""
    bar = "|" if ascii_only else "│"
    rows = band_rows(analysis, ascii_only=ascii_only)
    marks = _outage_minutes(_outages(analysis), len(analysis.minute_severity))
    width = len(str(max(len(rows) - 1, 0)))
    indent = " " * (width + 2)
    ruler = "".join(f"{minute:<10d}" for minute in range(0, 60, 10))
    lines = [f"{indent}{ruler}  (minute)"]
    for hour, (cells, underline) in enumerate(rows):
        lines.append(f"{hour:>{width}d}h{bar}{cells:<60}{bar}")
        numbers = sorted({number for number in marks[hour * 60 : hour * 60 + 60] if number})
        if numbers:
            label = "outage" if len(numbers) == 1 else "outages"
            names = ", ".join(f"#{number}" for number in numbers)
            lines.append(f"{indent}{underline:<60} {label} {names}")
    return lines


def _legend(ascii_only: bool) -> str:
    glyphs = _GLYPHS["ascii" if ascii_only else "unicode"]
    items = [f"{glyphs[severity]} {name}" for severity, name in _LEGEND]
    items.append(f"{OUTAGE_MARK} outage (network down)")
    return "   ".join(items)


# -- pieces of text -----------------------------------------------------------------------------


def _clock_or_dash(at: float | None) -> str:
    return "-" if at is None else format_clock(at)


def _seconds_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else format_seconds(seconds)


def _offset(seconds: float) -> str:
    return f"+{seconds:.1f}s"


def _delay_cells(analysis: RunAnalysis, kind: str) -> list[str]:
    """p50, p95, max and count of one kind of delay, for the delays table."""
    values = analysis.delays(kind)
    return [
        _seconds_or_dash(nearest_rank(values, 50)),
        _seconds_or_dash(nearest_rank(values, 95)),
        _seconds_or_dash(max(values, default=None)),
        str(len(values)),
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(widths[column]) for column, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def _settings_line(analysis: RunAnalysis) -> str:
    return (
        f"check_network_interval {format_seconds(analysis.check_network_interval)}, "
        f"check_network_timeout {format_seconds(analysis.check_network_timeout)}, "
        f"network_error_wait_time {format_seconds(analysis.network_error_wait_time)}"
    )


def _wrap(first_prefix: str, items: list[str], indent: str) -> list[str]:
    lines: list[str] = []
    current = first_prefix
    for item in items:
        if len(current) + 2 + len(item) > _LINE_WIDTH and current.strip():
            lines.append(current.rstrip())
            current = indent
        current += item + "  "
    lines.append(current.rstrip())
    return lines


def check_marks(result: OutageResult, *, ascii_only: bool = False) -> list[str]:
    """The outage's checks as ``+7.0s ✗`` items (seconds from the outage start), with the
    outage's end and any checks left out in between shown where they fall."""
    good, bad, _ = _MARKS["ascii" if ascii_only else "unicode"]
    start, end = result.outage.start, result.outage.end
    items: list[str] = []
    end_shown = False

    def mark(outcome: CheckOutcome) -> None:
        nonlocal end_shown
        if not end_shown and outcome.started >= end:
            items.append(f"| end {_offset(end - start)} |")
            end_shown = True
        symbol = good if outcome.connected else bad
        why = "" if outcome.why in ("connected", "outage", "not connected") else f" ({outcome.why})"
        items.append(f"{_offset(outcome.started - start)} {symbol}{why}")

    for outcome in result.first_checks:
        mark(outcome)
    if result.checks_left_out:
        items.append(f"... {result.checks_left_out} more ...")
    for outcome in result.last_checks:
        mark(outcome)
    if not end_shown:
        items.append(f"| end {_offset(end - start)} |")
    return items


def describe_cause(cause: WaitCause, *, ascii_only: bool = False) -> str:
    """``a 243.679 s wait (the backoff after 9 failed checks in a row: ...)``."""
    plus_minus = _MARKS["ascii" if ascii_only else "unicode"][2]
    if cause.kind == "error wait":
        return (
            f"a {format_seconds(cause.waited)} wait (network_error_wait_time, after a check "
            "that raised)"
        )
    plural = "" if cause.failures == 1 else "s"
    return (
        f"a {format_seconds(cause.waited)} wait (the backoff after {cause.failures} failed "
        f"check{plural} in a row: backoff_delay({cause.failures}) = {cause.base:g} s "
        f"{plus_minus}{BACKOFF_JITTER:.0%})"
    )


def _outage_story(result: OutageResult, *, ascii_only: bool) -> list[str]:
    prefix = f"  #{result.number:<3d} "
    indent = " " * len(prefix)
    lines = _wrap(prefix, check_marks(result, ascii_only=ascii_only), indent)
    if result.note.startswith("missed"):
        lines.append(f"{indent}missed: it fell between two checks, so nothing had to recover")
        return lines
    parts = []
    if result.detection_delay is not None:
        parts.append(f"detected after {format_seconds(result.detection_delay)}")
    if result.recovery_delay is not None:
        back = f"back {format_seconds(result.recovery_delay)} after the end"
        if result.cause is not None:
            back += f", after {describe_cause(result.cause, ascii_only=ascii_only)}"
        parts.append(back)
    if result.note:
        parts.append(result.note)
    lines += textwrap.wrap(
        "; ".join(parts), _LINE_WIDTH, initial_indent=indent, subsequent_indent=indent
    )
    return lines


def _worst_lines(analysis: RunAnalysis, *, ascii_only: bool) -> list[str]:
    lines = []
    worst = analysis.worst("detection")
    if worst is not None and worst.detection_delay is not None:
        lines.append(
            f"worst detection: #{worst.number}, {format_seconds(worst.detection_delay)} after "
            f"it began (checks run every {format_seconds(analysis.check_network_interval)} "
            "while connected; an outage waits for the next one)"
        )
        lines[-1:] = textwrap.wrap(lines[-1], _LINE_WIDTH, subsequent_indent=" " * 17)
    worst = analysis.worst("recovery")
    if worst is not None and worst.recovery_delay is not None:
        delay = format_seconds(worst.recovery_delay)
        line = f"worst recovery:  #{worst.number}, {delay} after it ended"
        if worst.cause is not None:
            cause = describe_cause(worst.cause, ascii_only=ascii_only)
            line += f"; the network came back during {cause}"
        lines += textwrap.wrap(line, _LINE_WIDTH, subsequent_indent=" " * 17)
    return lines


def never_connected_warning(processor_name: str, analysis: RunAnalysis) -> str:
    return (
        f"warning: {processor_name} never connected outside the outages "
        f"({analysis.checks_outside_outages} checks there, none returned CONNECTED), so this "
        "report shows a processor that is down all along: no outage is detected and no "
        "recovery is measured. Check that its check_network() reaches the service from here "
        "(and that the service runs), or simulate it against a stand-in."
    )


# -- reports ------------------------------------------------------------------------------------


def text_report(analysis: RunAnalysis, header: ReportHeader, *, ascii_only: bool = False) -> str:
    lines = [
        f"chronopype-sim: {header.hours:g} h of virtual time ({format_seconds(analysis.horizon)}),"
        f" seed {header.seed}",
        f"processor: {header.processor_name}",
        f"settings:  {_settings_line(analysis)}",
        "backoff:   NetworkProcessor.backoff_delay(n): 1, 2, 4 ... 256, 300 s after the "
        f"n-th failed check in a row, +/-{BACKOFF_JITTER:.0%}",
        f"outages:   {header.outage_source}; each is [start, end), times are h:mm:ss from the "
        "start",
    ]
    if analysis.never_connected:
        lines.insert(0, never_connected_warning(header.processor_name, analysis))
    for result in analysis.outages:
        outage = result.outage
        lines.append(
            f"  #{result.number}  {format_clock(outage.start)} - {format_clock(outage.end)}"
            f"  ({format_seconds(outage.duration)})"
        )
    lines += [
        "",
        "status, one line per hour, one column per minute (the worst status within it):",
        "  " + _legend(ascii_only),
        "",
        *status_band(analysis, ascii_only=ascii_only),
    ]
    if analysis.outages:
        rows = [
            [
                "outage",
                "start",
                "end",
                "detected",
                "detection",
                "reconnected",
                "recovery",
                "checks",
                "",
            ]
        ]
        for result in analysis.outages:
            rows.append(
                [
                    f"#{result.number}",
                    format_clock(result.outage.start),
                    format_clock(result.outage.end),
                    _clock_or_dash(result.detected_at),
                    _seconds_or_dash(result.detection_delay),
                    _clock_or_dash(result.reconnected_at),
                    _seconds_or_dash(result.recovery_delay),
                    str(result.checks),
                    result.note,
                ]
            )
        good, bad, _ = _MARKS["ascii" if ascii_only else "unicode"]
        lines += [
            "",
            "detection = outage start -> status leaves CONNECTED; "
            "recovery = outage end -> CONNECTED again",
            *_table(rows),
            "",
            f"checks during and after each outage, in seconds from its start ({good} connected, "
            f"{bad} failed):",
        ]
        for result in analysis.outages:
            lines += _outage_story(result, ascii_only=ascii_only)
        lines += ["", "delays (nearest-rank percentiles over the outages that have one):"]
        rows = [["delay", "p50", "p95", "max", "outages"]]
        for kind in ("detection", "recovery"):
            rows.append([kind, *_delay_cells(analysis, kind)])
        lines += _table(rows)
        lines += _worst_lines(analysis, ascii_only=ascii_only)
    lines.append("")
    lines.append(f"checks: {analysis.total_checks} in total")
    per_hour = analysis.checks_per_hour_while_down
    if per_hour is not None:
        lines.append(
            f"checks while down: {analysis.checks_during_outages} during "
            f"{format_seconds(analysis.outage_seconds)} of outages = {per_hour:.1f} per hour"
        )
    up = analysis.horizon - analysis.outage_seconds
    lines.append(
        f"connected {100 * analysis.connected_seconds / analysis.horizon:.3f}% of the run; "
        f"the network was up {100 * up / analysis.horizon:.3f}%"
    )
    return "\n".join(lines) + "\n"


def compare_report(
    runs: Sequence[tuple[str, RunAnalysis]], header: ReportHeader, *, ascii_only: bool = False
) -> str:
    """Two (or more) settings side by side on the same outages and the same seed."""
    a = runs[0][1]
    lines = [
        f"chronopype-sim --compare: {header.hours:g} h of virtual time "
        f"({format_seconds(a.horizon)}), seed {header.seed}, the same outages for each",
        f"processor: {header.processor_name}",
    ]
    for label, analysis in runs:
        lines.append(f"  {label}: {_settings_line(analysis)}")
        if analysis.never_connected:
            lines.append(f"  {label}: " + never_connected_warning(header.processor_name, analysis))
    lines.append(f"outages: {header.outage_source}; each is [start, end), h:mm:ss from the start")
    labels = [label for label, _ in runs]
    if a.outages:
        head = ["outage", "start", "end"]
        for what in ("detection", "recovery", "checks"):
            head += [f"{what} {label}" for label in labels]
        rows = [head]
        for number in range(len(a.outages)):
            outage = a.outages[number].outage
            row = [f"#{number + 1}", format_clock(outage.start), format_clock(outage.end)]
            row += [
                "missed" if r.outages[number].note.startswith("missed")
                else _seconds_or_dash(r.outages[number].detection_delay)
                for _, r in runs
            ]  # fmt: skip
            row += [_seconds_or_dash(r.outages[number].recovery_delay) for _, r in runs]
            row += [str(r.outages[number].checks) for _, r in runs]
            rows.append(row)
        lines += ["", *_table(rows), "", "delays (nearest-rank percentiles):"]
        rows = [["delay", "", "p50", "p95", "max", "outages"]]
        for kind in ("detection", "recovery"):
            for label, analysis in runs:
                rows.append([kind, label, *_delay_cells(analysis, kind)])
        lines += _table(rows)
        for label, analysis in runs:
            lines += [f"{label}: {line}" for line in _worst_lines(analysis, ascii_only=ascii_only)]
    lines.append("")
    rows = [["", "checks", "checks while down", "per hour down", "connected"]]
    for label, analysis in runs:
        per_hour = analysis.checks_per_hour_while_down
        rows.append(
            [
                label,
                str(analysis.total_checks),
                str(analysis.checks_during_outages),
                "-" if per_hour is None else f"{per_hour:.1f}",
                f"{100 * analysis.connected_seconds / analysis.horizon:.3f}%",
            ]
        )
    lines += _table(rows)
    return "\n".join(lines) + "\n"


def _check_json(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "started": outcome.started,
        "finished": outcome.finished,
        "connected": outcome.connected,
        "why": outcome.why,
    }


def _cause_json(cause: WaitCause | None) -> dict[str, Any] | None:
    if cause is None:
        return None
    return {
        "failed_check_at": cause.failed_check_at,
        "waited": cause.waited,
        "kind": cause.kind,
        "failures_in_a_row": cause.failures,
        "backoff_base": cause.base,
    }


def json_report(analysis: RunAnalysis, header: ReportHeader) -> dict[str, Any]:
    """Everything in the text report, unrounded, in seconds of virtual time."""

    def stats(kind: str) -> dict[str, Any]:
        values = analysis.delays(kind)
        return {
            "count": len(values),
            "p50": nearest_rank(values, 50),
            "p95": nearest_rank(values, 95),
            "max": max(values, default=None),
        }

    rows = band_rows(analysis)
    report: dict[str, Any] = {
        "scenario": {
            "hours": header.hours,
            "horizon_seconds": analysis.horizon,
            "seed": header.seed,
            "processor": header.processor_name,
            "outage_source": header.outage_source,
            "check_network_interval": analysis.check_network_interval,
            "check_network_timeout": analysis.check_network_timeout,
            "network_error_wait_time": analysis.network_error_wait_time,
            "outages": [{"start": r.outage.start, "end": r.outage.end} for r in analysis.outages],
        },
        "warnings": (
            [never_connected_warning(header.processor_name, analysis)]
            if analysis.never_connected
            else []
        ),
        "outages": [
            {
                "number": result.number,
                "start": result.outage.start,
                "end": result.outage.end,
                "detected_at": result.detected_at,
                "detection_delay": result.detection_delay,
                "reconnected_at": result.reconnected_at,
                "recovery_delay": result.recovery_delay,
                "checks": result.checks,
                "note": result.note,
                "check_log": [_check_json(outcome) for outcome in result.first_checks],
                "check_log_left_out": result.checks_left_out,
                "check_log_end": [_check_json(outcome) for outcome in result.last_checks],
                "recovery_wait": _cause_json(result.cause),
            }
            for result in analysis.outages
        ],
        "summary": {
            "percentiles": "nearest-rank",
            "detection_delay": stats("detection"),
            "recovery_delay": stats("recovery"),
            "total_checks": analysis.total_checks,
            "checks_during_outages": analysis.checks_during_outages,
            "outage_seconds": analysis.outage_seconds,
            "checks_per_hour_while_down": analysis.checks_per_hour_while_down,
            "connected_seconds": analysis.connected_seconds,
        },
        "timeline": {
            "minute_seconds": MINUTE,
            "legend": {_GLYPHS["unicode"][severity]: name for severity, name in _LEGEND},
            "hours": [cells for cells, _ in rows],
            "outage_marks": [underline for _, underline in rows],
        },
    }
    if analysis.transitions is not None:
        report["transitions"] = [
            {"at": at, "from": old.name, "to": new.name} for at, old, new in analysis.transitions
        ]
    return report
