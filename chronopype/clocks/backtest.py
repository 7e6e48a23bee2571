"""A clock that replays a time range as fast as the processors allow."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from chronopype.clocks.base import BaseClock, ErrorCallback, check_time, grid_index
from chronopype.clocks.config import ClockConfig, ClockMode
from chronopype.clocks.errors import ClockContextError, ClockError, ClockValueError

__all__ = ["BacktestClock"]

# A backtest yields to the event loop once per this many ticks: often enough that other tasks
# (a shutdown, a watchdog) get their turn within milliseconds, rarely enough that the yield
# costs nothing measurable per tick.
_TICKS_PER_YIELD = 64


class BacktestClock(BaseClock):
    """Ticks at ``start_time + k * tick_size`` for k = 1..n, where tick n is the last grid point
    not after ``end_time`` (exactly ``end_time`` when the range is a whole number of ticks).

    Timestamps come from the integer tick index, so they never drift: 0 to 1000 at 0.1 is
    exactly 10,000 ticks, the last at exactly 1000.0. A target that lies on the grid
    (``run_til``, ``step_to``, ``fast_forward``) is stamped exactly as given.

    Execution times recorded in processor statistics are CPU-side costs measured with
    ``time.perf_counter()``: simulated time does not pass during a tick. For the same reason a
    failed tick is retried at once (after yielding to the event loop), never after a real
    backoff sleep: ``retry_backoff`` only matters to a realtime clock.
    """

    __slots__ = ("_final_index", "_final_timestamp")

    MODE: ClassVar[ClockMode] = ClockMode.BACKTEST

    def __init__(
        self,
        config: ClockConfig,
        error_callback: ErrorCallback | None = None,
        *,
        retry_backoff: float = 0.1,
    ) -> None:
        super().__init__(config, error_callback, retry_backoff=retry_backoff)
        if config.end_time == 0:
            raise ClockValueError(
                "end_time must be set for backtest mode (config.end_time is 0, meaning no end)"
            )
        index, on_grid = grid_index(config.start_time, config.tick_size, config.end_time)
        self._final_index = index
        self._final_timestamp = (
            config.end_time if on_grid else config.start_time + index * config.tick_size
        )
        self._measure = time.perf_counter

    def _origin_timestamp(self) -> float:
        return self._config.start_time

    def _retry_wait(self, backoff: float) -> float:
        return 0.0

    def _move_idle_timestamp(self, timestamp: float) -> None:
        """Set the timestamp outside a context (``ClockRuntime.backtest_til``); forward only.
        The next ``async with`` starts over at ``start_time``."""
        if self._in_context:
            raise ClockError("the timestamp moves by ticking inside a context")
        self._current_timestamp = max(self._current_timestamp, timestamp)

    def _target(
        self, name: str, target_time: object, action: str = "run"
    ) -> tuple[int, float]:
        """Grid index and stamp of the last tick at or before ``target_time``."""
        t = check_time(name, target_time)
        if t < self._current_timestamp:
            raise ValueError(
                f"{name} ({t!r}) is before the current timestamp ({self._current_timestamp!r})"
            )
        config = self._config
        index, on_grid = grid_index(config.start_time, config.tick_size, t)
        if index > self._final_index:
            raise ClockValueError(
                f"Cannot {action} past end_time in backtest mode: {name} ({t!r}) is past "
                f"end_time ({config.end_time!r})"
            )
        if index == self._final_index:
            return index, self._final_timestamp
        return index, (t if on_grid else config.start_time + index * config.tick_size)

    async def run(self) -> None:
        """Tick through to ``end_time``."""
        await self._advance(self._final_index, self._final_timestamp)

    async def run_til(self, target_time: float) -> None:
        """Tick through every grid point up to ``target_time`` (at most ``end_time``)."""
        await self._advance(*self._target("target_time", target_time))

    async def step(self, n: int = 1) -> float:
        """Tick exactly ``n`` times; returns the new current timestamp."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int >= 1, got {n!r}")
        if n < 1:
            raise ClockValueError(f"n must be an int >= 1, got {n}")
        index = self._tick_index + n
        if index > self._final_index:
            raise ClockError(
                f"cannot step {n} tick(s): only {self._final_index - self._tick_index} left "
                f"before end_time ({self._config.end_time!r})"
            )
        config = self._config
        stamp = (
            self._final_timestamp
            if index == self._final_index
            else config.start_time + index * config.tick_size
        )
        await self._advance(index, stamp)
        return self._current_timestamp

    async def step_to(self, target_time: float) -> float:
        """Like ``run_til``; returns the new current timestamp."""
        await self._advance(*self._target("target_time", target_time))
        return self._current_timestamp

    async def fast_forward(self, seconds: float) -> None:
        """Tick through the next ``seconds`` of simulated time."""
        if not self._in_context:
            raise ClockContextError(
                "Fast forward can only be used within a context (`async with clock:`)"
            )
        span = check_time("seconds", seconds)
        if span < 0:
            raise ValueError(f"seconds must be >= 0, got {span!r}")
        await self._advance(
            *self._target("seconds", self._current_timestamp + span, "fast forward")
        )

    async def _advance(self, last_index: int, last_timestamp: float) -> None:
        self._begin_run()
        try:
            start = self._config.start_time
            tick_size = self._config.tick_size
            index = self._tick_index
            while index < last_index and not self._stop_requested:
                index += 1
                self._tick_index = index
                await self._tick(
                    last_timestamp if index == last_index else start + index * tick_size
                )
                if index % _TICKS_PER_YIELD == 0:
                    await asyncio.sleep(0)
        finally:
            self._end_run()
