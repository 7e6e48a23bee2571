"""0.8.3's import path for :class:`TickProcessor` (defined in :mod:`chronopype.processors.tick`)."""

from chronopype.processors.tick import TickProcessor

__all__ = ["TickProcessor"]
