"""TcpProcessor: a NetworkProcessor on plain asyncio streams, for a line-based TCP service.

The service speaks one line per message:

- ``PING`` is answered with ``PONG`` (the connectivity check);
- ``TICK <timestamp>`` is answered with ``ACK`` (the work done on each tick).

The check opens a fresh connection, sends ``PING`` and expects ``PONG``; the processor's
``check_network_timeout`` bounds it, so a service that accepts and then never answers ends in a
timeout (NOT_CONNECTED, then backoff) rather than a hung check. ``start_network()`` opens the
session connection the ticks use, and ``stop_network()`` closes it. A tick whose exchange fails
drops the session (a late answer must not be read as the next tick's), and the next tick while
CONNECTED opens a new one.

Run it against a service (Ctrl-C to stop)::

    python examples/tcp_processor.py HOST PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
from typing import ClassVar

from chronopype.processors import NetworkProcessor, NetworkStatus

__all__ = ["TcpProcessor"]

PING, PONG = b"PING\n", b"PONG\n"
ACK = b"ACK\n"
#: Longest line read from the service; anything longer is a protocol error.
MAX_LINE_BYTES = 1024


class TcpProcessor(NetworkProcessor):
    """Send one ``TICK`` line per tick over a session connection while CONNECTED.

    ``acknowledged`` counts ticks the service answered with ``ACK``; ``skipped`` counts ticks that
    were not acknowledged, because the processor was not connected or the exchange failed.
    """

    LOGGER_NAME: ClassVar[str] = "TcpProcessor"

    #: Bound on closing the session connection gracefully before it is aborted.
    CLOSE_TIMEOUT: ClassVar[float] = 1.0

    def __init__(
        self,
        host: str,
        port: int,
        *,
        stats_window_size: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(stats_window_size, rng=rng)
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, not {type(host).__name__}")
        if not host:
            raise ValueError("host must not be empty")
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be in 1..65535, got {port}")
        self.host = host
        self.port = port
        self._session: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        # True from the end of start_network() to the start of stop_network().
        self._network_up = False
        self.acknowledged = 0
        self.skipped = 0

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port, limit=MAX_LINE_BYTES)

    async def check_network(self) -> NetworkStatus:
        try:
            reader, writer = await self._open()
        except OSError as exc:
            self.logger().debug("%s: cannot connect: %r", type(self).__name__, exc)
            return NetworkStatus.NOT_CONNECTED
        try:
            writer.write(PING)
            await writer.drain()
            reply = await reader.readline()
        except OSError as exc:
            self.logger().debug("%s: ping failed: %r", type(self).__name__, exc)
            return NetworkStatus.NOT_CONNECTED
        except ValueError:  # readline() met a line longer than MAX_LINE_BYTES
            self.logger().warning(
                "%s: answer to PING longer than %d bytes", type(self).__name__, MAX_LINE_BYTES
            )
            return NetworkStatus.ERROR
        finally:
            # Also on cancellation by check_network_timeout; close() never blocks.
            writer.close()
        if reply == PONG:
            return NetworkStatus.CONNECTED
        if not reply:  # the service closed the connection without answering
            return NetworkStatus.NOT_CONNECTED
        self.logger().warning("%s: unexpected answer to PING: %r", type(self).__name__, reply)
        return NetworkStatus.ERROR

    async def start_network(self) -> None:
        self._session = await self._open()
        self._network_up = True

    async def stop_network(self) -> None:
        self._network_up = False
        session, self._session = self._session, None
        if session is None:
            return
        writer = session[1]
        writer.close()
        try:
            async with asyncio.timeout(self.CLOSE_TIMEOUT):
                await writer.wait_closed()
        except OSError:
            pass  # the peer reset the connection, or closing took too long: it is closed anyway
        except BaseException:
            writer.transport.abort()
            raise

    async def async_tick(self, timestamp: float) -> None:
        if self.network_status is not NetworkStatus.CONNECTED or not self._network_up:
            self.skipped += 1
            return
        try:
            async with asyncio.timeout(self.check_network_timeout):
                reader, writer = await self._tick_session()
                writer.write(f"TICK {timestamp!r}\n".encode())
                await writer.drain()
                reply = await reader.readline()
        except (OSError, ValueError) as exc:  # TimeoutError is an OSError
            self._drop_session()
            self.skipped += 1
            self.logger().warning(
                "%s: tick %r not delivered: %r", type(self).__name__, timestamp, exc
            )
            return
        if reply != ACK:
            self._drop_session()
            self.skipped += 1
            self.logger().warning(
                "%s: tick %r answered with %r, not ACK", type(self).__name__, timestamp, reply
            )
            return
        self.acknowledged += 1

    async def _tick_session(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The session connection, reopened if a failed exchange dropped it."""
        if self._session is None:
            session = await self._open()
            if not self._network_up or self._session is not None:
                # stop_network() ran (or another tick reopened) while this one connected.
                session[1].transport.abort()
                raise ConnectionAbortedError("the session was closed while it was reopened")
            self._session = session
        return self._session

    def _drop_session(self) -> None:
        # After a failed or timed-out exchange a late reply may still arrive and would be read
        # as the answer to the next tick: never reuse the connection.
        session, self._session = self._session, None
        if session is not None:
            session[1].transport.abort()


async def _run(processor: TcpProcessor) -> None:
    from chronopype.clocks import ClockConfig, ClockMode, RealtimeClock

    async with RealtimeClock(ClockConfig(clock_mode=ClockMode.REALTIME)) as clock:
        clock.add_processor(processor)
        await clock.run()


def _main(host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    processor = TcpProcessor(host, port)
    # Ctrl-C: leaving the clock's context stops the processor and releases its network.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(processor))
    print(f"acknowledged={processor.acknowledged} skipped={processor.skipped}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python examples/tcp_processor.py HOST PORT")
    _main(sys.argv[1], int(sys.argv[2]))
