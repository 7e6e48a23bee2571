"""Processors: things a clock ticks, and network-aware ones that keep a connection healthy."""

from chronopype.processors.machine import (
    LEGAL_TRANSITIONS,
    AttemptOutcome,
    Decision,
    NetworkStatus,
    WaitKind,
    decide,
)
from chronopype.processors.network import NetworkProcessor, ProcessorDefect
from chronopype.processors.state import ProcessorState
from chronopype.processors.tick import TickProcessor

__all__ = [
    "LEGAL_TRANSITIONS",
    "AttemptOutcome",
    "Decision",
    "NetworkProcessor",
    "NetworkStatus",
    "ProcessorDefect",
    "ProcessorState",
    "TickProcessor",
    "WaitKind",
    "decide",
]
