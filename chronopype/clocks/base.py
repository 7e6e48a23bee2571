"""What every clock shares: the processor registry, the tick loop, failures, events, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self, TypedDict

from chronopype.clocks._grid import grid_index, grid_time
from chronopype.clocks._publishing import ClockPublisher
from chronopype.clocks.config import ClockConfig, ClockMode
from chronopype.clocks.errors import (
    ClockContextError,
    ClockError,
    ClockValueError,
    ProcessorTimeoutError,
)
from chronopype.clocks.events import (
    ClockStartEvent,
    ClockStopEvent,
    ClockTickEvent,
    EventHub,
    EventT,
)
from chronopype.processors import ProcessorState, TickProcessor, _aio

__all__ = ["BaseClock", "ErrorCallback", "ProcessorStats", "grid_index", "grid_time"]

logger = logging.getLogger(__name__)

ErrorCallback = Callable[[TickProcessor, BaseException], object]

# Which clock each processor is registered with. Weak both ways: it must keep neither a
# dropped processor nor a dropped clock alive.
_OWNERS: weakref.WeakKeyDictionary[TickProcessor, weakref.ref[BaseClock]] = (
    weakref.WeakKeyDictionary()
)

class ProcessorStats(TypedDict):
    """A snapshot of one processor's statistics, read from its ``state``.

    The keys of chronopype 0.8.3 keep their types and meanings (``error_rate`` a percentage,
    ``last_error`` a message, ``*_time`` datetimes, ``std_dev_execution_time`` the sample
    deviation); the richer values have keys of their own (``last_exception``,
    ``*_timestamp`` epoch floats). Counts cover the processor's whole life; the execution-time
    figures cover the last ``stats_window_size`` executions. Error and success times are tick
    timestamps.
    """

    total_ticks: int
    successful_ticks: int
    failed_ticks: int
    error_count: int
    consecutive_errors: int
    retry_count: int
    max_consecutive_retries: int
    error_rate: float
    avg_execution_time: float
    max_execution_time: float
    std_dev_execution_time: float
    p95_execution_time: float
    last_error: str | None
    last_exception: BaseException | None
    last_error_time: datetime | None
    last_error_timestamp: float | None
    last_success_time: datetime | None
    last_success_timestamp: float | None
    last_timestamp: float | None
    is_active: bool
    is_paused: bool


class _Entry:
    """One registered processor and the clock's flags for it."""

    __slots__ = ("paused", "processor", "record_execution", "scheduled", "started", "state",
                 "sync_tick")

    def __init__(self, processor: TickProcessor) -> None:
        self.processor = processor
        self.state: ProcessorState = processor.state
        self.record_execution = processor.record_execution
        # A processor that keeps the inherited async_tick only ever runs its sync tick(), so
        # the clock calls tick() directly: no coroutine, no timeout scope, nothing allocated.
        overrides_async = type(processor).async_tick is not TickProcessor.async_tick
        self.sync_tick: Callable[[float], None] | None = (
            None if overrides_async else processor.tick
        )
        self.paused = False
        # Ticked on the next tick: registered and not paused. Cleared at once on removal or
        # pause, so a tick already under way skips it too.
        self.scheduled = True
        # start() was called in the current context and stop() not yet.
        self.started = False


def check_time(name: str, value: object, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not (allow_inf and number > 0)):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


class BaseClock(ClockPublisher, ABC):
    """Drives registered processors tick by tick.

    **Registry.** The clock's registry is the only record of which processors exist and which
    are paused; nothing is copied into a run. ``add_processor``/``resume_processor`` made
    during a run, even from inside a tick, apply from the next tick. ``remove_processor`` and
    ``pause_processor`` apply at once: the processor is not ticked again, not even later in a
    tick already under way. Nothing the clock does after a tick undoes them.

    **Failures.** A tick that raises (or, for processors that override ``async_tick``, runs
    longer than ``processor_timeout``; a plain synchronous ``tick`` cannot be interrupted) is
    retried up to ``max_retries`` times: a realtime clock waits ``retry_backoff * 2**(n - 1)``
    seconds (at most one ``tick_size``) on the event loop before retry n, a backtest clock
    retries at once. Then the processor's own exception (or a :class:`ProcessorTimeoutError`
    for a timeout the clock imposed) is recorded with ``processor.record_error(exc,
    tick_timestamp)``, passed to ``error_callback(processor, exc)``, and the tick goes on with
    the next processor. With ``config.fail_fast`` the tick still ticks every processor due,
    counts and publishes, and then the first such exception is raised out of the run.
    ``state.retry_count`` counts the failed attempts of a tick being retried.

    **Events** go to ``subscribe()`` callbacks and, with eventspype installed, to the
    eventspype subscribers of ``start_publication``/``tick_publication``/``stop_publication``.

    **Statistics** live in each processor's ``state``: the clock sets
    ``state.last_timestamp`` before each tick and calls ``record_execution(seconds)`` after a
    successful one. How ``seconds`` is measured is the subclass's choice (see each clock).

    **Lifecycle.** ``async with clock`` starts the registered processors and sends a
    :class:`ClockStartEvent`; leaving it, however it is left, stops them, awaits their
    ``await_cleanup()`` if they have one, and sends exactly one :class:`ClockStopEvent`.
    """

    # Slots for speed; instances still take new attributes (as 0.8.3's did): the publisher
    # base class has no __slots__, so they have a __dict__ (and __weakref__) too.
    __slots__ = (
        "_abandoned_ticks",
        "_closed",
        "_config",
        "_current_timestamp",
        "_entries",
        "_error_callback",
        "_events",
        "_in_context",
        "_measure",
        "_origin",
        "_retry_backoff",
        "_run_done",
        "_run_task",
        "_schedule",
        "_schedule_dirty",
        "_stop_requested",
        "_tick_counter",
        "_tick_index",
        "_to_clean_up",
        "_wakeup",
    )

    MODE: ClassVar[ClockMode]

    def __init__(
        self,
        config: ClockConfig,
        error_callback: ErrorCallback | None = None,
        *,
        retry_backoff: float = 0.1,
    ) -> None:
        if not isinstance(config, ClockConfig):
            raise TypeError(f"config must be a ClockConfig, got {config!r}")
        if config.clock_mode is not self.MODE:
            raise ClockValueError(
                f"{type(self).__name__} requires {self.MODE.name} mode, "
                f"got config.clock_mode={config.clock_mode}"
            )
        if error_callback is not None and not callable(error_callback):
            raise TypeError(f"error_callback must be callable, got {error_callback!r}")
        backoff = check_time("retry_backoff", retry_backoff)
        if backoff < 0:
            raise ValueError(f"retry_backoff must be >= 0, got {backoff!r}")
        ClockPublisher.__init__(self)
        self._config = config
        self._error_callback = error_callback
        self._retry_backoff = backoff
        self._events = EventHub()
        self._entries: dict[TickProcessor, _Entry] = {}
        self._schedule: tuple[_Entry, ...] = ()
        self._schedule_dirty = False
        self._in_context = False
        self._closed = False
        self._origin = config.start_time
        self._current_timestamp = config.start_time
        self._tick_index = 0
        self._tick_counter = 0
        self._run_task: asyncio.Task[Any] | None = None
        self._run_done: asyncio.Future[None] | None = None
        self._stop_requested = False
        self._wakeup: asyncio.Future[None] | None = None
        self._to_clean_up: list[TickProcessor] = []
        self._abandoned_ticks: set[asyncio.Task[None]] = set()
        self._measure: Callable[[], float] = _unset_measure

    # -- reading ---------------------------------------------------------------------------

    @property
    def config(self) -> ClockConfig:
        return self._config

    @property
    def clock_mode(self) -> ClockMode:
        return self._config.clock_mode

    @property
    def tick_size(self) -> float:
        return self._config.tick_size

    @property
    def start_time(self) -> float:
        return self._config.start_time

    @property
    def end_time(self) -> float:
        return self._config.end_time

    @property
    def current_timestamp(self) -> float:
        """The timestamp of the last tick, or the start timestamp before the first."""
        return self._current_timestamp

    @property
    def tick_counter(self) -> int:
        """Ticks completed since ``async with clock`` was entered."""
        return self._tick_counter

    @property
    def processors(self) -> list[TickProcessor]:
        """Every registered processor, paused or not, in registration order (a new list:
        changing it does not change the registry)."""
        return list(self._entries)

    @property
    def processor_states(self) -> dict[TickProcessor, ProcessorState]:
        """Each registered processor's (live) ``state``."""
        return {processor: entry.state for processor, entry in self._entries.items()}

    @property
    def is_in_context(self) -> bool:
        return self._in_context

    @property
    def is_running(self) -> bool:
        """A run (``run``, ``run_til``, ``step``...) is in progress."""
        return self._run_task is not None

    def get_active_processors(self) -> list[TickProcessor]:
        """Registered processors that are not paused, in registration order."""
        return [p for p, entry in self._entries.items() if not entry.paused]

    def is_paused(self, processor: TickProcessor) -> bool:
        return self._entry(processor).paused

    # -- registry --------------------------------------------------------------------------

    def _entry(self, processor: TickProcessor) -> _Entry:
        entry = self._entries.get(processor)
        if entry is None:
            raise ClockError(f"{processor!r} is not registered with this clock")
        return entry

    def add_processor(self, processor: TickProcessor) -> None:
        """Register ``processor``; inside a context it is started now and ticked from the next
        tick. A processor belongs to at most one clock at a time. Its state's execution-time
        window is resized to ``config.stats_window_size``."""
        if not isinstance(processor, TickProcessor):
            raise TypeError(f"processor must be a TickProcessor, got {processor!r}")
        owner_ref = _OWNERS.get(processor)
        owner = owner_ref() if owner_ref is not None else None
        if owner is self:
            raise ClockError(f"{processor!r} is already registered with this clock")
        if owner is not None:
            raise ClockError(
                f"{processor!r} is already registered to another clock; remove it there first"
            )
        entry = _Entry(processor)
        window = self._config.stats_window_size
        if entry.state.execution_times.maxlen != window:
            # The clock's window wins, keeping the most recent times already recorded.
            entry.state.execution_times = deque(entry.state.execution_times, maxlen=window)
        if self._in_context and not self._closed:
            try:
                processor.start(self._current_timestamp)
            except Exception as exc:
                raise ClockError(
                    f"Failed to start processor {processor!r}; not registered"
                ) from exc
            entry.started = True
        self._entries[processor] = entry
        _OWNERS[processor] = weakref.ref(self)
        self._schedule_dirty = True

    def remove_processor(self, processor: TickProcessor) -> None:
        """Unregister ``processor``, stopping it if it was started. It is never ticked again."""
        entry = self._entry(processor)
        del self._entries[processor]
        _OWNERS.pop(processor, None)
        entry.scheduled = False
        self._schedule_dirty = True
        if entry.started:
            entry.started = False
            if hasattr(processor, "await_cleanup"):
                self._to_clean_up.append(processor)
            try:
                processor.stop()
            except Exception as exc:
                raise ClockError(f"{processor!r} raised from stop(); it was removed") from exc

    def pause_processor(self, processor: TickProcessor) -> None:
        """Stop ticking ``processor`` (at once) and call its ``pause()``. Idempotent."""
        entry = self._entry(processor)
        if entry.paused:
            return
        entry.paused = True
        entry.scheduled = False
        self._schedule_dirty = True
        if entry.started:
            processor.pause()

    def resume_processor(self, processor: TickProcessor) -> None:
        """Tick ``processor`` again from the next tick and call its ``resume()``. Idempotent."""
        entry = self._entry(processor)
        if not entry.paused:
            return
        entry.paused = False
        entry.scheduled = True
        self._schedule_dirty = True
        if entry.started:
            processor.resume()

    # -- statistics ------------------------------------------------------------------------

    def get_processor_state(self, processor: TickProcessor) -> ProcessorState | None:
        """The processor's own ``state`` if it is registered here, else None."""
        return processor.state if processor in self._entries else None

    def get_processor_stats(self, processor: TickProcessor) -> ProcessorStats | None:
        """Statistics of a registered processor (None if it is not registered)."""
        entry = self._entries.get(processor)
        if entry is None:
            return None
        state = processor.state
        return ProcessorStats(
            total_ticks=state.total_count,
            successful_ticks=state.successful_count,
            failed_ticks=state.failed_count,
            error_count=state.error_count,
            consecutive_errors=state.consecutive_errors,
            retry_count=state.retry_count,
            max_consecutive_retries=state.max_consecutive_retries,
            error_rate=state.error_rate,
            avg_execution_time=state.avg_execution_time,
            max_execution_time=state.max_execution_time,
            std_dev_execution_time=state.std_dev_execution_time,
            p95_execution_time=state.percentile(95),
            last_error=state.last_error,
            last_exception=state.last_exception,
            last_error_time=state.last_error_time,
            last_error_timestamp=state.last_error_timestamp,
            last_success_time=state.last_success_time,
            last_success_timestamp=state.last_success_timestamp,
            last_timestamp=state.last_timestamp,
            is_active=state.is_active,
            is_paused=entry.paused,
        )

    def get_processor_performance(self, processor: TickProcessor) -> tuple[float, float, float]:
        """(average, sample standard deviation, 95th percentile) of the processor's execution
        times in seconds; zeros if it is not registered or has none."""
        entry = self._entries.get(processor)
        if entry is None or not entry.state.execution_times:
            return 0.0, 0.0, 0.0
        state = entry.state
        return state.avg_execution_time, state.std_dev_execution_time, state.percentile(95)

    def get_lagging_processors(self, threshold: float) -> list[TickProcessor]:
        """Registered processors whose average execution time exceeds ``threshold`` seconds."""
        limit = check_time("threshold", threshold)
        return [p for p in self._entries if p.state.avg_execution_time > limit]

    # -- events ----------------------------------------------------------------------------

    def subscribe(
        self, event_type: type[EventT], callback: Callable[[EventT], object]
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of ``event_type`` (ClockStartEvent,
        ClockTickEvent or ClockStopEvent). Returns a function that unsubscribes."""
        return self._events.subscribe(event_type, callback)

    # -- lifecycle -------------------------------------------------------------------------

    @abstractmethod
    def _origin_timestamp(self) -> float:
        """The timestamp a context starts at: tick k falls at origin + k * tick_size."""

    def _enter_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hook for subclasses that need the running loop (e.g. to measure with it)."""

    def _start_registered(self, origin: float) -> None:
        """Start every registered processor that is not started yet.

        The registry is never iterated while a processor runs: ``start()`` (or a listener it
        notifies) may add or remove processors. Each pass works on a snapshot and skips
        entries unregistered since; processors registered meanwhile are started by the next
        pass, so the loop ends when every registered processor has been started.
        """
        while True:
            pending = [entry for entry in self._entries.values() if not entry.started]
            if not pending:
                return
            for entry in pending:
                if self._entries.get(entry.processor) is not entry or entry.started:
                    continue  # removed (or started) by a callback meanwhile
                try:
                    entry.processor.start(origin)
                except Exception as exc:
                    raise ClockError(f"Failed to start processor {entry.processor!r}") from exc
                entry.started = True
                if entry.paused:
                    try:
                        entry.processor.pause()
                    except Exception as exc:
                        raise ClockError(f"failed to pause {entry.processor!r}") from exc

    async def __aenter__(self) -> Self:
        if self._in_context:
            raise ClockContextError("Clock is already in a context (`async with` block)")
        self._enter_loop(asyncio.get_running_loop())
        origin = self._origin_timestamp()
        self._origin = origin
        self._current_timestamp = origin
        self._tick_index = 0
        self._tick_counter = 0
        self._closed = False
        self._stop_requested = False
        try:
            self._start_registered(origin)
        except BaseException:
            # Stop everything that was started, including processors a callback registered
            # (and that were started) while the others were starting.
            await self._stop_processors(None)
            raise
        self._in_context = True
        self._schedule_dirty = True
        start_event = ClockStartEvent(
            timestamp=origin, mode=self.MODE, tick_size=self._config.tick_size
        )
        self._events.publish(start_event)
        self._publish_event(start_event)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._in_context:
            raise ClockContextError("Clock is not in a context (`async with` block)")
        try:
            await self._close(None, exc)
        finally:
            self._in_context = False

    # The timeout parameter is the established chronopype API, kept for its users.
    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """End the context's work: stop any run, stop the processors, await their cleanup and
        send the stop event. Returns within ``timeout`` seconds (loop time) if one is given:
        a run that has not stopped by then is cancelled, and cleanup still pending is
        cancelled and logged. Does nothing outside a context or when already shut down."""
        if timeout is not None:
            timeout = check_time("timeout", timeout)
            if timeout < 0:
                raise ValueError(f"timeout must be >= 0, got {timeout!r}")
        if not self._in_context or self._closed:
            return
        loop = asyncio.get_running_loop()
        await self._close(None if timeout is None else loop.time() + timeout, None)

    async def _close(self, deadline: float | None, error: BaseException | None) -> None:
        """Stop the run and the processors (by loop time ``deadline``), then send the stop
        event, which is sent even if stopping fails."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._stop_run(deadline)
            await self._stop_processors(deadline)
            await self._stop_abandoned_ticks(deadline)
        finally:
            stop_event = ClockStopEvent(
                timestamp=self._current_timestamp,
                total_ticks=self._tick_counter,
                final_states={
                    processor: entry.state.model_copy()
                    for processor, entry in self._entries.items()
                },
                error=error,
            )
            self._events.publish(stop_event)
            self._publish_event(stop_event)

    async def _stop_run(self, deadline: float | None) -> None:
        run_task, run_done = self._run_task, self._run_done
        if run_task is None or run_done is None:
            return
        self.request_stop()
        if run_task is asyncio.current_task():
            return  # called from inside the run: it ends after the current tick
        loop = asyncio.get_running_loop()
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        await asyncio.wait([run_done], timeout=timeout)
        if not run_done.done():
            logger.warning("run did not stop within the shutdown timeout; cancelling its task")
            run_task.cancel()

    async def _stop_abandoned_ticks(self, deadline: float | None) -> None:
        """Cancel abandoned ticks once more; wait up to one processor_timeout for them."""
        if not self._abandoned_ticks:
            return
        abandoned = list(self._abandoned_ticks)
        for task in abandoned:
            task.cancel()
        loop = asyncio.get_running_loop()
        timeout = self._config.processor_timeout
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - loop.time()))
        _, still_running = await asyncio.wait(abandoned, timeout=timeout)
        if still_running:
            logger.warning(
                "%d abandoned tick(s) still running after the clock closed: they swallow "
                "every cancellation",
                len(still_running),
            )

    async def _stop_processors(self, deadline: float | None) -> None:
        # As in _start_registered: snapshots, never the live registry, while stop() runs; a
        # callback may remove processors (remove_processor stops them) or add some (they are
        # not started once the clock is closing, and so need no stop).
        while True:
            started = [entry for entry in self._entries.values() if entry.started]
            if not started:
                break
            for entry in started:
                if not entry.started:
                    continue  # stopped by remove_processor from a callback meanwhile
                entry.started = False
                if hasattr(entry.processor, "await_cleanup"):
                    self._to_clean_up.append(entry.processor)
                try:
                    entry.processor.stop()
                except Exception:
                    logger.exception("%r raised from stop()", entry.processor)
        to_clean_up, self._to_clean_up = self._to_clean_up, []
        if not to_clean_up:
            return
        loop = asyncio.get_running_loop()
        cleanups = {
            asyncio.ensure_future(processor.await_cleanup()): processor  # type: ignore[attr-defined]
            for processor in to_clean_up
        }
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        done, pending = await asyncio.wait(cleanups, timeout=timeout)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "%r raised from await_cleanup()", cleanups[task], exc_info=task.exception()
                )
        if pending:
            logger.warning(
                "cleanup of %s did not finish within the shutdown timeout; cancelled",
                ", ".join(repr(cleanups[task]) for task in pending),
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def request_stop(self) -> None:
        """Ask a run in progress to return after the current tick. Safe from callbacks."""
        self._stop_requested = True
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    # -- runs ------------------------------------------------------------------------------

    @abstractmethod
    async def run(self) -> None:
        """Run until ``end_time`` (realtime without an end: until stopped)."""

    @abstractmethod
    async def run_til(self, target_time: float) -> None:
        """Run until ``target_time``."""

    def _begin_run(self) -> None:
        if not self._in_context:
            raise ClockContextError(
                "Clock must be started in a context: runs need `async with clock:` around them"
            )
        if self._closed:
            raise ClockError("the clock was shut down")
        if self._run_task is not None:
            raise ClockError("Clock is already running")
        self._run_task = asyncio.current_task()
        self._run_done = asyncio.get_running_loop().create_future()
        self._stop_requested = False

    def _end_run(self) -> None:
        run_done = self._run_done
        self._run_task = None
        self._run_done = None
        if run_done is not None and not run_done.done():
            run_done.set_result(None)

    async def _sleep_until(self, when: float) -> None:
        """Sleep until loop time ``when``, or until ``request_stop()``."""
        loop = asyncio.get_running_loop()
        if self._stop_requested or loop.time() >= when:
            return
        wakeup = loop.create_future()
        self._wakeup = wakeup
        timer = loop.call_at(when, _resolve, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

    # -- one tick --------------------------------------------------------------------------

    def _refresh_schedule(self) -> None:
        self._schedule = tuple(entry for entry in self._entries.values() if entry.scheduled)
        self._schedule_dirty = False

    async def _tick(self, timestamp: float) -> None:
        """Tick every scheduled processor at ``timestamp``, then send the tick event.

        With ``fail_fast``, a processor that gives up does not stop the tick: every processor
        due is ticked (in either mode), the tick counts and its event is sent, and then the
        first give-up error is raised.
        """
        if self._schedule_dirty:
            self._refresh_schedule()
        schedule = self._schedule
        self._current_timestamp = timestamp
        failure: BaseException | None = None
        if self._config.concurrent_processors:
            failure = await self._tick_concurrently(schedule, timestamp)
        else:
            measure = self._measure
            for entry in schedule:
                if not entry.scheduled:
                    continue
                entry.state.last_timestamp = timestamp
                sync_tick = entry.sync_tick
                if sync_tick is None:
                    error = await self._tick_entry(entry, timestamp)
                else:
                    started = measure()
                    try:
                        sync_tick(timestamp)
                    except Exception as exc:
                        error = await self._retry(entry, timestamp, exc)
                    else:
                        entry.record_execution(measure() - started)
                        continue
                if failure is None:
                    failure = error
        self._tick_counter += 1
        if self._events.has_subscribers(ClockTickEvent) or self._wants(ClockTickEvent):
            event = ClockTickEvent(
                timestamp=timestamp,
                tick_counter=self._tick_counter,
                processors=[entry.processor for entry in schedule if entry.scheduled],
            )
            self._events.publish(event)
            self._publish_event(event)
        if failure is not None:
            raise failure

    async def _tick_concurrently(
        self, schedule: tuple[_Entry, ...], timestamp: float
    ) -> BaseException | None:
        due = [entry for entry in schedule if entry.scheduled]
        for entry in due:
            entry.state.last_timestamp = timestamp
        results = await asyncio.gather(
            *(self._tick_entry(entry, timestamp) for entry in due), return_exceptions=True
        )
        failure: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                raise result  # not a give-up (those are returned): a cancellation
            if failure is None:
                failure = result
        return failure

    async def _tick_entry(self, entry: _Entry, timestamp: float) -> BaseException | None:
        """Tick with retries; returns the give-up error when ``fail_fast`` wants it raised."""
        error = await self._attempt(entry, timestamp)
        if error is None:
            return None
        return await self._retry(entry, timestamp, error)

    async def _attempt(self, entry: _Entry, timestamp: float) -> BaseException | None:
        """Tick once; return the failure instead of raising it."""
        measure = self._measure
        started = measure()
        sync_tick = entry.sync_tick
        if sync_tick is not None:
            try:
                sync_tick(timestamp)
            except (Exception, asyncio.CancelledError) as exc:  # nobody cancels a sync call
                return exc
        else:
            # Run async_tick to its first suspension first: one that finishes without
            # suspending (most do) cannot be timed out by the loop and needs no timer.
            coro, pending, failure = _aio.begin_call(entry.processor.async_tick, timestamp)
            if failure is not None:
                return failure
            if coro is not None:
                # A CancelledError the tick raises while nobody cancelled the run is the
                # tick's failure; one that swallows the timeout's cancellation is abandoned
                # one more processor_timeout later (see _abandon_tick).
                limit = self._config.processor_timeout
                _, failure, expired = await _aio.await_bounded(
                    coro,
                    pending,
                    asyncio.get_running_loop().time() + limit,
                    limit,
                    self._abandon_tick,
                    f"{entry.processor!r}.async_tick({timestamp!r})",
                )
                if expired:
                    timeout_error = ProcessorTimeoutError(entry.processor, limit, timestamp)
                    timeout_error.__cause__ = failure
                    return timeout_error
                if failure is not None:
                    return failure
        entry.record_execution(measure() - started)
        return None

    def _abandon_tick(self, coro: Coroutine[Any, Any, Any], exc: BaseException, what: str) -> None:
        task = asyncio.get_running_loop().create_task(
            _aio.finish_abandoned(coro, exc), name=f"chronopype:{type(self).__name__}:abandoned"
        )
        self._abandoned_ticks.add(task)
        task.add_done_callback(self._abandoned_ticks.discard)
        logger.warning(
            "%s ignored its cancellation for a whole extra processor_timeout; abandoned, left "
            "running in task %r (cancelled again when the clock closes)",
            what,
            task.get_name(),
        )

    async def _retry(
        self, entry: _Entry, timestamp: float, error: BaseException
    ) -> BaseException | None:
        """Retry a failed tick; give up after ``max_retries``. Returns the error to raise
        (``fail_fast``) or None. ``state.retry_count`` counts the failed attempts while this
        runs (0 again after a success), as in 0.8.3."""
        max_retries = self._config.max_retries
        state = entry.state
        attempts = 1
        state.retry_count = attempts
        while attempts <= max_retries and entry.scheduled:
            delay = self._retry_wait(self._retry_backoff * 2 ** (attempts - 1))
            logger.warning(
                "%r failed its tick at %r (%r); retry %d/%d in %gs",
                entry.processor, timestamp, error, attempts, max_retries, delay,
            )
            await asyncio.sleep(delay)
            attempts += 1
            next_error = await self._attempt(entry, timestamp)
            if next_error is None:
                state.retry_count = 0
                return None
            state.retry_count = attempts
            error = next_error
        return self._give_up(entry, timestamp, error, attempts)

    def _retry_wait(self, backoff: float) -> float:
        """How long to wait before a retry whose backoff is ``backoff`` seconds."""
        return backoff

    def _give_up(
        self, entry: _Entry, timestamp: float, error: BaseException, attempts: int
    ) -> BaseException | None:
        processor = entry.processor
        logger.error(
            "%r failed its tick at %r after %d attempt(s): %r", processor, timestamp, attempts,
            error,
        )
        processor.record_error(error, timestamp)
        if self._error_callback is not None:
            try:
                self._error_callback(processor, error)
            except Exception:
                logger.exception("error_callback raised for %r", processor)
        return error if self._config.fail_fast else None


def _unset_measure() -> float:
    raise ClockContextError("the clock measures execution times only inside `async with`")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
