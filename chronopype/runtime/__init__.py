"""Run a clock as a background task or in its own thread (0.8.3's ``ClockRuntime``)."""

from chronopype.runtime.clock_runtime import ClockRuntime
from chronopype.runtime.config import ClockRuntimeConfig

__all__ = ["ClockRuntime", "ClockRuntimeConfig"]
