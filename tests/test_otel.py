"""chronopype.otel against the real OpenTelemetry SDK (InMemoryMetricReader), on FakeClock:
a scripted day with outages, exact counts and values from a model of the schedule."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk.metrics", reason="needs the otel extra")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from chronopype import NetworkStatus
from chronopype.otel import NetworkMetrics, instrument
from chronopype.processors.backoff import BACKOFF_JITTER, backoff_base, jittered_backoff
from chronopype_testing import FakeClock, FakeNetworkProcessor

DAY = 86_400.0
INTERVAL = 60.0
OUTAGES = [(3_600.0, 4_200.0), (43_200.0, 45_000.0)]  # 10 minutes at 1 h, 30 minutes at noon


@dataclass
class Model:
    """What the processor must do, worked out from the core's backoff functions alone."""

    up_checks: int = 0
    down_checks: int = 0
    disconnects: int = 0
    reconnect_times: list[float] = field(default_factory=list)
    backoffs: list[float] = field(default_factory=list)


def model_day(seed: int, outages: list[tuple[float, float]]) -> Model:
    rng = random.Random(seed)  # the processor draws only its backoff jitter from its rng
    model = Model()
    t, connected, failures = 0.0, False, 0
    down_since: float | None = None
    while t <= DAY:
        if any(start <= t < end for start, end in outages):
            model.down_checks += 1
            if connected:
                model.disconnects += 1
                down_since = t
            connected = False
            failures += 1
            delay = jittered_backoff(
                backoff_base(failures), rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
            )
            model.backoffs.append(delay)
            t += delay
        else:
            model.up_checks += 1
            if down_since is not None:
                model.reconnect_times.append(t - down_since)
                down_since = None
            connected, failures = True, 0
            t += INTERVAL
    return model


def collect(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def point(points: dict[str, list[Any]], metric: str, name: str, **extra: str) -> Any:
    wanted = {"processor.class": "FakeNetworkProcessor", "processor.name": name, **extra}
    matches = [p for p in points.get(metric, []) if dict(p.attributes) == wanted]
    assert len(matches) <= 1, matches
    return matches[0] if matches else None


def statuses(points: dict[str, list[Any]], name: str) -> dict[str, int]:
    return {
        p.attributes["status"]: p.value
        for p in points["chronopype.network.status"]
        if p.attributes["processor.name"] == name
    }


async def test_a_scripted_day_with_outages(fake_clock: FakeClock) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    primary = FakeNetworkProcessor.with_outages(
        OUTAGES, rng=random.Random(7), check_network_interval=INTERVAL
    )
    standby = FakeNetworkProcessor(rng=random.Random(8), check_network_interval=INTERVAL)
    instrument({"primary": primary, "standby": standby}, meter_provider=provider)
    primary.start(fake_clock.time())
    standby.start(fake_clock.time())

    await fake_clock.advance(3_700.0)  # inside the first outage, between retries
    midway = collect(reader)
    assert statuses(midway, "primary") == {
        "STOPPED": 0,
        "NOT_CONNECTED": 1,
        "CONNECTING": 0,
        "CONNECTED": 0,
        "DISCONNECTING": 0,
        "ERROR": 0,
    }
    assert statuses(midway, "standby")["CONNECTED"] == 1
    assert point(midway, "chronopype.network.disconnects", "primary").value == 1
    assert point(midway, "chronopype.network.reconnects", "primary") is None

    await fake_clock.advance(DAY - 3_700.0)
    points = collect(reader)
    model = model_day(7, OUTAGES)
    assert model.disconnects == 2 and len(model.reconnect_times) == 2  # the model's own sanity

    checks = "chronopype.network.checks"
    assert point(points, checks, "primary", outcome="CONNECTED").value == model.up_checks
    assert point(points, checks, "primary", outcome="NOT_CONNECTED").value == model.down_checks
    assert point(points, checks, "standby", outcome="CONNECTED").value == DAY / INTERVAL + 1
    assert point(points, checks, "standby", outcome="NOT_CONNECTED") is None

    duration = point(points, "chronopype.network.check.duration", "primary", outcome="CONNECTED")
    assert (duration.count, duration.sum) == (model.up_checks, 0.0)  # the fake answers at once

    assert point(points, "chronopype.network.disconnects", "primary").value == 2
    assert point(points, "chronopype.network.reconnects", "primary").value == 2
    assert point(points, "chronopype.network.disconnects", "standby") is None

    recovery = point(points, "chronopype.network.reconnect.time", "primary")
    assert recovery.count == 2
    assert recovery.sum == pytest.approx(sum(model.reconnect_times), abs=1e-6)
    assert recovery.min == pytest.approx(min(model.reconnect_times), abs=1e-6)
    assert recovery.max == pytest.approx(max(model.reconnect_times), abs=1e-6)
    # Each recovery outlasts its outage (10 and 30 minutes) by less than the last wait (<= 330 s).
    assert 600.0 <= recovery.min <= 930.0 and 1_800.0 <= recovery.max <= 2_130.0

    backoff = point(points, "chronopype.network.backoff", "primary")
    assert backoff.count == len(model.backoffs) == model.down_checks
    assert backoff.sum == pytest.approx(sum(model.backoffs), abs=1e-6)
    assert backoff.max == pytest.approx(max(model.backoffs), abs=1e-9)

    assert statuses(points, "primary")["CONNECTED"] == 1
    primary.stop()
    standby.stop()
    await primary.await_cleanup()
    await standby.await_cleanup()
    assert statuses(collect(reader), "primary")["STOPPED"] == 1


async def test_a_stop_during_an_outage_records_no_reconnect_time(fake_clock: FakeClock) -> None:
    reader = InMemoryMetricReader()
    processor = FakeNetworkProcessor.with_outages([(100.0, 200.0)], rng=random.Random(1))
    processor.check_network_interval = 50.0
    instrument(processor, name="db", meter_provider=MeterProvider(metric_readers=[reader]))
    processor.start(fake_clock.time())
    await fake_clock.advance(150.0)
    processor.stop()
    processor.start(fake_clock.time())  # connected at once: not a recovery from the outage
    await fake_clock.advance(10.0)
    points = collect(reader)
    assert point(points, "chronopype.network.disconnects", "db").value == 1
    assert point(points, "chronopype.network.reconnects", "db") is None
    assert point(points, "chronopype.network.reconnect.time", "db") is None
    processor.stop()


async def test_detach_stops_recording(fake_clock: FakeClock) -> None:
    reader = InMemoryMetricReader()
    metrics = NetworkMetrics(MeterProvider(metric_readers=[reader]))
    processor = FakeNetworkProcessor(rng=random.Random(0), check_network_interval=10.0)
    detach = metrics.attach(processor, "one")
    with pytest.raises(ValueError, match="already instrumented"):
        metrics.attach(processor, "again")
    processor.start(fake_clock.time())
    await fake_clock.advance(25.0)
    detach()
    detach()  # idempotent
    await fake_clock.advance(100.0)
    points = collect(reader)
    assert point(points, "chronopype.network.checks", "one", outcome="CONNECTED").value == 3
    assert "chronopype.network.status" not in points or not [
        p for p in points["chronopype.network.status"] if p.attributes["processor.name"] == "one"
    ]
    assert processor.network_status is NetworkStatus.CONNECTED
    processor.stop()


def test_bad_arguments() -> None:
    processor = FakeNetworkProcessor()
    with pytest.raises(TypeError, match="needs name="):
        instrument(processor)
    with pytest.raises(TypeError, match="a fleet is a"):
        instrument({"a": processor}, name="a")
    with pytest.raises(TypeError, match=r"or a \{name: processor\} mapping, got list"):
        instrument([processor])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a NetworkProcessor, got str"):
        NetworkMetrics(MeterProvider()).attach("db", "db")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty str"):
        NetworkMetrics(MeterProvider()).attach(processor, "")
    with pytest.raises(TypeError, match="MeterProvider"):
        NetworkMetrics("provider")  # type: ignore[arg-type]


def test_the_core_imports_without_opentelemetry() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        import chronopype, chronopype.processors, chronopype.processors.events
        import chronopype_testing
        from chronopype_testing import FakeNetworkProcessor, TransitionRecorder
        try:
            import chronopype.otel
        except ImportError as exc:
            print("ImportError:", exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.startswith(
        "ImportError: chronopype.otel needs the otel extra (pip install 'chronopype[otel]')"
    )
