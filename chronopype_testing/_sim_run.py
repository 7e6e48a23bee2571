"""Running a NetworkProcessor through an outage scenario on a FakeClock.

The processor is the production ``NetworkProcessor`` logic, unmodified: the simulator only
wraps ``check_network`` (inside an outage it returns NOT_CONNECTED without calling the
processor's own check) and listens to status changes.
"""

from __future__ import annotations

import asyncio
import bisect
import importlib
import inspect
import logging
import os
import sys
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype_testing._sim_scenario import Outage, ScenarioError

if TYPE_CHECKING:
    from chronopype_testing._loop import FakeClock

__all__ = [
    "DEFAULT_PROCESSOR_NAME",
    "SimulatedProcessor",
    "Settings",
    "SimulationRun",
    "load_fake_clock",
    "load_processor_class",
    "simulate",
]

DEFAULT_PROCESSOR_NAME = "default (checks return CONNECTED outside outages, instantly)"


class SimulatedProcessor(NetworkProcessor):
    """The processor simulated when no ``--processor`` is given: an instant, healthy check."""

    LOGGER_NAME: ClassVar[str] = "chronopype.sim"

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger(cls.LOGGER_NAME)

    async def check_network(self) -> NetworkStatus:
        return NetworkStatus.CONNECTED


@dataclass(frozen=True, slots=True)
class Settings:
    """Overrides for the processor's timing properties; None keeps the processor's own."""

    check_network_interval: float | None = None
    check_network_timeout: float | None = None
    network_error_wait_time: float | None = None


@dataclass(slots=True)
class SimulationRun:
    """What happened, in loop time (virtual seconds from the start of the run)."""

    horizon: float
    outages: list[Outage]
    check_network_interval: float
    check_network_timeout: float
    network_error_wait_time: float
    # (at, old, new) for every status change, in order.
    transitions: list[tuple[float, NetworkStatus, NetworkStatus]] = field(default_factory=list)
    # Start time of every check the simulator saw, in order.
    checks: list[float] = field(default_factory=list)
    # Tasks still pending after stop() and await_cleanup(): a leak in the processor.
    leaked_tasks: list[str] = field(default_factory=list)


def load_processor_class(spec: str) -> type[NetworkProcessor]:
    """Import ``module:Class`` (the class may be dotted) and check it can be simulated.

    The current directory is importable, as it is for ``python -m``. Raises ScenarioError.
    """
    module_name, colon, qualname = spec.partition(":")
    if not colon or not module_name or not qualname:
        raise ScenarioError(f"--processor {spec!r} must be module:Class, e.g. myapp.db:DbProcessor")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
    except Exception as exc:  # any error raised while importing the user's module
        raise ScenarioError(
            f"--processor {spec!r}: cannot import {module_name!r}: {exc!r}"
        ) from exc
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ScenarioError(
                f"--processor {spec!r}: {module_name!r} has no attribute {qualname!r}"
            ) from None
    if not isinstance(target, type) or not issubclass(target, NetworkProcessor):
        raise ScenarioError(
            f"--processor {spec!r}: {target!r} is not a subclass of chronopype.NetworkProcessor"
        )
    if inspect.isabstract(target):
        missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ())))
        raise ScenarioError(
            f"--processor {spec!r}: {target.__name__} is abstract (it does not implement {missing})"
        )
    return target


def _under_scenario(
    base: type[NetworkProcessor], outages: list[Outage], checks: list[float]
) -> type[NetworkProcessor]:
    """A subclass of ``base`` whose check sees the scenario's outages first."""
    starts = [outage.start for outage in outages]

    async def check_network(self: NetworkProcessor) -> NetworkStatus:
        now = asyncio.get_running_loop().time()
        checks.append(now)
        index = bisect.bisect_right(starts, now) - 1
        if index >= 0 and now < outages[index].end:
            return NetworkStatus.NOT_CONNECTED
        return await base.check_network(self)

    def fill_namespace(namespace: dict[str, Any]) -> None:
        namespace["check_network"] = check_network
        namespace["__module__"] = base.__module__
        namespace["__qualname__"] = base.__qualname__

    # Same name, so the processor's own log messages read as they do in production.
    # new_class picks the base's metaclass (ABCMeta), as a class statement would.
    scenario_class: type[NetworkProcessor] = types.new_class(
        base.__name__, (base,), exec_body=fill_namespace
    )
    return scenario_class


def _construct(cls: type[NetworkProcessor]) -> NetworkProcessor:
    try:
        return cls()
    except Exception as exc:  # the user's constructor: report whatever it raised
        raise ScenarioError(
            f"cannot construct {cls.__name__}() with no arguments ({exc!r}); give its "
            "parameters defaults, or pass a subclass that supplies them"
        ) from exc


def _apply(processor: NetworkProcessor, settings: Settings) -> None:
    if settings.check_network_interval is not None:
        processor.check_network_interval = settings.check_network_interval
    if settings.check_network_timeout is not None:
        processor.check_network_timeout = settings.check_network_timeout
    if settings.network_error_wait_time is not None:
        processor.network_error_wait_time = settings.network_error_wait_time


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', repr(coro))})"


async def _run(
    processor_class: type[NetworkProcessor],
    outages: list[Outage],
    horizon: float,
    settings: Settings,
    seed: int,
    start_timestamp: float,
) -> SimulationRun:
    checks: list[float] = []
    processor = _construct(_under_scenario(processor_class, outages, checks))
    _apply(processor, settings)
    # Seeding the instance's own Random works for any subclass, whatever its constructor takes.
    processor.rng.seed(seed)
    run = SimulationRun(
        horizon=horizon,
        outages=outages,
        check_network_interval=processor.check_network_interval,
        check_network_timeout=processor.check_network_timeout,
        network_error_wait_time=processor.network_error_wait_time,
        checks=checks,
    )
    loop = asyncio.get_running_loop()

    def record(old: NetworkStatus, new: NetworkStatus) -> None:
        run.transitions.append((loop.time(), old, new))

    unsubscribe = processor.add_status_listener(record)
    try:
        processor.start(start_timestamp)
        # This timer was set before any of the processor's, so at the horizon it fires first:
        # a check due exactly at the horizon is outside the run.
        await asyncio.sleep(horizon)
    finally:
        processor.stop()
        await processor.await_cleanup()
        unsubscribe()
    current = asyncio.current_task()
    run.leaked_tasks = sorted(
        _describe_task(task) for task in asyncio.all_tasks() if task is not current
    )
    return run


def load_fake_clock() -> type[FakeClock]:
    """The FakeClock class; raises ImportError naming the testing extra when it is missing."""
    # Imported on demand: FakeClock needs the testing extra, and `--help` should not.
    import chronopype_testing

    clock_class: type[FakeClock] = chronopype_testing.FakeClock
    return clock_class


def simulate(
    processor_class: type[NetworkProcessor],
    outages: list[Outage],
    horizon: float,
    settings: Settings,
    seed: int,
) -> SimulationRun:
    """Run ``processor_class`` for ``horizon`` virtual seconds against ``outages``.

    The processor's ``rng`` is seeded with ``seed``. Raises ScenarioError when the
    processor cannot be built or configured.
    """
    clock = load_fake_clock()()
    return clock.run(_run(processor_class, outages, horizon, settings, seed, clock.time()))
