"""FakeClock.current() and FakeClock.intend_silence(): the API a fault-injecting tool uses."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from chronopype_testing import FakeClock


def test_current_is_the_clock_of_the_running_loop_and_none_elsewhere() -> None:
    clock = FakeClock()

    async def inside() -> FakeClock | None:
        return FakeClock.current()

    assert clock.run(inside()) is clock
    assert asyncio.run(inside()) is None
    assert FakeClock.current() is None


def _silent_listener() -> socket.socket:
    """A real loopback listener whose backlog accepts connections that never get an answer."""
    return socket.create_server(("127.0.0.1", 0))


async def _ask_and_time_out(port: int) -> float:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return loop.time()


def test_a_declared_silent_peer_never_holds_virtual_time() -> None:
    listener = _silent_listener()
    port = listener.getsockname()[1]
    clock = FakeClock(io_grace=10)
    withdraw = clock.intend_silence(("127.0.0.1", port))
    try:
        started = time.perf_counter()
        assert clock.run(_ask_and_time_out(port)) == 5.0
        assert time.perf_counter() - started < 3  # no 10 s of patience for the silent peer
    finally:
        withdraw()
        listener.close()


def test_withdrawing_the_declaration_restores_patience() -> None:
    listener = _silent_listener()
    port = listener.getsockname()[1]
    clock = FakeClock(io_grace=0.3)
    withdraw = clock.intend_silence(("localhost", port))
    withdraw()
    withdraw()  # a second call does nothing
    try:
        started = time.perf_counter()
        assert clock.run(_ask_and_time_out(port)) == 5.0
        assert time.perf_counter() - started >= 0.3  # the peer got its real patience
    finally:
        listener.close()


def test_declarations_nest_and_wildcards_match_any_host() -> None:
    clock = FakeClock()
    first = clock.intend_silence(("0.0.0.0", 4242))
    second = clock.intend_silence(("0.0.0.0", 4242))
    assert clock._silent_peers == {("*", 4242): 2}
    first()
    first()
    assert clock._silent_peers == {("*", 4242): 1}
    second()
    assert clock._silent_peers == {}
    clock.intend_silence(("::ffff:127.0.0.1", 80))
    assert clock._silent_peers == {("127.0.0.1", 80): 1}


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("127.0.0.1:80", TypeError),
        (("127.0.0.1",), TypeError),
        ((b"127.0.0.1", 80), TypeError),
        (("127.0.0.1", "80"), TypeError),
        (("127.0.0.1", True), TypeError),
        (("127.0.0.1", 0), ValueError),
        (("127.0.0.1", 70_000), ValueError),
    ],
)
def test_intend_silence_rejects_bad_addresses(address: object, error: type) -> None:
    clock = FakeClock()
    with pytest.raises(error):
        clock.intend_silence(address)  # type: ignore[arg-type]
    assert clock._silent_peers == {}
