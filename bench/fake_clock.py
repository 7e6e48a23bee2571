"""Fake-clock benchmark: chronopype_testing.FakeClock against the fake clocks people use today.

Run ``bash bench/setup.sh`` once, then ``.bench/peers/bin/python bench/fake_clock.py``.

Implementations, each measured in its own subprocess, all in one run of this script:

- ``ours``: ``chronopype_testing.FakeClock().run(main())``, from this working tree (the repo root
  is put on PYTHONPATH).
- ``looptime``: ``asyncio.Runner(loop_factory=looptime.new_event_loop)``.
- ``async-solipsism``: ``asyncio.Runner(loop_factory=async_solipsism.EventLoop)``.
- ``aiotools``: ``asyncio.run`` of a coroutine that enters ``aiotools.VirtualClock().patch_loop()``.
- ``trio``: ``trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))``, with the trio
  equivalents of the workloads (``trio.sleep``, ``trio.fail_after``).

Workloads, the same virtual program for every implementation; all tasks start at virtual time
``t0`` (the clock's reading when the workload starts):

A. 1000 concurrent tasks; task ``i`` sleeps 100 times in a row. The delays are drawn from
   ``random.Random(20261130).uniform(0.001, 300)``, task 0's hundred first, so every
   implementation sleeps exactly the same delays. Task ``i`` must wake from each sleep at its
   deadline (clock before the sleep + delay) and end at ``t0`` plus the float sum of its delays.
B. 2000 concurrent tasks; task ``i`` awaits ``asyncio.wait_for(never_finishing(), 5)``, where
   ``never_finishing`` waits on an ``asyncio.Event`` nobody sets, so it must time out at
   ``t0 + 5``. The task then sleeps the backoff ``min(2 ** (i % 10), 300)`` s (1, 2, 4, ... 256,
   then 300 for ``i % 10 == 9``) and must end at ``t0 + 5 + backoff``. In trio:
   ``with trio.fail_after(5): await trio.Event().wait()``, catching ``trio.TooSlowError``.

Timing: wall time (``time.perf_counter``) of the whole run call, loop creation and closing
included, excluding interpreter start and imports. Rounds are interleaved (every implementation
runs once per round, in a rotating order) so that load from other users of the machine spreads
over all of them, and the table reports the median of the rounds.

Correctness: every run is checked, outside the timed region, and a run that is wrong is shown
as WRONG, never dropped. A run is wrong when a task is missing, a timeout count differs, any
wake-up comes more than ``EARLY_TOLERANCE`` before its deadline, or a task's end time differs
from the exact expectation by more than ``END_TOLERANCE``. The check column says ``exact`` when
every wake-up is within ``EXACT_TOLERANCE`` of its deadline, else the worst early/late offset.

``--instructions`` counts instructions under valgrind (callgrind) instead of timing: load-free,
for differences too small for the timing medians on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_ENVS = REPO_ROOT / ".bench"

SEED_A = 20261130
TASKS_A = 1000
SLEEPS_PER_TASK_A = 100
DELAY_RANGE_A = (0.001, 300.0)

TASKS_B = 2000
TIMEOUT_B = 5.0
BACKOFF_CAP_B = 300


def backoff_b(task_index: int) -> float:
    return float(min(2 ** (task_index % 10), BACKOFF_CAP_B))


# Float rounding of an exact implementation is far below a nanosecond at these magnitudes
# (one ulp of 3e4 s is 4e-12 s); looptime and async-solipsism document a 1 µs clock resolution,
# so a wake-up up to 1 µs early is their quantisation, and anything earlier is a timer fired early.
EXACT_TOLERANCE = 1e-9
EARLY_TOLERANCE = 1e-6
END_TOLERANCE = 1e-3

PEERS = ("looptime", "async-solipsism", "aiotools", "trio")
# Not peers, references: plain asyncio running the same tasks with every delay 0 (the floor no
# fake clock can beat: task switches without timers), and ours with time-machine's public
# Traveller.shift() instead of the plain attribute store on every jump (issue 12, point 8).
FLOOR = "asyncio-floor"
OURS_PUBLIC_TM = "ours-tm-public"
REFERENCES = (FLOOR, OURS_PUBLIC_TM)


@functools.cache
def delays_a() -> list[list[float]]:
    rng = random.Random(SEED_A)
    low, high = DELAY_RANGE_A
    return [[rng.uniform(low, high) for _ in range(SLEEPS_PER_TASK_A)] for _ in range(TASKS_A)]


# ---------------------------------------------------------------------------------------------
# Workloads. Each returns raw observations; checking happens after the clock stops.


@dataclass
class TaskTrace:
    """What one task observed: when it ended and how far its wake-ups strayed from deadlines."""

    end: float
    earliest_lag: float = math.inf  # most negative (wake - deadline): an early wake-up
    latest_lag: float = -math.inf
    timed_out_at: float | None = None


@dataclass
class Observation:
    start: float
    traces: list[TaskTrace] = field(default_factory=list)


def zero_delays(delays: list[list[float]]) -> list[list[float]]:
    return [[0.0] * len(task_delays) for task_delays in delays]


async def workload_a_asyncio(delays: list[list[float]]) -> Observation:
    now = asyncio.get_running_loop().time
    start = now()

    async def sleeper(task_delays: list[float]) -> TaskTrace:
        earliest, latest = math.inf, -math.inf
        for delay in task_delays:
            deadline = now() + delay
            await asyncio.sleep(delay)
            lag = now() - deadline
            earliest = min(earliest, lag)
            latest = max(latest, lag)
        return TaskTrace(end=now(), earliest_lag=earliest, latest_lag=latest)

    traces = await asyncio.gather(*(sleeper(task_delays) for task_delays in delays))
    return Observation(start=start, traces=list(traces))


async def never_finishing() -> None:
    await asyncio.Event().wait()


async def workload_b_asyncio(task_count: int, *, floor: bool = False) -> Observation:
    now = asyncio.get_running_loop().time
    start = now()
    timeout = 0.0 if floor else TIMEOUT_B

    async def worker(index: int) -> TaskTrace:
        timed_out_at = None
        try:
            await asyncio.wait_for(never_finishing(), timeout)
        except TimeoutError:
            timed_out_at = now()
        backoff = 0.0 if floor else backoff_b(index)
        deadline = now() + backoff
        await asyncio.sleep(backoff)
        lag = now() - deadline
        return TaskTrace(end=now(), earliest_lag=lag, latest_lag=lag, timed_out_at=timed_out_at)

    traces = await asyncio.gather(*(worker(index) for index in range(task_count)))
    return Observation(start=start, traces=list(traces))


async def workload_a_trio(delays: list[list[float]]) -> Observation:
    import trio

    now = trio.current_time
    observation = Observation(start=now())
    traces: list[TaskTrace | None] = [None] * len(delays)

    async def sleeper(index: int, task_delays: list[float]) -> None:
        earliest, latest = math.inf, -math.inf
        for delay in task_delays:
            deadline = now() + delay
            await trio.sleep(delay)
            lag = now() - deadline
            earliest = min(earliest, lag)
            latest = max(latest, lag)
        traces[index] = TaskTrace(end=now(), earliest_lag=earliest, latest_lag=latest)

    async with trio.open_nursery() as nursery:
        for index, task_delays in enumerate(delays):
            nursery.start_soon(sleeper, index, task_delays)
    observation.traces = [trace for trace in traces if trace is not None]
    return observation


async def workload_b_trio(task_count: int) -> Observation:
    import trio

    now = trio.current_time
    observation = Observation(start=now())
    traces: list[TaskTrace | None] = [None] * task_count

    async def worker(index: int) -> None:
        timed_out_at = None
        try:
            with trio.fail_after(TIMEOUT_B):
                await trio.Event().wait()
        except trio.TooSlowError:
            timed_out_at = now()
        backoff = backoff_b(index)
        deadline = now() + backoff
        await trio.sleep(backoff)
        lag = now() - deadline
        traces[index] = TaskTrace(
            end=now(), earliest_lag=lag, latest_lag=lag, timed_out_at=timed_out_at
        )

    async with trio.open_nursery() as nursery:
        for index in range(task_count):
            nursery.start_soon(worker, index)
    observation.traces = [trace for trace in traces if trace is not None]
    return observation


# ---------------------------------------------------------------------------------------------
# Runners: how each implementation runs a workload. Each returns (timing, observation).

AsyncioMain = Callable[[], Coroutine[Any, Any, Observation]]


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process's CPU time: less disturbed than wall time by other users' load


def timed(run: Callable[[], Observation]) -> tuple[Timing, Observation]:
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    observation = run()
    timing = Timing(time.perf_counter() - wall_started, time.process_time() - cpu_started)
    return timing, observation


def run_ours(main: AsyncioMain) -> tuple[Timing, Observation]:
    from chronopype_testing import FakeClock

    return timed(lambda: FakeClock().run(main()))


def run_ours_public_time_machine(main: AsyncioMain) -> tuple[Timing, Observation]:
    from chronopype_testing import FakeClock, _loop

    # Every jump then goes through Traveller.shift() and reads time_ns() back.
    _loop._VirtualTimeLoop._can_set_traveller_ns = staticmethod(lambda traveller: False)  # type: ignore[method-assign]
    return timed(lambda: FakeClock().run(main()))


def run_floor(main: AsyncioMain) -> tuple[Timing, Observation]:
    return timed(lambda: asyncio.run(main()))


def run_looptime(main: AsyncioMain) -> tuple[Timing, Observation]:
    import looptime

    def run() -> Observation:
        with asyncio.Runner(loop_factory=looptime.new_event_loop) as runner:
            return runner.run(main())

    return timed(run)


def run_async_solipsism(main: AsyncioMain) -> tuple[Timing, Observation]:
    import async_solipsism

    def run() -> Observation:
        with asyncio.Runner(loop_factory=async_solipsism.EventLoop) as runner:
            return runner.run(main())

    return timed(run)


def run_aiotools(main: AsyncioMain) -> tuple[Timing, Observation]:
    from aiotools import VirtualClock

    async def patched_main() -> Observation:
        # patch_loop replaces the running loop's time() and selector, so it must be entered
        # inside the loop, before the workload reads the clock.
        with VirtualClock().patch_loop():
            return await main()

    return timed(lambda: asyncio.run(patched_main()))


def run_trio_workload(workload: str) -> tuple[Timing, Observation]:
    import trio
    import trio.testing

    if workload == "A":
        delays = delays_a()

        async def main() -> Observation:
            return await workload_a_trio(delays)
    else:

        async def main() -> Observation:
            return await workload_b_trio(TASKS_B)

    return timed(lambda: trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)))


ASYNCIO_RUNNERS: dict[str, Callable[[AsyncioMain], tuple[Timing, Observation]]] = {
    "ours": run_ours,
    OURS_PUBLIC_TM: run_ours_public_time_machine,
    FLOOR: run_floor,
    "looptime": run_looptime,
    "async-solipsism": run_async_solipsism,
    "aiotools": run_aiotools,
}

DISTRIBUTIONS = {
    "ours": "time-machine",
    OURS_PUBLIC_TM: "time-machine",
    FLOOR: "pip",
    "looptime": "looptime",
    "async-solipsism": "async-solipsism",
    "aiotools": "aiotools",
    "trio": "trio",
}


def run_workload(implementation: str, workload: str) -> tuple[Timing, Observation]:
    if implementation == "trio":
        return run_trio_workload(workload)
    runner = ASYNCIO_RUNNERS[implementation]
    floor = implementation == FLOOR
    if workload == "A":
        delays = zero_delays(delays_a()) if floor else delays_a()
        return runner(lambda: workload_a_asyncio(delays))
    return runner(lambda: workload_b_asyncio(TASKS_B, floor=floor))


# ---------------------------------------------------------------------------------------------
# Checks.


@dataclass
class Check:
    problems: list[str]
    earliest_lag: float
    latest_lag: float

    @property
    def wrong(self) -> bool:
        return bool(self.problems)

    def summary(self) -> str:
        if self.problems:
            return "WRONG: " + "; ".join(self.problems)
        if self.earliest_lag >= -EXACT_TOLERANCE and self.latest_lag <= EXACT_TOLERANCE:
            return "exact"
        return f"ok, wake-ups {format_offset(self.earliest_lag)}..{format_offset(self.latest_lag)}"


def format_offset(seconds: float) -> str:
    if seconds == 0:
        return "0"
    magnitude = abs(seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if magnitude >= scale:
            return f"{seconds / scale:+.3g}{unit}"
    return f"{seconds:+.1e}s"


def check_wake_ups(traces: Sequence[TaskTrace], problems: list[str]) -> tuple[float, float]:
    earliest = min(trace.earliest_lag for trace in traces)
    latest = max(trace.latest_lag for trace in traces)
    early_tasks = sum(trace.earliest_lag < -EARLY_TOLERANCE for trace in traces)
    if early_tasks:
        problems.append(
            f"{early_tasks} tasks woke early, worst {format_offset(earliest)} before deadline"
        )
    return earliest, latest


def check_ends(
    traces: Sequence[TaskTrace], expected_ends: Sequence[float], problems: list[str]
) -> None:
    deviations = [
        abs(trace.end - expected)
        for trace, expected in zip(traces, expected_ends, strict=True)
    ]
    off = sum(deviation > END_TOLERANCE for deviation in deviations)
    if off:
        worst = max(deviations)
        problems.append(f"{off} tasks ended up to {format_offset(worst).lstrip('+')} off")


def check_a(observation: Observation) -> Check:
    problems: list[str] = []
    traces = observation.traces
    if len(traces) != TASKS_A:
        problems.append(f"{len(traces)} of {TASKS_A} tasks finished")
        return Check(problems, math.nan, math.nan)
    expected_ends = []
    for task_delays in delays_a():
        end = observation.start
        for delay in task_delays:
            end += delay
        expected_ends.append(end)
    check_ends(traces, expected_ends, problems)
    earliest, latest = check_wake_ups(traces, problems)
    return Check(problems, earliest, latest)


def check_b(observation: Observation) -> Check:
    problems: list[str] = []
    traces = observation.traces
    if len(traces) != TASKS_B:
        problems.append(f"{len(traces)} of {TASKS_B} tasks finished")
        return Check(problems, math.nan, math.nan)
    timeouts = [trace.timed_out_at for trace in traces if trace.timed_out_at is not None]
    if len(timeouts) != TASKS_B:
        problems.append(f"{len(timeouts)} timeouts, expected {TASKS_B}")
    expected_timeout = observation.start + TIMEOUT_B
    timeout_lags = [at - expected_timeout for at in timeouts]
    early_timeouts = sum(lag < -EARLY_TOLERANCE for lag in timeout_lags)
    if early_timeouts:
        problems.append(f"{early_timeouts} timeouts fired early")
    late_timeouts = sum(lag > END_TOLERANCE for lag in timeout_lags)
    if late_timeouts:
        problems.append(f"{late_timeouts} timeouts fired late")
    expected_ends = [expected_timeout + backoff_b(index) for index in range(TASKS_B)]
    check_ends(traces, expected_ends, problems)
    earliest, latest = check_wake_ups(traces, problems)
    if timeout_lags:
        earliest = min(earliest, *timeout_lags)
        latest = max(latest, *timeout_lags)
    return Check(problems, earliest, latest)


# ---------------------------------------------------------------------------------------------
# Worker: one implementation, one workload, one round; prints one JSON line.


def worker_main(implementation: str, workload: str, repeat: int, check: bool) -> None:
    from importlib.metadata import version

    report: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        report["version"] = version(DISTRIBUTIONS[implementation])
        if implementation in ("ours", OURS_PUBLIC_TM):
            report["version"] = "working tree, time-machine " + report["version"]
        if implementation == FLOOR:
            report["version"] = f"asyncio of Python {report['python']}, every delay 0"
        report.update(wall=[], cpu=[], checks=[], wrong=False)
        for _ in range(repeat):
            timing, observation = run_workload(implementation, workload)
            report["wall"].append(timing.wall)
            report["cpu"].append(timing.cpu)
            if not check or implementation == FLOOR:  # the floor runs other delays: no check
                continue
            verdict = check_a(observation) if workload == "A" else check_b(observation)
            report["checks"].append(verdict.summary())
            report["wrong"] = report["wrong"] or verdict.wrong
    except BaseException as error:  # a peer that crashes is reported, not hidden
        report["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        report["traceback"] = traceback.format_exc()
    print(json.dumps(report), flush=True)


# ---------------------------------------------------------------------------------------------
# Orchestrator.


@dataclass(frozen=True)
class Contender:
    implementation: str
    venv: str

    @property
    def python(self) -> Path:
        return BENCH_ENVS / self.venv / "bin" / "python"

    @property
    def label(self) -> str:
        if self.venv == "peers":
            return self.implementation
        return f"{self.implementation} ({self.venv})"


@dataclass
class Results:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    wrong: bool = False
    errors: list[str] = field(default_factory=list)
    python: str = "?"
    version: str = "?"

    def median(self, measure: str) -> float | None:
        samples = self.wall if measure == "wall" else self.cpu
        return statistics.median(samples) if samples else None

    def status(self) -> str:
        if self.errors:
            return f"FAILED {len(self.errors)} run(s): {self.errors[0]}"
        return " | ".join(sorted(set(self.checks))) or "not checked (other delays)"


def contenders() -> list[Contender]:
    chosen = [Contender(name, "peers") for name in ("ours", *PEERS, *REFERENCES)]
    if (BENCH_ENVS / "peers311" / "bin" / "python").exists():
        # setup.sh made it because aiotools would not run on 3.13: measure aiotools and ours on
        # 3.11 as well, so that their ratio compares one interpreter with itself.
        chosen += [Contender("ours", "peers311"), Contender("aiotools", "peers311")]
    return chosen


def run_one(contender: Contender, workload: str, repeat: int, timeout: float) -> dict[str, Any]:
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = [
        str(contender.python), str(Path(__file__).resolve()),
        "--worker", contender.implementation, "--workload", workload, "--repeat", str(repeat),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=environment
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:g} s real time"}
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        stderr = completed.stderr.strip().splitlines()
        return {"error": f"exit {completed.returncode}: {stderr[-1] if stderr else 'no output'}"}
    report: dict[str, Any] = json.loads(lines[-1])
    return report


MEASURES = ("wall", "cpu")


def format_ratio(median: float | None, fastest_peer: float | None) -> str:
    if median is None or fastest_peer is None:
        return "-"
    return f"{median / fastest_peer:.2f}x"


def format_median(median: float | None) -> str:
    return "-" if median is None else f"{median:.3f}"


Table = dict[tuple[Contender, str], Results]
FastestPeer = dict[tuple[str, str, str], float | None]  # (venv, workload, measure)


def orchestrate(rounds: dict[str, int], repeats: dict[str, int], only: set[str] | None,
                timeout: float, verbose: bool) -> int:
    chosen = [c for c in contenders() if only is None or c.implementation in only]
    missing = [c for c in chosen if not c.python.exists()]
    if missing:
        print(f"missing bench venvs ({', '.join(sorted({c.venv for c in missing}))}): "
              "run `bash bench/setup.sh` first", file=sys.stderr)
        return 2
    workloads = list(rounds)
    load_before = os.getloadavg()
    results: Table = {(c, w): Results() for c in chosen for w in workloads}
    for round_index in range(max(rounds.values())):
        shift = round_index % len(chosen)
        order = chosen[shift:] + chosen[:shift]
        for workload in workloads:
            if round_index >= rounds[workload]:
                continue
            for contender in order:
                report = run_one(contender, workload, repeats[workload], timeout)
                record(results[contender, workload], report, verbose)
                if verbose:
                    outcome = report.get("error") or (
                        f"{statistics.median(report['wall']):.3f} s wall, "
                        f"{statistics.median(report['cpu']):.3f} s cpu, "
                        f"{' | '.join(sorted(set(report['checks'])))}"
                    )
                    print(f"round {round_index + 1} {workload} {contender.label}: {outcome}",
                          file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    # Ratios compare implementations on one interpreter: each venv's own peers.
    fastest_peer: FastestPeer = {}
    for venv in {c.venv for c in chosen}:
        for workload in workloads:
            for measure in MEASURES:
                peer_medians = [
                    median for c in chosen
                    if c.venv == venv and c.implementation in PEERS
                    and (median := results[c, workload].median(measure)) is not None
                ]
                fastest_peer[venv, workload, measure] = min(peer_medians, default=None)

    print_table(chosen, workloads, results, fastest_peer)
    print()
    print_floor_multiples(chosen, workloads, results)
    print()
    print_notes(chosen, workloads, results, rounds, repeats, load_before, load_after)
    print()
    print_targets(chosen, workloads, results, fastest_peer)
    return 0


def record(result: Results, report: dict[str, Any], verbose: bool) -> None:
    result.python = report.get("python", result.python)
    result.version = report.get("version", result.version)
    if "error" in report:
        result.errors.append(report["error"])
        if verbose and "traceback" in report:
            print(report["traceback"], file=sys.stderr)
        return
    result.wall += report["wall"]
    result.cpu += report["cpu"]
    result.checks += report["checks"]
    result.wrong = result.wrong or report["wrong"]


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def print_table(chosen: Sequence[Contender], workloads: Sequence[str], results: Table,
                fastest_peer: FastestPeer) -> None:
    header = ["implementation", "python"]
    for workload in workloads:
        header += [f"{workload} wall s", "vs fastest", f"{workload} cpu s", "vs fastest"]
    rows = [header]
    for contender in chosen:
        row = [contender.label, results[contender, workloads[0]].python]
        for workload in workloads:
            for measure in MEASURES:
                median = results[contender, workload].median(measure)
                row += [format_median(median),
                        format_ratio(median, fastest_peer[contender.venv, workload, measure])]
        rows.append(row)
    print_rows(rows)
    print()
    print("spread (min-max wall s):")
    for contender in chosen:
        spreads = []
        for workload in workloads:
            wall = results[contender, workload].wall
            spread = f"{min(wall):.3f}-{max(wall):.3f}" if wall else "-"
            spreads.append(f"{workload} {spread}")
        print(f"  {contender.label}: {', '.join(spreads)}")
    print()
    print("correctness (every run checked):")
    for contender in chosen:
        for workload in workloads:
            print(f"  {contender.label} {workload}: {results[contender, workload].status()}")


def print_floor_multiples(chosen: Sequence[Contender], workloads: Sequence[str],
                          results: Table) -> None:
    """Each implementation as a multiple of plain asyncio running the same tasks, delays 0."""
    floors = [c for c in chosen if c.implementation == FLOOR]
    if not floors:
        return
    print("as a multiple of plain asyncio's zero-delay floor (same Python):")
    for contender in chosen:
        floor = next((f for f in floors if f.venv == contender.venv), None)
        if floor is None or contender.implementation == FLOOR:
            continue
        parts = []
        for workload in workloads:
            for measure in MEASURES:
                mine = results[contender, workload].median(measure)
                base = results[floor, workload].median(measure)
                parts.append(f"{workload} {measure} " + format_ratio(mine, base))
        print(f"  {contender.label}: {', '.join(parts)}")


def print_notes(chosen: Sequence[Contender], workloads: Sequence[str], results: Table,
                rounds: dict[str, int], repeats: dict[str, int],
                load_before: tuple[float, float, float],
                load_after: tuple[float, float, float]) -> None:
    counts = ", ".join(
        f"{w}: {rounds[w]} rounds" + (f" x {repeats[w]} runs per process" if repeats[w] > 1 else "")
        for w in workloads
    )
    print(f"machine: {os.cpu_count()} cores shared with other users, noisy; 1-min load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after.")
    print(f"medians of all runs, in interleaved rounds ({counts}).")
    print("wall = perf_counter around the run call; cpu = process_time over the same span"
          " (less disturbed by other users' load).")
    print("vs fastest = median / fastest peer's median on the same Python (below 1.00x: faster"
          " than every peer); a WRONG peer still counts as a peer.")
    versions = sorted({(c.label, results[c, workloads[0]].version) for c in chosen})
    print("versions: " + ", ".join(f"{label} {version}" for label, version in versions))
    clean_import = BENCH_ENVS / "peers" / "aiotools-clean-import.txt"
    if clean_import.exists():
        outcome = clean_import.read_text().strip()
        if outcome != "ok":
            print(f"aiotools on a clean Python 3.13 venv: import fails ({outcome}); measured "
                  "after adding typing_extensions, which it imports without declaring.")


def print_targets(chosen: Sequence[Contender], workloads: Sequence[str], results: Table,
                  fastest_peer: FastestPeer) -> None:
    print("targets (issue 2 judges wall medians; cpu is the steadier cross-check):")
    for ours in (c for c in chosen if c.implementation == "ours"):
        for text, met in target_verdicts(ours, chosen, workloads, results, fastest_peer):
            print(f"  [{'met' if met else 'MISSED'}] {ours.label} {text}")


def target_verdicts(ours: Contender, chosen: Sequence[Contender], workloads: Sequence[str],
                    results: Table, fastest_peer: FastestPeer) -> list[tuple[str, bool]]:
    verdicts: list[tuple[str, bool]] = []
    for workload in workloads:
        ours_result = results[ours, workload]
        verdicts.append((f"{workload}: correct ({ours_result.status()})",
                         not ours_result.errors and not ours_result.wrong))
        for measure in MEASURES:
            median = ours_result.median(measure)
            peer = fastest_peer[ours.venv, workload, measure]
            if median is None or peer is None:
                verdicts.append((f"{workload} {measure}: not measured", False))
                continue
            verdicts.append((f"{workload} {measure}: faster than every peer "
                             f"({median / peer:.2f}x the fastest)", median < peer))
            if workload == "B":
                verdicts.append((f"B {measure}: at least 10 % ahead of every peer "
                                 f"({median / peer:.2f}x the fastest)", median <= 0.9 * peer))
            if workload != "A":
                continue
            by_name = {c.implementation: results[c, workload].median(measure) for c in chosen
                       if c.venv == ours.venv}
            solipsism = by_name.get("async-solipsism")
            if solipsism is not None:
                verdicts.append((f"A {measure}: <= 0.9x async-solipsism "
                                 f"({median / solipsism:.2f}x)", median <= 0.9 * solipsism))
            slow = by_name.get("looptime")
            if slow is not None:
                verdicts.append((f"A {measure}: >= 25x faster than looptime "
                                 f"({slow / median:.1f}x)", slow >= 25 * median))
    return verdicts


# ---------------------------------------------------------------------------------------------
# Instruction counts: a load-independent cross-check.

COLLECTED_PREFIX = "Collected :"


def count_instructions(contender: Contender, workload: str, repeat: int,
                       timeout: float) -> int | str:
    """Instructions callgrind counts for a whole worker process, or why it could not count."""
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONHASHSEED="0")
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        str(contender.python), str(Path(__file__).resolve()),
        "--worker", contender.implementation, "--workload", workload,
        "--repeat", str(repeat), "--skip-check",
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=environment
        )
    except subprocess.TimeoutExpired:
        return f"no result within {timeout:g} s real time"
    lines = completed.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    if "error" in report:
        return str(report["error"])
    for line in completed.stderr.splitlines():
        if COLLECTED_PREFIX in line:
            return int(line.split(COLLECTED_PREFIX)[1].strip())
    return f"valgrind printed no instruction count (exit {completed.returncode})"


def instructions_main(workloads: Sequence[str], only: set[str] | None, timeout: float) -> int:
    """One warm run's instructions: a worker doing two runs minus a worker doing one.

    Wall and CPU time on the shared machine move by 20% with other users' load; instruction
    counts do not, so they settle differences that the timing medians leave open (workload B).
    """
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    chosen = [c for c in contenders() if only is None or c.implementation in only]
    rows = [["implementation", "workload", "instructions (M)", "vs fewest peer", "vs floor"]]
    for workload in workloads:
        counts: dict[Contender, int | str] = {}
        for contender in chosen:
            one, two = (count_instructions(contender, workload, repeat, timeout)
                        for repeat in (1, 2))
            if isinstance(one, int) and isinstance(two, int):
                counts[contender] = two - one
            else:
                counts[contender] = two if isinstance(one, int) else one
        peer_counts = [n for c, n in counts.items()
                       if c.implementation in PEERS and isinstance(n, int)]
        floor_count = next((n for c, n in counts.items()
                            if c.implementation == FLOOR and isinstance(n, int)), None)
        fewest = min(peer_counts) if peer_counts else None
        for contender, count in counts.items():
            if isinstance(count, int):
                ratio = f"{count / fewest:.2f}x" if fewest else "-"
                to_floor = f"{count / floor_count:.2f}x" if floor_count else "-"
                rows.append([contender.label, workload, f"{count / 1e6:.0f}", ratio, to_floor])
            else:
                rows.append([contender.label, workload, f"FAILED: {count}", "-", "-"])
    print_rows(rows)
    print()
    print("instructions of one warm run (callgrind, PYTHONHASHSEED=0): a worker making two runs"
          " minus one making one run; unchecked; independent of the machine's load.")
    return 0


# ---------------------------------------------------------------------------------------------
# Workload C: processors over kept-open loopback connections (issue 12). Not timer-bound: what
# it measures is what a fake clock costs when real sockets stay open, idle between checks.

C_PROCESSORS = 100
C_INTERVAL = 10.0
C_VIRTUAL = 3_600.0
C_REAL_WINDOW = 20.0  # a real loop lives the hour in an hour: measure this long, extrapolate

C_VARIANTS = {
    # name: (venv implementation, where the PING server runs, how long the run lasts)
    "ours": ("ours", "thread (outside the loop), real loopback", C_VIRTUAL),
    "ours, server in the loop": ("ours", "same loop, real loopback", C_VIRTUAL),
    "asyncio (real loop)": ("asyncio", "thread (outside the loop), real loopback", C_REAL_WINDOW),
    "async-solipsism": ("async-solipsism", "same loop, its in-memory sockets", C_VIRTUAL),
}


class PingServer:
    """A Redis-style PING/PONG server in a thread of its own (one selector, many clients)."""

    def __init__(self) -> None:
        import selectors
        import socket
        import threading

        self._selector = selectors.DefaultSelector()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self.port: int = self._listener.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="ping-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import socket

        while not self._stop:
            for key, _ in self._selector.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    conn, _ = sock.accept()
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._selector.register(conn, 1)  # EVENT_READ
                    continue
                data = sock.recv(65536)
                if not data:
                    self._selector.unregister(sock)
                    sock.close()
                    continue
                sock.sendall(b"PONG\n" * data.count(b"PING\n"))

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


async def workload_c(server_port: int | None, duration: float) -> dict[str, Any]:
    """C_PROCESSORS processors, each checking every C_INTERVAL s with one PING over its own
    kept-open connection; returns the PONGs counted and the loop time at the end."""
    import logging

    from chronopype.processors import NetworkProcessor, NetworkStatus

    quiet = logging.getLogger("bench.c")
    quiet.setLevel(logging.CRITICAL)
    loop = asyncio.get_running_loop()
    inloop_server = None
    if server_port is None:  # a server in this very loop

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.readline():
                writer.write(b"PONG\n")

        inloop_server = await asyncio.start_server(answer, "127.0.0.1", 0)
        server_port = inloop_server.sockets[0].getsockname()[1]
    port = server_port

    class PingProcessor(NetworkProcessor):
        pongs = 0

        def __init__(self) -> None:
            super().__init__()
            self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

        @classmethod
        def logger(cls) -> logging.Logger:
            return quiet

        async def check_network(self) -> NetworkStatus:
            if self.streams is None:
                self.streams = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = self.streams
            writer.write(b"PING\n")
            if await reader.readline() != b"PONG\n":
                return NetworkStatus.NOT_CONNECTED
            PingProcessor.pongs += 1
            return NetworkStatus.CONNECTED

        async def stop_network(self) -> None:
            if self.streams is not None:
                self.streams[1].close()
                self.streams = None

    processors = [PingProcessor() for _ in range(C_PROCESSORS)]
    for processor in processors:
        processor.check_network_interval = C_INTERVAL
        processor.start(0.0)
    await asyncio.sleep(duration)
    for processor in processors:
        processor.stop()
    for processor in processors:
        await processor.await_cleanup()
        if processor.streams is not None:
            processor.streams[1].close()
    if inloop_server is not None:
        inloop_server.close()
    return {"pongs": PingProcessor.pongs, "loop_time": loop.time()}


def run_c(variant: str) -> dict[str, Any]:
    implementation, where, duration = C_VARIANTS[variant]
    in_loop = where.startswith("same loop")
    server = None if in_loop else PingServer()
    extra: dict[str, Any] = {}
    try:
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        if implementation == "ours":
            from chronopype_testing import FakeClock

            clock = FakeClock()
            outcome = clock.run(workload_c(None if in_loop else server.port, duration))  # type: ignore[union-attr]
            extra["held"] = clock.real_work_summary()
        elif implementation == "async-solipsism":
            import async_solipsism

            with asyncio.Runner(loop_factory=async_solipsism.EventLoop) as runner:
                outcome = runner.run(workload_c(None, duration))
        else:
            outcome = asyncio.run(workload_c(server.port, duration))  # type: ignore[union-attr]
        wall = time.perf_counter() - wall_started
        cpu = time.process_time() - cpu_started
    finally:
        if server is not None:
            server.close()
    scale = C_VIRTUAL / duration
    return {"wall": wall * scale if implementation != "asyncio" else C_VIRTUAL,
            "measured_wall": wall, "cpu": cpu * scale, "scaled": scale != 1.0,
            "pongs": outcome["pongs"] * scale, **extra}


def c_main(rounds: int, timeout: float) -> int:
    """Workload C for every variant, `rounds` interleaved rounds, medians."""
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in C_VARIANTS}
    variants = list(C_VARIANTS)
    for round_index in range(rounds):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            venv = "peers"
            command = [str(BENCH_ENVS / venv / "bin" / "python"), str(Path(__file__).resolve()),
                       "--worker-c", variant]
            environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                      env=environment)
                lines = done.stdout.strip().splitlines()
                report = json.loads(lines[-1]) if lines else {
                    "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
            except subprocess.TimeoutExpired:
                report = {"error": f"no result within {timeout:g} s"}
            results[variant].append(report)
    expected = C_PROCESSORS * int(C_VIRTUAL // C_INTERVAL)
    rows = [["variant", "PING server", "wall s / virtual hour", "cpu s / virtual hour",
             "PONGs", "real work held (ours)"]]
    for variant, reports in results.items():
        ok = [r for r in reports if "error" not in r]
        if not ok:
            rows.append([variant, C_VARIANTS[variant][1], "FAILED: " + reports[0]["error"][:80],
                         "-", "-", "-"])
            continue
        wall = statistics.median(r["wall"] for r in ok)
        cpu = statistics.median(r["cpu"] for r in ok)
        pongs = statistics.median(r["pongs"] for r in ok)
        note = " (extrapolated)" if ok[0]["scaled"] else ""
        wall_text = (f"{wall:.0f} (the hour itself)" if C_VARIANTS[variant][0] == "asyncio"
                     else f"{wall:.2f}")
        rows.append([variant, C_VARIANTS[variant][1], wall_text, f"{cpu:.2f}{note}",
                     f"{pongs:.0f}{note}", ok[-1].get("held", "-")])
    print_rows(rows)
    print()
    print(f"workload C: {C_PROCESSORS} NetworkProcessors, a check every {C_INTERVAL:g} s = one "
          f"PING/PONG over each one's kept-open loopback connection, for {C_VIRTUAL:g} s of "
          f"virtual time (about {expected} PONGs). Medians of {rounds} interleaved rounds. The "
          f"real loop runs {C_REAL_WINDOW:g} real s and its CPU and PONGs are scaled to the hour. "
          "async-solipsism cannot open real sockets, so it runs its in-memory ones.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="runs per implementation of workload A (default 5)")
    parser.add_argument("--rounds-b", type=int,
                        help="runs per implementation of workload B, whose runs are short and "
                        "so noisier (default 3x --rounds)")
    parser.add_argument("--repeat-b", type=int, default=3,
                        help="back-to-back runs of workload B in each process (default 3)")
    parser.add_argument("--workloads",
                        help="which workloads: A, B, C or a mix such as AB (default AB; B with "
                        "--instructions)")
    parser.add_argument("--rounds-c", type=int, default=3,
                        help="rounds of workload C (default 3)")
    parser.add_argument("--only", help="comma-separated implementations, e.g. ours,trio")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="real seconds one run may take before it counts as failed")
    parser.add_argument("--verbose", action="store_true", help="print every run as it ends")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under valgrind instead of timing (slow: "
                        "minutes per implementation for A, about an hour for looptime on A)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--skip-check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-c", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_c:
        try:
            print(json.dumps(run_c(args.worker_c)), flush=True)
        except BaseException as error:  # reported, not hidden
            print(json.dumps({"error": f"{type(error).__name__}: {error}"[:300]}), flush=True)
        return 0
    if args.worker:
        worker_main(args.worker, args.workload, args.repeat, check=not args.skip_check)
        return 0
    default_rounds = {"A": args.rounds, "B": args.rounds_b or 3 * args.rounds}
    chosen_workloads = (args.workloads or ("B" if args.instructions else "AB")).upper()
    rounds = {w: default_rounds[w] for w in "AB" if w in chosen_workloads}
    only = set(args.only.split(",")) if args.only else None
    if "C" in chosen_workloads and not args.instructions:
        status = c_main(args.rounds_c, args.timeout)
        if not rounds:
            return status
        print()
    if args.instructions:
        return instructions_main(list(rounds), only, args.timeout * 10)
    repeats = {"A": 1, "B": args.repeat_b}
    return orchestrate(rounds, repeats, only, args.timeout, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
