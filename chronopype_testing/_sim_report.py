"""What a simulation run means: per-outage delays, summary numbers, and their renderings.

Every number is computed from the recorded run in exact virtual time; the text report
rounds to the millisecond, the JSON report does not round at all.
"""

from __future__ import annotations

import bisect
import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chronopype.processors.network import NetworkStatus
from chronopype_testing._sim_run import SimulationRun
from chronopype_testing._sim_scenario import Outage, format_clock, format_seconds

__all__ = [
    "Analysis",
    "OutageResult",
    "analyse",
    "json_report",
    "nearest_rank",
    "band_rows",
    "status_band",
    "text_report",
    "write_plot",
]

MINUTE = 60.0
HOUR = 3600.0

_S = NetworkStatus
# The band shows the worst status held for any time within each minute.
_SEVERITY = {
    _S.STOPPED: 0,
    _S.CONNECTED: 1,
    _S.CONNECTING: 2,
    _S.DISCONNECTING: 2,
    _S.NOT_CONNECTED: 3,
    _S.ERROR: 4,
}
_GLYPHS = {
    "unicode": {0: " ", 1: "█", 2: "░", 3: "·", 4: "!"},
    "ascii": {0: " ", 1: "#", 2: "~", 3: ".", 4: "!"},
}
_LEGEND = (
    (1, "connected"),
    (2, "connecting/disconnecting"),
    (3, "not connected"),
    (4, "error"),
)
OUTAGE_MARK = "^"
_PLOT_COLOURS = {
    _S.CONNECTED: "#2e7d32",
    _S.CONNECTING: "#f9a825",
    _S.DISCONNECTING: "#f9a825",
    _S.NOT_CONNECTED: "#9e9e9e",
    _S.ERROR: "#c62828",
}


@dataclass(frozen=True, slots=True)
class OutageResult:
    """How the processor saw one outage. Delays are None when they do not apply (see note)."""

    number: int
    outage: Outage
    detected_at: float | None
    reconnected_at: float | None
    checks: int
    note: str

    @property
    def detection_delay(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.outage.start

    @property
    def recovery_delay(self) -> float | None:
        return None if self.reconnected_at is None else self.reconnected_at - self.outage.end


@dataclass(frozen=True, slots=True)
class Analysis:
    run: SimulationRun
    # (start, end, status), covering [0, horizon] without gaps; zero-length ones dropped.
    segments: list[tuple[float, float, NetworkStatus]]
    outages: list[OutageResult]
    checks_during_outages: int
    outage_seconds: float
    connected_seconds: float

    @property
    def checks_per_hour_while_down(self) -> float | None:
        if self.outage_seconds == 0:
            return None
        return self.checks_during_outages / (self.outage_seconds / HOUR)

    def delays(self, kind: str) -> list[float]:
        values = (
            result.detection_delay if kind == "detection" else result.recovery_delay
            for result in self.outages
        )
        return [value for value in values if value is not None]


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: always one of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _segments(run: SimulationRun) -> list[tuple[float, float, NetworkStatus]]:
    segments = []
    status, since = NetworkStatus.STOPPED, 0.0
    for at, _old, new in run.transitions:
        at = min(at, run.horizon)
        if at > since:
            segments.append((since, at, status))
        status, since = new, max(since, at)
    if run.horizon > since:
        segments.append((since, run.horizon, status))
    return segments


def _outage_result(run: SimulationRun, number: int) -> OutageResult:
    outage = run.outages[number - 1]
    following = run.outages[number].start if number < len(run.outages) else run.horizon
    checks = bisect.bisect_left(run.checks, outage.end) - bisect.bisect_left(
        run.checks, outage.start
    )
    status_at_start = NetworkStatus.STOPPED
    detected_at: float | None = None
    reconnected_at: float | None = None
    for at, old, new in run.transitions:
        if at < outage.start:
            status_at_start = new
        elif detected_at is None and old is NetworkStatus.CONNECTED and at < outage.end:
            detected_at = at
        if at >= outage.end and new is NetworkStatus.CONNECTED:
            reconnected_at = at
            break
    was_connected = status_at_start is NetworkStatus.CONNECTED
    if not was_connected:
        detected_at = None  # nothing left to detect
    elif detected_at is None:
        # No check began inside the window: the processor never noticed this outage.
        return OutageResult(number, outage, None, None, checks, "missed: no check saw it")
    note = "" if was_connected else "already not connected when it began"
    if reconnected_at is not None and reconnected_at >= following:
        reconnected_at = None
    if reconnected_at is None:
        what = "the next outage" if number < len(run.outages) else "the end of the run"
        note = f"{note}; " if note else ""
        note += f"not reconnected before {what}"
    return OutageResult(number, outage, detected_at, reconnected_at, checks, note)


def analyse(run: SimulationRun) -> Analysis:
    segments = _segments(run)
    return Analysis(
        run=run,
        segments=segments,
        outages=[_outage_result(run, number) for number in range(1, len(run.outages) + 1)],
        checks_during_outages=sum(
            bisect.bisect_left(run.checks, outage.end)
            - bisect.bisect_left(run.checks, outage.start)
            for outage in run.outages
        ),
        outage_seconds=sum(outage.duration for outage in run.outages),
        connected_seconds=sum(
            end - start for start, end, status in segments if status is NetworkStatus.CONNECTED
        ),
    )


# -- the terminal timeline --------------------------------------------------------------------


def _minute_severities(analysis: Analysis) -> list[int]:
    minutes = math.ceil(analysis.run.horizon / MINUTE)
    worst = [0] * minutes
    for start, end, status in analysis.segments:
        severity = _SEVERITY[status]
        for minute in range(int(start // MINUTE), min(minutes, math.ceil(end / MINUTE))):
            if severity > worst[minute]:
                worst[minute] = severity
    return worst


def _outage_minutes(outages: Sequence[Outage], minutes: int) -> list[int]:
    """For each minute, the number of the outage overlapping it (0 for none)."""
    marks = [0] * minutes
    for number, outage in enumerate(outages, start=1):
        first = int(outage.start // MINUTE)
        for minute in range(first, min(minutes, math.ceil(outage.end / MINUTE))):
            marks[minute] = number
    return marks


def band_rows(analysis: Analysis, *, ascii_only: bool = False) -> list[tuple[str, str]]:
    """Per hour: one glyph per minute (the worst status within it), and the outage marks
    under it (``OUTAGE_MARK`` where an outage overlaps the minute, else a space)."""
    glyphs = _GLYPHS["ascii" if ascii_only else "unicode"]
    severities = _minute_severities(analysis)
    marks = _outage_minutes(analysis.run.outages, len(severities))
    rows = []
    for first in range(0, len(severities), 60):
        cells = "".join(glyphs[severity] for severity in severities[first : first + 60])
        underline = "".join(OUTAGE_MARK if number else " " for number in marks[first : first + 60])
        rows.append((cells, underline))
    return rows


def status_band(analysis: Analysis, *, ascii_only: bool = False) -> list[str]:
    """The terminal timeline: a ruler, then one line per hour, each followed by an outage
    line when an outage touches that hour."""
    bar = "|" if ascii_only else "│"
    rows = band_rows(analysis, ascii_only=ascii_only)
    marks = _outage_minutes(analysis.run.outages, math.ceil(analysis.run.horizon / MINUTE))
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


# -- reports ----------------------------------------------------------------------------------


def _clock_or_dash(at: float | None) -> str:
    return "-" if at is None else format_clock(at)


def _seconds_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else format_seconds(seconds)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(widths[column]) for column, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def text_report(
    analysis: Analysis,
    *,
    hours: float,
    seed: int,
    processor_name: str,
    outage_source: str,
    ascii_only: bool = False,
) -> str:
    run = analysis.run
    lines = [
        f"chronopype-sim: {hours:g} h of virtual time ({format_seconds(run.horizon)}), seed {seed}",
        f"processor: {processor_name}",
        f"settings:  check_network_interval {format_seconds(run.check_network_interval)}, "
        f"check_network_timeout {format_seconds(run.check_network_timeout)}, "
        f"network_error_wait_time {format_seconds(run.network_error_wait_time)}",
        "backoff:   NetworkProcessor.backoff_delay(n): 1, 2, 4 ... 256, 300 s after the "
        "n-th failed check in a row, +/-10%",
        f"outages:   {outage_source}; each is [start, end), times are h:mm:ss from the start",
    ]
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
        lines += [
            "",
            "detection = outage start -> status leaves CONNECTED; "
            "recovery = outage end -> CONNECTED again",
            *_table(rows),
            "",
        ]
        lines.append("delays (nearest-rank percentiles over the outages that have one):")
        rows = [["delay", "p50", "p95", "max", "outages"]]
        for kind in ("detection", "recovery"):
            values = analysis.delays(kind)
            rows.append(
                [
                    kind,
                    _seconds_or_dash(nearest_rank(values, 50)),
                    _seconds_or_dash(nearest_rank(values, 95)),
                    _seconds_or_dash(max(values, default=None)),
                    str(len(values)),
                ]
            )
        lines += _table(rows)
    lines.append("")
    lines.append(f"checks: {len(run.checks)} in total")
    per_hour = analysis.checks_per_hour_while_down
    if per_hour is not None:
        lines.append(
            f"checks while down: {analysis.checks_during_outages} during "
            f"{format_seconds(analysis.outage_seconds)} of outages = {per_hour:.1f} per hour"
        )
    up = run.horizon - analysis.outage_seconds
    lines.append(
        f"connected {100 * analysis.connected_seconds / run.horizon:.3f}% of the run; "
        f"the network was up {100 * up / run.horizon:.3f}%"
    )
    return "\n".join(lines) + "\n"


def json_report(
    analysis: Analysis,
    *,
    hours: float,
    seed: int,
    processor_name: str,
    outage_source: str,
) -> dict[str, Any]:
    """Everything in the text report, unrounded, in seconds of virtual time."""
    run = analysis.run

    def stats(kind: str) -> dict[str, Any]:
        values = analysis.delays(kind)
        return {
            "count": len(values),
            "p50": nearest_rank(values, 50),
            "p95": nearest_rank(values, 95),
            "max": max(values, default=None),
        }

    return {
        "scenario": {
            "hours": hours,
            "horizon_seconds": run.horizon,
            "seed": seed,
            "processor": processor_name,
            "outage_source": outage_source,
            "check_network_interval": run.check_network_interval,
            "check_network_timeout": run.check_network_timeout,
            "network_error_wait_time": run.network_error_wait_time,
            "outages": [{"start": o.start, "end": o.end} for o in run.outages],
        },
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
            }
            for result in analysis.outages
        ],
        "summary": {
            "percentiles": "nearest-rank",
            "detection_delay": stats("detection"),
            "recovery_delay": stats("recovery"),
            "total_checks": len(run.checks),
            "checks_during_outages": analysis.checks_during_outages,
            "outage_seconds": analysis.outage_seconds,
            "checks_per_hour_while_down": analysis.checks_per_hour_while_down,
            "connected_seconds": analysis.connected_seconds,
        },
        "transitions": [
            {"at": at, "from": old.name, "to": new.name} for at, old, new in run.transitions
        ],
        "timeline": {
            "minute_seconds": MINUTE,
            "legend": {_GLYPHS["unicode"][severity]: name for severity, name in _LEGEND},
            "hours": [cells for cells, _ in band_rows(analysis)],
            "outage_marks": [underline for _, underline in band_rows(analysis)],
        },
    }


# -- the picture ------------------------------------------------------------------------------


def load_pyplot() -> Any:
    """matplotlib's pyplot on a file-only backend; raises ImportError when it is missing."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def write_plot(analysis: Analysis, path: str, *, title: str) -> None:
    """The terminal timeline as a picture: one row per hour, exact status spans in minutes."""
    pyplot = load_pyplot()
    run = analysis.run
    hours = max(1, math.ceil(run.horizon / HOUR))
    row_height = min(0.32, 60.0 / hours)
    figure, axes = pyplot.subplots(figsize=(12, 1.6 + row_height * hours))
    try:
        for hour in range(hours):
            low, high = hour * HOUR, (hour + 1) * HOUR
            spans: dict[NetworkStatus, list[tuple[float, float]]] = {}
            for start, end, status in analysis.segments:
                if end > low and start < high and status in _PLOT_COLOURS:
                    left = (max(start, low) - low) / MINUTE
                    spans.setdefault(status, []).append(
                        (left, (min(end, high) - low) / MINUTE - left)
                    )
            for status, bars in spans.items():
                axes.broken_barh(bars, (hour - 0.4, 0.6), color=_PLOT_COLOURS[status], linewidth=0)
            outage_bars = [
                (
                    (max(o.start, low) - low) / MINUTE,
                    (min(o.end, high) - max(o.start, low)) / MINUTE,
                )
                for o in run.outages
                if o.end > low and o.start < high
            ]
            if outage_bars:
                axes.broken_barh(outage_bars, (hour + 0.25, 0.15), color="black", linewidth=0)
        axes.set_xlim(0, 60)
        axes.set_ylim(hours - 0.5, -0.5)
        axes.set_xlabel("minute of the hour (virtual time)")
        axes.set_ylabel("hour")
        step = max(1, hours // 24)
        axes.set_yticks(range(0, hours, step))
        axes.set_xticks(range(0, 61, 10))
        axes.set_title(title, fontsize=10)
        patches = importlib.import_module("matplotlib.patches")
        handles = [
            patches.Patch(color=_PLOT_COLOURS[_S.CONNECTED], label="connected"),
            patches.Patch(color=_PLOT_COLOURS[_S.CONNECTING], label="connecting/disconnecting"),
            patches.Patch(color=_PLOT_COLOURS[_S.NOT_CONNECTED], label="not connected"),
            patches.Patch(color=_PLOT_COLOURS[_S.ERROR], label="error"),
            patches.Patch(color="black", label="outage (network down)"),
        ]
        axes.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.08 * 24 / max(hours, 24)),
            ncol=5,
            fontsize=8,
            frameon=False,
        )
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    finally:
        pyplot.close(figure)
