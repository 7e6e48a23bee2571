"""``ClockRuntime``: a clock's lifecycle as a background task, a backtest driver or a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from types import TracebackType

from chronopype.clocks import get_clock_class
from chronopype.clocks.backtest import BacktestClock
from chronopype.clocks.base import BaseClock
from chronopype.clocks.realtime import RealtimeClock
from chronopype.exceptions import ClockRuntimeError
from chronopype.runtime.config import ClockRuntimeConfig

__all__ = ["ClockRuntime"]

logger = logging.getLogger(__name__)


class ClockRuntime:
    """Owns a clock's context and run.

    * ``start()``/``stop()`` (or ``async with runtime``): enter the clock's context; a realtime
      clock also runs as a background task, a backtest clock is driven by ``backtest_til``.
    * ``start_threaded()``/``stop_threaded()``: a realtime clock runs in a daemon thread with
      its own event loop (``get_clock_loop()``), for synchronous host programs.

    Unlike 0.8.3, ``backtest_til`` never moves time backwards (an earlier target is a no-op,
    in or out of a context), and ``stop()`` lets the caller's own cancellation propagate.
    """

    def __init__(
        self, config: ClockRuntimeConfig | None = None, clock: BaseClock | None = None
    ) -> None:
        if config is not None and not isinstance(config, ClockRuntimeConfig):
            raise TypeError(f"config must be a ClockRuntimeConfig, got {config!r}")
        if clock is not None and not isinstance(clock, BaseClock):
            raise TypeError(f"clock must be a BaseClock, got {clock!r}")
        self._config = config if config is not None else ClockRuntimeConfig()
        self._clock: BaseClock = (
            clock
            if clock is not None
            else get_clock_class(self._config.clock_mode)(self._config.clock_config)
        )
        self._clock_task: asyncio.Task[None] | None = None
        self._clock_thread: threading.Thread | None = None
        self._stop_event: threading.Event | None = None
        self._clock_loop_ref: asyncio.AbstractEventLoop | None = None
        self._context_entered = False
        self._task_error: BaseException | None = None

    @property
    def config(self) -> ClockRuntimeConfig:
        return self._config

    @property
    def clock(self) -> BaseClock:
        return self._clock

    def get_clock_loop(self) -> asyncio.AbstractEventLoop | None:
        """The clock thread's event loop while ``start_threaded()`` runs, else None."""
        return self._clock_loop_ref

    @property
    def is_running(self) -> bool:
        """The run task is alive, the context is entered, or the clock thread is alive."""
        if self._clock_task is not None:
            return not self._clock_task.done()
        if self._context_entered:
            return True
        return self._clock_thread is not None and self._clock_thread.is_alive()

    @property
    def task_error(self) -> BaseException | None:
        """The exception the background run task failed with, if it did."""
        return self._task_error

    # -- async mode ------------------------------------------------------------------------

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._task_error = task.exception()
            logger.error("clock task failed: %r", self._task_error)

    async def start(self) -> None:
        """Enter the clock's context; for a realtime clock, also start its run as a task."""
        if self._clock_task is not None:
            return
        if not self._context_entered:
            await self._clock.__aenter__()
            self._context_entered = True
        if isinstance(self._clock, BacktestClock):
            return
        task = asyncio.ensure_future(self._clock.run())
        task.add_done_callback(self._on_task_done)
        self._clock_task = task

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (0.8.3 API)
        """Cancel the run task (waiting up to ``timeout``, default
        ``config.thread_stop_timeout_seconds``) and leave the clock's context.

        The caller's own cancellation is never swallowed: the context is still left, then
        ``CancelledError`` propagates.
        """
        limit = self._config.thread_stop_timeout_seconds if timeout is None else timeout
        task, self._clock_task = self._clock_task, None
        try:
            if task is not None and not task.done():
                task.cancel()
                # asyncio.wait neither raises the task's CancelledError nor hides the caller's.
                await asyncio.wait([task], timeout=limit)
                if not task.done():
                    logger.warning("clock task did not stop within %ss", limit)
        finally:
            if self._context_entered:
                self._context_entered = False
                await self._clock.__aexit__(None, None, None)

    async def backtest_til(self, target_time: float) -> None:
        """Advance a backtest clock to ``target_time``; an earlier target does nothing.

        In a context the clock ticks through (``step_to``); outside one only the timestamp
        moves, and a target past ``end_time`` raises ``ClockRuntimeError``.
        """
        clock = self._clock
        if not isinstance(clock, BacktestClock):
            raise ClockRuntimeError(
                f"backtest_til requires a BacktestClock, got {type(clock).__name__}"
            )
        if target_time <= clock.current_timestamp:
            return
        if clock.is_in_context:
            await clock.step_to(target_time)
            return
        if clock.end_time > 0 and target_time > clock.end_time:
            raise ClockRuntimeError(
                f"target_time {target_time} exceeds end_time {clock.end_time}"
            )
        clock._move_idle_timestamp(target_time)

    async def __aenter__(self) -> ClockRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- threaded mode ---------------------------------------------------------------------

    def start_threaded(self, on_error_callback: Callable[[str], None] | None = None) -> None:
        """Run a realtime clock in a daemon thread with its own event loop; returns once that
        loop exists. ``on_error_callback(message)`` is called if the run fails."""
        if self._clock_thread is not None and self._clock_thread.is_alive():
            return
        if not isinstance(self._clock, RealtimeClock):
            raise ClockRuntimeError(
                f"Threaded runtime requires RealtimeClock, got {type(self._clock).__name__}."
            )
        stop_event = threading.Event()
        loop_ready = threading.Event()
        self._stop_event = stop_event
        thread = threading.Thread(
            target=self._thread_main,
            args=(stop_event, loop_ready, on_error_callback),
            name="clock-worker",
            daemon=True,
        )
        self._clock_thread = thread
        thread.start()
        loop_ready.wait(timeout=self._config.thread_stop_timeout_seconds)

    def _thread_main(
        self,
        stop_event: threading.Event,
        loop_ready: threading.Event,
        on_error_callback: Callable[[str], None] | None,
    ) -> None:
        loop = asyncio.new_event_loop()
        self._clock_loop_ref = loop
        loop_ready.set()
        try:
            loop.run_until_complete(self._run_in_thread(stop_event))
        except Exception as exc:
            logger.exception("clock thread failed")
            if on_error_callback is not None:
                try:
                    on_error_callback(str(exc))
                except Exception:
                    logger.exception("on_error_callback raised")
        finally:
            loop.close()
            if self._clock_loop_ref is loop:
                self._clock_loop_ref = None

    async def _run_in_thread(self, stop_event: threading.Event) -> None:
        clock = self._clock
        async with clock:
            if not stop_event.is_set():
                await clock.run()

    def stop_threaded(self) -> None:
        """Ask the clock thread to stop and wait for it (up to the configured timeout)."""
        stop_event, thread, loop = self._stop_event, self._clock_thread, self._clock_loop_ref
        if stop_event is not None:
            stop_event.set()
        if loop is not None and not loop.is_closed():
            # RuntimeError: the loop closed meanwhile, so the thread is ending anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._clock.request_stop)
        if thread is not None:
            thread.join(timeout=self._config.thread_stop_timeout_seconds)
            if thread.is_alive():
                logger.warning(
                    "clock thread did not stop within %.1f seconds",
                    self._config.thread_stop_timeout_seconds,
                )
        self._clock_thread = None
        self._stop_event = None
        self._clock_loop_ref = None
