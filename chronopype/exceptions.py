"""Every exception chronopype raises on purpose, in 0.8.3's hierarchy.

``ClockError`` is the root; ``ProcessorTimeoutError`` is a ``ProcessorError`` (as in 0.8.3) and
also a ``TimeoutError``, so ``except TimeoutError`` catches it too.
"""

from __future__ import annotations

__all__ = [
    "ClockContextError",
    "ClockError",
    "ClockValueError",
    "ClockRuntimeError",
    "ProcessorError",
    "ProcessorTimeoutError",
]


class ClockError(Exception):
    """A clock was used in a way its current state does not allow."""


class ClockContextError(ClockError):
    """The clock was entered twice, or used outside ``async with clock``."""


class ClockValueError(ClockError, ValueError):
    """A clock was given a value it cannot use (a config for another mode, ``step(0)``, a
    target past ``end_time``...). A ``ClockError``, as 0.8.3 raised, and a ``ValueError``."""


class ProcessorError(ClockError):
    """A processor failed in a way the clock reports as its own error."""


class ProcessorTimeoutError(ProcessorError, TimeoutError):
    """A processor's ``async_tick`` exceeded the clock's ``processor_timeout``.

    Raised (and recorded) only for timeouts the clock imposed. A ``TimeoutError`` that the
    processor raises itself is recorded as it is, so the two cannot be confused. Constructed
    with a message only (as 0.8.3 code does), ``processor``, ``timeout`` and ``timestamp``
    are None.
    """

    def __init__(
        self,
        processor: object = None,
        timeout: float | None = None,
        timestamp: float | None = None,
    ) -> None:
        if isinstance(processor, str) and timeout is None and timestamp is None:
            super().__init__(processor)
            processor = None
        else:
            super().__init__(
                f"{processor!r} did not finish its tick at {timestamp!r} within {timeout!r}s"
            )
        self.processor = processor
        self.timeout = timeout
        self.timestamp = timestamp


class ClockRuntimeError(ClockError):
    """A ``ClockRuntime`` operation is not possible with its clock or in its state."""
