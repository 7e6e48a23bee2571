"""0.8.3's import path for :class:`ClockMode` (defined in :mod:`chronopype.clocks.config`)."""

from chronopype.clocks.config import ClockMode

__all__ = ["ClockMode"]
