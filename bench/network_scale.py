"""NetworkProcessor at scale: this working tree against the established chronopype 0.8.3.

Run ``bash bench/setup.sh`` once (it creates ``.bench/legacy``: Python 3.13 with
``chronopype==0.8.3`` from PyPI), then, with any Python >= 3.11::

    python3 bench/network_scale.py                    # everything, about 3 minutes
    python3 bench/network_scale.py --parts b,lag      # only some parts
    python3 bench/network_scale.py --quick            # short windows, a smoke run
    python3 bench/network_scale.py --ours-root /tmp/before   # measure a copy of an older tree

Both implementations share the distribution name ``chronopype``, so each runs in its own
subprocess on Python 3.13: 0.8.3 from ``.bench/legacy``, ours from the repo root (put first on
``sys.path``; it needs only the standard library). Interpreters start isolated (``-I``) and each
worker reports where it imported chronopype from.

The workload code is the same for both: one ``Probe`` subclass of the implementation's
``NetworkProcessor`` (built by ``_probe_class``; it adds no per-instance state), whose
``check_network`` counts the call and either returns CONNECTED at once or hangs until the
check timeout cancels it. The logger drops everything below CRITICAL, so no I/O is measured.
All parts run on a real asyncio event loop in real time: these are benchmarks, not tests.

Parts:

- ``a``: memory per processor, created and started until every one is CONNECTED (its first
  check done), for N = 1,000 and 10,000: tracemalloc delta / N and RSS delta / N (separate
  subprocesses, since tracemalloc's own bookkeeping inflates RSS). Then "over time": checks
  every 0.1 s until every processor's latency window is full (100 entries, the default
  ``stats_window_size`` of both), measured again. Under tracemalloc 0.8.3 manages only
  ~2,000 checks/s, so that run uses N = 100 (RSS: N = 1,000).
- ``b``: 1,000 processors whose check returns CONNECTED at once, interval 0.1 s: CPU-seconds
  (``time.process_time``) per wall-second and checks per second over ``--cpu-seconds`` (10 s).
- ``c``: wall time to create, start (until all CONNECTED), stop and ``await_cleanup`` 1,000
  processors, plus any task left behind.
- ``d``: 1,000 processors whose checks all hang, ``check_network_timeout=0.1``: how the
  second (and third) attempts spread in time: max-min and p5-p95 of their start times.
- ``obs`` (ours only): parts b and a's N=1,000 tracemalloc row again, each processor with one
  observer of its own (``add_observer``, a closure counting events), against the same run with
  none: the cost of events when someone listens (issue 11). Without observers no event is
  built, so parts a and b measure the unobserved path.
- ``lag``: 10,000 processors at a 10 s interval, with a probe task that sleeps 0.01 s again and
  again and records the overshoot: loop lag p50/p99/max over ``--lag-seconds`` (12 s, so one
  full round of 10,000 checks falls inside).

Parts b and c are repeated ``--repeats`` times (3), in rounds that alternate the order of the
two implementations, and reported as medians. The machine has 2 cores shared with other
people's work: trust medians, and rerun before believing a difference of less than ~10-20%.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPLEMENTATIONS = ("ours", "legacy")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# -- the workload: runs inside one implementation's interpreter -------------------------------


class _Counters:
    """Workload state kept outside the processors, so the probe adds nothing per instance."""

    checks = 0
    events = 0
    hang = False
    observe = False
    # id(processor) -> loop.time() at the start of each of its checks (part d only).
    starts: dict[int, list[float]] | None = None


def _load(implementation: str, ours_root: str) -> tuple[Any, Any, str]:
    """(NetworkProcessor, NetworkStatus, where chronopype was imported from)."""
    if implementation == "ours":
        sys.path.insert(0, ours_root)
        import chronopype
        from chronopype.processors import NetworkProcessor, NetworkStatus

        return NetworkProcessor, NetworkStatus, f"working tree ({Path(chronopype.__file__).parent})"
    from importlib import import_module
    from importlib.metadata import version

    network = import_module("chronopype.processors.network")
    origin = f"chronopype {version('chronopype')} ({Path(network.__file__ or '?').parent})"
    return network.NetworkProcessor, network.NetworkStatus, origin


def _probe_class(base: Any, status: Any) -> Any:
    """The one processor class both implementations run; API differences are handled here."""
    bench_logger = logging.getLogger("bench.network_scale")
    bench_logger.setLevel(logging.CRITICAL)
    bench_logger.propagate = False
    bench_logger.addHandler(logging.NullHandler())
    connected = status.CONNECTED

    class Probe(base):  # type: ignore[misc]
        __slots__ = ()  # ours uses slots; don't let the probe add a __dict__ to it

        @classmethod
        def logger(cls) -> logging.Logger:
            return bench_logger

        async def check_network(self) -> Any:
            _Counters.checks += 1
            starts = _Counters.starts
            if starts is not None:
                loop = asyncio.get_running_loop()
                starts.setdefault(id(self), []).append(loop.time())
            if _Counters.hang:
                await asyncio.get_running_loop().create_future()  # until the timeout cancels it
            return connected

    return Probe


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


async def _until_all(processors: list[Any], wanted: Any, limit: float) -> float:
    """Wait (polling every 10 ms) until every processor has status ``wanted``; seconds taken."""
    began = time.perf_counter()
    while any(p.network_status is not wanted for p in processors):
        if time.perf_counter() - began > limit:
            missing = sum(p.network_status is not wanted for p in processors)
            raise RuntimeError(f"{missing} processor(s) not {wanted} after {limit} s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - began


async def _shutdown(processors: list[Any]) -> None:
    for processor in processors:
        processor.stop()
    for processor in processors:
        await processor.await_cleanup()


def _started(probe: Any, count: int, interval: float, timeout: float | None = None) -> list[Any]:
    processors = [probe() for _ in range(count)]
    for processor in processors:
        processor.check_network_interval = interval
        if timeout is not None:
            processor.check_network_timeout = timeout
    if _Counters.observe:
        for processor in processors:
            processor.add_observer(_event_counter())
    now = time.time()
    for processor in processors:
        processor.start(now)
    return processors


def _event_counter() -> Callable[[Any], None]:
    """One observer per processor, as a real one (say the OpenTelemetry one) would be."""

    def observe(event: Any) -> None:
        _Counters.events += 1

    return observe


async def _memory(probe: Any, status: Any, count: int, how: str, fill: float) -> dict[str, Any]:
    """Bytes per processor once all are CONNECTED; with ``fill`` > 0, again once every latency
    window is full (checking every 0.1 s, for at most ``fill`` seconds)."""
    await asyncio.sleep(0)
    gc.collect()
    if how == "tracemalloc":
        tracemalloc.start()
    measure: Callable[[], int] = (
        (lambda: tracemalloc.get_traced_memory()[0]) if how == "tracemalloc" else _rss_bytes
    )
    baseline = measure()
    processors = _started(probe, count, 0.1)
    await _until_all(processors, status.CONNECTED, 120.0)
    gc.collect()
    connected = (measure() - baseline) / count
    result: dict[str, Any] = {"connected": connected}
    if fill > 0:
        began = time.perf_counter()
        window = processors[0].state.execution_times
        while time.perf_counter() - began < fill:
            if min(len(p.state.execution_times) for p in processors) >= 100:
                break
            await asyncio.sleep(0.1)
        gc.collect()
        result["full"] = (measure() - baseline) / count
        result["checks_per_processor"] = _Counters.checks / count
        result["seconds"] = time.perf_counter() - began
        full = sum(len(p.state.execution_times) >= 100 for p in processors)
        if full < count:
            result["problem"] = f"only {full}/{count} windows full after {fill} s ({window!r:.40})"
    if how == "tracemalloc":
        tracemalloc.stop()
    await _shutdown(processors)
    return result


async def _cpu(probe: Any, status: Any, count: int, seconds: float) -> dict[str, Any]:
    processors = _started(probe, count, 0.1)
    await _until_all(processors, status.CONNECTED, 60.0)
    await asyncio.sleep(1.0)  # past the start-up burst
    checks0, cpu0, wall0 = _Counters.checks, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    checks, cpu, wall = _Counters.checks - checks0, time.process_time() - cpu0, 0.0
    wall = time.perf_counter() - wall0
    still_connected = sum(p.network_status is status.CONNECTED for p in processors)
    await _shutdown(processors)
    return {
        "cpu_per_wall": cpu / wall,
        "checks_per_s": checks / wall,
        "cpu_us_per_check": cpu / checks * 1e6,
        "events_per_check": _Counters.events / max(_Counters.checks, 1),
        "problem": None if still_connected == count else f"{count - still_connected} lost",
    }


async def _lifecycle(probe: Any, status: Any, count: int) -> dict[str, Any]:
    clock = time.perf_counter
    t0 = clock()
    processors = [probe() for _ in range(count)]
    t1 = clock()
    now = time.time()
    for processor in processors:
        processor.start(now)
    t2 = clock()
    await _until_all(processors, status.CONNECTED, 60.0)
    t3 = clock()
    for processor in processors:
        processor.stop()
    t4 = clock()
    for processor in processors:
        await processor.await_cleanup()
    t5 = clock()
    await asyncio.sleep(0)
    leftover = len(asyncio.all_tasks()) - 1
    return {
        "create_ms": (t1 - t0) * 1e3,
        "start_ms": (t2 - t1) * 1e3,
        "connect_ms": (t3 - t2) * 1e3,
        "stop_ms": (t4 - t3) * 1e3,
        "cleanup_ms": (t5 - t4) * 1e3,
        "total_ms": (t5 - t0) * 1e3,
        "problem": f"{leftover} task(s) left after await_cleanup" if leftover else None,
    }


def _spread(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    cuts = statistics.quantiles(ordered, n=20, method="inclusive")  # cuts[0] = p5, cuts[-1] = p95
    return {
        "width_ms": (ordered[-1] - ordered[0]) * 1e3,
        "p5_p95_ms": (cuts[-1] - cuts[0]) * 1e3,
        "distinct": len(set(ordered)),
    }


async def _herd(probe: Any, count: int, cap: float) -> dict[str, Any]:
    """All checks hang and time out together; how do the retries spread?"""
    _Counters.hang = True
    _Counters.starts = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    processors = _started(probe, count, 0.1, timeout=0.1)
    starts = _Counters.starts

    def settled() -> bool:
        return len(starts) == count and min(map(len, starts.values())) >= 3

    while time.perf_counter() - wall0 < cap:
        if settled():
            break
        await asyncio.sleep(0.05)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await _shutdown(processors)
    result: dict[str, Any] = {"cpu_per_wall": cpu / wall, "seconds": wall}
    for attempt in (1, 2, 3):
        times = [s[attempt - 1] for s in starts.values() if len(s) >= attempt]
        if len(times) == count:
            result[f"attempt{attempt}"] = _spread(times)
        if attempt > 1 and len(times) == count:
            # Per processor, from the previous attempt's start: the timeout plus the jittered
            # wait, so this spread is the jitter itself, free of the start-up stagger.
            gaps = [s[attempt - 1] - s[attempt - 2] for s in starts.values()]
            result[f"gap{attempt}"] = _spread(gaps)
    return result


async def _lag(probe: Any, status: Any, count: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    startup_lags: list[float] = []
    lags = startup_lags
    running = True

    async def probe_lag() -> None:
        while running:
            began = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - began - 0.01)

    probe_task = asyncio.create_task(probe_lag())
    await asyncio.sleep(0.1)
    began = time.perf_counter()
    processors = _started(probe, count, 10.0)
    connect_s = await _until_all(processors, status.CONNECTED, 120.0)
    startup_s = time.perf_counter() - began
    steady_lags: list[float] = []
    lags = steady_lags
    checks0, cpu0, wall0 = _Counters.checks, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    checks, cpu = _Counters.checks - checks0, time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    running = False
    await probe_task
    await _shutdown(processors)
    ordered = sorted(steady_lags)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "max_ms": ordered[-1] * 1e3,
        "samples": len(ordered),
        "startup_max_ms": max(startup_lags, default=0.0) * 1e3,
        "start_and_connect_s": startup_s,
        "connect_s": connect_s,
        "checks_in_window": checks,
        "cpu_per_wall": cpu / wall,
    }


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    base, status, origin = _load(args.worker, args.ours_root)
    probe = _probe_class(base, status)
    _Counters.observe = args.observe
    job: Any
    if args.job == "memory":
        job = _memory(probe, status, args.count, args.how, args.fill_cap if args.fill else 0.0)
    elif args.job == "cpu":
        job = _cpu(probe, status, args.count, args.cpu_seconds)
    elif args.job == "lifecycle":
        job = _lifecycle(probe, status, args.count)
    elif args.job == "herd":
        job = _herd(probe, args.count, args.herd_cap)
    else:
        job = _lag(probe, status, args.count, args.lag_seconds)
    result: dict[str, Any] = asyncio.run(job)
    result["origin"] = f"{origin}, Python {sys.version.split()[0]}"
    return result


# -- the driver -------------------------------------------------------------------------------


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        from _interpreters import ours_and_legacy  # drivers only: workers run with -I

        self.pythons = ours_and_legacy()
        self.origins: dict[str, str] = {}
        self.rows: list[tuple[str, str, float | None, float | None, str]] = []
        self.problems: list[str] = []

    def run(self, implementation: str, job: str, *extra: str) -> dict[str, Any]:
        a = self.args
        command = [
            str(self.pythons[implementation]), "-I", str(Path(__file__).resolve()),
            "--worker", implementation, "--job", job,
            "--fill-cap", str(a.fill_cap), "--cpu-seconds", str(a.cpu_seconds),
            "--lag-seconds", str(a.lag_seconds), "--herd-cap", str(a.herd_cap),
            "--ours-root", a.ours_root, *extra,
        ]  # fmt: skip
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=a.timeout
        )
        if completed.returncode != 0:
            raise SystemExit(f"{implementation} {job} worker failed:\n{completed.stderr}")
        result: dict[str, Any] = json.loads(completed.stdout)
        self.origins[implementation] = result["origin"]
        if result.get("problem"):
            self.problems.append(f"{implementation} {job}: {result['problem']}")
        if a.verbose:
            print(f"  {implementation} {job} {' '.join(extra)}: {result}", file=sys.stderr)
        return result

    def rounds(self, job: str, repeats: int, *extra: str) -> dict[str, list[dict[str, Any]]]:
        """``repeats`` runs of each implementation, alternating which goes first."""
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPLEMENTATIONS}
        for round_number in range(repeats):
            order = IMPLEMENTATIONS if round_number % 2 == 0 else IMPLEMENTATIONS[::-1]
            for name in order:
                results[name].append(self.run(name, job, *extra))
        return results

    def row(
        self,
        label: str,
        unit: str,
        results: dict[str, list[dict[str, Any]]],
        pick: Callable[[dict[str, Any]], float],
        note: str = "",
    ) -> None:
        ours, legacy = (
            statistics.median(pick(r) for r in results[name]) if results[name] else None
            for name in IMPLEMENTATIONS
        )
        self.rows.append((label, unit, ours, legacy, note))

    def table(self) -> None:
        print()
        print(f"{'figure':<52} {'unit':<8} {'ours':>10} {'0.8.3':>10} {'ours/0.8.3':>10}")
        for label, unit, ours, legacy, note in self.rows:
            if not unit:
                print(f"{label}")
                continue
            ratio = f"{ours / legacy:.2f}x" if ours is not None and legacy else "-"
            print(
                f"{label:<52} {unit:<8} {_fmt(ours):>10} {_fmt(legacy):>10} {ratio:>10}"
                f"{'  ' + note if note else ''}"
            )

    def value(self, label: str, implementation: str) -> float | None:
        for row_label, _unit, ours, legacy, _note in self.rows:
            if row_label == label:
                return ours if implementation == "ours" else legacy
        return None


def _field(*keys: str) -> Callable[[dict[str, Any]], float]:
    def pick(result: dict[str, Any]) -> float:
        value: Any = result
        for key in keys:
            value = value[key]
        return float(value)

    return pick


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="a,b,c,d,lag", help="comma-separated: a,b,c,d,lag,obs")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of parts b and c")
    parser.add_argument(
        "--fill-cap", type=float, default=40.0, help="longest wait for full windows, seconds"
    )
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    parser.add_argument("--lag-seconds", type=float, default=12.0)
    parser.add_argument("--herd-cap", type=float, default=7.0)
    parser.add_argument("--quick", action="store_true", help="short windows: a smoke run")
    parser.add_argument("--timeout", type=float, default=300.0, help="per worker, seconds")
    parser.add_argument(
        "--ours-root",
        default=str(REPO_ROOT),
        help="directory holding the chronopype package to measure as ours (a copy of an older "
        "tree, for before/after figures); default: this working tree",
    )
    parser.add_argument("--verbose", action="store_true", help="print every worker's result")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--how", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--observe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(_worker(args)))
        return
    if args.quick:
        args.fill_cap, args.cpu_seconds, args.lag_seconds = 2.0, 2.0, 2.0
        args.repeats = 1
    parts = set(args.parts.split(","))
    unknown = parts - {"a", "b", "c", "d", "lag", "obs"}
    if unknown:
        raise SystemExit(f"unknown part(s): {', '.join(sorted(unknown))}")
    driver = Driver(args)
    began = time.perf_counter()

    if "a" in parts:
        driver.rows.append(
            ("(a) memory per processor, started until CONNECTED", "", None, None, "")
        )
        for count in (1_000, 10_000):
            for how in ("tracemalloc", "rss"):
                results = driver.rounds("memory", 1, "--count", str(count), "--how", how)
                driver.row(f"  N={count:,} {how}", "B", results, _field("connected"))
        driver.rows.append(
            ("    ... then checking every 0.1 s until every latency window is full", "", None,
             None, "")
        )  # fmt: skip
        for count, how in ((100, "tracemalloc"), (1_000, "rss")):
            extra = ("--count", str(count), "--how", how, "--fill")
            results = driver.rounds("memory", 1, *extra)
            checks = [results[name][0]["checks_per_processor"] for name in IMPLEMENTATIONS]
            driver.row(f"  N={count:,} {how}, CONNECTED", "B", results, _field("connected"))
            driver.row(
                f"  N={count:,} {how}, window full", "B", results, _field("full"),
                note=f"checks/processor: ours {checks[0]:.0f}, 0.8.3 {checks[1]:.0f}",
            )  # fmt: skip
        print("part a done", file=sys.stderr)

    if "b" in parts:
        driver.rows.append(
            (f"(b) 1,000 processors CONNECTED, interval 0.1 s, {args.cpu_seconds:g} s window, "
             f"median of {args.repeats}", "", None, None, "")
        )  # fmt: skip
        results = driver.rounds("cpu", args.repeats, "--count", "1000")
        driver.row("  CPU-seconds per wall-second", "s/s", results, lambda r: r["cpu_per_wall"])
        driver.row("  checks per second", "1/s", results, lambda r: r["checks_per_s"])
        driver.row("  CPU per check", "us", results, lambda r: r["cpu_us_per_check"])
        print("part b done", file=sys.stderr)

    if "c" in parts:
        driver.rows.append(
            (f"(c) lifecycle of 1,000 processors, median of {args.repeats}", "", None, None, "")
        )
        results = driver.rounds("lifecycle", args.repeats, "--count", "1000")
        for key, label in (
            ("create_ms", "create"),
            ("start_ms", "start()"),
            ("connect_ms", "until all CONNECTED"),
            ("stop_ms", "stop()"),
            ("cleanup_ms", "await_cleanup()"),
            ("total_ms", "total"),
        ):
            driver.row(f"  {label}", "ms", results, _field(key))
        print("part c done", file=sys.stderr)

    if "d" in parts:
        driver.rows.append(
            ("(d) 1,000 checks hang, check_network_timeout=0.1: attempt start times", "", None,
             None, "")
        )  # fmt: skip
        results = driver.rounds("herd", 1, "--count", "1000")
        # Nominal waits, ours | 0.8.3: ours backs off 1, 2, 4 s (+-10%, never below 1 s); 0.8.3
        # 2, 4, 8 s (+-10%, from time.time() % 1), minus the time the check took.
        for attempt, nominal in ((1, "start"), (2, "wait 1 s | 2 s"), (3, "wait 2 s | 4 s")):
            key = f"attempt{attempt}"
            if not all(key in results[name][0] for name in IMPLEMENTATIONS):
                continue
            driver.row(
                f"  attempt {attempt} ({nominal}): max - min", "ms", results,
                _field(key, "width_ms"),
            )  # fmt: skip
            driver.row(
                f"  attempt {attempt} ({nominal}): p5 - p95", "ms", results,
                _field(key, "p5_p95_ms"),
            )  # fmt: skip
            driver.row(
                f"  attempt {attempt}: distinct start times", "count", results,
                _field(key, "distinct"),
            )  # fmt: skip
            if attempt > 1:
                gap = f"gap{attempt}"
                driver.row(
                    f"  attempt {attempt} - attempt {attempt - 1}, per processor: max - min",
                    "ms", results, _field(gap, "width_ms"),
                )  # fmt: skip
                driver.row(
                    f"  attempt {attempt} - attempt {attempt - 1}, per processor: p5 - p95",
                    "ms", results, _field(gap, "p5_p95_ms"),
                )  # fmt: skip
        print("part d done", file=sys.stderr)

    if "lag" in parts:
        driver.rows.append(
            (f"(lag) 10,000 processors, interval 10 s, probe sleeps 0.01 s, "
             f"{args.lag_seconds:g} s window", "", None, None, "")
        )  # fmt: skip
        results = driver.rounds("lag", 1, "--count", "10000")
        driver.row("  loop lag p50", "ms", results, lambda r: r["p50_ms"])
        driver.row("  loop lag p99", "ms", results, lambda r: r["p99_ms"])
        driver.row("  loop lag max", "ms", results, lambda r: r["max_ms"])
        driver.row("  checks in the window", "count", results, lambda r: r["checks_in_window"])
        driver.row("  CPU-seconds per wall-second", "s/s", results, lambda r: r["cpu_per_wall"])
        driver.row("  start all + until all CONNECTED", "s", results,
                   lambda r: r["start_and_connect_s"])  # fmt: skip
        driver.row("  worst lag during that start-up", "ms", results,
                   lambda r: r["startup_max_ms"])  # fmt: skip
        print("part lag done", file=sys.stderr)

    observed = _observer_cost(driver) if "obs" in parts else []

    print("NetworkProcessor at scale: ours vs chronopype 0.8.3 (2 shared cores: noisy)")
    for name, origin in driver.origins.items():
        print(f"  {name:6}: {origin}")
    driver.table()
    _targets(driver)
    for line in observed:
        print(line)
    for problem in driver.problems:
        print(f"WRONG: {problem}")
    print(f"\n(bench took {time.perf_counter() - began:.0f} s)")


def _observer_cost(driver: Driver) -> list[str]:
    """Part obs: ours with one observer per processor against ours with none, alternating."""
    runs: dict[str, list[dict[str, Any]]] = {"none": [], "one": []}
    for round_number in range(driver.args.repeats):
        order = ("none", "one") if round_number % 2 == 0 else ("one", "none")
        for mode in order:
            extra = ("--observe",) if mode == "one" else ()
            runs[mode].append(driver.run("ours", "cpu", "--count", "1000", *extra))
    memory = {
        mode: driver.run("ours", "memory", "--count", "1000", "--how", "tracemalloc", *extra)
        for mode, extra in (("none", ()), ("one", ("--observe",)))
    }

    def median(mode: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[mode])

    rows = [
        ("CPU per check", "us", median("none", "cpu_us_per_check"),
         median("one", "cpu_us_per_check")),
        ("checks per second", "1/s", median("none", "checks_per_s"),
         median("one", "checks_per_s")),
        ("events per check", "count", median("none", "events_per_check"),
         median("one", "events_per_check")),
        ("memory per processor (N=1,000 tracemalloc)", "B", memory["none"]["connected"],
         memory["one"]["connected"]),
    ]  # fmt: skip
    lines = [
        "",
        f"(obs) 1,000 processors CONNECTED, interval 0.1 s, {driver.args.cpu_seconds:g} s "
        f"window, median of {driver.args.repeats}: no observer vs one observer each (ours)",
        f"{'figure':<52} {'unit':<8} {'none':>10} {'one each':>10} {'one/none':>10}",
    ]
    for label, unit, none, one in rows:
        ratio = f"{one / none:.2f}x" if none else "-"
        lines.append(f"  {label:<50} {unit:<8} {_fmt(none):>10} {_fmt(one):>10} {ratio:>10}")
    extra_us = median("one", "cpu_us_per_check") - median("none", "cpu_us_per_check")
    lines.append(f"  one observer costs {extra_us:+.2f} us of CPU per check")
    return lines


def _targets(driver: Driver) -> None:
    lines: list[str] = []

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    for count in (1_000, 10_000):
        ours, legacy = (driver.value(f"  N={count:,} tracemalloc", n) for n in IMPLEMENTATIONS)
        if ours and legacy:
            lines.append(
                f"memory per started processor, N={count:,}: ours/0.8.3 {ours / legacy:.2f}x "
                f"(target <= 0.5x): {verdict(ours / legacy <= 0.5)}"
            )
    started, full = (
        [driver.value(f"  N=100 tracemalloc, {when}", n) for n in IMPLEMENTATIONS]
        for when in ("CONNECTED", "window full")
    )
    if all(started) and all(full):
        assert started[0] and started[1] and full[0] and full[1]
        growth = full[0] / started[0] - 1
        lines.append(
            f"memory with full windows: ours/0.8.3 {full[0] / full[1]:.2f}x (target <= 0.5x): "
            f"{verdict(full[0] / full[1] <= 0.5)}; ours grows {growth:+.0%} from started "
            f"(0.8.3: {full[1] / started[1] - 1:+.0%}); flat (within 10%): "
            f"{verdict(abs(growth) <= 0.10)}"
        )
    ours, legacy = (
        driver.value("  CPU per check", "ours"),
        driver.value("  CPU per check", "legacy"),
    )
    if ours and legacy:
        lines.append(
            f"CPU per check: ours/0.8.3 {ours / legacy:.2f}x (target <= 0.5x): "
            f"{verdict(ours / legacy <= 0.5)}"
        )
    ours_lag = driver.value("  loop lag p99", "ours")
    if ours_lag is not None:
        lines.append(
            f"10,000 processors at 10 s: ours loop lag p99 {ours_lag:.2f} ms (target < 5 ms): "
            f"{verdict(ours_lag < 5.0)}"
        )
    if lines:
        print("\nTargets (issue 7):")
        for line in lines:
            print(f"  {line}")


if __name__ == "__main__":
    main()
