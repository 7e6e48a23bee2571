"""The simulator's picture: the terminal timeline drawn with matplotlib (the ``plot`` extra).

One row per hour, exact status spans in minutes, outages shaded behind them, and a mark for
every check (failed or succeeded). The legend sits in its own strip below the axes, placed
by matplotlib's constrained layout, so it never covers the data or the axis label.
"""

from __future__ import annotations

import importlib
import math
import os
from typing import Any

from chronopype.processors.network import NetworkStatus
from chronopype_testing._sim_analysis import MINUTE, RunAnalysis

__all__ = ["PLOT_FORMATS", "check_plot_path", "draw", "load_pyplot", "write_plot"]

HOUR = 3600.0
# What matplotlib's Agg backend writes; the file name's suffix picks the format.
PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "webp", "eps", "ps", "tif", "tiff")
_S = NetworkStatus
_COLOURS = {
    _S.CONNECTED: "#2e7d32",
    _S.CONNECTING: "#f9a825",
    _S.DISCONNECTING: "#f9a825",
    _S.NOT_CONNECTED: "#9e9e9e",
    _S.ERROR: "#c62828",
}
_OUTAGE_COLOUR = "#ef9a9a"
_FAILED_COLOUR = "#b71c1c"
_SUCCEEDED_COLOUR = "#1b5e20"


def check_plot_path(path: str) -> str | None:
    """Why ``path`` cannot take the picture (checked before simulating), or None."""
    if not path or path.endswith(os.sep):
        return f"--plot {path!r} is not a file name"
    if os.path.isdir(path):
        return f"--plot {path!r} is a directory"
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        return (
            f"--plot {path!r}: the name must end in one of "
            + ", ".join(f".{fmt}" for fmt in PLOT_FORMATS)
            + " (the suffix picks the image format)"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"--plot {path!r}: the directory {directory} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"--plot {path!r}: the directory {directory} is not writable"
    return None


def load_pyplot() -> Any:
    """matplotlib's pyplot on a file-only backend; raises ImportError when it is missing."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _row_spans(
    analysis: RunAnalysis, low: float, high: float
) -> dict[NetworkStatus, list[tuple[float, float]]]:
    spans: dict[NetworkStatus, list[tuple[float, float]]] = {}
    for start, end, status in analysis.segments or ():
        if end > low and start < high and status in _COLOURS:
            left = (max(start, low) - low) / MINUTE
            spans.setdefault(status, []).append((left, (min(end, high) - low) / MINUTE - left))
    return spans


def write_plot(analysis: RunAnalysis, path: str, *, title: str) -> None:
    """Draw the run (it must have been analysed with ``keep_checks=True``) to ``path``."""
    pyplot = load_pyplot()
    figure = draw(analysis, title=title)
    try:
        figure.savefig(path, dpi=120)
    finally:
        pyplot.close(figure)


def draw(analysis: RunAnalysis, *, title: str) -> Any:
    """The matplotlib figure for the run; the caller closes it (``pyplot.close``)."""
    if analysis.segments is None or analysis.checks is None:
        raise ValueError("draw needs a RunAnalysis made with keep_checks=True")
    pyplot = load_pyplot()
    patches = importlib.import_module("matplotlib.patches")
    lines = importlib.import_module("matplotlib.lines")
    hours = max(1, math.ceil(analysis.horizon / HOUR))
    row_height = min(0.32, 60.0 / hours)
    figure, axes = pyplot.subplots(figsize=(12, 2.2 + row_height * hours), layout="constrained")
    try:
        for hour in range(hours):
            low, high = hour * HOUR, (hour + 1) * HOUR
            shaded = [
                (
                    (max(r.outage.start, low) - low) / MINUTE,
                    (min(r.outage.end, high) - max(r.outage.start, low)) / MINUTE,
                )
                for r in analysis.outages
                if r.outage.end > low and r.outage.start < high
            ]
            if shaded:
                axes.broken_barh(shaded, (hour - 0.5, 1.0), color=_OUTAGE_COLOUR, linewidth=0)
            for status, bars in _row_spans(analysis, low, high).items():
                axes.broken_barh(bars, (hour - 0.3, 0.45), color=_COLOURS[status], linewidth=0)
        for connected, colour, marker in (
            (True, _SUCCEEDED_COLOUR, "|"),
            (False, _FAILED_COLOUR, "x"),
        ):
            xs = [(c.started % HOUR) / MINUTE for c in analysis.checks if c.connected is connected]
            ys = [c.started // HOUR + 0.32 for c in analysis.checks if c.connected is connected]
            if xs:
                axes.scatter(xs, ys, s=10, c=colour, marker=marker, linewidths=0.6, zorder=3)
        axes.set_xlim(0, 60)
        axes.set_ylim(hours - 0.5, -0.5)
        axes.set_xlabel("minute of the hour (virtual time)")
        axes.set_ylabel("hour")
        step = max(1, hours // 24)
        axes.set_yticks(range(0, hours, step))
        axes.set_xticks(range(0, 61, 10))
        axes.set_title(title, fontsize=10)
        handles = [
            patches.Patch(color=_COLOURS[_S.CONNECTED], label="connected"),
            patches.Patch(color=_COLOURS[_S.CONNECTING], label="connecting/disconnecting"),
            patches.Patch(color=_COLOURS[_S.NOT_CONNECTED], label="not connected"),
            patches.Patch(color=_COLOURS[_S.ERROR], label="error"),
            patches.Patch(color=_OUTAGE_COLOUR, label="outage (network down)"),
            lines.Line2D(
                [], [], color=_SUCCEEDED_COLOUR, marker="|", linestyle="", label="check succeeded"
            ),
            lines.Line2D(
                [], [], color=_FAILED_COLOUR, marker="x", linestyle="", label="check failed"
            ),
        ]
        figure.legend(
            handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False
        )
    except BaseException:
        pyplot.close(figure)
        raise
    return figure
