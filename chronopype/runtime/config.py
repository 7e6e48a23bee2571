"""Configuration of a :class:`~chronopype.runtime.ClockRuntime`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chronopype._model import ModelStyle
from chronopype.clocks.config import ClockConfig, ClockMode
from chronopype.validation import finite_number

__all__ = ["ClockRuntimeConfig"]


def _default_clock_config() -> ClockConfig:
    return ClockConfig(ClockMode.REALTIME)


@dataclass(frozen=True, slots=True)
class ClockRuntimeConfig(ModelStyle):
    """A clock configuration plus the runtime's own timings (seconds, each > 0).

    ``thread_stop_timeout_seconds`` bounds how long ``stop_threaded()`` waits for the thread
    (and ``stop()`` for the run task); ``clock_poll_interval_seconds`` is kept for 0.8.3
    compatibility: a threaded runtime is stopped through its loop, without polling.
    """

    clock_config: ClockConfig = field(default_factory=_default_clock_config)
    thread_stop_timeout_seconds: float = 3.0
    clock_poll_interval_seconds: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.clock_config, ClockConfig):
            raise TypeError(f"clock_config must be a ClockConfig, got {self.clock_config!r}")
        for name in ("thread_stop_timeout_seconds", "clock_poll_interval_seconds"):
            value = finite_number(name, getattr(self, name))
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def clock_mode(self) -> ClockMode:
        return self.clock_config.clock_mode

    @property
    def tick_size(self) -> float:
        return self.clock_config.tick_size

    @property
    def start_time(self) -> float:
        return self.clock_config.start_time

    @property
    def end_time(self) -> float:
        return self.clock_config.end_time

    @classmethod
    def _coerce(cls, values: dict[str, Any]) -> dict[str, Any]:
        if isinstance(values.get("clock_config"), dict):
            values["clock_config"] = ClockConfig.model_validate(values["clock_config"])
        return values
