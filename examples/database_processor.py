"""DatabaseProcessor: the spec's example, fixed, on asyncpg.

The spec's version checks connectivity with ``SELECT 1`` on ``self.pool``, but only
``start_network()`` creates that pool, and ``start_network()`` only runs after a successful
check: it can never connect. Here the check is independent of the pool: it opens one short
connection of its own, runs ``SELECT 1`` and closes it. That costs a connection set-up per check
(every ``check_network_interval`` seconds, 10 by default), and in exchange the check tests what a
reconnect needs: that a *new* connection can be made.

Run it against a server (Ctrl-C to stop)::

    python examples/database_processor.py postgresql://user@localhost/db
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import sys
from typing import Any, ClassVar

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from chronopype.processors import NetworkProcessor, NetworkStatus

__all__ = ["DatabaseProcessor"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")

# The server is not there right now: refused or reset connections and timeouts (OSError), a
# connection lost mid-probe (class 08), a server starting up, shutting down or recovering from a
# crash (class 57P). Anything else the server says (bad password, missing database, too many
# connections) means it is reachable but refuses us: ERROR.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)

# An insert that may have reached the server without its acknowledgement reaching us. (Both are
# also OSError/PostgresError subclasses, so they are tested first.) A connection refused or reset
# when the pool connects is an OSError too, but no insert was sent: that tick is skipped.
_UNCONFIRMED: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncpg.ConnectionDoesNotExistError,
)

# An insert that certainly did not commit, though the server may be up: the server rejected it,
# the pool is closing, or (InternalClientError) the next query found its connection still busy
# with an error the server sent as it went down, and was never sent.
_INSERT_FAILED: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def _quote_table(table: str) -> str:
    if not isinstance(table, str):
        raise TypeError(f"table must be a str, not {type(table).__name__}")
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(
            f"table must be a plain identifier or schema.identifier "
            f"(letters, digits, _ and $; at most 63 characters each), got {table!r}"
        )
    return ".".join(f'"{part}"' for part in parts)


class DatabaseProcessor(NetworkProcessor):
    """Insert one row per tick into ``table`` while the database is reachable.

    - ``check_network()`` probes the server with a connection of its own (see the module doc).
    - ``table`` is a name or ``schema.name``, used exactly as given (quoted, so case matters).
    - ``start_network()`` creates the pool, and the table if it is missing; ``stop_network()``
      closes the pool (terminating it if closing takes longer than ``POOL_CLOSE_TIMEOUT``).
    - ``async_tick(timestamp)`` inserts ``timestamp`` while CONNECTED. Each tick is counted
      once, in one of three int attributes:

      - ``inserted``: the server acknowledged the insert (the row is committed);
      - ``skipped``: nothing was inserted, because the processor was not connected, the insert
        could not be sent, or the server rejected it;
      - ``unconfirmed``: the insert may have reached the server, but no acknowledgement came
        (it timed out, the connection died mid-insert, or the tick was cancelled). Whether the
        row exists is unknowable to any client; a crash can commit it and lose the reply.

      So after any run: ``inserted <= rows <= inserted + unconfirmed``.
    """

    LOGGER_NAME: ClassVar[str] = "DatabaseProcessor"

    #: Ticks of one processor run one after another, so the pool rarely needs a second
    #: connection. The pool keeps no minimum: an idle pool reconnects on demand instead of
    #: running its own background reconnect loop next to the processor's.
    POOL_MAX_SIZE: ClassVar[int] = 2
    #: Bound on closing the pool gracefully before it is terminated.
    POOL_CLOSE_TIMEOUT: ClassVar[float] = 5.0

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "chronopype_ticks",
        stats_window_size: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(stats_window_size, rng=rng)
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a str, not {type(dsn).__name__}")
        if not dsn.strip():
            raise ValueError("dsn must not be empty")
        quoted = _quote_table(table)
        self.dsn = dsn
        self.table = table
        self._create_table_sql = (
            f"CREATE TABLE IF NOT EXISTS {quoted} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "tick_timestamp double precision NOT NULL, "
            "inserted_at timestamptz NOT NULL DEFAULT now())"
        )
        self._insert_sql = f"INSERT INTO {quoted} (tick_timestamp) VALUES ($1)"
        self._pool: Any = None
        self.inserted = 0
        self.skipped = 0
        self.unconfirmed = 0

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    async def check_network(self) -> NetworkStatus:
        try:
            await self._probe()
        except _UNREACHABLE as exc:
            self.logger().debug("%s: database unreachable: %r", type(self).__name__, exc)
            return NetworkStatus.NOT_CONNECTED
        except asyncpg.PostgresError as exc:
            self.logger().warning("%s: database refused the probe: %s", type(self).__name__, exc)
            return NetworkStatus.ERROR
        return NetworkStatus.CONNECTED

    async def _probe(self) -> None:
        connection = await asyncpg.connect(self.dsn, timeout=self.check_network_timeout)
        try:
            await connection.fetchval("SELECT 1", timeout=self.check_network_timeout)
        except BaseException:
            # Includes the cancellation by check_network_timeout: drop the socket at once.
            connection.terminate()
            raise
        try:
            await connection.close(timeout=self.check_network_timeout)
        except BaseException:
            connection.terminate()
            raise

    async def start_network(self) -> None:
        pool = asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self.POOL_MAX_SIZE,
            timeout=self.check_network_timeout,
        )
        try:
            await pool  # a failed or cancelled initialisation terminates the pool itself
            await pool.execute(self._create_table_sql, timeout=self.check_network_timeout)
        except BaseException:
            pool.terminate()
            raise
        self._pool = pool

    async def stop_network(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self.POOL_CLOSE_TIMEOUT):
                await pool.close()  # waits for an insert in flight, then closes each connection
        except TimeoutError:
            self.logger().warning(
                "%s: closing the pool took longer than %s s; terminated it",
                type(self).__name__,
                self.POOL_CLOSE_TIMEOUT,
            )
            pool.terminate()
        except BaseException:
            pool.terminate()
            raise

    async def async_tick(self, timestamp: float) -> None:
        pool = self._pool
        if self.network_status is not NetworkStatus.CONNECTED or pool is None:
            self.skipped += 1
            return
        try:
            await pool.execute(self._insert_sql, timestamp, timeout=self.check_network_timeout)
        except _UNCONFIRMED as exc:
            self.unconfirmed += 1
            self.logger().warning(
                "%s: insert of tick %r unconfirmed (it may have been committed): %r",
                type(self).__name__,
                timestamp,
                exc,
            )
            return
        except (*_UNREACHABLE, *_INSERT_FAILED) as exc:
            self.skipped += 1
            self.logger().warning(
                "%s: insert of tick %r failed: %r", type(self).__name__, timestamp, exc
            )
            return
        except asyncio.CancelledError:
            self.unconfirmed += 1
            raise
        self.inserted += 1


async def _run(processor: DatabaseProcessor) -> None:
    from chronopype.clocks import ClockConfig, ClockMode, RealtimeClock

    async with RealtimeClock(ClockConfig(clock_mode=ClockMode.REALTIME)) as clock:
        clock.add_processor(processor)
        await clock.run()


def _main(dsn: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    processor = DatabaseProcessor(dsn)
    # Ctrl-C: leaving the clock's context stops the processor and releases its network.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(processor))
    print(
        f"inserted={processor.inserted} skipped={processor.skipped} "
        f"unconfirmed={processor.unconfirmed}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/database_processor.py DSN")
    _main(sys.argv[1])
