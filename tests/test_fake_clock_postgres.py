"""The DatabaseProcessor on a FakeClock against the real PostgreSQL server, for a virtual day
with outages: real queries, virtual time, and the same timeline on every run."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg  # type: ignore[import-untyped]
import pytest
from pg_server import PostgresServer
from test_database_processor import RecordingDatabaseProcessor, table_timestamps, unique

from chronopype.processors import NetworkStatus
from chronopype_testing import FakeClock

HOUR = 3_600.0
DAY = 24 * HOUR
# One tick and one check every 5 minutes: each check opens a PostgreSQL backend and each tick
# sends an insert (about 10 ms of real time each here), so this sets the real cost of the day.
TICK = 300.0
# (start, length) of each outage in virtual seconds, between ticks: the server is stopped for
# real meanwhile (the blocking stop and start hold the loop, and with it virtual time). Each
# outage covers at least one check, so each one is detected.
OUTAGES = [
    (3 * HOUR + 30, 20 * 60.0),
    (9.5 * HOUR + 30, 5 * 60.0),
    (15 * HOUR + 30, 45 * 60.0),
    (21 * HOUR + 30, 6 * 60.0),
]
# The longest backoff wait the spec allows (300 s cap, +10 % jitter).
MAX_BACKOFF = 330.0

Change = tuple[float, NetworkStatus, NetworkStatus]


async def _a_day(
    clock: FakeClock,
    processor: RecordingDatabaseProcessor,
    server: PostgresServer,
    until: float = DAY,
) -> list[Change]:
    loop = asyncio.get_running_loop()
    changes: list[Change] = []
    processor.add_status_listener(lambda old, new: changes.append((loop.time(), old, new)))

    async def outages() -> None:
        for start, length in OUTAGES:
            if start > until:
                return
            await asyncio.sleep(start - loop.time())
            server.stop()
            try:
                await asyncio.sleep(length)
            finally:
                server.start()

    processor.check_network_interval = TICK
    processor.start(clock.time())
    outage_task = asyncio.create_task(outages())
    try:
        while loop.time() < until:
            await asyncio.sleep(TICK)
            await processor.async_tick(clock.time())
    finally:
        await outage_task
        processor.stop()
        await processor.await_cleanup()
    return changes


@pytest.mark.postgres
@pytest.mark.slow(seconds=8)
def test_database_processor_on_a_fake_clock_for_a_virtual_day_with_outages(
    postgres_server: PostgresServer, summary_lines: list[str]
) -> None:
    table = unique("virtual_day")
    clock = FakeClock()
    dsn = postgres_server.dsn()
    processor = RecordingDatabaseProcessor(dsn, table=table, rng=random.Random(12))
    started = time.perf_counter()
    changes = clock.run(_a_day(clock, processor, postgres_server))
    real = time.perf_counter() - started
    rows = clock.run(table_timestamps(dsn, table))
    summary_lines.append(
        f"virtual day on PostgreSQL with {len(OUTAGES)} outages: {real:.1f} s real for "
        f"{DAY:.0f} s virtual; {len(processor.checks)} checks, {processor.inserted} rows, "
        f"{processor.skipped} ticks skipped; real work held {clock.real_work_summary()}"
    )
    assert clock.elapsed == DAY
    assert real < 240, real  # generous: the server's own work, on 2 shared cores

    # Each outage is detected by the first check in it, and ends with the first check after it
    # (within the longest backoff); nothing else leaves CONNECTED.
    connected = NetworkStatus.CONNECTED
    losses = [at for at, old, _ in changes if old is connected]
    reconnects = [at for at, _, new in changes if new is connected]
    assert len(losses) == len(OUTAGES) + 1  # and the final stop()
    assert len(reconnects) == len(OUTAGES) + 1  # the first connect, then one per outage
    for (start, length), lost, back in zip(OUTAGES, losses, reconnects[1:], strict=False):
        assert start <= lost <= start + TICK
        assert start + length <= back <= start + length + MAX_BACKOFF + TICK

    # Every tick is accounted for, and the rows are exactly the acknowledged inserts.
    assert processor.inserted + processor.skipped + processor.unconfirmed == DAY // TICK
    assert processor.unconfirmed == 0  # the server stops between ticks, never in one
    assert len(rows) == processor.inserted
    assert processor.skipped >= sum(length // TICK for _, length in OUTAGES)

    # Real latency is invisible to virtual time: a second run lives the same morning (up to
    # the end of the first outage) at the same virtual instants.
    morning = 4 * HOUR
    again = RecordingDatabaseProcessor(dsn, table=unique("virtual_day"), rng=random.Random(12))
    clock_again = FakeClock()
    changes_again = clock_again.run(_a_day(clock_again, again, postgres_server, until=morning))
    assert [c for c in changes if c[0] < morning] == [c for c in changes_again if c[0] < morning]
    assert [c for c in processor.checks if c[0] < morning] == [
        c for c in again.checks if c[0] < morning
    ]


@pytest.mark.postgres
def test_a_query_slower_than_the_old_patience_is_no_false_timeout(
    postgres_server: PostgresServer,
) -> None:
    """A real 0.6 s query (pg_sleep) under a 5 s virtual timeout: it answers at the virtual
    instant it was asked, however long it took for real."""

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        connection = await asyncpg.connect(postgres_server.dsn(), timeout=5)
        try:
            asked = loop.time()
            value = await connection.fetchval("SELECT 42.0 FROM pg_sleep(0.6)", timeout=5)
            return value, loop.time() - asked
        finally:
            await connection.close(timeout=5)

    clock = FakeClock()
    started = time.perf_counter()
    value, virtual = clock.run(main())
    real = time.perf_counter() - started
    assert (value, virtual) == (42.0, 0.0)
    assert 0.6 <= real < 5
