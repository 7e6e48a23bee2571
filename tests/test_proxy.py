"""OutageProxy: faults, byte-exactness, the script's rules, leaks, and the outage_proxy fixture.

Upstream servers here are real loopback servers started by the tests, in the same loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_budget import examples

from chronopype_testing import FakeClock, Fault, OutageProxy
from chronopype_testing.strategies import fault_scripts

pytest_plugins = ["pytester"]


class EchoServer:
    """Echoes every byte back; records a digest of what each connection sent."""

    def __init__(self) -> None:
        self.port = 0
        self.digests: list[str] = []
        self.open = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for _ in range(120):  # connections the proxy is still closing (held closes)
            if not self.open:
                break
            await asyncio.sleep(1)
        await self._server.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        digest = hashlib.sha256()
        try:
            while data := await reader.read(65536):
                digest.update(data)
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            self.digests.append(digest.hexdigest())
        except OSError:
            pass
        finally:
            self.open -= 1
            writer.close()


async def round_trip(address: tuple[str, int], payload: bytes, rng: random.Random) -> bytes:
    """Send ``payload`` in random pieces, half-close, and read everything that comes back."""
    reader, writer = await asyncio.open_connection(*address)
    try:

        async def send() -> None:
            position = 0
            while position < len(payload):
                size = rng.randint(1, 70_000)
                writer.write(payload[position : position + size])
                await writer.drain()
                position += size
            writer.write_eof()

        sending = asyncio.create_task(send())
        received = await reader.read()
        await sending
        return received
    finally:
        writer.close()
        await writer.wait_closed()


def payloads(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [0, 1, 65_536, 1_000_003] + [rng.randint(1, 300_000) for _ in range(count - 4)]
    return [rng.randbytes(size) for size in sizes[:count]]


# -- byte-exactness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    ["up", "latency(0.5)", "latency(2, jitter=1.5, direction=both)", "bandwidth(1000000)"],
)
def test_random_payloads_arrive_exactly_both_ways_over_many_connections(fault: str) -> None:
    data = payloads(seed=16, count=24)

    async def main() -> tuple[list[bytes], list[str], OutageProxy]:
        async with EchoServer() as server:
            windows = [] if fault == "up" else [(0, 3600, fault)]
            async with OutageProxy(server.address, windows=windows) as proxy:
                rngs = [random.Random(i) for i in range(len(data))]
                echoed = await asyncio.gather(
                    *(round_trip(proxy.address, p, r) for p, r in zip(data, rngs, strict=True))
                )
                await asyncio.sleep(0.1)
            return echoed, server.digests, proxy

    echoed, digests, proxy = FakeClock().run(main())
    assert [hashlib.sha256(e).hexdigest() for e in echoed] == [
        hashlib.sha256(p).hexdigest() for p in data
    ]
    assert sorted(digests) == sorted(hashlib.sha256(p).hexdigest() for p in data)
    total = sum(map(len, data))
    assert proxy.bytes_upstream == proxy.bytes_downstream == total
    assert len(proxy.connections) == len(data)
    assert all(c.bytes_upstream == c.bytes_downstream for c in proxy.connections)
    assert proxy.open_connections() == []


def test_byte_exact_on_a_plain_asyncio_loop_too() -> None:
    data = payloads(seed=3, count=8)

    async def main() -> list[bytes]:
        async with EchoServer() as server, OutageProxy(server.address) as proxy:
            return list(
                await asyncio.gather(
                    *(round_trip(proxy.address, p, random.Random(len(p))) for p in data)
                )
            )

    assert asyncio.run(main()) == data


def test_latency_delays_each_burst_exactly_and_keeps_order() -> None:
    async def main() -> list[tuple[float, bytes]]:
        loop = asyncio.get_running_loop()
        async with EchoServer() as server:
            windows = [(0, 100, "latency(3, direction=both)")]
            async with OutageProxy(server.address, windows=windows) as proxy:
                reader, writer = await asyncio.open_connection(*proxy.address)
                arrivals = []
                for message in (b"one", b"two", b"three"):
                    writer.write(message)
                    echoed = await reader.readexactly(len(message))
                    arrivals.append((loop.time(), echoed))
                    await asyncio.sleep(1)
                writer.close()
                await writer.wait_closed()
        return arrivals

    # 3 s each way; each message is sent 1 s after the previous answer arrived.
    assert FakeClock().run(main()) == [(6.0, b"one"), (13.0, b"two"), (20.0, b"three")]


def test_jitter_replays_with_the_same_rng_and_changes_with_another() -> None:
    async def main(seed: int) -> list[float]:
        loop = asyncio.get_running_loop()
        async with EchoServer() as server:
            windows = [(0, 1000, "latency(2, jitter=1)")]
            rng = random.Random(seed)
            async with OutageProxy(server.address, windows=windows, rng=rng) as proxy:
                reader, writer = await asyncio.open_connection(*proxy.address)
                times = []
                for _ in range(5):
                    began = loop.time()
                    writer.write(b"x")
                    await reader.readexactly(1)
                    times.append(loop.time() - began)
                writer.close()
                await writer.wait_closed()
        return times

    first, again, other = (FakeClock().run(main(seed)) for seed in (1, 1, 2))
    assert first == again
    assert first != other
    assert all(1.0 <= delay <= 3.0 for delay in first + other)


# -- each fault, on a raw connection -----------------------------------------------------------


async def exchange(address: tuple[str, int], patience: float = 5.0) -> str:
    """One PING through the proxy: what happened, in words."""
    try:
        reader, writer = await asyncio.open_connection(*address)
    except ConnectionRefusedError:
        return "refused"
    try:
        writer.write(b"PING\n")
        line = await asyncio.wait_for(reader.readline(), patience)
        return "echoed" if line == b"PING\n" else f"closed {line!r}"
    except TimeoutError:
        return "timed out"
    except ConnectionResetError:
        return "reset"
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("fault", "outcome", "seconds"),
    [
        ("up", "echoed", 0.0),
        ("refuse", "refused", 0.0),
        ("reset", "reset", 0.0),
        ("blackhole", "timed out", 5.0),
        ("timeout(2)", "closed b''", 2.0),
        ("latency(1.5)", "echoed", 1.5),
        ("latency(7)", "timed out", 5.0),
        ("bandwidth(2)", "echoed", 2.5),  # 5 bytes at 2 B/s
        ("slow_close", "echoed", 0.0),
        ("limit_data(3)", "closed b'PIN'", 0.0),
    ],
)
def test_each_fault_does_what_toxiproxy_users_expect(
    fault: str, outcome: str, seconds: float
) -> None:
    async def main() -> tuple[str, float, OutageProxy]:
        loop = asyncio.get_running_loop()
        async with (
            EchoServer() as server,
            OutageProxy(server.address, windows=[(10, 20, fault)]) as proxy,
        ):
            await asyncio.sleep(10)
            began = loop.time()
            result = await exchange(proxy.address)
            took = loop.time() - began
            await asyncio.sleep(20 - loop.time())
            assert await exchange(proxy.address) == "echoed"  # and back to normal
        return result, took, proxy

    result, took, proxy = FakeClock().run(main())
    assert (result, took) == (outcome, seconds)
    assert [(e.time, e.detail) for e in proxy.events("fault")] == [
        (0.0, "up"),
        (10.0, str(Fault.parse(fault))),
        (20.0, "up"),
    ]


def test_blackhole_holds_bytes_and_delivers_them_in_order_when_it_ends() -> None:
    async def main() -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        async with (
            EchoServer() as server,
            OutageProxy(server.address, windows=[(0, 300, "blackhole")]) as proxy,
        ):
            reader, writer = await asyncio.open_connection(*proxy.address)
            for piece in (b"a", b"bb", b"ccc"):
                writer.write(piece)
                await asyncio.sleep(60)
            data = await reader.readexactly(6)
            writer.close()
            await writer.wait_closed()
            return data, loop.time()

    started = time.perf_counter()
    assert FakeClock().run(main()) == (b"abbccc", 300.0)
    assert time.perf_counter() - started < 3  # five minutes of black hole, no real patience


def test_reset_resets_established_connections_and_refuse_closes_them() -> None:
    async def main() -> list[str]:
        async with EchoServer() as server:
            windows = [(10, 20, "reset"), (30, 40, "refuse")]
            async with OutageProxy(server.address, windows=windows) as proxy:
                outcomes = []
                for switch_at in (10, 30):
                    reader, writer = await asyncio.open_connection(*proxy.address)
                    writer.write(b"hi")
                    assert await reader.readexactly(2) == b"hi"
                    await asyncio.sleep(switch_at - proxy.elapsed)
                    try:
                        outcomes.append(repr(await reader.read()))
                    except ConnectionResetError:
                        outcomes.append("reset")
                    writer.close()
                    await asyncio.sleep(20 - proxy.elapsed)
                return outcomes

    assert FakeClock().run(main()) == ["reset", "b''"]


def test_slow_close_holds_the_close_for_its_delay() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with (
            EchoServer() as server,
            OutageProxy(server.address, windows=[(0, 100, "slow_close(4)")]) as proxy,
        ):
            reader, writer = await asyncio.open_connection(*proxy.address)
            writer.write_eof()  # the server answers with its own close
            assert await reader.read() == b""
            arrived = loop.time()
            writer.close()
            return arrived

    # Our close reaches the server 4 s late, and its close reaches us 4 s later again.
    assert FakeClock().run(main()) == 8.0


def test_set_switches_at_once_until_the_next_scripted_boundary() -> None:
    async def main() -> list[str]:
        async with (
            EchoServer() as server,
            OutageProxy(server.address, windows=[(50, 60, "blackhole")]) as proxy,
        ):
            outcomes = [await exchange(proxy.address)]
            await proxy.set("refuse")
            outcomes.append(await exchange(proxy.address))
            await proxy.set(Fault.up())
            outcomes.append(await exchange(proxy.address))
            await proxy.set("reset")
            await asyncio.sleep(50 - proxy.elapsed)  # the script takes over again
            outcomes.append(await exchange(proxy.address))
            await asyncio.sleep(60 - proxy.elapsed)
            outcomes.append(await exchange(proxy.address))
            return outcomes

    assert FakeClock().run(main()) == ["echoed", "refused", "echoed", "timed out", "echoed"]


def test_refuse_keeps_the_port_and_the_log_tells_the_story() -> None:
    async def main() -> tuple[int, int, OutageProxy]:
        async with (
            EchoServer() as server,
            OutageProxy(server.address, windows=[(10, 20, "refuse")]) as proxy,
        ):
            port = proxy.port
            await exchange(proxy.address)
            await asyncio.sleep(10)
            assert await exchange(proxy.address) == "refused"
            await asyncio.sleep(10)
            assert await exchange(proxy.address) == "echoed"
            await asyncio.sleep(0.5)
            return port, proxy.port, proxy

    before, after, proxy = FakeClock().run(main())
    log = [str(event) for event in proxy.log]
    assert before == after
    events = [re.sub(r"\(.*\)", "(...)", line.split(":", 1)[0].strip()) for line in log]
    assert events == [
        "0.000 fault",
        "0.000 accepted #1",
        "0.000 upstream_connected #1",
        "0.000 closed #1",
        "10.000 fault",
        "20.000 fault",
        "20.000 accepted #2",
        "20.000 upstream_connected #2",
        "20.000 closed #2",
        "20.500 stopped",
    ]
    assert "by client, 5 B up, 5 B down" in log[3]


def test_upstream_down_closes_the_client_connection() -> None:
    async def main() -> tuple[str, list[str]]:
        server = EchoServer()
        async with server:
            pass  # started and stopped: nobody listens there any more
        async with OutageProxy(server.address) as proxy:
            outcome = await exchange(proxy.address)
            return outcome, [e.event for e in proxy.log]

    outcome, events = FakeClock().run(main())
    assert outcome in ("closed b''", "reset")
    assert "upstream_failed" in events


# -- the script and its arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    ("windows", "error", "message"),
    [
        ([(0, 10, "refuse"), (5, 20, "reset")], ValueError, "overlap"),
        ([(0, 10, "teleport")], ValueError, "unknown fault 'teleport'"),
        ([(-5, 10, "refuse")], ValueError, "outage start must be finite and >= 0"),
        ([(10, 10, "refuse")], ValueError, "must have start < end"),
        ([(20, 10, "refuse")], ValueError, "must have start < end"),
        ([(0, float("nan"), "refuse")], ValueError, "must be finite"),
        ([(0, 10)], TypeError, "(start, end, fault) triple"),
        ([(0, 10, 3)], TypeError, "a fault is a Fault or its text form"),
        ([("0", 10, "up")], TypeError, "outage start must be a number"),
        ("refuse", TypeError, "windows must be (start, end, fault) triples"),
        ([(0, 10, "latency(-1)")], ValueError, "latency seconds must be >= 0"),
        ([(0, 10, "latency(1, 2)")], ValueError, "jitter (2.0) must not exceed"),
        ([(0, 10, "latency(1, direction=sideways)")], ValueError, "not a number or a direction"),
        ([(0, 10, "bandwidth(0)")], ValueError, "bytes_per_second must be > 0"),
        ([(0, 10, "limit_data(1.5)")], ValueError, "int number of bytes"),
        ([(0, 10, "limit_data(-1)")], ValueError, "limit must be >= 0"),
        ([(0, 10, "refuse(3)")], ValueError, "fault 'refuse(3)'"),
        ([(0, 10, "latency(1, jitter=0.5, 3)")], ValueError, "positional argument after"),
    ],
)
def test_bad_scripts_are_clear_errors(windows: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        OutageProxy(("127.0.0.1", 5432), windows=windows)


def test_touching_windows_are_fine_and_come_out_in_order() -> None:
    proxy = OutageProxy(
        ("127.0.0.1", 5432), windows=[(20, 30, "refuse"), (10, 20, Fault.latency(1))]
    )
    assert [str(window) for window in proxy.script] == [
        "[10, 20) latency(1)",
        "[20, 30) refuse",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "up",
        "refuse",
        "reset",
        "blackhole",
        "timeout(30)",
        "latency(2)",
        "latency(2, jitter=0.5, direction=both)",
        "bandwidth(1000)",
        "bandwidth(1000, direction=upstream)",
        "slow_close",
        "slow_close(3)",
        "limit_data(100)",
    ],
)
def test_fault_text_round_trips(text: str) -> None:
    assert str(Fault.parse(text)) == text
    assert Fault.parse(str(Fault.parse(text))) == Fault.parse(text)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"upstream": "127.0.0.1:5432"}, TypeError, "upstream must be a (host, port) tuple"),
        ({"upstream": ("127.0.0.1", 0)}, ValueError, "upstream port must be in 1..65535"),
        ({"upstream": ("127.0.0.1", True)}, TypeError, "upstream port must be an int"),
        ({"upstream": ("", 1)}, TypeError, "upstream host must be a non-empty str"),
        ({"upstream": ("127.0.0.1", 1), "port": 70000}, ValueError, "port must be in 0..65535"),
        ({"upstream": ("127.0.0.1", 1), "rng": 3}, TypeError, "rng must be a random.Random"),
    ],
)
def test_bad_arguments_are_clear_errors(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        OutageProxy(**arguments)


def test_lifecycle_misuse_is_a_clear_error() -> None:
    proxy = OutageProxy(("127.0.0.1", 5432))
    with pytest.raises(RuntimeError, match="no port until it is started"):
        _ = proxy.port

    async def main() -> None:
        with pytest.raises(RuntimeError, match="set\\(\\) needs a running proxy"):
            await proxy.set("refuse")
        async with proxy:
            with pytest.raises(RuntimeError, match="already started"):
                await proxy.start()
            with pytest.raises(ValueError, match="unknown fault"):
                await proxy.set("explode")
        await proxy.aclose()  # twice is fine

    FakeClock().run(main())


def test_url_helpers() -> None:
    async def main() -> None:
        async with OutageProxy(("db.internal", 5432)) as proxy:
            port = proxy.port
            assert proxy.rewrite("postgresql://app:secret@db.internal:5432/prod?sslmode=off") == (
                f"postgresql://app:secret@127.0.0.1:{port}/prod?sslmode=off"
            )
            assert proxy.rewrite("redis://db.internal/0") == f"redis://127.0.0.1:{port}/0"
            assert proxy.url("http", "health") == f"http://127.0.0.1:{port}/health"
            assert proxy.url("postgresql", "/postgres", user="postgres") == (
                f"postgresql://postgres@127.0.0.1:{port}/postgres"
            )
            with pytest.raises(ValueError, match="cannot rewrite"):
                proxy.rewrite("not a url")

    FakeClock().run(main())


# -- leaks -----------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_nothing_leaks_whatever_the_faults_and_however_the_clients_leave() -> None:
    script = [
        (5, 10, "blackhole"),
        (10, 15, "latency(1)"),
        (15, 20, "reset"),
        (20, 25, "timeout(2)"),
        (25, 30, "refuse"),
        (30, 35, "slow_close"),
        (35, 40, "limit_data(2)"),
    ]

    async def main() -> tuple[int, int, EchoServer]:
        loop = asyncio.get_running_loop()
        async with EchoServer() as server:
            before = open_fds()
            tasks_before = asyncio.all_tasks()
            async with OutageProxy(server.address, windows=script) as proxy:
                abandoned = []
                for t in range(0, 45):
                    await asyncio.sleep(t - proxy.elapsed)
                    await exchange(proxy.address, patience=0.5)
                    try:  # and one the client never closes: the proxy's close ends it
                        _, writer = await asyncio.open_connection(*proxy.address)
                        writer.write(b"x")
                        abandoned.append(writer)
                    except OSError:
                        pass
                await asyncio.sleep(1)
            for writer in abandoned:
                writer.close()
            await asyncio.sleep(1)
            assert asyncio.all_tasks() == tasks_before
            assert not [h for h in getattr(loop, "_timers", ()) if not h[2].cancelled()][1:]
            return before, open_fds(), server

    before, after, server = FakeClock().run(main())
    assert after == before
    assert server.open == 0


# -- the outage_proxy fixture ------------------------------------------------------------------


FIXTURE_TESTS = """
import asyncio

async def echo(reader, writer):
    while data := await reader.read(100):
        writer.write(data)
    writer.close()

async def test_clean(outage_proxy, fake_clock):
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    address = server.sockets[0].getsockname()[:2]
    proxy = await outage_proxy(address, windows=[(60, 120, "blackhole")])
    await asyncio.sleep(60)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(b"hi")
    try:
        await asyncio.wait_for(reader.read(2), 5)
    except TimeoutError:
        pass
    assert asyncio.get_running_loop().time() == 65.0
    writer.close()
    server.close()

KEPT = []  # like a session object of a processor nobody stopped

async def test_left_open(outage_proxy):
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = await outage_proxy(server.sockets[0].getsockname()[:2])
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    KEPT.append(writer)
    writer.write(b"hi")
    assert await reader.read(2) == b"hi"
    server.close()
"""


def test_outage_proxy_fixture_runs_on_the_fake_clock_and_reports_open_connections(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(FIXTURE_TESTS)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*outage_proxy: proxied connections left open by the client:*", "*the client left*"]
    )


# -- random scripts ----------------------------------------------------------------------------


# What one exchange() meets under each fault, when it starts at least 30 s before the fault ends.
EXCHANGE_OUTCOMES = {
    "up": "echoed",
    "refuse": "refused",
    "reset": "reset",
    "blackhole": "timed out",
    "timeout": "closed b''",
    "latency": "echoed",  # drawn latencies: 1 +/- 0.5 s (echoed) or 30 s (timed out)
    "bandwidth": "echoed",
    "slow_close": "echoed",
    "limit_data": "closed b'PIN'",
}


@settings(max_examples=examples(25), deadline=None)
@given(script=fault_scripts(600.0, max_outages=4), probes=st.integers(5, 15))
def test_random_scripts_every_exchange_meets_the_fault_of_its_moment(
    script: list[tuple[float, float, Fault]], probes: int
) -> None:
    async def main() -> list[tuple[float, str]]:
        async with EchoServer() as server, OutageProxy(server.address, windows=script) as proxy:
            seen = []
            for index in range(probes):
                await asyncio.sleep(max(0.0, index * 600.0 / probes - proxy.elapsed))
                seen.append((proxy.elapsed, await exchange(proxy.address)))
            return seen

    for at, outcome in FakeClock().run(main()):
        active = [f for start, end, f in script if start <= at < end]
        fault = active[0] if active else Fault.up()
        ends = [end for start, end, _ in script if start <= at < end]
        if ends and ends[0] - at < 30:
            continue  # the fault may end while the exchange waits: either outcome is right
        expected = EXCHANGE_OUTCOMES[fault.kind]
        if fault.kind == "latency" and fault.seconds == 30.0:
            expected = "timed out"
        assert outcome == expected, (at, fault, outcome)
