"""chronopype: time-driven, network-aware processors."""

from chronopype.processors import ProcessorState, TickProcessor

__all__ = ["ProcessorState", "TickProcessor"]
