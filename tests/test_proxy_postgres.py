"""examples/database_processor.py (real asyncpg, real PostgreSQL) through an OutageProxy on a
FakeClock: a virtual day with one outage of each kind, asserted against the backoff schedule.

Each probe opens a new PostgreSQL backend (about 20 ms of real time here), so the real cost of a
day is the number of probes: the processor checks every 10 minutes in this test, and each outage
lasts 20 minutes so that it is always detected.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import pytest
from pg_server import PostgresServer

from chronopype.processors import NetworkStatus
from chronopype_testing import FakeClock, Fault, OutageProxy
from examples.database_processor import DatabaseProcessor

DAY = 86_400.0
CHECK_EVERY = 600.0
TICK_EVERY = 300.0
TICK_OFFSET = 150.5
SEED = 7
# One outage of each kind, twenty minutes each, two hours apart (seconds from the start).
DAY_SCRIPT = [
    (3_600, 4_800, "refuse"),
    (10_800, 12_000, "reset"),
    (18_000, 19_200, "blackhole"),
    (25_200, 26_400, "timeout(30)"),
    (32_400, 33_600, "latency(6)"),
    (39_600, 40_800, "bandwidth(20)"),
    (46_800, 48_000, "slow_close"),
    (54_000, 55_200, "limit_data(64)"),
]
# How long a failing check lasts under each fault, in virtual seconds: refused and reset
# connections fail at once, as does a startup reply cut at 64 bytes; everything else is a
# probe that never completes, ended by check_network_timeout (5 s). That includes slow_close:
# asyncpg's close() waits for the server's end of the connection, which the fault holds back.
FAILING_CHECK_SECONDS = {
    "refuse": 0.0,
    "reset": 0.0,
    "limit_data": 0.0,
    "blackhole": 5.0,
    "timeout": 5.0,
    "latency": 5.0,
    "bandwidth": 5.0,
    "slow_close": 5.0,
}

CONNECTED, NOT_CONNECTED = NetworkStatus.CONNECTED, NetworkStatus.NOT_CONNECTED


class TimelineProcessor(DatabaseProcessor):
    """Records each check (start, end, result) and each status change, in loop time."""

    def __init__(self, dsn: str, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self.checks: list[tuple[float, float, NetworkStatus]] = []
        self.changes: list[tuple[float, NetworkStatus]] = []
        self.add_status_listener(
            lambda old, new: self.changes.append((asyncio.get_running_loop().time(), new))
        )

    async def check_network(self) -> NetworkStatus:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            result = await super().check_network()
        except asyncio.CancelledError:  # by check_network_timeout
            self.checks.append((began, loop.time(), NOT_CONNECTED))
            raise
        self.checks.append((began, loop.time(), result))
        return result


async def run_day(server: PostgresServer, table: str) -> tuple[TimelineProcessor, OutageProxy]:
    async with OutageProxy((server.host, server.port), windows=DAY_SCRIPT) as proxy:
        # No NOTICE for CREATE TABLE IF NOT EXISTS: see the README's note on replies that
        # arrive in pieces.
        dsn = proxy.rewrite(server.dsn(client_min_messages="warning"))
        processor = TimelineProcessor(dsn, table=table, rng=random.Random(SEED))
        processor.check_network_interval = CHECK_EVERY
        processor.start(0.0)
        loop = asyncio.get_running_loop()
        # Ticks and the end of the run fall between checks: two real exchanges at one virtual
        # instant would finish in whatever order the kernel and the server pick.
        await asyncio.sleep(TICK_OFFSET)
        while loop.time() < DAY:
            await processor.async_tick(loop.time())
            await asyncio.sleep(TICK_EVERY)
        await asyncio.sleep(DAY + TICK_OFFSET - loop.time())
        processor.stop()
        await processor.await_cleanup()
    return processor, proxy


def fault_at(t: float) -> Fault:
    for start, end, fault in DAY_SCRIPT:
        if start <= t < end:
            return Fault.parse(fault)
    return Fault.up()


def attempt_ends(processor: TimelineProcessor) -> list[float]:
    """When each check's attempt ended, hooks included: the wait before the next check is
    measured from there. That is the last status change of the attempt, or the check's end
    when the status did not change (a healthy check while connected)."""
    ends = []
    for index, (began, ended, _) in enumerate(processor.checks):
        following = processor.checks[index + 1][0] if index + 1 < len(processor.checks) else DAY
        inside = [at for at, _ in processor.changes if began <= at < following]
        ends.append(max([ended, *inside]))
    return ends


def expected_waits(count: int, results: list[NetworkStatus]) -> list[float]:
    """The wait after each check: the interval after a success, else the backoff for the
    number of failures so far, drawn from an rng seeded like the processor's."""
    schedule = DatabaseProcessor("postgresql://unused", rng=random.Random(SEED))
    waits, failures = [], 0
    for result in results[:count]:
        if result is CONNECTED:
            failures = 0
            waits.append(CHECK_EVERY)
        else:
            failures += 1
            waits.append(schedule.backoff_delay(failures))
    return waits


def outage_table(processor: TimelineProcessor) -> list[tuple[str, float, float, int]]:
    """Per outage: (fault, detection delay, recovery delay, failed checks)."""
    rows = []
    for start, end, fault in DAY_SCRIPT:
        inside = [c for c in processor.checks if start <= c[0] < end]
        after = [c for c in processor.checks if c[0] >= end]
        rows.append((fault, inside[0][0] - start, after[0][0] - end, len(inside)))
    return rows


def comparable(proxy: OutageProxy) -> list[tuple[float, str, int | None]]:
    """The proxy's log, less what real time decides: when the proxy notices that a client
    which gave up has closed its socket (the kernel's reset reaches it at some real moment
    while virtual time stands still, or after the next jump)."""
    return [(e.time, e.event, e.connection) for e in proxy.log if e.event != "closed"]


@pytest.mark.postgres
@pytest.mark.slow(seconds=15)
def test_a_virtual_day_of_outages_through_the_proxy_follows_the_backoff_schedule(
    postgres_server: PostgresServer, summary_lines: list[str]
) -> None:
    runs = []
    for run in (1, 2):
        clock = FakeClock()
        began = time.perf_counter()
        processor, proxy = clock.run(run_day(postgres_server, f"proxy_day_{run}"))
        runs.append((processor, proxy, time.perf_counter() - began, clock))
    processor, proxy, real_seconds, clock = runs[0]

    # Every check sees the fault active when it began; failing checks last exactly as long
    # as the fault makes them, healthy ones take no virtual time (real replies at a standstill).
    for began, ended, result in processor.checks:
        fault = fault_at(began)
        if fault.kind == "up":
            assert (result, ended) == (CONNECTED, began), (began, ended, result)
        else:
            assert result is NOT_CONNECTED, (began, fault, result)
            assert ended - began == FAILING_CHECK_SECONDS[fault.kind], (began, ended, fault)
            assert ended <= DAY_SCRIPT[[str(f) for _, _, f in DAY_SCRIPT].index(str(fault))][1]

    # Each check starts exactly the scheduled wait after the previous attempt ended.
    starts = [began for began, _, _ in processor.checks]
    results = [result for _, _, result in processor.checks]
    ends = attempt_ends(processor)
    waits = expected_waits(len(starts) - 1, results)
    assert starts[0] == 0.0
    for index in range(1, len(starts)):
        assert starts[index] == pytest.approx(ends[index - 1] + waits[index - 1], abs=1e-9), index

    # Detection: the first check inside each outage; recovery: the first check after it, the
    # backoff then in progress (at most the 300 s cap +/- 10 %) after the last failure.
    table = outage_table(processor)
    for fault, detected, recovered, failed in table:
        assert 0 <= detected < CHECK_EVERY, fault
        assert 0 <= recovered <= 330.0 + FAILING_CHECK_SECONDS[Fault.parse(fault).kind], fault
        assert failed >= 8, fault  # 1+2+4+...+128 s of backoff fit in a 20-minute outage
    assert processor.network_status is NetworkStatus.STOPPED
    assert [s for _, s in processor.changes].count(CONNECTED) == len(DAY_SCRIPT) + 1

    # Every tick is accounted for; ticks in outages were skipped or unconfirmed.
    ticks = math.ceil((DAY - TICK_OFFSET) / TICK_EVERY)
    assert processor.inserted + processor.skipped + processor.unconfirmed == ticks
    assert processor.skipped > 0

    # The proxy did what the script said, and left nothing open.
    assert [e.detail for e in proxy.events("fault")] == ["up"] + [
        text for start, end, fault in DAY_SCRIPT for text in (str(Fault.parse(fault)), "up")
    ]
    assert proxy.open_connections() == []

    # The same seed gives the same timeline, to the last float.
    replay, replay_proxy, replay_seconds, _ = runs[1]
    assert replay.checks == processor.checks
    assert replay.changes == processor.changes
    assert comparable(replay_proxy) == comparable(proxy)
    assert (replay.inserted, replay.skipped, replay.unconfirmed) == (
        processor.inserted,
        processor.skipped,
        processor.unconfirmed,
    )

    lines = [
        f"proxy day: 24 h virtual, 8 outages of 20 min, in {real_seconds:.2f} s and "
        f"{replay_seconds:.2f} s real (same timeline twice); {len(processor.checks)} checks, "
        f"{len(proxy.connections)} proxied connections; {clock.real_work_summary()}",
        *(
            f"proxy day: {fault:<15} detected after {detected:7.3f} s, reconnected "
            f"{recovered:7.3f} s after it ended, {failed} failed checks"
            for fault, detected, recovered, failed in table
        ),
    ]
    summary_lines.extend(lines)
    print("\n".join(lines))
