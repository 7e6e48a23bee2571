"""OutageProxy: a loopback TCP proxy in the test's own event loop, with scripted faults.

It sits between the client under test and a real upstream server and follows a script of
fault windows in loop time: virtual time on a FakeClock, real time on any other loop. On a
FakeClock it declares its connections silent on purpose (``FakeClock.intend_silence``), so
traffic it holds back (blackhole, latency) never holds virtual time, while the upstream
server's genuine replies are still waited for at a standstill of virtual time.

Every byte is delivered in order and exactly once while the proxy forwards (``up``,
``latency``, ``bandwidth``, ``slow_close``, and after a ``blackhole`` ends); the faults that
lose data (refuse, reset, timeout, limit_data) do so by closing connections, as TCP would.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import random
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import urlsplit, urlunsplit

from chronopype_testing._proxy_faults import Fault, FaultLike, FaultWindow, as_fault, parse_script

__all__ = ["OutageProxy", "ProxiedConnection", "ProxyEvent"]

# A pipe reads no more from its source while this many bytes wait in it (held or delayed):
# the sender's own buffers fill, as behind a real congested or partitioned link.
_QUEUE_LIMIT = 1 << 20
_HELD = math.inf
_EOF = None
_LINGER_RESET = struct.pack("ii", 1, 0)


class ProxyEvent(NamedTuple):
    """One thing the proxy did, ``time`` seconds after it started (the script's clock)."""

    time: float
    event: str
    connection: int | None
    detail: str

    def __str__(self) -> str:
        who = f" #{self.connection}" if self.connection is not None else ""
        return f"{self.time:10.3f} {self.event}{who}: {self.detail}"


def _current_fake_clock() -> Any:
    """The FakeClock driving the running loop, or None (no testing extra, or a real loop)."""
    try:
        from chronopype_testing._loop import FakeClock
    except ImportError:
        return None
    return FakeClock.current()


def _reset_and_abort(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a reset peer does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: ``client`` (accepted) or ``server`` (upstream)."""

    def __init__(self, connection: ProxiedConnection, name: str) -> None:
        self.connection = connection
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.eof = False
        self._pause_reasons: set[str] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connection._side_made(self)

    def data_received(self, data: bytes) -> None:
        self.connection._received(self, data)

    def eof_received(self) -> bool:
        self.eof = True
        self.connection._received(self, _EOF)
        return True  # keep our half open: the other direction may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connection._side_lost(self, exc)

    # The other side's socket is full: stop reading ours until it drains.
    def pause_writing(self) -> None:
        self.connection._other(self).pause("peer buffer")

    def resume_writing(self) -> None:
        self.connection._other(self).resume("peer buffer")

    def pause(self, reason: str) -> None:
        if not self._pause_reasons and self.transport is not None and not self.lost:
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()
        self._pause_reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons.discard(reason)
        if not self._pause_reasons and self.transport is not None and not self.lost:
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.lost and not self.transport.is_closing()


class _Pipe:
    """One direction of a connection: chunks (and the EOF) with the loop time each is due."""

    def __init__(self, connection: ProxiedConnection, source: _Side, name: str) -> None:
        self.connection = connection
        self.source = source
        self.name = name  # "upstream" (client -> server) or "downstream"
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.queued_bytes = 0
        self.last_due = -math.inf
        self.timer: asyncio.TimerHandle | None = None
        self.delivered = 0
        self.fault_bytes = 0  # bytes sent this way since the current fault began
        self.eof_delivered = False
        self.limit_reached = False
        # Latency jitter is drawn once per burst: chunks read at one loop instant share it.
        self.burst_at = -math.inf
        self.burst_delay = 0.0

    @property
    def destination(self) -> _Side | None:
        return self.connection._other(self.source)

    def push(self, due: float, payload: bytes | None) -> None:
        due = max(due, self.last_due)
        self.last_due = due
        self.queue.append((due, payload))
        if payload is not None:
            self.queued_bytes += len(payload)
            if self.queued_bytes > _QUEUE_LIMIT:
                self.source.pause("queue")
        self.pump()

    def release_held(self, now: float) -> None:
        """The fault that held this pipe's traffic ended: everything held is due now."""
        if not self.queue or self.last_due != _HELD:
            return
        released: collections.deque[tuple[float, bytes | None]] = collections.deque()
        floor = -math.inf
        for due, payload in self.queue:
            due = max(floor, now if due == _HELD else due)
            floor = due
            released.append((due, payload))
        self.queue = released
        self.last_due = floor
        self.pump()

    def pump(self) -> None:
        loop = self.connection._proxy._loop
        destination = self.destination
        now = loop.time()
        while self.queue and self.queue[0][0] <= now:
            if destination is None or destination.transport is None:
                return  # the upstream is still connecting: it pumps once it is there
            if not destination.usable:
                self.queue.clear()
                self.queued_bytes = 0
                return
            _, payload = self.queue.popleft()
            if payload is None:
                self._deliver_eof(destination)
                return
            self.queued_bytes -= len(payload)
            destination.transport.write(payload)
            self.delivered += len(payload)
            self.connection._proxy._count(self.name, len(payload))
        if self.queued_bytes <= _QUEUE_LIMIT // 2:
            self.source.resume("queue")
        self._schedule(loop, now)

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        if not self.queue or self.queue[0][0] == _HELD:
            return
        due = self.queue[0][0]
        if self.timer is not None:
            if self.timer.when() == due:
                return
            self.timer.cancel()
        self.timer = loop.call_at(due, self._timer_fired)

    def _timer_fired(self) -> None:
        self.timer = None
        self.pump()

    def _deliver_eof(self, destination: _Side) -> None:
        self.eof_delivered = True
        transport = destination.transport
        assert transport is not None
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except OSError as exc:  # the destination is gone already
            self.connection._close(destination.name, graceful=True, detail=repr(exc))
            return
        self.connection._eof_delivered()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued_bytes = 0


class ProxiedConnection:
    """One client connection through the proxy, with what went through it.

    ``number`` counts connections from 1; times are seconds since the proxy started.
    ``bytes_upstream`` (client -> server) and ``bytes_downstream`` count delivered bytes.
    ``closed_by`` says who ended it: ``"client"``, ``"server"``, or ``"proxy: <why>"``.
    """

    def __init__(self, proxy: OutageProxy, number: int) -> None:
        self._proxy = proxy
        self.number = number
        self.client_address: tuple[Any, ...] | None = None
        self.opened_at = proxy.elapsed
        self.closed_at: float | None = None
        self.closed_by: str | None = None
        self._client = _Side(self, "client")
        self._server = _Side(self, "server")
        self._upstream = _Pipe(self, self._client, "upstream")
        self._downstream = _Pipe(self, self._server, "downstream")
        self._connecting: asyncio.Task[None] | None = None
        self._fault_timer: asyncio.TimerHandle | None = None
        self._withdraw_silence: Callable[[], None] | None = None

    def __repr__(self) -> str:
        state = (
            "open"
            if self.closed_at is None
            else f"closed at {self.closed_at:g} by {self.closed_by}"
        )
        return (
            f"<ProxiedConnection #{self.number} from {self.client_address}: {state}, "
            f"{self.bytes_upstream} B up, {self.bytes_downstream} B down>"
        )

    @property
    def bytes_upstream(self) -> int:
        return self._upstream.delivered

    @property
    def bytes_downstream(self) -> int:
        return self._downstream.delivered

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def client_closed(self) -> bool:
        """Whether the client closed (or half-closed) its end."""
        return self._client.eof or (self._client.lost and self.closed_by == "client")

    # -- plumbing ------------------------------------------------------------------------

    def _other(self, side: _Side) -> _Side:
        return self._server if side is self._client else self._client

    def _pipe_from(self, side: _Side) -> _Pipe:
        return self._upstream if side is self._client else self._downstream

    def _side_made(self, side: _Side) -> None:
        if side is self._client:
            self.client_address = (
                side.transport.get_extra_info("peername") if side.transport else None
            )
            self._proxy._accepted(self)
        elif self.closed_at is not None:  # the client left while we were connecting
            assert side.transport is not None
            side.transport.close()
        else:
            self._proxy._log("upstream_connected", self.number, f"{self._proxy.upstream}")
            self._upstream.pump()

    def _received(self, side: _Side, payload: bytes | None) -> None:
        if self.closed_at is not None:
            return
        self._proxy._arrived(self, self._pipe_from(side), payload)

    def _eof_delivered(self) -> None:
        if self._upstream.eof_delivered and self._downstream.eof_delivered:
            self._close("client" if self._client.eof else "server", graceful=True)

    def _side_lost(self, side: _Side, exc: Exception | None) -> None:
        if self.closed_at is None:
            if exc is None and side.eof:
                return  # a half-close already on its way; _eof_delivered finishes it
            # A side that closed first and then failed our writes ended it cleanly; a reset
            # from one side is passed on to the other as a reset.
            graceful = exc is None or side.eof
            self._close(side.name, graceful=graceful, detail=f"{exc!r}" if exc else "")
        self._proxy._maybe_forget(self)

    def _connect_upstream(self) -> None:
        if self._connecting is not None or self.closed_at is not None:
            return
        self._connecting = self._proxy._loop.create_task(
            self._open_upstream(), name=f"OutageProxy connection #{self.number} upstream"
        )

    async def _open_upstream(self) -> None:
        host, port = self._proxy.upstream
        try:
            await self._proxy._loop.create_connection(lambda: self._server, host, port)
        except OSError as exc:
            self._proxy._log("upstream_failed", self.number, repr(exc))
            self._close("proxy: upstream unreachable", graceful=True)

    def _close(self, by: str, *, graceful: bool, detail: str = "") -> None:
        if self.closed_at is not None:
            return
        self.closed_at = self._proxy.elapsed
        self.closed_by = by
        for pipe in (self._upstream, self._downstream):
            pipe.cancel()
        if self._fault_timer is not None:
            self._fault_timer.cancel()
            self._fault_timer = None
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        for side in (self._client, self._server):
            if side.transport is not None and not side.lost:
                if graceful:
                    side.transport.close()
                else:
                    _reset_and_abort(side.transport)
        how = "" if graceful else "reset, "
        extra = f"; {detail}" if detail else ""
        self._proxy._log(
            "closed",
            self.number,
            f"{how}by {by}, {self.bytes_upstream} B up, {self.bytes_downstream} B down{extra}",
        )
        self._proxy._maybe_forget(self)

    @property
    def _finished(self) -> bool:
        done = self._connecting is None or self._connecting.done()
        sides = all(s.transport is None or s.lost for s in (self._client, self._server))
        return self.closed_at is not None and done and sides


@dataclass
class _Listener:
    server: asyncio.Server
    starting: asyncio.Task[None] | None


class OutageProxy:
    """A loopback TCP proxy to ``upstream`` whose faults follow a script in loop time.

    ``windows`` is a list of ``(start, end, fault)``: seconds since the proxy started, and a
    :class:`Fault` or its text form (``"refuse"``, ``"latency(2, jitter=0.5)"``...). Outside
    the windows it passes traffic through; ``await proxy.set(fault)`` switches at once, until
    the script's next boundary. Use it as ``async with OutageProxy((host, port), windows=[...])
    as proxy:`` and point the client at ``proxy.host``/``proxy.port`` (or
    ``proxy.rewrite(url)``). ``rng`` draws latency jitter (default: ``random.Random(0)``, so
    runs replay). ``proxy.log`` lists what it did, ``proxy.connections`` every connection.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        windows: Iterable[tuple[float, float, FaultLike]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        if not (isinstance(upstream, tuple) and len(upstream) == 2):
            raise TypeError(f"upstream must be a (host, port) tuple, got {upstream!r}")
        upstream_host, upstream_port = upstream
        if not isinstance(upstream_host, str) or not upstream_host:
            raise TypeError(f"upstream host must be a non-empty str, got {upstream_host!r}")
        _check_port("upstream port", upstream_port, allow_zero=False)
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty str, got {host!r}")
        _check_port("port", port, allow_zero=True)
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
        self.upstream: tuple[str, int] = (upstream_host, upstream_port)
        self.script: tuple[FaultWindow, ...] = parse_script(windows)
        self.host = host
        self._requested_port = port
        self._port = 0
        self._rng = rng if rng is not None else random.Random(0)
        self.log: list[ProxyEvent] = []
        self.connections: list[ProxiedConnection] = []
        self.bytes_upstream = 0
        self.bytes_downstream = 0
        self._fault = Fault.up()
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self._origin = 0.0
        self._listener: _Listener | None = None
        self._keeper: socket.socket | None = None
        self._boundaries: list[asyncio.TimerHandle] = []
        self._withdraw_silence: Callable[[], None] | None = None
        self._numbers = itertools.count(1)
        self._live: set[ProxiedConnection] = set()
        self._state = "new"

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else "not started"
        return f"<OutageProxy {where} -> {self.upstream[0]}:{self.upstream[1]}, {self._fault}>"

    # -- the address clients use ---------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the proxy has no port until it is started (async with / start())")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def url(self, scheme: str, path: str = "", *, user: str | None = None) -> str:
        """``scheme://[user@]host:port/path``, e.g. ``proxy.url("http", "/health")`` or
        ``proxy.url("postgresql", "/postgres", user="postgres")``."""
        netloc = f"{_netloc_host(self.host)}:{self.port}"
        if user:
            netloc = f"{user}@{netloc}"
        if path and not path.startswith("/"):
            path = "/" + path
        return f"{scheme}://{netloc}{path}"

    def rewrite(self, url: str) -> str:
        """``url`` (a DSN or URL to the upstream) with its host and port replaced by the
        proxy's; user, password, path and query are kept."""
        parts = urlsplit(url)
        if not parts.scheme or parts.hostname is None:
            raise ValueError(f"cannot rewrite {url!r}: expected scheme://[user@]host[:port]/...")
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{_netloc_host(self.host)}:{self.port}"
        if userinfo:
            netloc = f"{userinfo}@{netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # -- state ---------------------------------------------------------------------------

    @property
    def fault(self) -> Fault:
        """What the proxy does right now."""
        return self._fault

    @property
    def elapsed(self) -> float:
        """Seconds since the proxy started, on its loop's clock (the script's time axis)."""
        if self._state == "new":
            return 0.0
        return self._loop.time() - self._origin

    def open_connections(self) -> list[ProxiedConnection]:
        return [connection for connection in self.connections if connection.is_open]

    def events(self, kind: str) -> list[ProxyEvent]:
        """The log's events of one kind (``fault``, ``accepted``, ``closed``...)."""
        return [event for event in self.log if event.event == kind]

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind, and start following the script from now."""
        if self._state != "new":
            raise RuntimeError(f"this OutageProxy was already started ({self._state})")
        self._loop = asyncio.get_running_loop()
        self._keeper = self._reserve_port()
        self._state = "running"
        self._origin = self._loop.time()
        clock = _current_fake_clock()
        if clock is not None:
            self._withdraw_silence = clock.intend_silence((self.host, self._port))
        first = Fault.up()
        for index, window in enumerate(self.script):
            if window.start == 0:
                first = window.fault
            else:
                self._at(window.start, window.fault)
            following = self.script[index + 1] if index + 1 < len(self.script) else None
            if following is None or following.start != window.end:
                self._at(window.end, Fault.up())
        self._switch(first)
        await asyncio.sleep(0)  # let the listener start accepting

    async def set(self, fault: FaultLike) -> None:
        """Switch to ``fault`` now; the script takes over again at its next boundary."""
        chosen = as_fault(fault)
        if self._state != "running":
            raise RuntimeError(f"set() needs a running proxy; this one is {self._state}")
        self._switch(chosen)
        await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Stop listening, close every connection (FIN both sides), release everything.

        Idempotent. Connections still open are closed by the proxy; check
        ``open_connections()`` before closing if a client is supposed to have closed them.
        """
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        self._state = "closed"
        for timer in self._boundaries:
            timer.cancel()
        self._boundaries.clear()
        self._close_listener()
        for connection in list(self._live):
            connection._close("proxy: closed", graceful=True)
        # Let the transports run their connection_lost callbacks.
        for _ in range(100):
            if not self._live:
                break
            await asyncio.sleep(0)
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        if self._withdraw_silence is not None:
            self._withdraw_silence()
            self._withdraw_silence = None
        self._log("stopped", None, f"{len(self.connections)} connection(s) in all")

    # -- the script ----------------------------------------------------------------------

    def _at(self, seconds: float, fault: Fault) -> None:
        self._boundaries.append(self._loop.call_at(self._origin + seconds, self._switch, fault))

    def _switch(self, fault: Fault) -> None:
        if self._state != "running":
            return
        self._fault = fault
        self._log("fault", None, str(fault))
        now = self._loop.time()
        if fault.kind == "refuse":
            self._close_listener()
        else:
            self._open_listener()
        for connection in list(self._live):
            connection._upstream.fault_bytes = connection._downstream.fault_bytes = 0
            if connection._fault_timer is not None:
                connection._fault_timer.cancel()
                connection._fault_timer = None
            if fault.kind == "refuse":
                connection._close("proxy: refuse", graceful=True)
                continue
            if fault.kind == "reset":
                connection._close("proxy: reset", graceful=False)
                continue
            if fault.kind == "timeout":
                self._arm_timeout(connection, fault)
            if not _holds(fault):
                connection._upstream.release_held(now)
                connection._downstream.release_held(now)
                if connection.closed_at is None and self._forwards(fault):
                    self._ensure_upstream(connection)

    @staticmethod
    def _forwards(fault: Fault) -> bool:
        return fault.kind not in ("refuse", "reset", "blackhole", "timeout")

    def _ensure_upstream(self, connection: ProxiedConnection) -> None:
        if connection._upstream.queue and connection._upstream.queue[0][1] is _EOF:
            # The client gave up before the server ever heard of it: no need to connect.
            connection._close("client", graceful=True)
            return
        connection._connect_upstream()

    def _arm_timeout(self, connection: ProxiedConnection, fault: Fault) -> None:
        assert fault.seconds is not None

        def expire() -> None:
            connection._fault_timer = None
            self._log("timed_out", connection.number, str(fault))
            connection._close(f"proxy: {fault}", graceful=True)

        connection._fault_timer = self._loop.call_later(fault.seconds, expire)

    # -- listening -----------------------------------------------------------------------

    def _bound_socket(self, port: int) -> socket.socket:
        """A TCP socket bound to ``(host, port)``, sharing the port with our other sockets."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _reserve_port(self) -> socket.socket:
        """A bound, never-listening socket that keeps the port ours while ``refuse`` has the
        listener closed (SO_REUSEPORT lets the real listener share it)."""
        keeper = self._bound_socket(self._requested_port)
        self._port = keeper.getsockname()[1]
        return keeper

    def _open_listener(self) -> None:
        if self._listener is not None:
            return
        sock = self._bound_socket(self._port)
        try:
            # Listening now, synchronously: a client connecting at this very instant is
            # queued by the kernel, never refused.
            sock.listen(128)
            server = _finish_now(
                self._loop.create_server(self._new_connection, sock=sock, start_serving=False)
            )
        except BaseException:
            sock.close()
            raise
        starting = self._loop.create_task(server.start_serving(), name="OutageProxy listener")
        self._listener = _Listener(server, starting)

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        if listener.starting is not None and not listener.starting.done():
            listener.starting.cancel()
        # Closes the listening socket: the kernel refuses new connections and resets
        # those it had queued but we had not accepted yet.
        listener.server.close()

    # -- connections ---------------------------------------------------------------------

    def _new_connection(self) -> _Side:
        connection = ProxiedConnection(self, next(self._numbers))
        return connection._client

    def _accepted(self, connection: ProxiedConnection) -> None:
        self.connections.append(connection)
        self._live.add(connection)
        peer = connection.client_address
        clock = _current_fake_clock()
        if clock is not None and isinstance(peer, tuple) and len(peer) >= 2:
            # Our end of the connection is as deliberate as the client's: the client runs
            # in this loop too, so its bytes need no real patience to arrive.
            connection._withdraw_silence = clock.intend_silence((str(peer[0]), int(peer[1])))
        self._log("accepted", connection.number, f"from {peer} under {self._fault}")
        fault = self._fault
        if fault.kind == "refuse":  # accepted from the backlog just before the switch
            connection._close("proxy: refuse", graceful=True)
        elif fault.kind == "timeout":
            self._arm_timeout(connection, fault)
        elif self._forwards(fault):
            connection._connect_upstream()

    def _arrived(self, connection: ProxiedConnection, pipe: _Pipe, payload: bytes | None) -> None:
        fault = self._fault
        now = self._loop.time()
        if fault.kind == "reset":
            self._log("reset", connection.number, f"first {pipe.name} bytes under reset")
            connection._close("proxy: reset", graceful=False)
            return
        if payload is _EOF and pipe is connection._upstream and connection._connecting is None:
            # Never connected upstream (blackhole, timeout): nothing to tell the server.
            connection._close("client", graceful=True)
            return
        if _holds(fault) or (payload is _EOF and fault.kind == "slow_close"):
            if payload is _EOF and fault.kind == "slow_close" and fault.seconds is not None:
                pipe.push(now + fault.seconds, payload)
            else:
                pipe.push(_HELD, payload)
            return
        if payload is _EOF:
            pipe.push(now, payload)
            return
        if fault.kind == "latency" and fault.acts_on(pipe.name):
            assert fault.seconds is not None
            if pipe.burst_at != now:
                pipe.burst_at = now
                spread = self._rng.uniform(-fault.jitter, fault.jitter) if fault.jitter else 0.0
                pipe.burst_delay = max(0.0, fault.seconds + spread)
            pipe.push(now + pipe.burst_delay, payload)
        elif fault.kind == "bandwidth" and fault.acts_on(pipe.name):
            start = max(now, pipe.last_due)
            pipe.push(start + len(payload) / fault.rate, payload)
        elif fault.kind == "limit_data" and fault.acts_on(pipe.name):
            if pipe.limit_reached:
                return
            allowed = fault.limit - pipe.fault_bytes
            if len(payload) < allowed:
                pipe.fault_bytes += len(payload)
                pipe.push(now, payload)
                return
            pipe.limit_reached = True
            pipe.source.pause("limit")
            if allowed:
                pipe.fault_bytes += allowed
                pipe.push(now, payload[:allowed])
            self._log("limit_reached", connection.number, f"{fault} ({pipe.name})")
            self._close_after_delivery(connection, pipe, fault)
        else:
            if fault.kind == "limit_data":
                pipe.fault_bytes += len(payload)
            pipe.push(now, payload)

    def _close_after_delivery(
        self, connection: ProxiedConnection, pipe: _Pipe, fault: Fault
    ) -> None:
        def close_when_flushed() -> None:
            if pipe.queue:  # still waiting for the upstream or a delay: try again then
                self._loop.call_soon(close_when_flushed)
                return
            connection._close(f"proxy: {fault}", graceful=True)

        close_when_flushed()

    def _count(self, direction: str, size: int) -> None:
        if direction == "upstream":
            self.bytes_upstream += size
        else:
            self.bytes_downstream += size

    def _maybe_forget(self, connection: ProxiedConnection) -> None:
        if connection in self._live and connection._finished:
            self._live.discard(connection)
            if connection._withdraw_silence is not None:
                connection._withdraw_silence()
                connection._withdraw_silence = None

    def _log(self, event: str, connection: int | None, detail: str) -> None:
        self.log.append(ProxyEvent(round(self.elapsed, 9), event, connection, detail))


def _holds(fault: Fault) -> bool:
    """Whether ``fault`` holds all traffic until it ends."""
    return fault.kind in ("blackhole", "timeout")


def _check_port(name: str, value: object, *, allow_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ValueError(f"{name} must be in {low}..65535, got {value}")


def _netloc_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _finish_now(coroutine: Any) -> asyncio.Server:
    """Run a coroutine that never suspends (``create_server(sock=..., start_serving=False)``)
    to its end, synchronously, so the listener exists before anything else runs."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        server: asyncio.Server = finished.value
        return server
    coroutine.close()
    raise RuntimeError(
        "create_server(start_serving=False) suspended; cannot start the listener now"
    )
