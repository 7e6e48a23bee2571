"""Virtual asyncio time: one event loop class and the clock that controls it.

Everything in ``chronopype_testing`` stands on this module. The loop keeps its own
timer heap and decides, each time it runs out of ready work, whether to wait for
real I/O, to jump virtual time to the next deadline, or to report a deadlock.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import ipaddress
import itertools
import math
import selectors
import socket
import time
from collections.abc import Callable, Coroutine, Mapping, Sized
from concurrent.futures import Executor
from contextvars import Context
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

import time_machine

from chronopype._checks import finite_number

__all__ = ["DEFAULT_START", "FakeClock", "VirtualTimeDeadlock"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

#: The wall-clock instant a FakeClock starts at unless told otherwise.
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)

# A timer heap entry: (deadline, insertion order, handle). Tuples compare in C, and the
# insertion order makes timers with equal deadlines fire first-in, first-out.
_TimerEntry = tuple[float, int, asyncio.TimerHandle]

# Compact the heap once this many cancelled timers sit in it and they are the majority.
_COMPACT_MIN_CANCELLED = 64


class VirtualTimeDeadlock(RuntimeError):
    """Every task is blocked, and nothing (no timer, real I/O or thread) can wake one."""


def _check_duration(name: str, value: object, *, allow_zero: bool = True) -> float:
    seconds = finite_number(name, value, unit="seconds")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {seconds!r}")
    return seconds


def _start_to_ns(start: float | datetime) -> int:
    if isinstance(start, datetime):
        aware = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise TypeError(f"start must be epoch seconds or a datetime, not {type(start).__name__}")
    if not math.isfinite(start):
        raise ValueError(f"start must be finite, got {start!r}")
    return round(start * 1_000_000_000)


# A declared-silent peer: (normalized IP, port); the IP is "*" for a wildcard listener.
_PeerKey = tuple[str, int]
_ANY_HOST = "*"


def _normalize_ip(host: str) -> str:
    """The canonical text of an IP literal (IPv4-mapped IPv6 becomes IPv4)."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _silence_keys(address: object) -> frozenset[_PeerKey]:
    """Every (ip, port) a client may see as the peer address of ``address``."""
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError(f"address must be a (host, port) tuple, not {address!r}")
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise TypeError(f"address host must be a str, not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"address port must be an int, not {type(port).__name__}")
    if not 0 < port < 65_536:
        raise ValueError(f"address port must be in 1..65535, got {port!r}")
    if host in ("", "0.0.0.0", "::"):
        return frozenset({(_ANY_HOST, port)})
    try:
        return frozenset({(_normalize_ip(host), port)})
    except ValueError:
        pass
    # A host name ("localhost"): every address it resolves to.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve address host {host!r}: {exc}") from exc
    return frozenset((_normalize_ip(str(info[4][0])), port) for info in infos)


def _peer_key(peername: object) -> _PeerKey | None:
    if isinstance(peername, tuple) and len(peername) >= 2 and isinstance(peername[0], str):
        try:
            return (_normalize_ip(peername[0]), int(peername[1]))
        except ValueError:
            return None
    return None


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", repr(coro))
    frame = getattr(coro, "cr_frame", None)
    where = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
    return f"  - {task.get_name()}: {name}{where}"


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` is virtual and moves only by exact jumps."""

    # asyncio internals this loop builds on (stable from 3.11 through 3.13).
    _ready: collections.deque[asyncio.Handle]
    _closed: bool
    _stopping: bool
    _debug: bool
    _timer_cancelled_count: int
    _selector: selectors.BaseSelector
    _ssock: socket.socket
    _transports: Mapping[int, asyncio.BaseTransport]
    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...
        def _check_thread(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...
        def _process_events(self, events: list[tuple[selectors.SelectorKey, int]]) -> None: ...
        def _accept_connection(self, *args: Any, **kwargs: Any) -> None: ...
        def _sock_accept(self, *args: Any, **kwargs: Any) -> None: ...

    def __init__(self, clock: FakeClock, now: float) -> None:
        super().__init__()
        self._clock = clock
        self._now = now
        self._timers: list[_TimerEntry] = []
        self._timer_order = itertools.count()
        self._executor_jobs = 0
        self._idle_waiters: list[asyncio.Future[None]] = []
        # With autojump off, clock.advance_to() lets time jump up to this deadline.
        self._jump_limit = -math.inf
        # Shutting down: time follows real time, so an executor join gets its real timeout.
        self._closing = False
        self._traveller: time_machine.Traveller | None = None
        self._travel: time_machine.travel | None = None
        self._wall_ns_applied = 0
        self._set_traveller_ns = False
        self._io_polls_skipped = 0
        self._fd_map = self._selector.get_map()
        # len() of the selector's own dict is C-level; the public mapping's __len__ is
        # Python, and the hot path asks for it once per iteration.
        self._registered: Sized = getattr(self._selector, "_fd_to_key", self._fd_map)

    # -- the clock -------------------------------------------------------------------

    def time(self) -> float:
        return self._now

    def _jump_to(self, when: float) -> None:
        self._now = when
        if self._set_traveller_ns:
            self._traveller._destination_timestamp_ns = (  # type: ignore[union-attr]
                self._clock._start_ns + round(when * 1e9)
            )
        elif self._traveller is not None:
            self._sync_wall_clock()

    def _sync_wall_clock(self) -> None:
        traveller = self._traveller
        assert traveller is not None
        wall_ns = self._clock._wall_ns(self._now)
        if self._set_traveller_ns:
            traveller._destination_timestamp_ns = wall_ns
            self._wall_ns_applied = wall_ns
            return
        lag_ns = wall_ns - self._wall_ns_applied
        if lag_ns:
            traveller.shift(lag_ns / 1e9)
            # Read back what time-machine applied, so float rounding never accumulates.
            self._wall_ns_applied = traveller.time_ns()

    @staticmethod
    def _can_set_traveller_ns(traveller: time_machine.Traveller) -> bool:
        """Whether a forward shift can be a plain store (the hot path: one per jump).

        ``Traveller.shift`` costs a few microseconds per call; for a frozen (tick=False)
        traveller it only adds to ``_destination_timestamp_ns``. Use the store only where
        a probe shows the installed time-machine reads exactly that attribute.
        """
        original = getattr(traveller, "_destination_timestamp_ns", None)
        if not isinstance(original, int):
            return False
        probe = original + 1_000
        traveller._destination_timestamp_ns = probe
        works = traveller.time_ns() == probe and time.time_ns() == probe
        traveller._destination_timestamp_ns = original
        return works

    def run_forever(self) -> None:
        # time.time() and datetime.now() follow virtual time only while this loop runs.
        self._travel = time_machine.travel(self._clock._start_ns / 1e9, tick=False)
        self._traveller = self._travel.start()
        self._wall_ns_applied = self._traveller.time_ns()
        self._set_traveller_ns = self._can_set_traveller_ns(self._traveller)
        self._sync_wall_clock()
        try:
            super().run_forever()
        finally:
            self._traveller = None
            self._set_traveller_ns = False
            self._travel.stop()
            self._travel = None

    # -- timers ----------------------------------------------------------------------

    def call_soon(
        self,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        if self._closed or self._debug:
            return super().call_soon(callback, *args, context=context)
        # The checks the base class makes are for closed and debug loops only; every task
        # step and future callback comes through here, so skip its two extra calls.
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        now = self._now
        when = now + delay
        if delay > 0 and when <= now:
            # A positive delay below the float resolution of now must still move time,
            # or a retry loop sleeping that delay would spin forever at one instant.
            when = math.nextafter(now, math.inf)
        if self._closed or self._debug or when != when:
            timer = self.call_at(when, callback, *args, context=context)
            if timer._source_traceback:  # type: ignore[attr-defined]
                del timer._source_traceback[-1]  # type: ignore[attr-defined]
            return timer
        # The hot path of every asyncio.sleep(): call_at's checks, minus the ones that only
        # matter for closed or debug loops and NaN, which took the path above.
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._timer_order), timer))
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if when != when:
            raise ValueError("timer deadline is NaN")
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:  # type: ignore[attr-defined]
            del timer._source_traceback[-1]  # type: ignore[attr-defined]
        heapq.heappush(self._timers, (when, next(self._timer_order), timer))
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def _drop_cancelled_timers(self) -> None:
        timers = self._timers
        cancelled = self._timer_cancelled_count
        if cancelled > _COMPACT_MIN_CANCELLED and cancelled * 2 > len(timers):
            kept = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False  # type: ignore[attr-defined]
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            self._timers = kept
            self._timer_cancelled_count = 0
            return
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False  # type: ignore[attr-defined]
            self._timer_cancelled_count -= 1

    # -- real work: executors and sockets ---------------------------------------------

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _future: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        self._closing = True
        await super().shutdown_default_executor(*args, **kwargs)

    def _real_io_pending(self) -> bool:
        """True while a thread or a connected socket may still deliver something."""
        if self._executor_jobs:
            return True
        fd_map = self._fd_map
        if len(fd_map) <= 1:  # only the self-pipe
            return False
        self_pipe = self._ssock.fileno()
        listeners = (self._accept_connection, self._sock_accept)
        silent = self._clock._silent_peers
        for key in fd_map.values():
            if key.fd == self_pipe:
                continue
            reader, writer = key.data
            if writer is None and (reader is None or reader._callback in listeners):
                continue
            if silent and self._peer_is_silent(key.fd, silent):
                continue
            return True
        return False

    def _peer_is_silent(self, fd: int, silent: dict[_PeerKey, int]) -> bool:
        transport = self._transports.get(fd)
        if transport is None:
            return False
        peer = _peer_key(transport.get_extra_info("peername"))
        return peer is not None and (peer in silent or (_ANY_HOST, peer[1]) in silent)

    def _poll_io(self, timeout: float | None) -> bool:
        events = self._selector.select(timeout)
        if events:
            self._process_events(events)
        return bool(events)

    # -- one iteration ---------------------------------------------------------------

    def _run_once(self) -> None:
        if self._timer_cancelled_count:
            self._drop_cancelled_timers()
        ready = self._ready
        timers = self._timers
        if ready or self._stopping:
            # Skip the syscall when only the self-pipe is registered: thread-safe calls
            # and signals append to the ready queue themselves. Drain it now and then.
            if len(self._registered) > 1 or self._io_polls_skipped > 512:
                self._io_polls_skipped = 0
                self._poll_io(0)
            else:
                self._io_polls_skipped += 1
        elif (
            timers
            and self._clock._autojump
            and len(self._registered) == 1
            and not (self._executor_jobs or self._idle_waiters or self._closing)
            and timers[0][0] != math.inf
        ):
            # Pure timer code (the hot path): jump straight to the next deadline.
            self._jump_to(timers[0][0])
        else:
            self._when_idle()

        now = self._now
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            timer._scheduled = False  # type: ignore[attr-defined]
            ready.append(timer)

        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()

    def _when_idle(self) -> None:
        """Nothing is ready: hand the moment to idle waiters, real I/O, or the next timer."""
        io_pending = self._real_io_pending()
        # Sockets that may not hold time (declared silent, listeners) still get one look
        # before time jumps: bytes or a connection the kernel already has must be seen at
        # this instant, not after the jump.
        if (io_pending or len(self._registered) > 1) and self._poll_io(0):
            return
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return

        timers = self._timers
        next_when = timers[0][0] if timers else math.inf
        may_jump = next_when != math.inf and (
            self._clock._autojump or next_when <= self._jump_limit
        )
        if self._closing:
            # Real pacing while shutting down: wait the real remaining time, then jump.
            wait = None if next_when == math.inf else max(0.0, next_when - self._now)
            if not self._poll_io(wait) and not self._ready and next_when != math.inf:
                self._jump_to(next_when)
            return
        if io_pending:
            # Real I/O gets up to io_grace real seconds to arrive before time may move.
            if self._poll_io(self._clock._io_grace if may_jump else None) or not may_jump:
                return
            if self._ready:
                return
        if may_jump:
            self._jump_to(next_when)
            return
        raise VirtualTimeDeadlock(self._deadlock_message(next_when))

    def _deadlock_message(self, next_when: float) -> str:
        tasks = sorted(asyncio.all_tasks(self), key=lambda task: task.get_name())
        if next_when == math.inf:
            why = "no timer is pending"
        else:
            why = (
                f"the next timer is due at loop time {next_when!r} but autojump is off "
                "and no clock.advance() is running"
            )
        lines = [
            f"virtual time is stuck at loop time {self._now!r}: every task is blocked, {why}, "
            "and no real I/O or executor job can wake anything. Blocked tasks:",
            *(_describe_task(task) for task in tasks),
        ]
        if not tasks:
            lines.append("  (none: the loop was asked to run with nothing to do)")
        return "\n".join(lines)

    def close(self) -> None:
        self._timers.clear()
        super().close()
        self._clock._loop_closed(self)


class FakeClock:
    """Virtual time for asyncio, with the wall clock kept in step.

    A FakeClock makes event loops (:meth:`new_event_loop`) whose ``time()`` is virtual.
    Its semantics, exactly:

    * **Jumps.** The loop's clock starts at ``0.0`` (so floats keep their precision) and
      never moves while there is ready work. When every task is idle and *autojump* is on,
      it jumps exactly to the earliest timer deadline, so ``await asyncio.sleep(86_400)``
      returns at loop time ``86400.0`` after no real waiting. Timers fire in deadline
      order, first-in first-out on ties; a timer fires when the clock reaches its
      deadline, never early. A positive delay too small to change the float ``now`` is
      rounded up to the next representable instant, so time always moves.
    * **Wall clock.** ``clock.time()`` is ``start`` plus loop time. While the loop runs,
      ``time.time()``, ``time.time_ns()``, ``datetime.now()``, ``datetime.utcnow()`` and
      ``date.today()`` report that virtual wall time (through time-machine).
      ``time.monotonic()`` and ``time.perf_counter()`` stay real: use ``loop.time()``
      for virtual monotonic time.
    * **Real I/O.** While a connected socket is registered with the loop, or an executor
      job (``run_in_executor``, ``asyncio.to_thread``, DNS lookups) is outstanding, the
      clock waits up to ``io_grace`` *real* seconds for real I/O before it jumps.
      Listening sockets and the loop's self-pipe do not count, so pure timer code never
      waits. An idle open connection therefore costs up to ``io_grace`` real seconds per
      jump; lower ``io_grace`` if that matters.
    * **Intended silence.** A tool in the same loop that holds traffic back on purpose
      (a fault-injecting proxy) declares its listening address with
      :meth:`intend_silence`: a connection whose peer is that address never holds virtual
      time back, whatever is outstanding on it. :meth:`current` finds the FakeClock of
      the running loop, so such a tool needs no reference to the clock.
    * **Deadlocks.** If every task is blocked, no timer can fire, and no real I/O or
      executor job is outstanding, the loop raises :class:`VirtualTimeDeadlock` naming
      the blocked tasks, instead of hanging.
    * **Shutdown.** While the loop shuts its default executor down it follows real time,
      so the executor join gets its real timeout rather than expiring in an instant.
    * **Manual control.** With ``autojump=False`` time moves only through
      :meth:`advance` / :meth:`advance_to`, which run every callback that falls due at
      its exact time, in order. :meth:`run_until_idle` runs what is ready without moving
      time.

    Prior art: trio's ``MockClock`` (autojump, but with a real-time threshold),
    asyncio's own test loop (``TestLoop`` in CPython's test suite), looptime and
    async-solipsism (virtual loops without a wall clock in step), and time-machine
    (wall clock only). A FakeClock drives one loop at a time; a new loop from the same
    clock continues from the clock's current time.
    """

    def __init__(
        self,
        *,
        start: float | datetime = DEFAULT_START,
        autojump: bool = True,
        io_grace: float = 0.25,
    ) -> None:
        self._start_ns = _start_to_ns(start)
        if not isinstance(autojump, bool):
            raise TypeError(f"autojump must be a bool, not {type(autojump).__name__}")
        self._autojump = autojump
        self._io_grace = _check_duration("io_grace", io_grace)
        self._loop: _VirtualTimeLoop | None = None
        self._now_when_detached = 0.0
        # Declared-silent peers (see intend_silence): key -> number of live declarations.
        self._silent_peers: dict[_PeerKey, int] = {}

    def __repr__(self) -> str:
        return (
            f"FakeClock(elapsed={self.elapsed!r}, autojump={self._autojump}, "
            f"io_grace={self._io_grace})"
        )

    # -- loops -----------------------------------------------------------------------

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A virtual-time loop; usable as ``asyncio.Runner(loop_factory=...)``."""
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError(
                "this FakeClock already drives an open event loop; close it first "
                "or use another FakeClock"
            )
        self._loop = _VirtualTimeLoop(self, self._now_when_detached)
        return self._loop

    def _loop_closed(self, loop: _VirtualTimeLoop) -> None:
        if loop is self._loop:
            self._now_when_detached = loop._now

    def run(self, main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
        """Run ``main`` to completion on a new virtual-time loop, like ``asyncio.run``."""
        with asyncio.Runner(debug=debug, loop_factory=self.new_event_loop) as runner:
            return runner.run(main)

    def _running_loop(self) -> _VirtualTimeLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise RuntimeError("this FakeClock does not drive the running event loop")
        return self._loop

    @staticmethod
    def current() -> FakeClock | None:
        """The FakeClock driving the running event loop, or None (a real loop, or no loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return loop._clock if isinstance(loop, _VirtualTimeLoop) else None

    def intend_silence(self, address: tuple[str, int]) -> Callable[[], None]:
        """Declare that connections to the local ``(host, port)`` may be silent on purpose.

        For code in this same loop that holds traffic back deliberately (a fault-injecting
        proxy listening on ``address``): a socket whose peer address is ``address`` never
        holds virtual time, so a request the proxy swallows times out in virtual time at
        once instead of after ``io_grace`` of real patience. A wildcard host (``""``,
        ``"0.0.0.0"``, ``"::"``) matches any peer host on that port; a host name matches
        every address it resolves to.

        Returns a function that withdraws this declaration; calling it again does nothing.
        Declaring an address that is already declared is harmless: it stays silent until
        every declaration of it is withdrawn. The declaration belongs to this clock, so it
        holds for every loop the clock drives.
        """
        keys = _silence_keys(address)
        silent = self._silent_peers
        for key in keys:
            silent[key] = silent.get(key, 0) + 1
        withdrawn = False

        def withdraw() -> None:
            nonlocal withdrawn
            if withdrawn:
                return
            withdrawn = True
            for key in keys:
                left = silent[key] - 1
                if left:
                    silent[key] = left
                else:
                    del silent[key]

        return withdraw

    # -- reading time ----------------------------------------------------------------

    def monotonic(self) -> float:
        """The loop's ``time()``: virtual seconds, starting at 0.0."""
        return self._loop._now if self._loop is not None else self._now_when_detached

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock started."""
        return self.monotonic()

    def time(self) -> float:
        """Virtual wall time in epoch seconds: ``start`` plus loop time."""
        return self._wall_ns(self.monotonic()) / 1e9

    def _wall_ns(self, loop_time: float) -> int:
        return self._start_ns + round(loop_time * 1e9)

    @property
    def autojump(self) -> bool:
        """Whether idle time jumps to the next deadline by itself."""
        return self._autojump

    @autojump.setter
    def autojump(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"autojump must be a bool, not {type(value).__name__}")
        self._autojump = value
        if self._loop is not None and not self._loop.is_closed():
            # A loop blocked in select() must re-evaluate whether it may jump now.
            self._loop.call_soon_threadsafe(lambda: None)

    @property
    def io_grace(self) -> float:
        """Real seconds that outstanding real I/O gets before virtual time moves."""
        return self._io_grace

    # -- moving time -----------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running everything that falls due."""
        seconds = _check_duration("seconds", seconds)
        await self.advance_to(self._running_loop()._now + seconds)

    async def advance_to(self, t: float) -> None:
        """Move time forward to loop time ``t``, running everything due up to and at ``t``."""
        loop = self._running_loop()
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise TypeError(f"t must be a loop time in seconds, not {type(t).__name__}")
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t!r}")
        if t < loop._now:
            raise ValueError(f"cannot move time backwards: t={t!r} < now={loop._now!r}")
        previous_limit = loop._jump_limit
        loop._jump_limit = max(previous_limit, float(t))
        try:
            arrived = loop.create_future()
            loop.call_at(float(t), _resolve, arrived)
            await arrived
            await self.run_until_idle()
        finally:
            loop._jump_limit = previous_limit

    async def run_until_idle(self) -> None:
        """Run every callback that is ready, and what they make ready, without moving time."""
        loop = self._running_loop()
        idle: asyncio.Future[None] = loop.create_future()
        loop._idle_waiters.append(idle)
        await idle


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
