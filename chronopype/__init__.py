"""chronopype: time-driven, network-aware processors."""

from chronopype.processors import NetworkProcessor, NetworkStatus, ProcessorState, TickProcessor

__all__ = ["NetworkProcessor", "NetworkStatus", "ProcessorState", "TickProcessor"]
