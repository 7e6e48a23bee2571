"""The fake-clock plugin's share of issue 12: the virtual-time cap and the real-work summary.

Kept apart from ``plugin.py`` so that the plugin only calls three functions: one parses the
``chronopype_max_elapsed`` ini option, one notes after each test how long its FakeClock held
virtual time for real work, and one writes the terminal summary of the tests that held it
for more than a second.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chronopype_testing._loop import FakeClock

__all__ = ["MAX_ELAPSED_INI", "max_elapsed_from_ini", "note_real_work", "write_real_work_summary"]

MAX_ELAPSED_INI = "chronopype_max_elapsed"
MAX_ELAPSED_INI_HELP = (
    "default max_elapsed for fake-clock tests: virtual seconds after which a test fails with "
    "VirtualTimeLimitExceeded, or 'none' for no cap (default: FakeClock's, 30 days)"
)

# Tests whose clock held virtual time longer than this (real seconds) are listed.
SUMMARY_THRESHOLD = 1.0

_HELD = pytest.StashKey[list[tuple[float, str, str]]]()
_UNSET = object()


def max_elapsed_from_ini(config: pytest.Config) -> float | object | None:
    """The ini option as a FakeClock argument, or ``_UNSET`` when it is not set."""
    text = str(config.getini(MAX_ELAPSED_INI) or "").strip()
    if not text:
        return _UNSET
    if text.lower() == "none":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        pytest.fail(
            f"ini option {MAX_ELAPSED_INI} must be a number of virtual seconds > 0 or "
            f"'none', got {text!r}",
            pytrace=False,
        )
    return seconds


def apply_max_elapsed_default(config: pytest.Config, options: dict[str, object]) -> None:
    """Give a marker without ``max_elapsed=`` the ini option's value, if set."""
    if "max_elapsed" not in options:
        value = max_elapsed_from_ini(config)
        if value is not _UNSET:
            options["max_elapsed"] = value


def note_real_work(item: pytest.Item, clock: FakeClock | None) -> None:
    if clock is None or clock.real_seconds_held <= SUMMARY_THRESHOLD:
        return
    held = item.config.stash.setdefault(_HELD, [])
    held.append((clock.real_seconds_held, item.nodeid, clock.real_work_summary()))


def write_real_work_summary(terminalreporter: pytest.TerminalReporter) -> None:
    held = terminalreporter.config.stash.get(_HELD, [])
    if not held:
        return
    terminalreporter.write_sep(
        "=", f"fake clock held virtual time > {SUMMARY_THRESHOLD:g} s for real work"
    )
    for _, nodeid, summary in sorted(held, reverse=True):
        terminalreporter.write_line(f"{nodeid}: {summary}")
