"""FakeClock and real work: real servers, threads and subprocesses started by the tests.

Each test asserts the result AND a generous bound on the real time it took: here, and only
here, real time is the behaviour under test (idle must be free; outstanding work must be
waited for, but only within io_grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chronopype.processors import NetworkProcessor, NetworkStatus
from chronopype_testing import FakeClock, VirtualTimeLimitExceeded

T = TypeVar("T")
HOUR = 3_600.0


def timed(clock: FakeClock, main: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """``clock.run(main)`` and the real seconds it took."""
    started = time.perf_counter()
    result = clock.run(main)
    return result, time.perf_counter() - started


# -- real servers in threads of their own -----------------------------------------------------


class _LineHandler(socketserver.StreamRequestHandler):
    """Answers each line with its upper-case copy after the server's ``reply_delay``."""

    def handle(self) -> None:
        for line in self.rfile:
            time.sleep(self.server.reply_delay)  # type: ignore[attr-defined]
            self.wfile.write(line.upper())


@contextmanager
def serving(server: socketserver.TCPServer) -> Iterator[int]:
    """Run a threaded socketserver in a thread of its own (started before the loop runs:
    the loop never counts it); yields its port."""
    server.daemon_threads = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def line_server(reply_delay: float = 0.0) -> contextlib.AbstractContextManager[int]:
    """A real keep-alive loopback server (a Redis-style PING/PONG peer)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _LineHandler)
    server.reply_delay = reply_delay  # type: ignore[attr-defined]
    return serving(server)


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as an aiohttp session would use it
    # As aiohttp, Redis and PostgreSQL servers do: without it the body, written after the
    # head, waits for the client's delayed ACK (see FakeClock, "Real work").
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def http_server() -> contextlib.AbstractContextManager[int]:
    return serving(ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler))


# -- 1. idle is free --------------------------------------------------------------------------


def test_a_ping_every_10s_over_one_kept_open_connection_for_an_hour_is_fast() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pongs = 0
        while loop.time() < HOUR:
            writer.write(b"ping\n")
            assert await asyncio.wait_for(reader.readline(), 5) == b"PING\n"
            pongs += 1
            await asyncio.sleep(10)
        writer.close()
        await writer.wait_closed()
        return pongs, loop.time()

    clock = FakeClock()
    with line_server() as port:
        (pongs, ended), real = timed(clock, main())
    assert (pongs, ended) == (360, HOUR)
    assert real < 3, clock.real_work_summary()


def test_an_http_keep_alive_session_polled_for_10_virtual_minutes_is_fast() -> None:
    async def main() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = 0
        for _ in range(60):
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(2) == b"ok"
            answers += 1
            await asyncio.sleep(10)
        writer.close()
        return answers

    clock = FakeClock()
    with http_server() as port:
        answers, real = timed(clock, main())
    assert answers == 60
    assert clock.elapsed == 600.0
    assert real < 3, clock.real_work_summary()


def test_a_server_in_the_same_loop_never_holds_time() -> None:
    async def main() -> float:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            await asyncio.sleep(30)  # the server itself takes virtual time to answer
            writer.write(b"late\n")

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        assert await reader.readline() == b"late\n"
        writer.close()
        server.close()
        return asyncio.get_running_loop().time()

    clock = FakeClock(io_grace=30)
    ended, real = timed(clock, main())
    assert ended == 30.0
    assert real < 3  # no 30 s of patience: the loop sees the server's side too


# -- 2. outstanding real work is waited for, and only that long -------------------------------


def test_a_reply_after_half_a_second_beats_a_5s_timeout_at_the_same_virtual_instant() -> None:
    async def main() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"slow\n")
        reply = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return reply, asyncio.get_running_loop().time()

    for _ in range(2):  # the same virtual timeline every run
        clock = FakeClock()
        with line_server(reply_delay=0.5) as port:
            (reply, at), real = timed(clock, main())
        assert (reply, at) == (b"SLOW\n", 0.0)
        assert 0.45 < real < 3
        assert 0.4 < clock.real_seconds_held < 3
        assert any(reason.startswith("reply from 127.0.0.1") for reason in clock.real_work_held)


def test_a_silent_server_times_out_in_virtual_time_after_io_grace_of_real_time() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    port = listener.getsockname()[1]

    async def main() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"anyone?\n")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return asyncio.get_running_loop().time()

    clock = FakeClock(io_grace=0.3)
    try:
        ended, real = timed(clock, main())
    finally:
        listener.close()
    assert ended == 5.0
    assert 0.3 <= real < 3


def test_a_to_thread_job_of_half_a_second_under_a_5s_timeout_succeeds() -> None:
    def work() -> str:
        time.sleep(0.5)
        return "done"

    async def main() -> tuple[str, float]:
        result = await asyncio.wait_for(asyncio.to_thread(work), 5)
        return result, asyncio.get_running_loop().time()

    clock = FakeClock()
    result, real = timed(clock, main())
    assert result == ("done", 0.0)
    assert real < 3
    assert "executor job " + work.__qualname__ in clock.real_work_held


class ThreadCheckProcessor(NetworkProcessor):
    """A processor whose connectivity check is half a second of blocking work in a thread."""

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("test.thread_check")

    async def check_network(self) -> NetworkStatus:
        await asyncio.to_thread(time.sleep, 0.5)
        return NetworkStatus.CONNECTED


def test_a_processor_whose_check_does_half_a_second_in_a_thread_connects() -> None:
    async def main() -> tuple[NetworkStatus, float]:
        processor = ThreadCheckProcessor()
        processor.check_network_timeout = 5.0
        processor.start(0.0)
        status = await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=60)
        status_at = asyncio.get_running_loop().time()
        processor.stop()
        await processor.await_cleanup()
        return status, status_at

    (status, at), real = timed(FakeClock(), main())
    assert at == 0.0  # the check's real half second took no virtual time
    assert status is NetworkStatus.CONNECTED  # no false check_network_timeout
    assert real < 3


# -- 3. producers outside the loop --------------------------------------------------------------


def test_a_thread_calling_back_after_a_while_is_no_deadlock() -> None:
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()

        def worker() -> None:
            time.sleep(0.3)
            loop.call_soon_threadsafe(done.set_result, "called back")

        threading.Thread(target=worker).start()
        result = await asyncio.wait_for(done, 5)
        return result, loop.time()

    result, real = timed(FakeClock(), main())
    assert result == ("called back", 0.0)
    assert real < 3


def test_a_client_thread_of_a_server_under_test_is_waited_for() -> None:
    async def main() -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        received: asyncio.Future[bytes] = loop.create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.readline())
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        def client() -> None:
            time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(b"from a thread\n")
                conn.recv(10)

        threading.Thread(target=client).start()
        line = await asyncio.wait_for(received, 5)
        server.close()
        return line, loop.time()

    result, real = timed(FakeClock(), main())
    assert result == (b"from a thread\n", 0.0)
    assert real < 3


def _send_from_a_thread(sig: int) -> None:
    threading.Timer(0.2, os.kill, (os.getpid(), sig)).start()


def _send_now(sig: int) -> None:
    os.kill(os.getpid(), sig)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("send", [_send_from_a_thread, _send_now])
def test_a_signal_wakes_its_handler_and_is_no_deadlock(send: Callable[[int], None]) -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        got = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, got.set)
        try:
            send(signal.SIGUSR1)
            await got.wait()  # no timeout: nothing but the signal can end this wait
            return loop.time()
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    ended, real = timed(FakeClock(), main())
    assert ended == 0.0
    assert real < 3


def test_a_subprocess_under_a_timeout_is_waited_for() -> None:
    async def main() -> tuple[int, bytes, float]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import time; time.sleep(0.3); print('hi')",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 5)
        quiet = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(0.3)"
        )
        code = await asyncio.wait_for(quiet.wait(), 5)
        return code, out, asyncio.get_running_loop().time()

    (code, out, ended), real = timed(FakeClock(), main())
    assert (code, out.strip(), ended) == (0, b"hi", 0.0)
    assert real < 5


def test_outside_work_paces_virtual_time_for_a_producer_the_loop_cannot_see(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"  # written by "another program": a thread the loop never saw

    async def poll() -> float:
        while not ready.exists():  # noqa: ASYNC110 (polling is the point: a file, not an event)
            await asyncio.sleep(1)
        return asyncio.get_running_loop().time()

    async def main() -> float:
        with clock.expect_outside_work("the writer of ready"):
            return await poll()

    unseen = threading.Timer(0.3, ready.write_text, ("x",))
    unseen.start()  # before the run: the loop cannot know about it
    with pytest.raises(VirtualTimeLimitExceeded, match="max_elapsed=600"):
        FakeClock(max_elapsed=600).run(poll())  # time races ahead of the real writer
    unseen.join()
    ready.unlink()

    clock = FakeClock(io_grace=0.5)
    declared = threading.Timer(0.3, ready.write_text, ("x",))
    declared.start()
    ended, real = timed(clock, main())
    assert ended == 1.0  # each jump waited io_grace for the writer: the first poll saw it
    assert 0.5 <= real < 3
    assert "outside work: the writer of ready" in clock.real_work_held


# -- 4. accounting --------------------------------------------------------------------------------


def test_a_clock_with_no_real_work_held_nothing() -> None:
    clock = FakeClock()
    clock.run(asyncio.sleep(HOUR))
    assert clock.real_seconds_held == 0.0
    assert clock.real_work_held == {}
    assert clock.real_work_summary() == "0.00 s real"
