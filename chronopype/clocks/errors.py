"""Exceptions raised by clocks."""

from __future__ import annotations

__all__ = ["ClockContextError", "ClockError", "ProcessorTimeoutError"]


class ClockError(Exception):
    """A clock was used in a way its current state does not allow."""


class ClockContextError(ClockError):
    """The clock was entered twice, or used outside ``async with clock``."""


class ProcessorTimeoutError(TimeoutError):
    """A processor's ``async_tick`` exceeded the clock's ``processor_timeout``.

    Raised (and recorded) only for timeouts the clock imposed. A ``TimeoutError`` that the
    processor raises itself is recorded as it is, so the two cannot be confused.
    """

    def __init__(self, processor: object, timeout: float, timestamp: float) -> None:
        super().__init__(
            f"{processor!r} did not finish its tick at {timestamp!r} within {timeout!r}s"
        )
        self.processor = processor
        self.timeout = timeout
        self.timestamp = timestamp
