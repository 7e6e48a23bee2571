"""examples/tcp_processor.py against an in-process TCP service, on FakeClock.

The service is real (asyncio streams on 127.0.0.1); the time is virtual. Connects and replies are
real I/O, which the fake clock lets arrive before it moves time; timeouts, intervals and backoff
are virtual, so every timestamp below is exact.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time

import pytest

from chronopype.processors import NetworkStatus
from chronopype_testing import FakeClock
from examples.tcp_processor import TcpProcessor

CONNECTED, NOT_CONNECTED = NetworkStatus.CONNECTED, NetworkStatus.NOT_CONNECTED
CONNECTING, DISCONNECTING = NetworkStatus.CONNECTING, NetworkStatus.DISCONNECTING
ERROR = NetworkStatus.ERROR


class LineService:
    """Answers PING with ``pong`` and TICK with ACK; a ``silent`` one reads and never answers."""

    def __init__(self, *, silent: bool = False, pong: bytes = b"PONG\n") -> None:
        self.silent = silent
        self.pong = pong
        self.port = 0
        self.accepted = 0
        self.closed = 0
        self.received: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen on 127.0.0.1; the first start picks a free port, a restart reuses it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None
        await asyncio.sleep(0)  # let the handlers see their connections end

    @property
    def open_connections(self) -> int:
        return self.accepted - self.closed

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                self.received.append(line)
                if self.silent:
                    continue
                writer.write(self.pong if line == b"PING\n" else b"ACK\n")
                await writer.drain()
        except OSError:
            pass  # the client reset the connection
        finally:
            self.closed += 1
            self._writers.discard(writer)
            writer.transport.abort()


class RecordingTcpProcessor(TcpProcessor):
    """Records every status change and hook call with its loop time."""

    def __init__(self, host: str, port: int, *, rng: random.Random) -> None:
        super().__init__(host, port, rng=rng)
        self.changes: list[tuple[float, NetworkStatus, NetworkStatus]] = []
        self.hook_calls: list[tuple[float, str]] = []
        self.add_status_listener(self._record_change)

    def _record_change(self, old: NetworkStatus, new: NetworkStatus) -> None:
        self.changes.append((asyncio.get_running_loop().time(), old, new))

    async def start_network(self) -> None:
        self.hook_calls.append((asyncio.get_running_loop().time(), "start_network"))
        await super().start_network()

    async def stop_network(self) -> None:
        self.hook_calls.append((asyncio.get_running_loop().time(), "stop_network"))
        await super().stop_network()


def backoff_schedule(seed: int, failures: int) -> list[float]:
    """The delays a processor seeded with ``seed`` waits after 1..failures failures."""
    replica = TcpProcessor("127.0.0.1", 1, rng=random.Random(seed))
    return [replica.backoff_delay(n) for n in range(1, failures + 1)]


def assert_changes(
    processor: RecordingTcpProcessor,
    expected: list[tuple[float, NetworkStatus, NetworkStatus]],
) -> None:
    """Status changes equal ``expected``: the same transitions, at the same loop times."""
    assert [(old, new) for _, old, new in processor.changes] == [(o, n) for _, o, n in expected]
    times = [t for t, _, _ in expected]
    assert [t for t, _, _ in processor.changes] == pytest.approx(times, rel=0, abs=1e-9)


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("host", "port", "error", "message"),
    [
        (None, 80, TypeError, "host must be a str, not NoneType"),
        ("", 80, ValueError, "host must not be empty"),
        ("h", "80", TypeError, "port must be an int, not str"),
        ("h", True, TypeError, "port must be an int, not bool"),
        ("h", 0, ValueError, "port must be in 1..65535, got 0"),
        ("h", 65536, ValueError, "port must be in 1..65535, got 65536"),
    ],
)
def test_bad_arguments_are_rejected_precisely(
    host: object, port: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        TcpProcessor(host, port)  # type: ignore[arg-type]


@pytest.mark.fake_clock(io_grace=0.05)
async def test_check_results_closed_port_wrong_answers_and_pong(fake_clock: FakeClock) -> None:
    processor = TcpProcessor("127.0.0.1", closed_port())
    assert await processor.check_network() is NOT_CONNECTED

    for wrong_answer in (b"HELLO\n", b"P" * 2000 + b"\n"):
        impostor = LineService(pong=wrong_answer)
        await impostor.start()
        processor = TcpProcessor("127.0.0.1", impostor.port)
        assert await processor.check_network() is ERROR
        await impostor.stop()

    service = LineService()
    await service.start()
    processor = TcpProcessor("127.0.0.1", service.port)
    assert await processor.check_network() is CONNECTED
    await fake_clock.run_until_idle()
    assert service.received == [b"PING\n"]
    assert (service.accepted, service.closed) == (1, 1)  # the check closes its connection
    await service.stop()
    assert fake_clock.monotonic() == 0.0  # all of it real I/O: no virtual time passed


@pytest.mark.fake_clock(io_grace=0.05)
async def test_service_stopped_and_restarted_is_detected_and_reconnected(
    fake_clock: FakeClock,
) -> None:
    seed = 11
    d1, d2, d3 = backoff_schedule(seed, 3)
    service = LineService()
    await service.start()
    processor = RecordingTcpProcessor("127.0.0.1", service.port, rng=random.Random(seed))
    loop = asyncio.get_running_loop()

    processor.start(fake_clock.time())
    await processor.wait_for_status(CONNECTED)
    await processor.async_tick(fake_clock.time())
    assert (processor.acknowledged, processor.skipped) == (1, 0)

    # The service goes away at t=5; the session dies with it, so a tick at t=6 is not delivered
    # although the status is still CONNECTED: the next check, at t=10, notices.
    await asyncio.sleep(5.0)
    await service.stop()
    await asyncio.sleep(1.0)
    await processor.async_tick(fake_clock.time())
    assert (processor.acknowledged, processor.skipped) == (1, 1)
    assert processor.network_status is CONNECTED

    # Down for two failed checks (t=10 and t=10+d1); back at t=12+d1 (between them and the third).
    await asyncio.sleep(6.0 + d1)
    await processor.async_tick(fake_clock.time())  # not connected: skipped without I/O
    assert (processor.acknowledged, processor.skipped) == (1, 2)
    await service.start()
    await processor.wait_for_status(CONNECTED)
    assert loop.time() == pytest.approx(10.0 + d1 + d2, rel=0, abs=1e-9)
    await processor.async_tick(fake_clock.time())  # a new session: delivered again
    assert (processor.acknowledged, processor.skipped) == (2, 2)

    processor.stop()
    await processor.await_cleanup()
    await fake_clock.run_until_idle()
    assert service.open_connections == 0
    await service.stop()

    t1, t2, t3 = 10.0, 10.0 + d1, 10.0 + d1 + d2
    assert_changes(
        processor,
        [
            (0.0, NetworkStatus.STOPPED, NOT_CONNECTED),
            (0.0, NOT_CONNECTED, CONNECTING),
            (0.0, CONNECTING, CONNECTED),
            (t1, CONNECTED, DISCONNECTING),
            (t1, DISCONNECTING, NOT_CONNECTED),
            (t2, NOT_CONNECTED, CONNECTING),
            (t2, CONNECTING, NOT_CONNECTED),
            (t3, NOT_CONNECTED, CONNECTING),
            (t3, CONNECTING, CONNECTED),
            (t3, CONNECTED, NetworkStatus.STOPPED),
        ],
    )
    assert [name for _, name in processor.hook_calls] == ["start_network", "stop_network"] * 2
    assert processor.state.retry_count == 0
    assert d3 > 0  # the third delay was never needed: the third check succeeded


@pytest.mark.fake_clock(io_grace=0.05)
async def test_service_that_never_answers_ends_in_a_timeout(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seed = 5
    (d1,) = backoff_schedule(seed, 1)
    service = LineService(silent=True)
    await service.start()
    processor = RecordingTcpProcessor("127.0.0.1", service.port, rng=random.Random(seed))
    processor.check_network_timeout = 2.0
    real_start = time.monotonic()

    with caplog.at_level(logging.WARNING, logger=TcpProcessor.LOGGER_NAME):
        processor.start(fake_clock.time())
        await asyncio.sleep(3.0 + d1)  # one second into the second check, which hangs as well
        processor.stop()
        await processor.await_cleanup()
    await fake_clock.run_until_idle()

    assert_changes(
        processor,
        [
            (0.0, NetworkStatus.STOPPED, NOT_CONNECTED),
            (0.0, NOT_CONNECTED, CONNECTING),
            (2.0, CONNECTING, NOT_CONNECTED),
            (2.0 + d1, NOT_CONNECTED, CONNECTING),
            (3.0 + d1, CONNECTING, NetworkStatus.STOPPED),
        ],
    )
    assert processor.hook_calls == []  # never connected, so nothing to pair
    assert isinstance(processor.state.last_exception, TimeoutError)
    wall_at_zero = fake_clock.time() - fake_clock.monotonic()
    assert processor.state.last_error_timestamp == pytest.approx(
        wall_at_zero + 2.0, rel=0, abs=1e-6
    )
    timeouts = [r for r in caplog.records if "longer than check_network_timeout=2.0" in r.message]
    assert len(timeouts) == 1
    # The service heard both pings, and both checks closed their connections on the way out.
    assert service.received == [b"PING\n", b"PING\n"]
    assert (service.accepted, service.open_connections) == (2, 0)
    assert time.monotonic() - real_start < 2.0  # the 2 s timeouts were virtual
    await service.stop()
