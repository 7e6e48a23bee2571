"""BacktestClock throughput: this working tree against the established chronopype 0.8.3.

Run ``bash bench/setup.sh`` once (it creates ``.bench/legacy``: Python 3.13 with
``chronopype==0.8.3`` from PyPI), then, with any Python >= 3.11::

    python3 bench/clocks.py [--ticks 10000] [--rounds 5] [--processors 1 10 100]
                            [--workloads sync async]

Both implementations share the distribution name ``chronopype``, so each runs in its own
subprocess, both on Python 3.13: 0.8.3 from ``.bench/legacy``, ours from the repo root (put on
``sys.path``; it needs only the standard library). Interpreters start isolated (``-I``), so
neither can import the other by accident; each worker reports where it imported chronopype
from, and the table says so.

Workloads, the same code for both (an adapter hides the API differences): a BacktestClock from
0 to ``ticks`` at ``tick_size=1`` with N trivial processors that count the call and keep the
timestamp: ``sync`` overrides ``tick()``; ``async`` overrides ``async_tick()`` with a coroutine
that finishes without suspending (the common shape of an async processor that only awaits when
it has I/O to do). Timed: ``await clock.run()`` inside ``async with clock`` (perf_counter), on
a plain asyncio loop. Checked, outside the timed region: every processor saw exactly ``ticks``
ticks and the last one at ``ticks``; a wrong run is reported as WRONG, not dropped.

Rounds are interleaved (each round runs both workers, in alternating order) so that load from
other users of the machine spreads over both; the table shows the median ticks/s of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


# -- the worker: runs inside one implementation's interpreter --------------------------------


def _load(implementation: str) -> tuple[Any, Any, Any, Any, str]:
    """(BacktestClock, ClockConfig, ClockMode, TickProcessor, where chronopype came from)."""
    if implementation == "ours":
        sys.path.insert(0, str(REPO_ROOT))
        import chronopype
        from chronopype.clocks import BacktestClock, ClockConfig, ClockMode
        from chronopype.processors import TickProcessor

        origin = f"working tree ({Path(chronopype.__file__).parent})"
        return BacktestClock, ClockConfig, ClockMode, TickProcessor, origin
    # 0.8.3 exports everything from the top-level package.
    from importlib import import_module
    from importlib.metadata import version

    legacy = import_module("chronopype")
    origin = f"chronopype {version('chronopype')} ({Path(legacy.__file__ or '?').parent})"
    return (
        legacy.BacktestClock,
        legacy.ClockConfig,
        legacy.ClockMode,
        legacy.TickProcessor,
        origin,
    )


def _measure(
    implementation: str, processor_counts: list[int], ticks: int, workloads: list[str]
) -> dict[str, Any]:
    backtest_clock, clock_config, clock_mode, tick_processor, origin = _load(implementation)

    class Trivial(tick_processor):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0
            self.last = -1.0

        def tick(self, timestamp: float) -> None:
            self.count += 1
            self.last = timestamp

    class TrivialAsync(tick_processor):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0
            self.last = -1.0

        async def async_tick(self, timestamp: float) -> None:
            self.count += 1
            self.last = timestamp

    kinds = {"sync": Trivial, "async": TrivialAsync}

    async def one_run(kind: type, count: int) -> tuple[float, str | None]:
        config = clock_config(
            clock_mode=clock_mode.BACKTEST, tick_size=1.0, start_time=0.0, end_time=float(ticks)
        )
        clock = backtest_clock(config)
        processors = [kind() for _ in range(count)]
        for processor in processors:
            clock.add_processor(processor)
        async with clock:
            began = time.perf_counter()
            await clock.run()
            elapsed = time.perf_counter() - began
        wrong = [p for p in processors if p.count != ticks or p.last != float(ticks)]
        problem = None
        if wrong:
            problem = f"{len(wrong)} processor(s) saw {wrong[0].count} ticks, last {wrong[0].last}"
        return ticks / elapsed, problem

    results: dict[str, Any] = {"origin": origin, "python": sys.version.split()[0], "runs": {}}
    for workload in workloads:
        for count in processor_counts:
            rate, problem = asyncio.run(one_run(kinds[workload], count))
            results["runs"][f"{workload}/{count}"] = {"ticks_per_s": rate, "problem": problem}
    return results


# -- the driver -------------------------------------------------------------------------------


def _run_worker(
    python: Path, implementation: str, processor_counts: list[int], ticks: int,
    workloads: list[str],
) -> dict[str, Any]:
    command = [
        str(python), "-I", str(Path(__file__).resolve()), "--worker", implementation,
        "--ticks", str(ticks), "--processors", *map(str, processor_counts),
        "--workloads", *workloads,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{implementation} worker failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processors", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument(
        "--workloads", nargs="+", choices=["sync", "async"], default=["sync", "async"]
    )
    parser.add_argument("--worker", choices=["ours", "legacy"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(_measure(args.worker, args.processors, args.ticks, args.workloads)))
        return

    from _interpreters import ours_and_legacy  # drivers only: workers run with -I

    pythons = ours_and_legacy()
    keys = [f"{workload}/{n}" for workload in args.workloads for n in args.processors]
    rates: dict[str, dict[str, list[float]]] = {name: {k: [] for k in keys} for name in pythons}
    problems: dict[str, dict[str, list[str]]] = {name: {k: [] for k in keys} for name in pythons}
    origins: dict[str, str] = {}
    order = list(pythons)
    for round_number in range(args.rounds):
        for name in order if round_number % 2 == 0 else reversed(order):
            result = _run_worker(
                pythons[name], name, args.processors, args.ticks, args.workloads
            )
            origins[name] = f"{result['origin']}, Python {result['python']}"
            for key in keys:
                run = result["runs"][key]
                rates[name][key].append(run["ticks_per_s"])
                if run["problem"]:
                    problems[name][key].append(run["problem"])
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    print(f"BacktestClock, {args.ticks:,} ticks, trivial processors; median of {args.rounds} "
          "interleaved rounds")
    for name, origin in origins.items():
        print(f"  {name:6}: {origin}")
    print()
    print(f"{'workload':>8}  {'processors':>10}  {'ours ticks/s':>14}  {'0.8.3 ticks/s':>14}  "
          f"{'ours/0.8.3':>10}")
    for key in keys:
        workload, n = key.split("/")
        ours, legacy = (statistics.median(rates[name][key]) for name in ("ours", "legacy"))
        note = ""
        for name in ("ours", "legacy"):
            if problems[name][key]:
                note += f"  WRONG ({name}: {problems[name][key][0]})"
        print(f"{workload:>8}  {n:>10}  {ours:>14,.0f}  {legacy:>14,.0f}  "
              f"{ours / legacy:>9.1f}x{note}")


if __name__ == "__main__":
    main()
