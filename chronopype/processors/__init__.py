"""Processors: things a clock ticks, and network-aware ones that keep a connection healthy."""

from chronopype.processors.network import NetworkProcessor, NetworkStatus, ProcessorDefect
from chronopype.processors.state import ProcessorState
from chronopype.processors.tick import TickProcessor

__all__ = [
    "NetworkProcessor",
    "NetworkStatus",
    "ProcessorDefect",
    "ProcessorState",
    "TickProcessor",
]
