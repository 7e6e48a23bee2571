"""A clock that ticks on wall-clock boundaries."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import ClassVar

from chronopype.clocks.base import BaseClock, ErrorCallback, check_time, grid_index
from chronopype.clocks.config import ClockConfig, ClockMode
from chronopype.clocks.errors import ClockError

__all__ = ["RealtimeClock"]

logger = logging.getLogger(__name__)


class RealtimeClock(BaseClock):
    """Ticks when the wall clock reaches ``origin + k * tick_size`` (k = 1, 2, ...).

    The origin is ``start_time``, or, when that is 0, the wall time at ``async with`` rounded
    down to a multiple of ``tick_size``. A future ``start_time`` is waited for. Each tick is
    stamped with its grid point in wall (epoch) time, but waiting is scheduled on the event
    loop's monotonic clock (``loop.time()``): wall-clock jumps do not disturb the rhythm, and
    under a fake clock a run is an exact, deterministic simulation.

    Missed ticks: when a tick (with its retries) runs past later boundaries, the ticks whose
    time has passed are skipped, not run in a burst. The clock runs the latest boundary that
    is due at once, counts the skipped ones in :attr:`missed_ticks` and logs a warning with
    the lag. Boundaries that pass while no run is in progress are neither run nor counted.

    Execution times recorded in processor statistics are measured with ``loop.time()``.

    Retry waits (``retry_backoff * 2**(n - 1)``) are capped at one ``tick_size``: waiting
    longer would only turn the retry into missed ticks.
    """

    __slots__ = ("_missed_ticks",)

    MODE: ClassVar[ClockMode] = ClockMode.REALTIME

    def __init__(
        self,
        config: ClockConfig,
        error_callback: ErrorCallback | None = None,
        *,
        retry_backoff: float = 0.1,
    ) -> None:
        super().__init__(config, error_callback, retry_backoff=retry_backoff)
        self._missed_ticks = 0
        # Before the first context, as in 0.8.3: the current grid point of the wall clock.
        self._current_timestamp = self._origin_timestamp()

    @property
    def missed_ticks(self) -> int:
        """Ticks skipped because the clock fell behind, since ``async with`` was entered."""
        return self._missed_ticks

    def _retry_wait(self, backoff: float) -> float:
        return min(backoff, self._config.tick_size)

    def _enter_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._measure = loop.time
        self._missed_ticks = 0

    def _origin_timestamp(self) -> float:
        if self._config.start_time > 0:
            return self._config.start_time
        tick_size = self._config.tick_size
        return (time.time() // tick_size) * tick_size

    async def run(self) -> None:
        """Run until ``end_time``, or until stopped when there is no end."""
        end_time = self._config.end_time
        await self.run_til(end_time if end_time else math.inf)

    async def run_til(self, target_time: float) -> None:
        """Run until the wall clock reads ``target_time`` (epoch seconds).

        Ticks every boundary up to and including ``target_time``, and returns once that
        wall time is reached. A target in the past returns at once.
        """
        until = check_time("target_time", target_time, allow_inf=True)
        end_time = self._config.end_time
        if end_time and until > end_time:
            raise ClockError(f"target_time ({until!r}) is past end_time ({end_time!r})")
        self._begin_run()
        try:
            await self._run_until(until)
        finally:
            self._end_run()

    async def _run_until(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        origin = self._origin
        tick_size = self._config.tick_size
        # Grid offsets are kept small (relative to this run's anchor) so that epoch-sized
        # floats never enter the deadline arithmetic.
        anchor = loop.time()
        wall_at_anchor = time.time()
        origin_offset = origin - wall_at_anchor

        def deadline(index: int) -> float:
            return anchor + (origin_offset + index * tick_size)

        def due_index() -> int:
            return grid_index(0.0, tick_size, loop.time() - anchor - origin_offset)[0]

        on_grid = False
        if math.isinf(until):
            last_index: int | None = None
            last_timestamp = math.inf
        else:
            last_index, on_grid = grid_index(origin, tick_size, until)
            last_timestamp = until if on_grid else origin + last_index * tick_size
        index = max(self._tick_index, due_index())
        self._tick_index = index
        while not self._stop_requested:
            next_index = index + 1
            if last_index is not None and next_index > last_index:
                break
            await self._sleep_until(deadline(next_index))
            if self._stop_requested:
                break
            due = due_index()
            if due > next_index:
                catch_up = due if last_index is None else min(due, last_index)
                skipped = catch_up - next_index
                if skipped > 0:
                    self._missed_ticks += skipped
                    logger.warning(
                        "%s fell %.6fs behind: skipped %d tick(s) (%d missed in total)",
                        type(self).__name__, loop.time() - deadline(next_index), skipped,
                        self._missed_ticks,
                    )
                next_index = catch_up
            index = next_index
            self._tick_index = index
            await self._tick(
                last_timestamp if index == last_index else origin + index * tick_size
            )
        if not self._stop_requested and not math.isinf(until) and not on_grid:
            # Between two boundaries: the run lasts until the wall time itself. (On a boundary
            # it ended with that boundary's tick; sleeping again could only add rounding.)
            await self._sleep_until(anchor + (until - wall_at_anchor))
