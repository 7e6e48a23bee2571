"""Real clients through an OutageProxy, one fault at a time: examples/tcp_processor.py against
a line service, and an aiohttp health checker (keep-alive session) against an aiohttp server.

Each run: connected from 0 s, one fault from 100 s to 400 s, stopped at 800 s. The status
sequence is asserted, and so are the exact loop times of detection and recovery, from the
backoff schedule of an identically seeded processor.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import ClassVar

import pytest
from test_tcp_processor import LineService

from chronopype.processors import NetworkProcessor, NetworkStatus
from chronopype_testing import FakeClock, Fault, OutageProxy
from examples.tcp_processor import TcpProcessor

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402  (after the importorskip)

SEED = 16
FAULT_START, FAULT_END, STOP_AT = 100.0, 400.0, 800.0
CONNECTED, NOT_CONNECTED = NetworkStatus.CONNECTED, NetworkStatus.NOT_CONNECTED
ERROR, STOPPED = NetworkStatus.ERROR, NetworkStatus.STOPPED
TIMEOUT = 5.0  # check_network_timeout

# fault -> (what a check inside the fault returns, how long it takes)
TCP_OUTCOMES: dict[str, tuple[NetworkStatus, float]] = {
    "refuse": (NOT_CONNECTED, 0.0),  # connection refused
    "reset": (NOT_CONNECTED, 0.0),  # reset on PING
    "blackhole": (NOT_CONNECTED, TIMEOUT),  # PING swallowed: the check times out
    "timeout(2)": (NOT_CONNECTED, 2.0),  # closed after 2 s: readline() gives b""
    "latency(7)": (NOT_CONNECTED, TIMEOUT),  # PONG 7 s late
    "latency(2)": (CONNECTED, 2.0),  # PONG 2 s late: slow but healthy
    "bandwidth(0.5)": (NOT_CONNECTED, TIMEOUT),  # 5 bytes at 0.5 B/s
    "slow_close": (CONNECTED, 0.0),  # the check never waits for the close
    "limit_data(3)": (ERROR, 0.0),  # b"PON", then closed: an unexpected answer
}
HTTP_OUTCOMES: dict[str, tuple[NetworkStatus, float]] = {
    "refuse": (NOT_CONNECTED, 0.0),  # the pooled connection closed, a new one refused
    "reset": (NOT_CONNECTED, 0.0),
    "blackhole": (NOT_CONNECTED, TIMEOUT),
    # Closed 2 s into the check without an answer; aiohttp retries the GET once on a new
    # connection, closed 2 s later too.
    "timeout(2)": (NOT_CONNECTED, 4.0),
    "latency(7)": (NOT_CONNECTED, TIMEOUT),
    "latency(2)": (CONNECTED, 2.0),
    "bandwidth(0.5)": (NOT_CONNECTED, TIMEOUT),
    "slow_close": (CONNECTED, 0.0),
    "limit_data(20)": (NOT_CONNECTED, 0.0),  # the response cut short
}


class HttpHealthProcessor(NetworkProcessor):
    """GET /health on one keep-alive aiohttp session: 200 is CONNECTED."""

    LOGGER_NAME: ClassVar[str] = "HttpHealthProcessor"

    def __init__(self, url: str, *, rng: random.Random) -> None:
        super().__init__(rng=rng)
        self.url = url
        self.session: aiohttp.ClientSession | None = None

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    async def check_network(self) -> NetworkStatus:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        try:
            async with self.session.get(self.url) as response:
                await response.read()
                return CONNECTED if response.status == 200 else ERROR
        except (aiohttp.ClientError, OSError):
            return NOT_CONNECTED

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def recorded(processor: NetworkProcessor) -> list[tuple[float, NetworkStatus]]:
    changes: list[tuple[float, NetworkStatus]] = []
    processor.add_status_listener(
        lambda old, new: changes.append((asyncio.get_running_loop().time(), new))
    )
    return changes


# Faults that hold traffic until they end: a check still waiting then gets its answer.
RELEASED_AT_END = ("blackhole", "timeout(2)")


def expected_timeline(
    fault: str, outcome: NetworkStatus, took: float
) -> list[tuple[float, NetworkStatus]]:
    """The status changes the spec promises, computed from the backoff schedule alone:
    checks every 10 s while connected, backoff_delay(n) after the n-th failure, each wait
    measured from the end of the check."""
    interval = 10.0
    replica = TcpProcessor("127.0.0.1", 1, rng=random.Random(SEED))
    timeline = [(0.0, NOT_CONNECTED), (0.0, NetworkStatus.CONNECTING), (0.0, CONNECTED)]
    t, failures, connected = 0.0, 0, True
    while True:
        t += interval if failures == 0 else 0.0
        if failures:
            t += replica.backoff_delay(failures)
        if t >= STOP_AT:
            break
        inside = FAULT_START <= t < FAULT_END
        result, duration = (outcome, took) if inside else (CONNECTED, 0.0)
        if inside and fault in RELEASED_AT_END and t + duration > FAULT_END:
            result, duration = CONNECTED, FAULT_END - t
        if not connected:
            timeline.append((t, NetworkStatus.CONNECTING))
        end = t + duration
        if result is CONNECTED:
            if not connected:
                timeline.append((end, CONNECTED))
            connected, failures = True, 0
            t = end
            continue
        if connected:
            timeline.append((end, NetworkStatus.DISCONNECTING))
        timeline.append((end, result))
        connected, failures, t = False, failures + 1, end
    timeline.append((STOP_AT, STOPPED))
    return timeline


async def run_through(
    fault: str,
    upstream: tuple[str, int],
    make: Callable[[OutageProxy], NetworkProcessor],
    finish: Callable[[NetworkProcessor], Awaitable[None]],
) -> tuple[list[tuple[float, NetworkStatus]], OutageProxy]:
    async with OutageProxy(upstream, windows=[(FAULT_START, FAULT_END, fault)]) as proxy:
        processor = make(proxy)
        changes = recorded(processor)
        processor.start(0.0)
        await asyncio.sleep(STOP_AT)
        processor.stop()
        await processor.await_cleanup()
        await finish(processor)
    return changes, proxy


@pytest.mark.parametrize("fault", list(TCP_OUTCOMES))
def test_tcp_example_through_each_fault(fault: str) -> None:
    service = LineService()

    async def main() -> tuple[list[tuple[float, NetworkStatus]], OutageProxy]:
        await service.start()
        try:
            return await run_through(
                fault,
                ("127.0.0.1", service.port),
                lambda proxy: TcpProcessor(proxy.host, proxy.port, rng=random.Random(SEED)),
                lambda processor: asyncio.sleep(0),
            )
        finally:
            await service.stop()

    changes, proxy = FakeClock().run(main())
    outcome, took = TCP_OUTCOMES[fault]
    assert changes == expected_timeline(fault, outcome, took)
    assert [e.detail for e in proxy.events("fault")] == ["up", str(Fault.parse(fault)), "up"]
    assert proxy.open_connections() == []
    assert service.open_connections == 0


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.mark.parametrize("fault", list(HTTP_OUTCOMES))
def test_aiohttp_client_through_each_fault(fault: str) -> None:
    async def main() -> tuple[list[tuple[float, NetworkStatus]], OutageProxy]:
        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]

        async def close(processor: NetworkProcessor) -> None:
            assert isinstance(processor, HttpHealthProcessor)
            await processor.close()

        try:
            return await run_through(
                fault,
                ("127.0.0.1", port),
                lambda proxy: HttpHealthProcessor(
                    proxy.url("http", "/health"), rng=random.Random(SEED)
                ),
                close,
            )
        finally:
            await runner.cleanup()

    changes, proxy = FakeClock().run(main())
    outcome, took = HTTP_OUTCOMES[fault]
    assert changes == expected_timeline(fault, outcome, took)
    assert proxy.open_connections() == []
