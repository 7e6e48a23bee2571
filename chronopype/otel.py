"""OpenTelemetry metrics for NetworkProcessors: ``pip install 'chronopype[otel]'``.

One call attaches the instrumentation to a processor or a fleet::

    from chronopype.otel import instrument

    metrics = instrument({"orders-db": db, "prices-ws": ws})   # or instrument(db, name="orders-db")

It is an observer (``NetworkProcessor.add_observer``), so it sees exactly what the processor
does, and records through the OpenTelemetry metrics API (the global ``MeterProvider`` unless
one is given), with ``processor.class`` and ``processor.name`` as attributes on every point:

======================================  =========================  =====  ====================
instrument                              kind                       unit   extra attributes
======================================  =========================  =====  ====================
``chronopype.network.status``           observable gauge: 1 for    1      ``status``
                                        the current status, 0 for
                                        the others
``chronopype.network.checks``           counter                    check  ``outcome``
``chronopype.network.check.duration``   histogram                  s      ``outcome``
``chronopype.network.disconnects``      counter: CONNECTED ->      1
                                        DISCONNECTING (a failed
                                        check; not ``stop()``)
``chronopype.network.reconnects``       counter: CONNECTED again   1
                                        after a disconnect
``chronopype.network.reconnect.time``   histogram: disconnect to   s
                                        CONNECTED, loop time
``chronopype.network.backoff``          histogram: each backoff    s
                                        wait scheduled
======================================  =========================  =====  ====================

A ``stop()`` between a disconnect and the next CONNECTED drops that disconnect's
reconnect time: a stopped processor is not recovering. Only this module imports
``opentelemetry``; the rest of chronopype never needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

try:
    from opentelemetry.metrics import (
        CallbackOptions,
        MeterProvider,
        Observation,
        get_meter_provider,
    )
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"chronopype.otel needs the otel extra (pip install 'chronopype[otel]'): {missing}"
    ) from missing

from chronopype.processors.events import (
    CheckFinished,
    ProcessorEvent,
    StatusChanged,
    WaitScheduled,
)
from chronopype.processors.machine import NetworkStatus, WaitKind
from chronopype.processors.network import NetworkProcessor

__all__ = ["NetworkMetrics", "instrument"]

_CONNECTED = NetworkStatus.CONNECTED
_DISCONNECTING = NetworkStatus.DISCONNECTING
_STOPPED = NetworkStatus.STOPPED
# Seconds: checks are usually sub-second, reconnects and backoff waits up to minutes.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class _Watched:
    """One processor under instrumentation: its attributes and its pending disconnect."""

    __slots__ = ("attributes", "by_outcome", "by_status", "disconnected_at", "processor")

    def __init__(self, processor: NetworkProcessor, name: str) -> None:
        self.processor = processor
        self.attributes = MappingProxyType(
            {"processor.class": type(processor).__name__, "processor.name": name}
        )
        # Built once, so a check records without building attribute dicts.
        self.by_outcome: dict[object, MappingProxyType[str, str]] = {}
        self.by_status = {
            status: MappingProxyType({**self.attributes, "status": status.name})
            for status in NetworkStatus
        }
        self.disconnected_at: float | None = None

    def outcome_attributes(self, outcome: object, name: str) -> MappingProxyType[str, str]:
        attributes = self.by_outcome.get(outcome)
        if attributes is None:
            attributes = MappingProxyType({**self.attributes, "outcome": name})
            self.by_outcome[outcome] = attributes
        return attributes


class NetworkMetrics:
    """The instruments, and the processors they watch (see the module docstring)."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        if meter_provider is not None and not isinstance(meter_provider, MeterProvider):
            raise TypeError(
                f"meter_provider must be an opentelemetry MeterProvider, got {meter_provider!r}"
            )
        meter = (meter_provider or get_meter_provider()).get_meter("chronopype")
        self._watched: dict[int, tuple[_Watched, Callable[[], None]]] = {}
        meter.create_observable_gauge(
            "chronopype.network.status",
            callbacks=[self._observe_statuses],
            unit="1",
            description="1 for the processor's current NetworkStatus, 0 for the others",
        )
        self._checks = meter.create_counter(
            "chronopype.network.checks", unit="{check}", description="Checks, by outcome"
        )
        self._check_duration = meter.create_histogram(
            "chronopype.network.check.duration",
            unit="s",
            description="How long each check_network() ran, by outcome",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._disconnects = meter.create_counter(
            "chronopype.network.disconnects",
            unit="{disconnect}",
            description="Failed checks while CONNECTED (CONNECTED -> DISCONNECTING)",
        )
        self._reconnects = meter.create_counter(
            "chronopype.network.reconnects",
            unit="{reconnect}",
            description="CONNECTED again after a disconnect",
        )
        self._reconnect_time = meter.create_histogram(
            "chronopype.network.reconnect.time",
            unit="s",
            description="Loop time from a disconnect to CONNECTED again",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self._backoff = meter.create_histogram(
            "chronopype.network.backoff",
            unit="s",
            description="Each backoff wait scheduled after a failed check",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )

    def attach(self, processor: NetworkProcessor, name: str) -> Callable[[], None]:
        """Record ``processor``'s metrics under ``name``; returns a function that detaches it
        (it is then no longer observed, and its status no longer reported)."""
        if not isinstance(processor, NetworkProcessor):
            raise TypeError(f"attach() needs a NetworkProcessor, got {type(processor).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        key = id(processor)
        if key in self._watched:
            raise ValueError(f"{processor!r} is already instrumented by these metrics")
        watched = _Watched(processor, name)
        unsubscribe = processor.add_observer(lambda event: self._record(watched, event))
        self._watched[key] = (watched, unsubscribe)

        def detach() -> None:
            entry = self._watched.get(key)
            if entry is not None and entry[0] is watched:
                del self._watched[key]
                unsubscribe()

        return detach

    def _record(self, watched: _Watched, event: ProcessorEvent) -> None:
        if isinstance(event, CheckFinished):
            attributes = watched.outcome_attributes(event.outcome, event.outcome.name)
            self._checks.add(1, attributes)
            self._check_duration.record(event.duration, attributes)
        elif isinstance(event, WaitScheduled):
            if event.kind is WaitKind.BACKOFF:
                self._backoff.record(event.delay, watched.attributes)
        elif isinstance(event, StatusChanged):
            if event.old is _CONNECTED and event.new is _DISCONNECTING:
                self._disconnects.add(1, watched.attributes)
                watched.disconnected_at = event.at
            elif event.new is _CONNECTED and watched.disconnected_at is not None:
                self._reconnects.add(1, watched.attributes)
                self._reconnect_time.record(event.at - watched.disconnected_at, watched.attributes)
                watched.disconnected_at = None
            elif event.new is _STOPPED:
                watched.disconnected_at = None

    def _observe_statuses(self, options: CallbackOptions) -> Iterable[Observation]:
        for watched, _ in tuple(self._watched.values()):
            current = watched.processor.network_status
            for status, attributes in watched.by_status.items():
                yield Observation(1 if status is current else 0, attributes)


def instrument(
    processors: NetworkProcessor | Mapping[str, NetworkProcessor],
    *,
    name: str | None = None,
    meter_provider: MeterProvider | None = None,
) -> NetworkMetrics:
    """Attach a new ``NetworkMetrics`` to one processor (``name`` required) or to a fleet
    given as ``{name: processor}``; returns it (``attach()`` adds more processors)."""
    metrics = NetworkMetrics(meter_provider)
    if isinstance(processors, NetworkProcessor):
        if name is None:
            raise TypeError("instrument(processor) needs name=...: the processor.name attribute")
        metrics.attach(processors, name)
        return metrics
    if name is not None:
        raise TypeError("name= is for a single processor; a fleet is a {name: processor} mapping")
    if not isinstance(processors, Mapping):
        raise TypeError(
            "instrument() takes a NetworkProcessor or a {name: processor} mapping, got "
            f"{type(processors).__name__}"
        )
    for processor_name, processor in processors.items():
        metrics.attach(processor, processor_name)
    return metrics
