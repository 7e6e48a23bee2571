"""``chronopype-sim --via-proxy``: the simulator's outage scenario against a real service.

Instead of pretending that checks fail inside an outage, the simulator starts an OutageProxy
in front of the real service, turns each outage into a fault window (``--fault``, default
``refuse``), and runs the user's processor, pointed at the proxy, on a FakeClock: the
processor's own client meets real refused connections, resets, black holes or latency, and
the report says when each outage was detected and when the processor was connected again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from chronopype.processors.network import NetworkProcessor, NetworkStatus
from chronopype_testing._proxy import OutageProxy
from chronopype_testing._proxy_faults import Fault
from chronopype_testing._sim_run import resolve_processor_spec, simulation_clock
from chronopype_testing._sim_scenario import Outage, ScenarioError, format_clock, format_seconds

__all__ = ["ProxyTarget", "ViaProxyRun", "parse_target", "run_via_proxy", "via_proxy_report"]


_DOWN = (NetworkStatus.DISCONNECTING, NetworkStatus.NOT_CONNECTED, NetworkStatus.ERROR)
# A check that began inside an outage ends at most a check timeout (or a hook) later.
_NOTICE_SLACK = 60.0


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    """The real service: ``host:port`` (the processor gets ``(host, port)`` of the proxy) or a
    URL (the processor gets the URL rewritten to point at the proxy)."""

    host: str
    port: int
    url: str | None = None


def parse_target(text: str) -> ProxyTarget:
    """``HOST:PORT`` or ``scheme://[user@]host:port/...``; raises ScenarioError."""
    if "://" in text:
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.hostname is None or port is None:
            raise ScenarioError(f"--via-proxy {text!r}: the URL must name a host and a port")
        return ProxyTarget(parts.hostname, port, text)
    host, colon, port_text = text.rpartition(":")
    if not colon or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ScenarioError(
            f"--via-proxy {text!r} must be HOST:PORT (e.g. 127.0.0.1:5432) or a URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    return ProxyTarget(host.strip("[]"), int(port_text))


def parse_fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except ValueError as exc:
        raise ScenarioError(f"--fault: {exc}") from None


def load_processor_factory(spec: str) -> Callable[..., object]:
    """``module:callable`` (a NetworkProcessor subclass or a function returning one), called
    with the proxy's address; imported by the simulator's one resolver."""
    target = resolve_processor_spec(spec)
    if not callable(target):
        raise ScenarioError(f"--processor {spec!r}: {target!r} cannot be called")
    return target


@dataclass(slots=True)
class ViaProxyRun:
    outages: list[Outage]
    fault: Fault
    changes: list[tuple[float, NetworkStatus]] = field(default_factory=list)
    checks: int = 0
    connections: int = 0
    real_seconds: float = 0.0


async def _simulate(
    factory: Callable[..., object],
    target: ProxyTarget,
    run: ViaProxyRun,
    horizon: float,
    settings: dict[str, float | None],
    seed: int,
) -> None:
    windows = [(outage.start, outage.end, run.fault) for outage in run.outages]
    async with OutageProxy((target.host, target.port), windows=windows) as proxy:
        arguments = (proxy.rewrite(target.url),) if target.url else (proxy.host, proxy.port)
        try:
            processor = factory(*arguments)
        except Exception as exc:  # the user's constructor: report whatever it raised
            raise ScenarioError(
                f"cannot construct the processor with {arguments!r}: {exc!r}"
            ) from exc
        if not isinstance(processor, NetworkProcessor):
            raise ScenarioError(
                f"the processor factory returned {processor!r}, not a NetworkProcessor"
            )
        for name, value in settings.items():
            if value is not None:
                setattr(processor, name, value)
        processor.rng.seed(seed)
        loop = asyncio.get_running_loop()
        processor.add_status_listener(lambda old, new: run.changes.append((loop.time(), new)))
        processor.start(0.0)
        await asyncio.sleep(horizon)
        processor.stop()
        await processor.await_cleanup()
        run.connections = len(proxy.connections)
        run.checks = sum(1 for _, status in run.changes if status is NetworkStatus.CONNECTING)


def run_via_proxy(
    processor_spec: str,
    target: ProxyTarget,
    outages: list[Outage],
    fault: Fault,
    horizon: float,
    settings: dict[str, float | None],
    seed: int,
) -> ViaProxyRun:
    """Run the processor against ``target`` through a proxy for ``horizon`` virtual seconds."""
    factory = load_processor_factory(processor_spec)
    run = ViaProxyRun(outages, fault)
    began = time.perf_counter()
    simulation_clock(horizon).run(_simulate(factory, target, run, horizon, settings, seed))
    run.real_seconds = time.perf_counter() - began
    return run


def via_proxy_report(run: ViaProxyRun, target: ProxyTarget, processor_spec: str) -> str:
    where = target.url or f"{target.host}:{target.port}"
    lines = [
        f"chronopype-sim via an OutageProxy to {where}: processor {processor_spec}, "
        f"fault {run.fault} in each outage",
        f"{run.checks} checks while not connected, {run.connections} proxied connections",
        "",
        "outage                 detected after   connected again after the end",
    ]
    for outage in run.outages:
        # Noticed: the first check that failed, from the outage's start to shortly after
        # its end (a check that began inside may end after it).
        detected = next(
            (
                t
                for t, s in run.changes
                if outage.start <= t <= outage.end + _NOTICE_SLACK and s in _DOWN
            ),
            None,
        )
        back = next(
            (t for t, s in run.changes if t >= outage.end and s is NetworkStatus.CONNECTED), None
        )
        noticed = format_seconds(detected - outage.start) if detected is not None else "missed"
        if detected is None:
            again = "-"  # never disconnected, so nothing to recover from
        elif back is None:
            again = "not in this run"
        else:
            again = format_seconds(back - outage.end)
        lines.append(f"{outage.describe():<22} {noticed:>14}   {again}")
    lines += ["", "status changes (virtual time):"]
    previous = None
    for t, status in run.changes:
        if status is not previous and status is not NetworkStatus.CONNECTING:
            lines.append(f"  {format_clock(t):>14}  {status.name}")
            previous = status
    return "\n".join(lines) + "\n"


def via_proxy_main(
    processor_spec: str | None,
    target_text: str,
    fault_text: str,
    outages: list[Outage],
    horizon: float,
    settings: dict[str, float | None],
    seed: int,
) -> int:
    """The ``--via-proxy`` branch of ``chronopype-sim``; returns the exit status."""
    try:
        if processor_spec is None:
            raise ScenarioError("--via-proxy needs --processor: the client to run against it")
        target = parse_target(target_text)
        fault = parse_fault(fault_text)
        run = run_via_proxy(processor_spec, target, outages, fault, horizon, settings, seed)
    except ScenarioError as exc:
        print(f"chronopype-sim: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(via_proxy_report(run, target, processor_spec))
    print(
        f"chronopype-sim: simulated {horizon / 3600:g} h of virtual time against a real "
        f"service in {run.real_seconds:.2f} s of real time",
        file=sys.stderr,
    )
    return 0
