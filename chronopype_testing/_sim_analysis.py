"""What a simulation run means, computed while it runs.

``RunAnalysis`` is the run's observer: it folds every check and status change into per-outage
results, per-minute status and running totals at once, so its memory grows with the number of
outages and of minutes simulated, never with the number of checks. (The plot and ``--json``'s
transition list ask for more and say so: ``keep_checks``, ``keep_transitions``.)
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from chronopype.processors.network import NetworkStatus
from chronopype_testing._sim_run import CheckOutcome, backoff_base
from chronopype_testing._sim_scenario import Outage

__all__ = [
    "MINUTE",
    "SEVERITY",
    "OutageResult",
    "RunAnalysis",
    "WaitCause",
    "nearest_rank",
]

MINUTE = 60.0
_S = NetworkStatus
# The band shows the worst status held for any time within each minute.
SEVERITY = {
    _S.STOPPED: 0,
    _S.CONNECTED: 1,
    _S.CONNECTING: 2,
    _S.DISCONNECTING: 2,
    _S.NOT_CONNECTED: 3,
    _S.ERROR: 4,
}
# Per outage, the first and the last checks are kept for the report; the ones in between are
# only counted, so an outage that never ends in a reconnect cannot hold unbounded memory.
CHECKS_KEPT_AT_START = 12
CHECKS_KEPT_AT_END = 4


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: always one of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class WaitCause:
    """The wait the processor was in when the network came back: why recovery took long."""

    failed_check_at: float  # start of the last failed check before the reconnecting one
    waited: float  # from that check's end to the start of the reconnecting check
    # "backoff" (after ``failures`` failed checks in a row) or "error wait" (the check raised)
    kind: str
    failures: int

    @property
    def base(self) -> float | None:
        """The un-jittered backoff for this step; None for an error wait."""
        return backoff_base(self.failures) if self.kind == "backoff" else None


@dataclass(slots=True)
class OutageResult:
    """How the processor saw one outage. Delays are None when they do not apply (see note)."""

    number: int
    outage: Outage
    status_at_start: NetworkStatus = NetworkStatus.STOPPED
    detected_at: float | None = None
    reconnected_at: float | None = None
    # Checks that began inside the outage window.
    checks: int = 0
    note: str = ""
    # Checks from the outage start until the reconnect (or the next outage): the first few and
    # the last few, with the number left out between them.
    first_checks: list[CheckOutcome] = field(default_factory=list)
    last_checks: deque[CheckOutcome] = field(
        default_factory=lambda: deque(maxlen=CHECKS_KEPT_AT_END)
    )
    checks_left_out: int = 0
    cause: WaitCause | None = None
    _last_failure: CheckOutcome | None = None
    _failures_then: int = 0

    @property
    def detection_delay(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.outage.start

    @property
    def recovery_delay(self) -> float | None:
        return None if self.reconnected_at is None else self.reconnected_at - self.outage.end

    @property
    def shown_checks(self) -> list[CheckOutcome]:
        return [*self.first_checks, *self.last_checks]

    def _keep(self, outcome: CheckOutcome) -> None:
        if len(self.first_checks) < CHECKS_KEPT_AT_START:
            self.first_checks.append(outcome)
            return
        if len(self.last_checks) == self.last_checks.maxlen:
            self.checks_left_out += 1
        self.last_checks.append(outcome)


class RunAnalysis:
    """Observer of one run (see ``RunObserver``) and everything the reports need from it."""

    def __init__(
        self,
        horizon: float,
        outages: list[Outage],
        *,
        keep_checks: bool = False,
        keep_transitions: bool = False,
    ) -> None:
        self.horizon = horizon
        self.outages = [OutageResult(n, outage) for n, outage in enumerate(outages, start=1)]
        self._starts = [outage.start for outage in outages]
        self.check_network_interval = math.nan
        self.check_network_timeout = math.nan
        self.network_error_wait_time = math.nan
        self.total_checks = 0
        self.checks_during_outages = 0
        self.checks_outside_outages = 0
        self.connected_checks_outside_outages = 0
        self.outage_seconds = sum(outage.duration for outage in outages)
        self.connected_seconds = 0.0
        # Worst severity per minute of the run.
        self.minute_severity = bytearray(math.ceil(horizon / MINUTE))
        self.checks: list[CheckOutcome] | None = [] if keep_checks else None
        self.segments: list[tuple[float, float, NetworkStatus]] | None = [] if keep_checks else None
        self.transitions: list[tuple[float, NetworkStatus, NetworkStatus]] | None = (
            [] if keep_transitions else None
        )
        self._status = NetworkStatus.STOPPED
        self._since = 0.0
        self._opened = 0  # outages whose start the run has reached
        self._active: OutageResult | None = None  # the outage still waiting for a reconnect
        self._failures_in_a_row = 0
        self._finished = False

    # -- RunObserver ---------------------------------------------------------------------------

    def settings_known(self, interval: float, timeout: float, error_wait: float) -> None:
        self.check_network_interval = interval
        self.check_network_timeout = timeout
        self.network_error_wait_time = error_wait

    def check_finished(self, outcome: CheckOutcome) -> None:
        self._reach(outcome.started)
        self.total_checks += 1
        index = bisect.bisect_right(self._starts, outcome.started) - 1
        if index >= 0 and outcome.started < self.outages[index].outage.end:
            self.checks_during_outages += 1
            self.outages[index].checks += 1
        else:
            self.checks_outside_outages += 1
            self.connected_checks_outside_outages += outcome.connected
        active = self._active
        if active is not None and outcome.started >= active.outage.start:
            active._keep(outcome)
            if outcome.connected:
                if active._last_failure is not None and outcome.started >= active.outage.end:
                    failed = active._last_failure
                    kind = "error wait" if failed.why == "raised" else "backoff"
                    active.cause = WaitCause(
                        failed.started,
                        outcome.started - failed.finished,
                        kind,
                        active._failures_then,
                    )
                elif (
                    active.detected_at is None
                    and outcome.started >= active.outage.end
                    and active.status_at_start is NetworkStatus.CONNECTED
                ):
                    # Connected before, during and after: the first good check after the end
                    # shows it was missed, and its story ends there.
                    self._close(active)
            else:
                active._last_failure = outcome
                active._failures_then = self._failures_in_a_row + 1
        self._failures_in_a_row = 0 if outcome.connected else self._failures_in_a_row + 1
        if self.checks is not None:
            self.checks.append(outcome)

    def status_changed(self, at: float, old: NetworkStatus, new: NetworkStatus) -> None:
        self._reach(at)
        if self.transitions is not None:
            self.transitions.append((at, old, new))
        self._segment_until(min(at, self.horizon))
        self._status = new
        active = self._active
        if active is not None:
            outage = active.outage
            if (
                active.detected_at is None
                and old is NetworkStatus.CONNECTED
                and outage.start <= at < outage.end
            ):
                active.detected_at = at
            if at >= outage.end and new is NetworkStatus.CONNECTED:
                active.reconnected_at = at
                self._close(active)

    # -- folding -------------------------------------------------------------------------------

    def _reach(self, t: float) -> None:
        """Open every outage that begins at or before ``t``; it ends the previous one's wait."""
        while self._opened < len(self.outages) and self.outages[self._opened].outage.start <= t:
            result = self.outages[self._opened]
            if self._active is not None:
                self._close(self._active)
            result.status_at_start = self._status
            self._active = result
            self._opened += 1

    def _close(self, result: OutageResult) -> None:
        self._active = None
        was_connected = result.status_at_start is NetworkStatus.CONNECTED
        if not was_connected:
            result.detected_at = None  # nothing left to detect
        elif result.detected_at is None:
            # No check began inside the window: the processor never noticed this outage.
            result.reconnected_at = None
            result.cause = None
            result.note = "missed: no check saw it"
            return
        notes = [] if was_connected else ["already not connected when it began"]
        if result.reconnected_at is None:
            result.cause = None
            following = "the next outage" if result.number < len(self.outages) else "the end"
            notes.append(
                f"not reconnected before {following}"
                + (" of the run" if following == "the end" else "")
            )
        result.note = "; ".join(notes)

    def _segment_until(self, at: float) -> None:
        since, status = self._since, self._status
        if at > since:
            severity = SEVERITY[status]
            worst = self.minute_severity
            for minute in range(int(since // MINUTE), min(len(worst), math.ceil(at / MINUTE))):
                if severity > worst[minute]:
                    worst[minute] = severity
            if status is NetworkStatus.CONNECTED:
                self.connected_seconds += at - since
            if self.segments is not None:
                self.segments.append((since, at, status))
        self._since = max(since, at)

    def finish(self) -> RunAnalysis:
        """Close the books at the horizon (idempotent); returns self."""
        if not self._finished:
            self._finished = True
            self._reach(self.horizon)
            if self._active is not None:
                self._close(self._active)
            self._segment_until(self.horizon)
        return self

    # -- summaries -----------------------------------------------------------------------------

    @property
    def never_connected(self) -> bool:
        """True when no check outside the outages returned CONNECTED (while some ran)."""
        return self.checks_outside_outages > 0 and self.connected_checks_outside_outages == 0

    @property
    def checks_per_hour_while_down(self) -> float | None:
        if self.outage_seconds == 0:
            return None
        return self.checks_during_outages / (self.outage_seconds / 3600.0)

    def delays(self, kind: str) -> list[float]:
        values = (
            result.detection_delay if kind == "detection" else result.recovery_delay
            for result in self.outages
        )
        return [value for value in values if value is not None]

    def worst(self, kind: str) -> OutageResult | None:
        """The outage with the longest detection or recovery delay (the first of equals)."""
        best: OutageResult | None = None
        for result in self.outages:
            value = result.detection_delay if kind == "detection" else result.recovery_delay
            if value is None:
                continue
            current = (
                None
                if best is None
                else (best.detection_delay if kind == "detection" else best.recovery_delay)
            )
            if current is None or value > current:
                best = result
        return best
