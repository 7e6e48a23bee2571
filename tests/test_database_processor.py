"""examples/database_processor.py against a real PostgreSQL (tests marked ``postgres``).

The unmarked tests need no server: argument checking, and a probe of a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import re
import time
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from pg_server import PostgresServer

from chronopype.processors import NetworkStatus
from chronopype.processors.backoff import backoff_bounds
from chronopype_testing import FakeClock
from examples.database_processor import DatabaseProcessor

_names = itertools.count()


def unique(prefix: str) -> str:
    """A table or application name no other test in this session uses."""
    return f"{prefix}_{next(_names)}"


class RecordingDatabaseProcessor(DatabaseProcessor):
    """Records hook calls, and the loop time and result of every check."""

    def __init__(self, dsn: str, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self.hook_calls: list[str] = []
        self.checks: list[tuple[float, NetworkStatus]] = []
        self.on_check: Callable[[], None] = lambda: None

    async def check_network(self) -> NetworkStatus:
        began = asyncio.get_running_loop().time()
        try:
            result = await super().check_network()
        except asyncio.CancelledError:  # by check_network_timeout (a failure), pause() or stop()
            self.checks.append((began, NetworkStatus.NOT_CONNECTED))
            raise
        self.checks.append((began, result))
        self.on_check()
        return result

    async def start_network(self) -> None:
        self.hook_calls.append("start_network")
        await super().start_network()

    async def stop_network(self) -> None:
        self.hook_calls.append("stop_network")
        await super().stop_network()


async def fetch(dsn: str, query: str, *args: object) -> list[Any]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await connection.fetch(query, *args, timeout=10))
    finally:
        await connection.close(timeout=10)


async def table_timestamps(dsn: str, table: str) -> list[float]:
    rows = await fetch(dsn, f'SELECT tick_timestamp FROM "{table}" ORDER BY id')
    return [row["tick_timestamp"] for row in rows]


async def connections_of(dsn: str, application_name: str) -> int:
    rows = await fetch(
        dsn,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
        application_name,
    )
    count: int = rows[0]["n"]
    return count


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- no server needed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "table", "error", "message"),
    [
        (b"postgresql://x", "t", TypeError, "dsn must be a str, not bytes"),
        ("  ", "t", ValueError, "dsn must not be empty"),
        ("postgresql://x", 7, TypeError, "table must be a str, not int"),
        ("postgresql://x", "", ValueError, "table must be a plain identifier"),
        ("postgresql://x", "ticks; DROP TABLE x", ValueError, "got 'ticks; DROP TABLE x'"),
        ("postgresql://x", "a.b.c", ValueError, "schema.identifier"),
        ("postgresql://x", "x" * 64, ValueError, "at most 63 characters"),
    ],
)
def test_bad_arguments_are_rejected_precisely(
    dsn: Any, table: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        DatabaseProcessor(dsn, table=table)


def test_schema_qualified_table_is_quoted_part_by_part() -> None:
    processor = DatabaseProcessor("postgresql://x", table="audit.ticks")
    assert processor.table == "audit.ticks"
    assert processor._insert_sql == 'INSERT INTO "audit"."ticks" (tick_timestamp) VALUES ($1)'


def test_probe_of_a_closed_port_is_not_connected_and_ticks_are_skipped() -> None:
    processor = DatabaseProcessor(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")

    async def main() -> None:
        assert await processor.check_network() is NetworkStatus.NOT_CONNECTED
        await processor.async_tick(1.0)  # never started: not connected

    FakeClock().run(main())
    assert (processor.inserted, processor.skipped) == (0, 1)


class ConnectedWithoutServer(DatabaseProcessor):
    """Reports CONNECTED without a server, so a tick goes straight to its pool."""

    @property
    def network_status(self) -> NetworkStatus:
        return NetworkStatus.CONNECTED


class FailingPool:
    """Stands in for a pool whose insert fails the way asyncpg reports it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def execute(self, *args: object, **kwargs: object) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "counted_as"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "skipped"),
        (asyncpg.UndefinedTableError('relation "t" does not exist'), "skipped"),
        (asyncpg.InterfaceError("pool is closing"), "skipped"),
        (asyncpg.InternalClientError("cannot switch to state 12; another operation"), "skipped"),
        (TimeoutError(), "unconfirmed"),
        (asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation"), "unconfirmed"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_failed_insert_is_counted_by_what_is_known_and_logged(
    error: BaseException, counted_as: str, caplog: pytest.LogCaptureFixture
) -> None:
    processor = ConnectedWithoutServer("postgresql://x")
    processor._pool = FailingPool(error)

    FakeClock().run(processor.async_tick(5.0))

    counts = {"inserted": 0, "skipped": 0, "unconfirmed": 0, counted_as: 1}
    assert (processor.inserted, processor.skipped, processor.unconfirmed) == (
        counts["inserted"],
        counts["skipped"],
        counts["unconfirmed"],
    )
    [record] = [r for r in caplog.records if r.name == DatabaseProcessor.LOGGER_NAME]
    assert record.levelname == "WARNING"
    outcome = "failed" if counted_as == "skipped" else "unconfirmed (it may have been committed)"
    assert record.getMessage() == (
        f"ConnectedWithoutServer: insert of tick 5.0 {outcome}: {error!r}"
    )


class HangingPool:
    async def execute(self, *args: object, **kwargs: object) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_cancelled_insert_is_unconfirmed_and_the_cancellation_propagates() -> None:
    processor = ConnectedWithoutServer("postgresql://x")
    processor._pool = HangingPool()

    async def main() -> None:
        tick = asyncio.create_task(processor.async_tick(5.0))
        await asyncio.sleep(1.0)
        tick.cancel()
        with pytest.raises(asyncio.CancelledError):
            await tick

    FakeClock().run(main())
    assert (processor.inserted, processor.skipped, processor.unconfirmed) == (0, 0, 1)


def test_unexpected_insert_error_propagates() -> None:
    processor = ConnectedWithoutServer("postgresql://x")
    processor._pool = FailingPool(ZeroDivisionError("a defect, not a network condition"))

    with pytest.raises(ZeroDivisionError):
        FakeClock().run(processor.async_tick(5.0))
    assert (processor.inserted, processor.skipped, processor.unconfirmed) == (0, 0, 0)


# -- a real server -----------------------------------------------------------------------------


@pytest.mark.postgres
async def test_connects_inserts_each_tick_and_releases_everything_on_stop(
    postgres_server: PostgresServer,
) -> None:
    table, app = unique("basic"), unique("basic_app")
    dsn = postgres_server.dsn(application_name=app)
    processor = RecordingDatabaseProcessor(dsn, table=table)

    await processor.async_tick(0.5)  # before start: skipped, nothing created
    processor.start(1.0)
    assert await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=30)
    assert processor.hook_calls == ["start_network"]
    for timestamp in (1.0, 2.0, 3.5):
        await processor.async_tick(timestamp)
    assert (processor.inserted, processor.skipped) == (3, 1)
    assert await table_timestamps(dsn, table) == [1.0, 2.0, 3.5]
    assert await connections_of(postgres_server.dsn(), app) >= 1  # the pool's connection

    processor.stop()
    await processor.await_cleanup()
    assert processor.hook_calls == ["start_network", "stop_network"]
    assert processor._pool is None
    assert await connections_of(postgres_server.dsn(), app) == 0
    await processor.async_tick(4.0)  # stopped: skipped
    assert (processor.inserted, processor.skipped) == (3, 2)


@pytest.mark.postgres
async def test_existing_table_is_reused(postgres_server: PostgresServer) -> None:
    table = unique("existing")
    dsn = postgres_server.dsn()
    for run, timestamp in enumerate((10.0, 20.0), start=1):
        processor = DatabaseProcessor(dsn, table=table)
        processor.start(timestamp)
        await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=30)
        await processor.async_tick(timestamp)
        processor.stop()
        await processor.await_cleanup()
        assert processor.inserted == 1
        assert await table_timestamps(dsn, table) == [10.0, 20.0][:run]


@pytest.mark.postgres
async def test_reachable_server_refusing_the_probe_is_error(
    postgres_server: PostgresServer,
) -> None:
    dsn = postgres_server.dsn().rsplit("/", 1)[0] + "/no_such_database"
    processor = DatabaseProcessor(dsn)
    assert await processor.check_network() is NetworkStatus.ERROR


@pytest.mark.postgres
def test_on_fake_clock_queries_are_real_and_backoff_is_virtual(
    postgres_server: PostgresServer,
) -> None:
    """Real I/O and virtual time together: the server stops for six failed checks, whose gaps
    follow the backoff schedule exactly in loop time, then comes back and the next scheduled
    check reconnects. Virtual minutes pass in a few real seconds."""
    seed, failures_wanted = 2024, 6
    table = unique("fake_clock")
    dsn = postgres_server.dsn()
    clock = FakeClock(io_grace=1.0)
    processor = RecordingDatabaseProcessor(dsn, table=table, rng=random.Random(seed))
    schedule = DatabaseProcessor(dsn, rng=random.Random(seed))
    expected_delays = [schedule.backoff_delay(n) for n in range(1, failures_wanted + 1)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        failed_enough = asyncio.Event()

        def count_failures() -> None:
            failures = [r for _, r in processor.checks if r is NetworkStatus.NOT_CONNECTED]
            if len(failures) == failures_wanted:
                failed_enough.set()

        processor.on_check = count_failures
        processor.start(clock.time())
        await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=60)
        await processor.async_tick(clock.time())
        assert processor.inserted == 1
        assert await table_timestamps(dsn, table) == [clock.time()]

        # Blocking calls: the loop, and with it virtual time, stands still meanwhile.
        postgres_server.stop()
        try:
            await failed_enough.wait()
            assert processor.network_status is NetworkStatus.NOT_CONNECTED
            await processor.async_tick(clock.time())
            assert processor.skipped == 1
        finally:
            postgres_server.start()
        await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=600)
        await processor.async_tick(clock.time())
        assert processor.inserted == 2
        assert len(await table_timestamps(dsn, table)) == 2
        assert loop.time() == processor.checks[-1][0]  # nothing since the reconnect took time
        processor.stop()
        await processor.await_cleanup()

    real_start = time.monotonic()
    clock.run(main())
    real_elapsed = time.monotonic() - real_start

    starts = [began for began, _ in processor.checks]
    results = [result for _, result in processor.checks]
    connected, down = NetworkStatus.CONNECTED, NetworkStatus.NOT_CONNECTED
    assert results == [connected, *[down] * failures_wanted, connected]
    # The first check runs at once, the next one interval later, and each failure waits out
    # its backoff; every attempt takes no virtual time (its I/O is local and instant).
    expected_starts = [0.0, processor.check_network_interval]
    for delay in expected_delays:
        expected_starts.append(expected_starts[-1] + delay)
    assert starts == pytest.approx(expected_starts, rel=0, abs=1e-9)
    for n, delay in enumerate(expected_delays, start=1):
        low, high = backoff_bounds(n)
        assert low <= delay <= high
    assert processor.hook_calls == ["start_network", "stop_network"] * 2
    virtual_elapsed = clock.monotonic()
    assert virtual_elapsed > 70.0  # 10 s interval + 1+2+4+8+16+32 s of backoff, +/- jitter
    assert real_elapsed < virtual_elapsed / 5, (real_elapsed, virtual_elapsed)


# -- chaos: SIGKILL and restart the server, in real time ---------------------------------------

CHAOS_OUTAGES = 20


def backoff_bound(failures: int) -> float:
    """The longest wait the spec allows after ``failures`` consecutive failed checks."""
    return backoff_bounds(failures)[1]


class ChaosProcessor(RecordingDatabaseProcessor):
    """Also records status changes with their loop times, and whether an insert is in flight."""

    def __init__(self, dsn: str, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self.changes: list[tuple[float, NetworkStatus, NetworkStatus]] = []
        self.ticks = 0
        self.acknowledged_ticks: set[float] = set()
        self.unconfirmed_ticks: set[float] = set()
        self.between_ticks = asyncio.Event()
        self.between_ticks.set()
        self.add_status_listener(
            lambda old, new: self.changes.append((asyncio.get_running_loop().time(), old, new))
        )

    async def async_tick(self, timestamp: float) -> None:
        self.ticks += 1
        self.between_ticks.clear()
        inserted, unconfirmed = self.inserted, self.unconfirmed
        try:
            await super().async_tick(timestamp)
        finally:
            self.between_ticks.set()
            if self.inserted > inserted:
                self.acknowledged_ticks.add(timestamp)
            if self.unconfirmed > unconfirmed:
                self.unconfirmed_ticks.add(timestamp)


async def client_connections(admin_dsn: str) -> int:
    """Client sessions on the server, not counting the one asking."""
    rows = await fetch(
        admin_dsn,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    count: int = rows[0]["n"]
    return count


@pytest.mark.postgres
@pytest.mark.slow(seconds=40)  # mostly waiting for the server: scheduled first (conftest.py)
async def test_chaos_sigkill_and_restart_the_server_20_times(
    postgres_server: PostgresServer, summary_lines: list[str]
) -> None:
    """Under a RealtimeClock, in real time, with short intervals: kill the server (SIGKILL, all
    processes) 20 times, restart it after a random pause, and check that every outage is
    detected and followed by a reconnect within the backoff bound, that start_network and
    stop_network stay paired, that no connection outlives the processor, and that the table
    holds exactly the acknowledged inserts.

    The kills fall between ticks. An insert in flight when the server dies may have committed
    without its acknowledgement reaching the client: its outcome is unknowable to any client,
    so this test keeps out of that window in order to demand exact equality of rows and
    acknowledged inserts.
    """
    from chronopype.clocks import ClockConfig, ClockMode, RealtimeClock

    rng = random.Random(20)
    app, table = unique("chaos_app"), unique("chaos")
    admin_dsn = postgres_server.dsn()
    loop = asyncio.get_running_loop()
    processor = ChaosProcessor(
        postgres_server.dsn(application_name=app), table=table, rng=random.Random(7)
    )
    processor.check_network_interval = 0.1
    processor.check_network_timeout = 2.0  # also bounds each insert
    processor.network_error_wait_time = 0.1
    clock = RealtimeClock(
        ClockConfig(
            clock_mode=ClockMode.REALTIME, tick_size=0.05, processor_timeout=5.0, max_retries=0
        )
    )
    clock.add_processor(processor)
    connections_at_start = await client_connections(admin_dsn)
    outages: list[dict[str, float]] = []
    real_start = time.monotonic()

    async with clock:
        run = asyncio.create_task(clock.run())
        try:
            for outage_number in range(1, CHAOS_OUTAGES + 1):
                await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=30)
                await asyncio.sleep(rng.uniform(0.2, 0.5))  # connected for a few ticks
                await processor.between_ticks.wait()
                killed_at = loop.time()
                postgres_server.kill()
                await processor.wait_for_status(
                    NetworkStatus.DISCONNECTING, NetworkStatus.NOT_CONNECTED, timeout=30
                )
                detected_at = loop.time()
                # Down for a while; every fourth outage outlasts the first backoff.
                long_outage = outage_number % 4 == 0
                await asyncio.sleep(rng.uniform(1.0, 2.0) if long_outage else rng.uniform(0, 0.8))
                ready_at = await asyncio.to_thread(postgres_server.start)
                await processor.wait_for_status(NetworkStatus.CONNECTED, timeout=30)
                outages.append(
                    {
                        "killed": killed_at,
                        "detected": detected_at,
                        "ready": ready_at,
                        "reconnected": loop.time(),
                        "failed_checks": float(failed_checks_before_reconnect(processor)),
                    }
                )
            connections_connected = await connections_of(admin_dsn, app)
        finally:
            clock.request_stop()
            await run
            if not postgres_server.is_running:
                postgres_server.start()
    # Leaving the context stopped the processor and awaited its cleanup.
    real_elapsed = time.monotonic() - real_start
    connections_at_end = await client_connections(admin_dsn)
    rows = await table_timestamps(admin_dsn, table)

    reconnect_delays = [o["reconnected"] - o["ready"] for o in outages]
    detection_delays = [o["detected"] - o["killed"] for o in outages]
    failed_checks = collections.Counter(int(o["failed_checks"]) for o in outages)
    summary_lines.extend(
        [
            f"chaos: {len(outages)} SIGKILL outages in {real_elapsed:.1f} s real time",
            f"chaos: outages detected {count_changes(processor, 'out')}, "
            f"reconnects {count_changes(processor, 'in') - 1} (plus the first connect)",
            f"chaos: max detection delay {max(detection_delays):.3f} s; "
            f"max reconnect delay after the server was back {max(reconnect_delays):.3f} s "
            f"(bound: the backoff after the outage's failed checks + 1 s); failed checks per "
            f"outage: {dict(sorted(failed_checks.items()))}",
            f"chaos: connections at start {connections_at_start}, while connected "
            f"{connections_connected}, at end {connections_at_end}",
            f"chaos: rows in table {len(rows)}, inserted (acknowledged) {processor.inserted}, "
            f"unconfirmed {processor.unconfirmed}, skipped {processor.skipped}, "
            f"ticks {processor.ticks} (clock: {clock.tick_counter} ticked, "
            f"{clock.missed_ticks} skipped as late, e.g. while kill() held the loop)",
            f"chaos: start_network {processor.hook_calls.count('start_network')}, "
            f"stop_network {processor.hook_calls.count('stop_network')}",
        ]
    )
    print("\n".join(summary_lines[-6:]))

    assert len(outages) == CHAOS_OUTAGES
    assert count_changes(processor, "out") == CHAOS_OUTAGES + 1  # + leaving it at stop()
    assert count_changes(processor, "in") == CHAOS_OUTAGES + 1
    for outage, delay in zip(outages, reconnect_delays, strict=True):
        # The reconnecting check started at most backoff_delay(n) after the n-th failed check
        # ended, and that check ended after the server came back, or the wait was shorter still;
        # the 1 s covers the successful check and start_network on a busy machine.
        bound = backoff_bound(int(outage["failed_checks"])) + 1.0
        assert 0 < delay <= bound, (outage, delay, bound)
        assert outage["failed_checks"] >= 1
    for delay in detection_delays:
        assert delay <= processor.check_network_interval + processor.check_network_timeout
    assert processor.hook_calls == ["start_network", "stop_network"] * (CHAOS_OUTAGES + 1)
    assert processor._pool is None
    assert connections_at_end == connections_at_start
    assert len(set(rows)) == len(rows)  # each tick inserted at most once
    assert processor.acknowledged_ticks <= set(rows), "acknowledged inserts were lost"
    assert set(rows) - processor.acknowledged_ticks <= processor.unconfirmed_ticks
    # Kills fall between ticks, so an unconfirmed insert is usually one sent into a connection
    # that was already dead (it cannot have committed). But on a loaded machine (this test runs
    # next to the rest of the suite under xdist) an insert to a live server can outlast its 2 s
    # timeout and commit all the same, so the table holds the acknowledged inserts plus at most
    # the unconfirmed ones (the two set checks above say which).
    assert 0 < processor.inserted <= len(rows) <= processor.inserted + processor.unconfirmed, (
        f"{len(rows)} rows, {processor.inserted} inserted, {processor.unconfirmed} unconfirmed"
    )
    assert (
        processor.inserted + processor.skipped + processor.unconfirmed
        == processor.ticks
        == clock.tick_counter
    )
    assert processor.skipped > 0  # ticks fell into the outages


def failed_checks_before_reconnect(processor: ChaosProcessor) -> int:
    """Consecutive failed checks before the latest (successful) one."""
    failures = 0
    for _, result in reversed(processor.checks[:-1]):
        if result is NetworkStatus.CONNECTED:
            break
        failures += 1
    return failures


def count_changes(processor: ChaosProcessor, direction: str) -> int:
    """Transitions out of CONNECTED (``"out"``) or into it (``"in"``)."""
    connected = NetworkStatus.CONNECTED
    if direction == "out":
        return sum(old is connected for _, old, _ in processor.changes)
    return sum(new is connected for _, _, new in processor.changes)
