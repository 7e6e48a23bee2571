"""Exceptions raised by clocks (defined in :mod:`chronopype.exceptions`)."""

from chronopype.exceptions import (
    ClockContextError,
    ClockError,
    ClockValueError,
    ProcessorTimeoutError,
)

__all__ = ["ClockContextError", "ClockError", "ClockValueError", "ProcessorTimeoutError"]
