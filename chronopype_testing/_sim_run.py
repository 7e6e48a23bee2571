"""Running a NetworkProcessor through an outage scenario on a FakeClock.

The processor is the production ``NetworkProcessor`` logic, unmodified: the simulator only
wraps ``check_network`` (inside an outage it returns NOT_CONNECTED without calling the
processor's own check) and observes the processor's events (``add_observer``). Everything it
sees goes to a ``RunObserver`` as it happens, so nothing here grows with the number of checks.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from chronopype.processors.backoff import backoff_base
from chronopype.processors.events import (
    CheckFinished,
    CheckStarted,
    LoopPaused,
    ProcessorEvent,
    StatusChanged,
)
from chronopype.processors.machine import AttemptOutcome
from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype_testing._sim_scenario import Outage, ScenarioError

if TYPE_CHECKING:
    from chronopype_testing._loop import FakeClock

__all__ = [
    "DEFAULT_PROCESSOR_NAME",
    "MAX_CHECKS",
    "CheckOutcome",
    "ProcessorFactory",
    "RunObserver",
    "Settings",
    "SimulatedProcessor",
    "SimulationRun",
    "backoff_base",
    "load_fake_clock",
    "load_processor_factory",
    "observe_run",
    "simulate",
    "simulation_clock",
]

DEFAULT_PROCESSOR_NAME = "default (checks return CONNECTED outside outages, instantly)"
# The work bound: 30 days at the smallest interval (0.1 s). A check costs about 25 us of real
# time, so this is roughly ten minutes; beyond it the simulator refuses with a usage error.
MAX_CHECKS = 25_920_000

ProcessorFactory = Callable[[], NetworkProcessor]


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


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One finished check: when it began and what the processor got from it."""

    started: float
    finished: float
    connected: bool
    # "connected", "outage", "not connected", "error", "raised", "timed out" or "cancelled".
    why: str


class RunObserver(Protocol):
    """What the simulator reports while the run goes; calls arrive in loop-time order."""

    def settings_known(self, interval: float, timeout: float, error_wait: float) -> None: ...

    def check_finished(self, outcome: CheckOutcome) -> None: ...

    def status_changed(self, at: float, old: NetworkStatus, new: NetworkStatus) -> None: ...


@dataclass(slots=True)
class SimulationRun:
    """How the run ended (the observer holds what happened during it)."""

    horizon: float
    check_network_interval: float
    check_network_timeout: float
    network_error_wait_time: float
    # Tasks still pending after stop() and await_cleanup(): a leak in the processor.
    leaked_tasks: list[str] = field(default_factory=list)


def resolve_processor_spec(spec: str) -> object:
    """The object ``module:dotted.name`` names (the current directory importable); raises
    ScenarioError naming the spec."""
    module_name, colon, qualname = spec.partition(":")
    if not colon or not module_name or not qualname:
        raise ScenarioError(
            f"--processor {spec!r} must be module:Class or module:factory, "
            "e.g. myapp.db:DbProcessor"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
    except BaseException as exc:  # the user's module: an error or a sys.exit() while importing
        if isinstance(exc, KeyboardInterrupt):
            raise
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
    return target


def load_processor_factory(spec: str) -> ProcessorFactory:
    """Import ``module:Class`` or ``module:factory`` (dotted names allowed).

    A class must subclass NetworkProcessor and be concrete; anything else must be callable
    with no arguments and return a NetworkProcessor (checked when the run builds it). The
    current directory is importable, as it is for ``python -m``. Raises ScenarioError.
    """
    target = resolve_processor_spec(spec)
    if isinstance(target, type):
        if not issubclass(target, NetworkProcessor):
            raise ScenarioError(
                f"--processor {spec!r}: {target!r} is not a subclass of "
                "chronopype.NetworkProcessor (nor a factory returning one)"
            )
        if inspect.isabstract(target):
            missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ())))
            raise ScenarioError(
                f"--processor {spec!r}: {target.__name__} is abstract "
                f"(it does not implement {missing})"
            )
        cls: type[NetworkProcessor] = target
        return cls
    if not callable(target):
        raise ScenarioError(
            f"--processor {spec!r}: {target!r} is neither a NetworkProcessor subclass nor a "
            "factory (a callable returning one)"
        )
    if inspect.iscoroutinefunction(target):
        raise ScenarioError(
            f"--processor {spec!r}: {getattr(target, '__name__', target)!r} is an async "
            "function; the factory must be a plain callable that returns the processor"
        )

    def from_factory() -> NetworkProcessor:
        built: object = target()
        return built  # type: ignore[return-value]  # checked by _construct

    from_factory.__name__ = getattr(target, "__name__", "factory")
    return from_factory


def _construct(factory: ProcessorFactory) -> NetworkProcessor:
    name = getattr(factory, "__name__", repr(factory))
    try:
        built: object = factory()
    except Exception as exc:  # the user's constructor or factory: report whatever it raised
        if isinstance(factory, type):
            raise ScenarioError(
                f"cannot construct {name}() with no arguments ({exc!r}); give its parameters "
                "defaults, or pass a factory (module:function) that supplies them"
            ) from exc
        raise ScenarioError(f"the factory {name}() raised {exc!r}") from exc
    if inspect.iscoroutine(built):
        built.close()
        raise ScenarioError(f"{name}() returned a coroutine; return the processor itself")
    if not isinstance(built, NetworkProcessor):
        raise ScenarioError(
            f"{name}() returned {type(built).__name__}, not a chronopype.NetworkProcessor"
        )
    if built.network_status is not NetworkStatus.STOPPED:
        raise ScenarioError(
            f"{name}() returned a processor that is already started "
            f"({built.network_status.name}); return it before start()"
        )
    return built


def _apply(processor: NetworkProcessor, settings: Settings) -> None:
    if settings.check_network_interval is not None:
        processor.check_network_interval = settings.check_network_interval
    if settings.check_network_timeout is not None:
        processor.check_network_timeout = settings.check_network_timeout
    if settings.network_error_wait_time is not None:
        processor.network_error_wait_time = settings.network_error_wait_time


# -- the recording seam ---------------------------------------------------------------------
# Everything the simulator learns about the processor passes through _instrument(), which reads
# it from the processor's events (NetworkProcessor.add_observer): any processor class, nothing
# re-derived. Only the outage itself needs the check put behind the scenario.

_WHY = {
    AttemptOutcome.CONNECTED: "connected",
    AttemptOutcome.NOT_CONNECTED: "not connected",
    AttemptOutcome.ERROR_RETURNED: "error",
    AttemptOutcome.TIMED_OUT: "timed out",
    AttemptOutcome.RAISED: "raised",  # a bad value counts as raised, as the processor says
}


def _outage_test(outages: list[Outage]) -> Callable[[float], bool]:
    starts = [outage.start for outage in outages]

    def in_outage(at: float) -> bool:
        index = bisect.bisect_right(starts, at) - 1
        return index >= 0 and at < outages[index].end

    return in_outage


def _instrument(
    processor: NetworkProcessor, outages: list[Outage], observer: RunObserver
) -> Callable[[], None]:
    """Put the scenario in front of ``processor``'s check and report its events to ``observer``.

    Inside an outage the check returns NOT_CONNECTED without calling the processor's own: for
    that (and only that) the instance's class becomes a subclass with the same name and
    layout; works for instances a factory built too. Returns a function that detaches the
    observer.
    """
    base = type(processor)
    in_outage = _outage_test(outages)
    loop = asyncio.get_running_loop()

    async def check_network(self: NetworkProcessor) -> NetworkStatus:
        if in_outage(loop.time()):
            return NetworkStatus.NOT_CONNECTED
        return await base.check_network(self)

    def fill_namespace(namespace: dict[str, Any]) -> None:
        namespace["__slots__"] = ()  # same layout, so the instance can switch to it
        namespace["check_network"] = check_network
        namespace["__module__"] = base.__module__
        namespace["__qualname__"] = base.__qualname__

    # Same name, so the processor's own log messages read as they do in production.
    # new_class picks the base's metaclass (ABCMeta), as a class statement would.
    scenario_class: type[NetworkProcessor] = types.new_class(
        base.__name__, (base,), exec_body=fill_namespace
    )
    try:
        processor.__class__ = scenario_class
    except TypeError as exc:
        raise ScenarioError(
            f"cannot wrap the check of {base.__name__} for the scenario ({exc})"
        ) from exc
    return observe_run(processor, outages, observer, outage_reason=True)


def observe_run(
    processor: NetworkProcessor,
    outages: list[Outage],
    observer: RunObserver,
    *,
    outage_reason: bool,
) -> Callable[[], None]:
    """Report ``processor``'s checks and status changes to ``observer``, from its events.

    With ``outage_reason``, a NOT_CONNECTED check that began inside an outage reads "outage"
    (the simulated scenario made it fail); without (``--via-proxy``: a real client met a real
    fault), every check keeps the processor's own outcome. Returns the detaching function.
    """
    in_outage = _outage_test(outages)
    checking: list[float] = []  # the start of the check under way, if any

    def record(event: ProcessorEvent) -> None:
        if isinstance(event, CheckStarted):
            checking[:] = [event.at]
        elif isinstance(event, CheckFinished):
            began = checking.pop() if checking else event.at - event.duration
            outage = (
                outage_reason
                and event.outcome is AttemptOutcome.NOT_CONNECTED
                and in_outage(began)
            )
            why = "outage" if outage else _WHY[event.outcome]
            connected = event.outcome is AttemptOutcome.CONNECTED
            observer.check_finished(CheckOutcome(began, event.at, connected, why))
        elif isinstance(event, StatusChanged):
            observer.status_changed(event.at, event.old, event.new)
            if checking and event.new is NetworkStatus.STOPPED:  # stop() cut the check short
                observer.check_finished(CheckOutcome(checking.pop(), event.at, False, "cancelled"))
        elif isinstance(event, LoopPaused) and checking:
            observer.check_finished(CheckOutcome(checking.pop(), event.at, False, "cancelled"))

    return processor.add_observer(record)


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', repr(coro))})"


async def _show_progress(horizon: float, progress: Callable[[float], None]) -> None:
    steps = 200
    for step in range(1, steps):
        await asyncio.sleep(horizon / steps)
        progress(horizon * step / steps)


async def _run(
    factory: ProcessorFactory,
    outages: list[Outage],
    horizon: float,
    settings: Settings,
    seed: int,
    start_timestamp: float,
    observer: RunObserver,
    progress: Callable[[float], None] | None,
) -> SimulationRun:
    loop = asyncio.get_running_loop()
    processor = _construct(factory)
    _apply(processor, settings)
    interval = processor.check_network_interval
    if horizon / interval > MAX_CHECKS:
        raise ScenarioError(
            f"{horizon / 3600:g} h at a check_network_interval of {interval:g} s is "
            f"{horizon / interval:,.0f} checks; the bound is {MAX_CHECKS:,} (30 days at "
            "0.1 s, about ten minutes of real time): lower --hours or raise --interval"
        )
    # Seeding the instance's own Random works for any subclass, whatever its constructor takes.
    processor.rng.seed(seed)
    observer.settings_known(
        interval, processor.check_network_timeout, processor.network_error_wait_time
    )
    run = SimulationRun(
        horizon=horizon,
        check_network_interval=interval,
        check_network_timeout=processor.check_network_timeout,
        network_error_wait_time=processor.network_error_wait_time,
    )
    # Set before any of the processor's timers, so at the horizon it fires first: a check due
    # exactly at the horizon is outside the run.
    end = loop.create_future()
    loop.call_at(loop.time() + horizon, end.set_result, None)
    detach = _instrument(processor, outages, observer)
    ticker = None if progress is None else loop.create_task(_show_progress(horizon, progress))
    try:
        processor.start(start_timestamp)
        await end
    finally:
        if ticker is not None:
            ticker.cancel()
        processor.stop()
        await processor.await_cleanup()
        detach()
        if ticker is not None:
            await asyncio.gather(ticker, return_exceptions=True)
    current = asyncio.current_task()
    run.leaked_tasks = sorted(
        _describe_task(task) for task in asyncio.all_tasks() if task is not current
    )
    return run


def load_fake_clock() -> type[FakeClock]:
    """The FakeClock class; raises ImportError naming the testing extra when it is missing."""
    # Imported on demand: FakeClock needs time-machine, and `--help` should not.
    import chronopype_testing

    clock_class: type[FakeClock] = chronopype_testing.FakeClock
    return clock_class


# Virtual time a run may take after its horizon: the processor's stop and cleanup, which
# await_cleanup bounds by its own timeout.
_CLEANUP_ALLOWANCE = 86_400.0


def simulation_clock(horizon: float) -> FakeClock:
    """A FakeClock for a run of ``horizon`` virtual seconds.

    FakeClock's default ``max_elapsed`` (30 days) is a guard for tests that wait for ever; a
    simulation's own horizon is the bound here, and a run may be longer than 30 days.
    """
    return load_fake_clock()(max_elapsed=horizon + _CLEANUP_ALLOWANCE)


def simulate(
    factory: ProcessorFactory,
    outages: list[Outage],
    horizon: float,
    settings: Settings,
    seed: int,
    observer: RunObserver,
    progress: Callable[[float], None] | None = None,
) -> SimulationRun:
    """Run the processor ``factory`` builds for ``horizon`` virtual seconds against ``outages``.

    The processor's ``rng`` is seeded with ``seed``; ``observer`` hears every check and status
    change as it happens; ``progress`` (if given) is called with the virtual time now and then.
    Raises ScenarioError when the processor cannot be built or configured, or the run would
    exceed ``MAX_CHECKS``.
    """
    clock = simulation_clock(horizon)
    return clock.run(
        _run(factory, outages, horizon, settings, seed, clock.time(), observer, progress)
    )
