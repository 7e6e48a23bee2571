"""``chronopype-sim --via-proxy``: the simulator's outage scenario against a real service.

Instead of pretending that checks fail inside an outage, the simulator starts an OutageProxy
in front of the real service, turns each outage into a fault window (``--fault``, default
``refuse``), and runs the user's processor, pointed at the proxy, on a FakeClock: the
processor's own client meets real refused connections, resets, black holes or latency. The
report is the simulator's own, from the same analysis of the processor's events; only the
failures are real, and each check keeps its real outcome (timed out, raised...).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from chronopype.processors.network import NetworkProcessor
from chronopype_testing._proxy import OutageProxy
from chronopype_testing._proxy_faults import Fault
from chronopype_testing._sim_analysis import RunAnalysis
from chronopype_testing._sim_report import ReportHeader, text_report
from chronopype_testing._sim_run import observe_run, resolve_processor_spec, simulation_clock
from chronopype_testing._sim_scenario import Outage, ScenarioError

__all__ = ["ProxyTarget", "ViaProxyRun", "parse_target", "run_via_proxy", "via_proxy_report"]


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
    connections: int = 0
    real_seconds: float = 0.0


async def _simulate(
    factory: Callable[..., object],
    target: ProxyTarget,
    run: ViaProxyRun,
    analysis: RunAnalysis,
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
        analysis.settings_known(
            processor.check_network_interval,
            processor.check_network_timeout,
            processor.network_error_wait_time,
        )
        # The same analysis and report as a simulated run; only the failures are real.
        detach = observe_run(processor, run.outages, analysis, outage_reason=False)
        processor.start(0.0)
        try:
            await asyncio.sleep(horizon)
        finally:
            processor.stop()
            await processor.await_cleanup()
            detach()
        run.connections = len(proxy.connections)


def run_via_proxy(
    processor_spec: str,
    target: ProxyTarget,
    outages: list[Outage],
    fault: Fault,
    horizon: float,
    settings: dict[str, float | None],
    seed: int,
) -> tuple[ViaProxyRun, RunAnalysis]:
    """Run the processor against ``target`` through a proxy for ``horizon`` virtual seconds."""
    factory = load_processor_factory(processor_spec)
    run = ViaProxyRun(outages, fault)
    analysis = RunAnalysis(horizon, outages)
    began = time.perf_counter()
    simulation_clock(horizon).run(
        _simulate(factory, target, run, analysis, horizon, settings, seed)
    )
    run.real_seconds = time.perf_counter() - began
    return run, analysis.finish()


def via_proxy_report(
    run: ViaProxyRun,
    analysis: RunAnalysis,
    target: ProxyTarget,
    header: ReportHeader,
    *,
    ascii_only: bool = False,
) -> str:
    where = target.url or f"{target.host}:{target.port}"
    first = (
        f"chronopype-sim via an OutageProxy to {where}: fault {run.fault} in each outage, "
        f"{run.connections} proxied connections\n"
    )
    return first + text_report(analysis, header, ascii_only=ascii_only)


def via_proxy_main(
    processor_spec: str | None,
    target_text: str,
    fault_text: str,
    outages: list[Outage],
    horizon: float,
    settings: dict[str, float | None],
    header: ReportHeader,
    *,
    ascii_only: bool,
) -> int:
    """The ``--via-proxy`` branch of ``chronopype-sim``; returns the exit status."""
    try:
        if processor_spec is None:
            raise ScenarioError("--via-proxy needs --processor: the client to run against it")
        target = parse_target(target_text)
        fault = parse_fault(fault_text)
        run, analysis = run_via_proxy(
            processor_spec, target, outages, fault, horizon, settings, header.seed
        )
    except ScenarioError as exc:
        print(f"chronopype-sim: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(via_proxy_report(run, analysis, target, header, ascii_only=ascii_only))
    print(
        f"chronopype-sim: simulated {horizon / 3600:g} h of virtual time against a real "
        f"service in {run.real_seconds:.2f} s of real time",
        file=sys.stderr,
    )
    return 0
