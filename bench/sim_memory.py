"""The simulator's cost for a long run: real time, checks per second and peak memory.

With the repo's ``.venv`` (``make venv``)::

    .venv/bin/python bench/sim_memory.py [--hours 8784] [--interval 10] [--rounds 3]
                                         [--outages 52] [--no-tracemalloc]

One process per round, so every round starts cold and ``ru_maxrss`` is that round's own.
Each round first simulates ten minutes (one-off costs: imports on first use, the clock's caches),
then the measured run: ``--hours`` of virtual time at ``--interval``, with ``--outages`` evenly
spread one-minute outages, through the same streamed analysis the CLI uses. Printed per round,
then the median: checks, real seconds, checks per real second, the tracemalloc peak of the
measured run (tracing slows the run about three times; ``--no-tracemalloc`` skips it) and the
process's maximum resident set size.

The claim under test is that memory is bounded by the number of outages, not of checks: compare
the peak of a short run with that of a long one.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from chronopype_testing._sim_analysis import RunAnalysis  # noqa: E402
from chronopype_testing._sim_run import Settings, SimulatedProcessor, simulate  # noqa: E402
from chronopype_testing._sim_scenario import Outage  # noqa: E402


def one_round(hours: float, interval: float, outage_count: int, trace: bool) -> dict[str, float]:
    warm_up = [Outage(300.0, 360.0)]
    simulate(SimulatedProcessor, warm_up, 600.0, Settings(interval), 0, RunAnalysis(600.0, warm_up))

    horizon = hours * 3600.0
    spacing = horizon / (outage_count + 1)
    outages = [Outage(spacing * k, spacing * k + 60.0) for k in range(1, outage_count + 1)]
    analysis = RunAnalysis(horizon, outages)
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    simulate(SimulatedProcessor, outages, horizon, Settings(interval), 0, analysis)
    analysis.finish()
    elapsed = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] if trace else float("nan")
    if trace:
        tracemalloc.stop()
    if len(analysis.outages) != outage_count:
        raise SystemExit(f"WRONG: {len(analysis.outages)} outages analysed, not {outage_count}")
    return {
        "checks": float(analysis.total_checks),
        "seconds": elapsed,
        "peak_kb": peak / 1024,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8784.0, help="virtual hours (a leap year)")
    parser.add_argument("--interval", type=float, default=10.0, help="check_network_interval, s")
    parser.add_argument("--outages", type=int, default=52, help="one-minute outages (weekly)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(one_round(args.hours, args.interval, args.outages, args.trace)))
        return

    command = [sys.executable, __file__, "--worker", "--hours", str(args.hours)]
    command += ["--interval", str(args.interval), "--outages", str(args.outages)]
    if not args.trace:
        command.append("--no-tracemalloc")
    print(
        f"{args.hours:g} h at {args.interval:g} s, {args.outages} one-minute outages, "
        f"tracemalloc {'on' if args.trace else 'off'}, Python {sys.version.split()[0]}"
    )
    header = ("round", "checks", "real s", "checks/s", "peak kB", "maxrss MB")
    widths = (5, 12, 8, 10, 8, 9)
    print("  ".join(f"{name:>{width}}" for name, width in zip(header, widths, strict=True)))
    rounds = []
    for number in range(1, args.rounds + 1):
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rounds.append(result)
        print(
            f"{number:>5}  {result['checks']:>12,.0f}  {result['seconds']:>8.1f}  "
            f"{result['checks'] / result['seconds']:>10,.0f}  {result['peak_kb']:>8.0f}  "
            f"{result['maxrss_mb']:>9.1f}"
        )

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    print(
        f"{'median':>5}  {median('checks'):>12,.0f}  {median('seconds'):>8.1f}  "
        f"{median('checks') / median('seconds'):>10,.0f}  {median('peak_kb'):>8.0f}  "
        f"{median('maxrss_mb'):>9.1f}"
    )


if __name__ == "__main__":
    main()
