"""A RealtimeClock drives a NetworkProcessor through outages: a deterministic hour."""

from __future__ import annotations

import asyncio
import logging
import random

from chronopype.clocks import ClockConfig, ClockMode, RealtimeClock
from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype_testing import DEFAULT_START, FakeClock

T0 = DEFAULT_START.timestamp()
# Loop-time windows in which the network is down. They start between two connectivity
# checks (every 0.5 s, on the half second), so the first check inside sees the outage
# before the first tick inside does.
OUTAGES = ((600.25, 900.25), (2000.25, 2300.25))


def in_outage(loop_time: float) -> bool:
    return any(start <= loop_time < end for start, end in OUTAGES)


class FlakyLink(NetworkProcessor):
    LOGGER_NAME = "tests.clock_network"

    def __init__(self) -> None:
        super().__init__(rng=random.Random(7))
        self.check_network_interval = 0.5
        self.seen: list[tuple[float, float, NetworkStatus]] = []  # (stamp, loop time, status)
        self.network_starts = 0
        self.network_stops = 0

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    async def check_network(self) -> NetworkStatus:
        if in_outage(asyncio.get_running_loop().time()):
            return NetworkStatus.NOT_CONNECTED
        return NetworkStatus.CONNECTED

    async def start_network(self) -> None:
        self.network_starts += 1

    async def stop_network(self) -> None:
        self.network_stops += 1

    def tick(self, timestamp: float) -> None:
        self.seen.append((timestamp, asyncio.get_running_loop().time(), self.network_status))


def runs_of_disconnected_ticks(seen: list[tuple[float, float, NetworkStatus]]) -> list[range]:
    """Consecutive tick numbers (1-based) that did not see CONNECTED, as ranges."""
    runs: list[range] = []
    start = None
    for number, (_, _, status) in enumerate(seen, 1):
        if status is not NetworkStatus.CONNECTED and start is None:
            start = number
        elif status is NetworkStatus.CONNECTED and start is not None:
            runs.append(range(start, number))
            start = None
    if start is not None:
        runs.append(range(start, len(seen) + 1))
    return runs


async def test_an_hour_with_two_outages_is_3600_ticks_that_see_them(
    fake_clock: FakeClock,
) -> None:
    clock = RealtimeClock(ClockConfig(ClockMode.REALTIME, tick_size=1.0))
    link = FlakyLink()
    clock.add_processor(link)
    async with clock:
        await clock.run_til(T0 + 3600.0)
        stats = clock.get_processor_stats(link)
    assert len(link.seen) == 3600
    assert [stamp for stamp, _, _ in link.seen] == [T0 + k for k in range(1, 3601)]
    assert [at for _, at, _ in link.seen] == [float(k) for k in range(1, 3601)]
    assert clock.missed_ticks == 0

    during = [status for _, at, status in link.seen if in_outage(at)]
    assert len(during) == 600
    assert NetworkStatus.CONNECTED not in during
    # Outside the outages (and their reconnection backoff) every tick saw CONNECTED: the
    # disconnected ticks are exactly two runs, each beginning with its outage's first tick.
    first, second = runs_of_disconnected_ticks(link.seen)
    assert (first.start, second.start) == (601, 2001)
    assert first.stop > 900 and second.stop > 2300
    assert first.stop < 2001 and second.stop <= 3600
    assert link.seen[-1][2] is NetworkStatus.CONNECTED

    # One state holds both what the clock records (3600 ticks) and what the processor records
    # itself (its connectivity checks), and the clock reads it from there.
    assert stats is not None
    assert stats["successful_ticks"] == link.state.successful_count > 3600
    assert stats["total_ticks"] == link.state.total_count
    assert stats["last_timestamp"] == T0 + 3600.0

    # Leaving the context stopped it and awaited its cleanup: every start_network paired.
    assert link.network_status is NetworkStatus.STOPPED
    assert link.network_starts == 3
    assert link.network_stops == 3


def test_the_hour_is_the_same_every_time() -> None:
    async def simulate() -> list[tuple[float, float, NetworkStatus]]:
        clock = RealtimeClock(ClockConfig(ClockMode.REALTIME))
        link = FlakyLink()
        clock.add_processor(link)
        async with clock:
            await clock.run_til(T0 + 3600.0)
        return link.seen

    assert FakeClock().run(simulate()) == FakeClock().run(simulate())
