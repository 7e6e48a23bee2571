"""Virtual asyncio time: one event loop class and the clock that controls it.

Everything in ``chronopype_testing`` stands on this module. The loop keeps its own
timer heap and decides, each time it runs out of ready work, whether to wait for
real work, to jump virtual time to the next deadline, or to report a deadlock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import heapq
import math
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sized
from concurrent.futures import Executor, ThreadPoolExecutor
from contextvars import Context
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

import time_machine

if sys.platform != "win32":
    import fcntl
    import termios

from chronopype.validation import finite_number
from chronopype_testing._blocked import describe_blocked_tasks
from chronopype_testing._real_work import (
    PeerKey,
    RealWorkLedger,
    address_keys,
    matches,
    peer_key,
    socket_ends,
)

__all__ = [
    "DEFAULT_MAX_ELAPSED",
    "DEFAULT_START",
    "FakeClock",
    "VirtualTimeDeadlock",
    "VirtualTimeLimitExceeded",
]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

#: The wall-clock instant a FakeClock starts at unless told otherwise.
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)

#: Virtual seconds a FakeClock may run before VirtualTimeLimitExceeded (30 days).
DEFAULT_MAX_ELAPSED = 30 * 86_400.0

#: Real seconds of patience for outstanding real work (see FakeClock, "Real work").
DEFAULT_IO_GRACE = 2.0
_MAX_IO_GRACE = 3_600.0

# The last instant time-machine and datetime can show.
_WALL_END_NS = (
    (datetime(9999, 12, 31, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
    * 86_400
    * 1_000_000_000
)
_WALL_BEGIN_NS = (
    (datetime(1, 1, 2, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days * 86_400 * 1_000_000_000
)

# Compact the timers once this many cancelled timers sit in it and they are the majority.
_COMPACT_MIN_CANCELLED = 64

# A reply counts as complete once its connection has been quiet this long (real seconds)
# after its last piece; longer after a piece of at least _BIG_REPLY_PIECE bytes, as servers
# flush big replies buffer by buffer (PostgreSQL: 8 KiB). A server that holds a piece back
# for longer (Nagle's algorithm without TCP_NODELAY: ~40 ms) is not waited for.
_REPLY_SETTLE = 0.002
_BIG_REPLY_SETTLE = 0.05
_BIG_REPLY_PIECE = 4096

# With nothing to jump to, the loop waits for outstanding real work in slices this long
# (real seconds), so that work which ends without a word is noticed.
_REAL_WAIT_SLICE = 0.5

# The private asyncio and threading names this module relies on, checked once at the first
# loop construction so that a Python that lacks one fails clearly instead of misbehaving.
_LOOP_PRIVATE_NAMES = (
    "_ready",
    "_stopping",
    "_closed",
    "_debug",
    "_timer_cancelled_count",
    "_selector",
    "_ssock",
    "_transports",
    "_signal_handlers",
    "_run_once",
    "_process_events",
    "_check_closed",
    "_check_thread",
    "_check_callback",
    "_accept_connection",
    "_sock_accept",
    "_add_reader",
    "_add_writer",
    "_make_socket_transport",
    "_make_subprocess_transport",
    "_start_serving",
    "_stop_serving",
)
_HANDLE_PRIVATE_NAMES = ("_run", "_cancelled", "_callback", "_scheduled", "_source_traceback")
_privates_checked = False

# Only one FakeClock loop may run at a time in a process: time-machine patches the one
# process-wide wall clock. thread ident -> the loop running in that thread.
_running_loops: dict[int, _VirtualTimeLoop] = {}
_running_lock = threading.Lock()


_original_thread_start = threading.Thread.start


def _start_thread_noted(thread: threading.Thread) -> None:
    """Thread.start while a FakeClock loop runs: a thread the loop's own code starts may
    call back into the loop, so that loop counts it as real work."""
    loop = _running_loops.get(threading.get_ident())
    if loop is not None:
        loop._started_threads[thread] = time.perf_counter()
    _original_thread_start(thread)


def _refuse_if_another_thread_runs_a_fake_clock() -> None:
    me = threading.get_ident()
    if any(ident != me for ident in _running_loops):
        raise RuntimeError(
            "another FakeClock loop is running in another thread: time.time() and "
            "datetime.now() are process-wide, so only one FakeClock may run at a "
            "time. Run fake-clock tests in one thread (pytest-xdist uses processes)."
        )


class VirtualTimeDeadlock(RuntimeError):
    """Every task is blocked, and nothing (no timer, real I/O or thread) can wake one."""


class VirtualTimeLimitExceeded(RuntimeError):
    """Virtual time would pass the clock's ``max_elapsed``: a test waiting for ever."""


def _check_privates(loop: asyncio.AbstractEventLoop) -> None:
    global _privates_checked
    if _privates_checked:
        return
    handle = asyncio.TimerHandle(0.0, print, (), loop)
    missing = [name for name in _LOOP_PRIVATE_NAMES if not hasattr(loop, name)]
    missing += [
        f"TimerHandle.{name}" for name in _HANDLE_PRIVATE_NAMES if not hasattr(handle, name)
    ]
    if missing:
        version = ".".join(map(str, sys.version_info[:3]))
        raise RuntimeError(
            f"chronopype_testing.FakeClock does not support Python {version}: its event "
            f"loop relies on asyncio internals this version lacks: {', '.join(missing)}"
        )
    _privates_checked = True


def _check_duration(name: str, value: object, *, allow_zero: bool = True) -> float:
    seconds = finite_number(name, value, unit="seconds")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {seconds!r}")
    return seconds


def _start_to_ns(start: float | datetime) -> int:
    if isinstance(start, datetime):
        aware = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    elif isinstance(start, bool) or not isinstance(start, int | float):
        raise TypeError(f"start must be epoch seconds or a datetime, not {type(start).__name__}")
    elif not math.isfinite(start):
        raise ValueError(f"start must be finite, got {start!r}")
    elif not _WALL_BEGIN_NS / 1e9 <= start < _WALL_END_NS / 1e9:
        raise ValueError(f"start must be a wall time in years 1 to 9999, got {start!r}")
    else:
        ns = round(start * 1_000_000_000)
    if not _WALL_BEGIN_NS <= ns < _WALL_END_NS:
        raise ValueError(f"start must be a wall time in years 1 to 9999, got {start!r}")
    return ns


def _callable_name(func: object) -> str:
    # asyncio.to_thread submits functools.partial(context.run, func, ...): name func.
    if isinstance(func, functools.partial):
        if func.args and getattr(func.func, "__name__", "") == "run" and callable(func.args[0]):
            return _callable_name(func.args[0])
        return _callable_name(func.func)
    return str(getattr(func, "__qualname__", None) or repr(func))


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` is virtual and moves only by exact jumps."""

    # asyncio internals this loop builds on (checked by _check_privates).
    _ready: collections.deque[asyncio.Handle]
    _closed: bool
    _stopping: bool
    _debug: bool
    _timer_cancelled_count: int
    _selector: selectors.BaseSelector
    _ssock: socket.socket
    _transports: Mapping[int, asyncio.BaseTransport]
    _signal_handlers: dict[int, asyncio.Handle]
    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...
        def _check_thread(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...
        def _accept_connection(self, *args: Any, **kwargs: Any) -> None: ...
        def _sock_accept(self, *args: Any, **kwargs: Any) -> None: ...

    # False until __init__ is done: the base class registers its self-pipe before that.
    _watching = False

    def __init__(self, clock: FakeClock, now: float) -> None:
        super().__init__()
        _check_privates(self)
        self._clock = clock
        self._now = now
        # Timers grouped by deadline: a heap of the distinct deadlines, and per deadline its
        # timers in the order they were scheduled (equal deadlines fire first-in, first-out).
        # Virtual deadlines coincide far more often than real ones (every task sleeping 1 s
        # from the same instant), and a heap of (deadline, order, timer) tuples cost
        # workload B ~12 M instructions in tuple, float and int comparisons per run; a
        # float heap compares in one C call, once per distinct deadline.
        self._deadlines: list[float] = []
        self._timers: dict[float, list[asyncio.TimerHandle]] = {}
        self._timer_count = 0
        self._idle_waiters: list[asyncio.Future[None]] = []
        # With autojump off, clock.advance_to() lets time jump up to this deadline.
        self._jump_limit = -math.inf
        self._traveller: time_machine.Traveller | None = None
        self._travel: time_machine.travel | None = None
        self._wall_ns_applied = 0
        self._set_traveller_ns = False
        self._io_polls_skipped = 0
        self._fd_map = self._selector.get_map()
        # len() of the selector's own dict is C-level; the public mapping's __len__ is
        # Python, and the hot path asks for it once per iteration.
        self._registered: Sized = getattr(self._selector, "_fd_to_key", self._fd_map)
        # Virtual time may jump by itself up to here: max_elapsed, and the wall clock's end.
        self._max_when = clock._max_when()

        # Outstanding real work, each with the real instant (perf_counter) its patience
        # started. Executor jobs: future -> (since, what).
        self._executor_jobs: dict[asyncio.Future[Any], tuple[float, str]] = {}
        # Client connections with a request written and no data received since.
        # fd -> (since, transport, its peer)
        self._replies_due: dict[int, tuple[float, asyncio.BaseTransport, PeerKey | None]] = {}
        # Client connections whose reply began to arrive -> when: the rest may follow.
        # fd -> (when the last piece came, how long the next may take to follow).
        self._answered: dict[int, tuple[float, float]] = {}
        # Other fds with a reader or writer: sock_recv/sock_connect, pipes, pidfds, ...
        # fd -> (since, (local, peer) or None for a non-socket)
        self._watched_fds: dict[
            int, tuple[float, tuple[PeerKey | None, PeerKey | None] | None]
        ] = {}
        self._subprocesses: dict[asyncio.BaseTransport, tuple[float, str]] = {}
        self._listening: dict[PeerKey, int] = {}
        self._signals_since = 0.0
        # Threads started from this loop's thread while it runs, -> their patience start.
        self._started_threads: dict[threading.Thread, float] = {}
        self._executors: list[Executor] = []
        self._watching = True

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
        a probe shows the installed time-machine reads exactly that attribute. Measured
        (bench/fake_clock.py --instructions, workload A, 2026-12-01): 5514 M instructions
        with the store, 6170 M (+12 %) with the public ``shift()`` (``ours-tm-public``).
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
        me = threading.get_ident()
        with _running_lock:
            _refuse_if_another_thread_runs_a_fake_clock()
            _running_loops[me] = self
        if threading.Thread.start is not _start_thread_noted:
            threading.Thread.start = _start_thread_noted  # type: ignore[method-assign,assignment]
        # time.time() and datetime.now() follow virtual time only while this loop runs.
        self._travel = time_machine.travel(self._clock._wall_ns(self._now) / 1e9, tick=False)
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
            with _running_lock:
                _running_loops.pop(me, None)
                if not _running_loops and threading.Thread.start is _start_thread_noted:
                    threading.Thread.start = _original_thread_start  # type: ignore[method-assign]

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

    def call_soon_threadsafe(
        self,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        thread = threading.current_thread()
        if thread in self._started_threads:
            # A thread that calls back is alive and working: it gets patience anew.
            self._started_threads[thread] = time.perf_counter()
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
        self._push_timer(when, timer)
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
        # The hot path of every asyncio.timeout()/wait_for(): the base class's checks,
        # inlined, with the debug-only ones behind one test.
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
            if timer._source_traceback:  # type: ignore[attr-defined]
                del timer._source_traceback[-1]  # type: ignore[attr-defined]
        self._push_timer(when, timer)
        return timer

    def _push_timer(self, when: float, timer: asyncio.TimerHandle) -> None:
        bucket = self._timers.get(when)
        if bucket is None:
            self._timers[when] = [timer]
            heapq.heappush(self._deadlines, when)
        else:
            bucket.append(timer)
        self._timer_count += 1
        timer._scheduled = True  # type: ignore[attr-defined]

    def _drop_cancelled_timers(self) -> None:
        timers = self._timers
        cancelled = self._timer_cancelled_count
        if cancelled > _COMPACT_MIN_CANCELLED and cancelled * 2 > self._timer_count:
            for when, bucket in list(timers.items()):
                kept = []
                for timer in bucket:
                    if timer._cancelled:
                        timer._scheduled = False  # type: ignore[attr-defined]
                    else:
                        kept.append(timer)
                if kept:
                    timers[when] = kept
                else:
                    del timers[when]
            self._deadlines = list(timers)
            heapq.heapify(self._deadlines)
            self._timer_count = sum(map(len, timers.values()))
            self._timer_cancelled_count = 0
            return
        # Time must not jump to a deadline whose every timer was cancelled.
        deadlines = self._deadlines
        while deadlines and all(timer._cancelled for timer in timers[deadlines[0]]):
            for timer in timers.pop(heapq.heappop(deadlines)):
                timer._scheduled = False  # type: ignore[attr-defined]
                self._timer_cancelled_count -= 1
                self._timer_count -= 1

    # -- real work: what the loop can see --------------------------------------------

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs[future] = (time.perf_counter(), f"executor job {_callable_name(func)}")
        future.add_done_callback(self._executor_job_done)
        used = executor if executor is not None else getattr(self, "_default_executor", None)
        if used is not None and used not in self._executors:
            self._executors.append(used)
        return future

    def _executor_job_done(self, future: asyncio.Future[Any]) -> None:
        self._executor_jobs.pop(future, None)

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> asyncio.Transport:
        transport: asyncio.Transport = super()._make_socket_transport(  # type: ignore[misc]
            sock, protocol, waiter, extra=extra, server=server
        )
        if server is None:  # a client: what it writes expects an answer
            self._watch_replies(transport, sock.fileno())
        return transport

    def _watch_replies(self, transport: asyncio.Transport, fd: int) -> None:
        replies_due = self._replies_due
        write = transport.write
        writelines = transport.writelines
        clock = time.perf_counter
        peer = peer_key(transport.get_extra_info("peername"))

        def await_reply() -> None:
            # Patience runs from the first unanswered write. An entry of an earlier
            # connection that had the same fd number is stale: this one starts anew.
            due = replies_due.get(fd)
            if due is None or due[1] is not transport:
                replies_due[fd] = (clock(), transport, peer)

        def write_and_await_reply(data: Any) -> None:
            write(data)
            if data:
                await_reply()

        def writelines_and_await_reply(lines: Any) -> None:
            writelines(lines)
            await_reply()

        # Instance attributes shadow the class's methods; StreamWriter, SSL and the
        # protocols all write through these.
        transport.write = write_and_await_reply  # type: ignore[method-assign]
        transport.writelines = writelines_and_await_reply  # type: ignore[method-assign,assignment]

    def _add_reader(self, fd: Any, callback: Any, *args: Any) -> Any:
        handle = super()._add_reader(fd, callback, *args)  # type: ignore[misc]
        if not self._watching:
            return handle
        fileno = fd if isinstance(fd, int) else fd.fileno()
        if not self._has_live_transport(fileno) and callback not in (
            self._accept_connection,
            self._sock_accept,
        ):
            self._watch_fd(fileno)
        return handle

    def _add_writer(self, fd: Any, callback: Any, *args: Any) -> Any:
        handle = super()._add_writer(fd, callback, *args)  # type: ignore[misc]
        if not self._watching:
            return handle
        fileno = fd if isinstance(fd, int) else fd.fileno()
        if not self._has_live_transport(fileno):
            self._watch_fd(fileno)
        return handle

    def _remove_reader(self, fd: Any) -> bool:
        removed: bool = super()._remove_reader(fd)  # type: ignore[misc]
        self._forget_fd(fd)
        return removed

    def _remove_writer(self, fd: Any) -> bool:
        removed: bool = super()._remove_writer(fd)  # type: ignore[misc]
        self._forget_fd(fd)
        return removed

    def _forget_fd(self, fd: Any) -> None:
        # Once nothing is registered for it, the number may be reused by a new socket (a
        # proxy's listener reopened after a refuse window): it must not inherit this watch.
        # (getattr: a loop whose __init__ failed early still closes its self-pipe.)
        watched = getattr(self, "_watched_fds", None)
        if watched:
            fileno = fd if isinstance(fd, int) else fd.fileno()
            if fileno not in self._fd_map:
                watched.pop(fileno, None)

    def _has_live_transport(self, fd: int) -> bool:
        # A closed transport stays in _transports until it is garbage: its fd number may
        # already serve a new socket (a connect in progress, say).
        transport = self._transports.get(fd)
        return transport is not None and not transport.is_closing()

    def _watch_fd(self, fileno: int) -> None:
        if fileno == self._ssock.fileno():
            return
        # Asked anew each time: the fd number may belong to another socket by now.
        self._watched_fds[fileno] = (time.perf_counter(), socket_ends(fileno))

    def _process_events(self, events: list[tuple[selectors.SelectorKey, int]]) -> None:
        if self._replies_due or self._answered or self._watched_fds:
            now = time.perf_counter()
            for key, mask in events:
                fd = key.fd
                if mask & selectors.EVENT_READ and (
                    fd in self._replies_due or fd in self._answered
                ):
                    due = self._replies_due.pop(fd, None)
                    if due is not None and self._exempt((None, due[2])):
                        continue  # the loop serves (or silences) the other end itself
                    # A reply may come in pieces (a server flushes its buffer as it fills):
                    # after a big piece, give the next one longer to follow.
                    big = _bytes_waiting(fd) >= _BIG_REPLY_PIECE
                    self._answered[fd] = (now, _BIG_REPLY_SETTLE if big else _REPLY_SETTLE)
                watched = self._watched_fds.get(fd)
                if watched is not None:
                    self._watched_fds[fd] = (now, watched[1])
        super()._process_events(events)  # type: ignore[misc]

    def _start_serving(
        self, protocol_factory: Any, sock: socket.socket, *args: Any, **kw: Any
    ) -> None:
        super()._start_serving(protocol_factory, sock, *args, **kw)  # type: ignore[misc]
        key = peer_key(sock.getsockname())
        if key is not None:
            if key[0] in ("0.0.0.0", "::"):
                key = ("*", key[1])
            self._listening[key] = self._listening.get(key, 0) + 1

    def _stop_serving(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            key = peer_key(sock.getsockname())
            if key is not None:
                if key[0] in ("0.0.0.0", "::"):
                    key = ("*", key[1])
                left = self._listening.get(key, 0) - 1
                if left > 0:
                    self._listening[key] = left
                else:
                    self._listening.pop(key, None)
        super()._stop_serving(sock)  # type: ignore[misc]

    async def _make_subprocess_transport(self, *args: Any, **kwargs: Any) -> Any:
        transport = await super()._make_subprocess_transport(*args, **kwargs)  # type: ignore[misc]
        what = f"subprocess {transport.get_pid()}"
        self._subprocesses[transport] = (time.perf_counter(), what)
        return transport

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        super().add_signal_handler(sig, callback, *args)
        self._signals_since = time.perf_counter()

    def _exempt(self, ends: tuple[PeerKey | None, PeerKey | None] | None) -> bool:
        """A socket whose other end this loop serves, or whose silence is intended."""
        if ends is None:
            return False
        local, peer = ends
        return (
            matches(peer, self._clock._silent_peers)
            or matches(peer, self._listening)
            or matches(local, self._listening)
        )

    def _outstanding(self, now: float) -> list[tuple[float, str]]:
        """(patience start, what) of every piece of real work the loop can see."""
        work: list[tuple[float, str]] = list(self._executor_jobs.values())
        transports = self._transports
        for fd, (since, transport, peer) in list(self._replies_due.items()):
            if transports.get(fd) is not transport or transport.is_closing():
                del self._replies_due[fd]
                continue
            if not self._exempt((None, peer)):
                work.append((since, f"reply from {_address_text(peer)}"))
        fd_map = self._fd_map
        for fd, (since, ends) in list(self._watched_fds.items()):
            key = fd_map.get(fd)
            if key is None or self._has_live_transport(fd):
                del self._watched_fds[fd]
                continue
            if not self._exempt(ends):
                if ends is None:
                    what = f"fd {fd}"
                elif ends[1] is None:
                    what = f"socket fd {fd} (connecting, or awaited unconnected)"
                else:
                    what = f"socket to {_address_text(ends[1])}"
                work.append((since, what))
        for transport, (since, what) in list(self._subprocesses.items()):
            if transport.is_closing() or transport.get_returncode() is not None:  # type: ignore[attr-defined]
                del self._subprocesses[transport]
            else:
                work.append((since, what))
        if self._signal_handlers:
            work.append((self._signals_since, "signal handlers"))
        if self._started_threads:
            work.extend(self._threads_at_work())
        for since, reason in self._clock._outside_work.values():
            work.append((since, reason))
        return work

    def _threads_at_work(self) -> list[tuple[float, str]]:
        pool_threads: set[threading.Thread] = set()
        for executor in self._executors:
            if isinstance(executor, ThreadPoolExecutor):
                # Idle pool workers wait for jobs; the jobs themselves are counted.
                pool_threads.update(getattr(executor, "_threads", ()))
        alive: list[tuple[float, str]] = []
        for thread, since in list(self._started_threads.items()):
            if not thread.is_alive():
                del self._started_threads[thread]
            elif thread not in pool_threads:
                alive.append((since, f"thread {thread.name}"))
        return alive

    def _poll_io(self, timeout: float | None) -> bool:
        events = self._selector.select(timeout)
        if events:
            self._process_events(events)
        return bool(events)

    def _wait_for_real_work(self, timeout: float, work: list[tuple[float, str]]) -> None:
        started = time.perf_counter()
        self._poll_io(max(0.0, timeout))
        self._clock._ledger.record(time.perf_counter() - started, {what for _, what in work})

    # -- one iteration ---------------------------------------------------------------

    def _run_once(self) -> None:
        if self._timer_cancelled_count:
            self._drop_cancelled_timers()
        ready = self._ready
        deadlines = self._deadlines
        if ready or self._stopping:
            # Skip the syscall when only the self-pipe is registered: thread-safe calls
            # append to the ready queue themselves. Drain it now and then.
            if len(self._registered) > 1 or self._io_polls_skipped > 512:
                self._io_polls_skipped = 0
                self._poll_io(0)
            else:
                self._io_polls_skipped += 1
        elif (
            deadlines
            and self._clock._autojump
            and len(self._registered) == 1
            and not (self._executor_jobs or self._idle_waiters or self._signal_handlers)
            and not (self._started_threads or self._clock._outside_work)
            and self._now < deadlines[0] <= self._max_when
        ):
            # Pure timer code (the hot path): jump straight to the next deadline.
            self._jump_to(deadlines[0])
        elif not (deadlines and deadlines[0] <= self._now):
            self._when_idle()

        now = self._now
        while deadlines and deadlines[0] <= now:
            due = self._timers.pop(heapq.heappop(deadlines))
            self._timer_count -= len(due)
            for timer in due:
                timer._scheduled = False  # type: ignore[attr-defined]
            ready.extend(due)

        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()

    def _when_idle(self) -> None:
        """Nothing is ready: hand the moment to real work, idle waiters, or the next timer."""
        # Signals and wake-ups from other threads may sit in the self-pipe: look first.
        if self._poll_io(0) or self._ready:
            return
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return

        deadlines = self._deadlines
        next_when = deadlines[0] if deadlines else math.inf
        may_jump = next_when != math.inf and (
            self._clock._autojump or next_when <= self._jump_limit
        )
        now_real = time.perf_counter()
        work = self._outstanding(now_real)
        grace = self._clock._io_grace
        patience_ends = [(since + grace, what) for since, what in work]
        for fd, (when, settle) in list(self._answered.items()):
            if now_real - when < grace:
                patience_ends.append((when + settle, f"rest of a reply on fd {fd}"))
                work.append((when, f"rest of a reply on fd {fd}"))
            else:
                del self._answered[fd]
        patient = [(end, what) for end, what in patience_ends if end > now_real]
        if may_jump and patient:
            # Outstanding real work: virtual time stands still until it answers or its
            # patience runs out, so a reply lands at the same virtual instant every run.
            self._wait_for_real_work(max(end for end, _ in patient) - now_real, patient)
            return
        if may_jump and next_when <= self._max_when:
            self._jump_to(next_when)
            outside = self._clock._outside_work
            if outside:
                # A producer the loop cannot see gets io_grace again before every jump.
                for token, (_, reason) in list(outside.items()):
                    outside[token] = (now_real, reason)
            return
        if may_jump and next_when > self._clock._limit_when():
            raise VirtualTimeLimitExceeded(self._limit_message(next_when))
        if work:
            # Nothing to jump to, but real work may still end (or a reply that came in
            # pieces continue): wait for it as a real loop would, looking again every
            # slice in case it ended without a word.
            self._wait_for_real_work(_REAL_WAIT_SLICE, work)
            return
        raise VirtualTimeDeadlock(self._deadlock_message(next_when))

    def _deadlock_message(self, next_when: float) -> str:
        if next_when == math.inf:
            why = "no timer is pending"
        elif next_when > self._max_when:
            why = (
                f"the next timer is due at loop time {next_when!r}, beyond the year 9999 "
                "the wall clock can show"
            )
        else:
            why = (
                f"the next timer is due at loop time {next_when!r} but autojump is off "
                "and no clock.advance() is running"
            )
        return "\n".join(
            [
                f"virtual time is stuck at loop time {self._now!r}: every task is blocked, "
                f"{why}, and no real work (socket, thread, subprocess, executor job) is "
                "outstanding. Blocked tasks, innermost of your frames last:",
                *describe_blocked_tasks(asyncio.all_tasks(self)),
                "If another program is meant to wake a task, declare it: "
                "`with clock.expect_outside_work('why'):` keeps time waiting for it.",
            ]
        )

    def _limit_message(self, next_when: float) -> str:
        limit = self._clock._max_elapsed
        return "\n".join(
            [
                f"virtual time would jump to {next_when!r} s, past this FakeClock's "
                f"max_elapsed={limit!r} s (elapsed now: {self._now!r} s): a task waits for "
                "something that never happens, or the test needs FakeClock(max_elapsed=...) "
                "(marker argument max_elapsed=, ini option chronopype_max_elapsed; None "
                "disables it). Blocked tasks, innermost of your frames last:",
                *describe_blocked_tasks(asyncio.all_tasks(self)),
            ]
        )

    def close(self) -> None:
        super().close()  # raises, touching nothing, if the loop is running
        if self._watching:  # else __init__ failed half-way
            self._timers.clear()
            self._deadlines.clear()
            self._timer_count = 0
            self._clock._loop_closed(self)


def _bytes_waiting(fd: int) -> int:
    """Bytes the kernel holds for reading on ``fd`` (0 if it cannot say)."""
    if sys.platform == "win32":
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]  # type: ignore[no-any-return]
    except OSError:
        return 0


def _address_text(name: object) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name)


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
      for virtual monotonic time. The wall clock is process-wide, so only one FakeClock
      loop may run at a time: a second one in another thread gets RuntimeError.
    * **Real work.** Idle is free: a kept-open connection with nothing in flight, a
      listening socket or a server in this same loop never delays a jump. While real
      work the loop can see is outstanding, virtual time stands still, so its result
      arrives at the same virtual instant however long it took for real, and a run
      against a real local server replays the same timeline every time. Outstanding
      means: an executor job (``run_in_executor``, ``asyncio.to_thread``, DNS lookups);
      a client connection that wrote since it last received (a request not yet
      answered, a connect or TLS handshake in progress); a socket awaited with
      ``sock_recv``/``sock_connect`` or ``add_reader``; a running subprocess; a
      thread the loop's own code started (in the test or a fixture running on the loop:
      threads those threads start, such as a threaded server's handlers, do not count);
      a registered signal handler; and work declared
      with :meth:`expect_outside_work`. Each gets ``io_grace`` real seconds of
      patience (renewed when it shows progress: data received, a thread-safe call from
      that thread); after that the clock concludes nothing is coming and moves on, so a
      silent real server under ``wait_for(..., 5)`` times out at virtual 5 s after at
      most ``io_grace`` real seconds. The one divergence from a real loop: real latency
      is invisible to virtual time. Test slow or silent peers with scripted faults
      (a fault-injecting proxy, ``FakeNetworkProcessor``), not with real delays.
      :attr:`real_seconds_held` and :attr:`real_work_held` say what the holding cost.
    * **Intended silence.** A tool in the same loop that holds traffic back on purpose
      (a fault-injecting proxy) declares its listening address with
      :meth:`intend_silence`: a connection whose peer is that address never holds virtual
      time back, whatever is outstanding on it. :meth:`current` finds the FakeClock of
      the running loop, so such a tool needs no reference to the clock.
    * **Deadlocks and the cap.** If every task is blocked, no timer can fire, and no real
      work is outstanding, the loop raises :class:`VirtualTimeDeadlock`. A jump past
      ``max_elapsed`` virtual seconds (default :data:`DEFAULT_MAX_ELAPSED`, 30 days;
      ``None`` disables it) raises :class:`VirtualTimeLimitExceeded`. Both name each
      blocked task with its await chain, your own frames only.
    * **Manual control.** With ``autojump=False`` time moves only through
      :meth:`advance` / :meth:`advance_to`, which run every callback that falls due at
      its exact time, in order. :meth:`run_until_idle` runs what is ready (including
      timers due now) without moving time.

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
        io_grace: float = DEFAULT_IO_GRACE,
        max_elapsed: float | None = DEFAULT_MAX_ELAPSED,
    ) -> None:
        self._start_ns = _start_to_ns(start)
        if not isinstance(autojump, bool):
            raise TypeError(f"autojump must be a bool, not {type(autojump).__name__}")
        self._autojump = autojump
        self._io_grace = _check_duration("io_grace", io_grace)
        if self._io_grace > _MAX_IO_GRACE:
            raise ValueError(
                f"io_grace must be <= {_MAX_IO_GRACE:g} real seconds, got {io_grace!r}"
            )
        if max_elapsed is None:
            self._max_elapsed: float | None = None
        else:
            self._max_elapsed = _check_duration("max_elapsed", max_elapsed, allow_zero=False)
        self._loop: _VirtualTimeLoop | None = None
        self._now_when_detached = 0.0
        # Declared-silent peers (see intend_silence): key -> number of live declarations.
        self._silent_peers: dict[PeerKey, int] = {}
        self._outside_work: dict[object, tuple[float, str]] = {}
        self._ledger = RealWorkLedger()

    def __repr__(self) -> str:
        return (
            f"FakeClock(elapsed={self.elapsed!r}, autojump={self._autojump}, "
            f"io_grace={self._io_grace}, max_elapsed={self._max_elapsed})"
        )

    def _limit_when(self) -> float:
        return math.inf if self._max_elapsed is None else self._max_elapsed

    def _max_when(self) -> float:
        """The furthest loop time a jump may reach: max_elapsed, and the wall clock's end."""
        return min(self._limit_when(), (_WALL_END_NS - self._start_ns) / 1e9)

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
        # Refuse before the runner wraps ``main`` in a task: refused inside run_forever, that
        # task could never be cancelled and would be destroyed pending.
        with _running_lock:
            _refuse_if_another_thread_runs_a_fake_clock()
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

    # -- real work -------------------------------------------------------------------

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
        keys = address_keys(address)
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

    @contextlib.contextmanager
    def expect_outside_work(self, reason: str) -> Iterator[None]:
        """Hold virtual time for a producer the loop cannot see (another program).

        Inside the block, the clock treats ``reason`` as outstanding real work: before
        every jump it gives the producer ``io_grace`` real seconds (so virtual time moves
        at most one jump per ``io_grace``), and with nothing left to jump to it waits for
        the producer instead of raising VirtualTimeDeadlock. This is the escape hatch the
        deadlock message names; the loop sees threads it started, subprocesses, sockets
        and signals by itself.
        """
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, not {type(reason).__name__}")
        token = object()
        self._outside_work[token] = (time.perf_counter(), f"outside work: {reason}")
        try:
            yield
        finally:
            del self._outside_work[token]

    @property
    def real_seconds_held(self) -> float:
        """Real seconds this clock's loops waited for real work while idle."""
        return self._ledger.seconds

    @property
    def real_work_held(self) -> Mapping[str, float]:
        """What the loops waited for (socket, thread, job...) -> real seconds waited.

        Waits for several things at once count for each, so the values may add up to more
        than :attr:`real_seconds_held`.
        """
        return dict(self._ledger.by_reason)

    def real_work_summary(self) -> str:
        """One line: the real seconds held, and what cost the most."""
        return self._ledger.summary()

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
        """Real seconds of patience outstanding real work gets before virtual time moves."""
        return self._io_grace

    @property
    def max_elapsed(self) -> float | None:
        """Virtual seconds after which a jump raises VirtualTimeLimitExceeded; None: no cap."""
        return self._max_elapsed

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
        if t > self._limit_when():
            raise VirtualTimeLimitExceeded(
                f"cannot advance to loop time {t!r}: past this FakeClock's "
                f"max_elapsed={self._max_elapsed!r} s (FakeClock(max_elapsed=None) disables it)"
            )
        if t > loop._max_when:
            raise ValueError(f"cannot advance to loop time {t!r}: past the year 9999")
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
        """Run every callback that is ready or due now, and what they make ready, without
        moving time."""
        loop = self._running_loop()
        idle: asyncio.Future[None] = loop.create_future()
        loop._idle_waiters.append(idle)
        await idle


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
