"""Hypothesis strategies for OutageProxy scripts (re-exported by ``strategies``)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from chronopype_testing._proxy_faults import Fault
from chronopype_testing.strategies import outage_timelines

__all__ = ["DEFAULT_SCRIPT_FAULTS", "fault_scripts"]

#: Faults drawn by default: one of each kind, with delays short enough for a 5 s timeout
#: to tell slow from dead.
DEFAULT_SCRIPT_FAULTS: tuple[Fault, ...] = (
    Fault.refuse(),
    Fault.reset(),
    Fault.blackhole(),
    Fault.timeout(2.0),
    Fault.latency(1.0, 0.5),
    Fault.latency(30.0),
    Fault.bandwidth(100.0),
    Fault.slow_close(),
    Fault.limit_data(3),
)


def fault_scripts(
    horizon: float = 86_400.0,
    *,
    faults: Sequence[Fault | str] = DEFAULT_SCRIPT_FAULTS,
    max_outages: int = 12,
    min_outages: int = 0,
) -> st.SearchStrategy[list[tuple[float, float, Fault]]]:
    """``windows=`` for an OutageProxy: ``outage_timelines`` windows, each with a fault
    drawn from ``faults`` (Faults or their text forms)."""
    choices = [Fault.parse(f) if isinstance(f, str) else f for f in faults]
    if not choices:
        raise ValueError("faults must name at least one fault")
    timelines = outage_timelines(horizon, max_outages=max_outages, min_outages=min_outages)

    def with_faults(
        windows: list[tuple[float, float]],
    ) -> st.SearchStrategy[list[tuple[float, float, Fault]]]:
        kinds = st.lists(st.sampled_from(choices), min_size=len(windows), max_size=len(windows))
        return kinds.map(
            lambda drawn: [(a, b, f) for (a, b), f in zip(windows, drawn, strict=True)]
        )

    return timelines.flatmap(with_faults)
