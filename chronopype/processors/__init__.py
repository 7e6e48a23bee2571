"""Processors: things a clock ticks, and network-aware ones that keep a connection healthy."""

from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype.processors.state import ProcessorState
from chronopype.processors.tick import TickProcessor

__all__ = ["NetworkProcessor", "NetworkStatus", "ProcessorState", "TickProcessor"]
