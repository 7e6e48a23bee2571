"""chronopype-sim: what will my reconnect behaviour be?

Runs the production ``NetworkProcessor`` logic on a ``FakeClock`` against an outage scenario
and reports, in exact virtual time, when each outage was detected, every check during and
after it, and when the processor was connected again (and which backoff wait made it late).
A day of virtual time at the default 10 s interval takes well under a second.

    chronopype-sim --hours 24 --random-outages 6 --seed 7
    chronopype-sim --outage 1h:1h05m --outage 5400:6300 --interval 30
    chronopype-sim --outage 1h:1h05m --compare interval=30,timeout=2
    chronopype-sim --processor myapp.db:make_processor --outage 2h:2h30m --json
    python -m chronopype_testing.sim --help
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from chronopype.processors.network import MIN_SETTING_SECONDS
from chronopype_testing._sim_analysis import RunAnalysis
from chronopype_testing._sim_plot import check_plot_path, load_pyplot, write_plot
from chronopype_testing._sim_report import (
    ReportHeader,
    compare_report,
    json_report,
    never_connected_warning,
    text_report,
)
from chronopype_testing._sim_run import (
    DEFAULT_PROCESSOR_NAME,
    MAX_CHECKS,
    ProcessorFactory,
    Settings,
    SimulatedProcessor,
    load_fake_clock,
    load_processor_factory,
    simulate,
)
from chronopype_testing._sim_scenario import (
    Outage,
    ScenarioError,
    parse_outage,
    random_outages,
    validate_outages,
)

__all__ = ["build_parser", "main"]

PROG = "chronopype-sim"
# A year of virtual time; the text report prints a line per hour.
MAX_HOURS = 8784.0
PLOT_EXTRA_HINT = "pip install 'chronopype[plot]'"


def _number(unit: str, *, minimum: float, inclusive: bool) -> Callable[[str], float]:
    """An argparse type for a finite number of ``unit`` that is at least ``minimum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number of {unit}, got {text!r}")
        if value < minimum or (value == minimum and not inclusive):
            relation = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum:g} {unit}, got {text}")
        return value

    return parse


def _hours(text: str) -> float:
    value = _number("hours", minimum=0.0, inclusive=False)(text)
    if value > MAX_HOURS:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_HOURS:g} hours (a year of virtual time), got {text}"
        )
    return value


# The processor raises smaller values to 0.1 silently; the simulator refuses them instead.
_seconds_setting = _number("seconds", minimum=MIN_SETTING_SECONDS, inclusive=True)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _outage(text: str) -> Outage:
    try:
        return parse_outage(text)
    except ScenarioError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_COMPARE_KEYS = {
    "interval": "check_network_interval",
    "timeout": "check_network_timeout",
    "error-wait": "network_error_wait_time",
}


def _compare(text: str) -> dict[str, float]:
    """``interval=30`` or ``interval=30,timeout=2``: what the second run changes."""
    changes: dict[str, float] = {}
    for item in text.split(","):
        key, equals, value = item.strip().partition("=")
        if not equals or key not in _COMPARE_KEYS:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} must be SETTING=SECONDS with SETTING one of "
                + ", ".join(_COMPARE_KEYS)
                + ", e.g. interval=30,timeout=2"
            )
        if key in changes:
            raise argparse.ArgumentTypeError(f"{key} is given twice")
        try:
            changes[key] = _seconds_setting(value)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{key}: {exc}") from None
    return changes


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (what is wrong, where to look), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Simulate a chronopype NetworkProcessor through network outages on virtual time "
            "and report how fast it notices each outage and reconnects after it."
        ),
        epilog=(
            "Times for --outage are virtual seconds from the start of the run, written as "
            "plain seconds (5400, 5400.5) or with h/m/s units (1h30m, 90m, 1h30m15s); an "
            "outage START:END is half-open: checks that begin at START or later, and before "
            "END, see the network down. The same arguments and --seed give byte-identical "
            f"output. Bounds: --hours at most {MAX_HOURS:g} (a year); at most {MAX_CHECKS:,} "
            "checks at the check interval (30 days at 0.1 s, about ten minutes of real time). "
            "Memory grows with the number of outages and hours, not of checks (except with "
            "--plot, which marks every check). A progress bar shows on stderr when it is a "
            "terminal and tqdm is installed (pip install 'chronopype[sim]')."
        ),
    )
    parser.add_argument(
        "--hours",
        type=_hours,
        default=24.0,
        metavar="H",
        help="virtual hours to simulate (default 24)",
    )
    outages = parser.add_mutually_exclusive_group()
    outages.add_argument(
        "--outage",
        type=_outage,
        action="append",
        default=[],
        metavar="START:END",
        help="a network outage, e.g. 1h30m:1h45m or 5400:6300 (repeatable)",
    )
    outages.add_argument(
        "--random-outages",
        type=_count,
        default=0,
        metavar="N",
        help="N random non-overlapping outages of 20 s to 30 min, chosen by --seed",
    )
    setting_help = "seconds (at least 0.1); default: the processor's own ({})"
    parser.add_argument(
        "--interval",
        type=_seconds_setting,
        metavar="SECONDS",
        help="check_network_interval in " + setting_help.format("10 for NetworkProcessor"),
    )
    parser.add_argument(
        "--timeout",
        type=_seconds_setting,
        metavar="SECONDS",
        help="check_network_timeout in " + setting_help.format("5 for NetworkProcessor"),
    )
    parser.add_argument(
        "--error-wait",
        type=_seconds_setting,
        metavar="SECONDS",
        help="network_error_wait_time in " + setting_help.format("60 for NetworkProcessor"),
    )
    parser.add_argument(
        "--compare",
        type=_compare,
        metavar="SETTING=SECONDS[,...]",
        help=(
            "also run with these settings changed (interval, timeout, error-wait; e.g. "
            "interval=30,timeout=2) on the same outages and seed, and show both side by side"
        ),
    )
    parser.add_argument(
        "--seed",
        type=_count,
        default=0,
        metavar="N",
        help=(
            "seeds the processor's backoff jitter (processor.rng.seed(N), replacing any rng "
            "its constructor set) and --random-outages (default 0)"
        ),
    )
    parser.add_argument(
        "--processor",
        metavar="MODULE:CALLABLE",
        help=(
            "your NetworkProcessor: a subclass constructed with no arguments, or a factory "
            "called with no arguments that returns one (module:make_processor); inside an "
            "outage its check_network is not called and NOT_CONNECTED is returned instead, "
            "outside one it runs as written, and its hooks run for real (default: an instant "
            "check that always succeeds)"
        ),
    )
    parser.add_argument(
        "--via-proxy",
        metavar="HOST:PORT|URL",
        help=(
            "run --processor against this real service through an OutageProxy: each outage "
            "becomes a --fault window; the processor is built as Processor(proxy_host, "
            "proxy_port), or Processor(url) with the URL pointed at the proxy"
        ),
    )
    parser.add_argument(
        "--fault",
        default="refuse",
        metavar="KIND",
        help="with --via-proxy, what each outage does: refuse (default), reset, blackhole, "
        "timeout(S), latency(S), bandwidth(B), slow_close, limit_data(N)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="print the result as JSON instead of text"
    )
    output.add_argument(
        "--ascii", action="store_true", help="draw the timeline with ASCII characters only"
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help=(
            "also draw the timeline, every check marked, to an image (.png, .svg, .pdf ...; "
            f"needs matplotlib: {PLOT_EXTRA_HINT})"
        ),
    )
    return parser


def _can_print_unicode() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "█░·│✓✗±".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@contextlib.contextmanager
def _progress_bar(horizon: float, label: str) -> Iterator[Callable[[float], None] | None]:
    """A progress bar in virtual hours on stderr, only when stderr is a terminal and tqdm
    (the ``sim`` extra) is installed; otherwise None and no output at all."""
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is None or not isatty():
        yield None
        return
    try:
        tqdm: Any = importlib.import_module("tqdm").tqdm
    except ImportError:
        yield None
        return
    total = horizon / 3600.0
    with tqdm(
        total=round(total, 3),
        desc=label,
        unit="h",
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:g}/{total:g} "
        "virtual h [{elapsed}<{remaining}]",
    ) as bar:
        done = 0.0

        def update(virtual_now: float) -> None:
            nonlocal done
            hours = round(virtual_now / 3600.0, 3)
            bar.update(hours - done)
            done = hours

        yield update


def _run_one(
    parser: argparse.ArgumentParser,
    factory: ProcessorFactory,
    outages: list[Outage],
    horizon: float,
    settings: Settings,
    seed: int,
    *,
    keep_checks: bool,
    keep_transitions: bool,
    label: str,
) -> tuple[RunAnalysis, list[str]]:
    analysis = RunAnalysis(
        horizon, outages, keep_checks=keep_checks, keep_transitions=keep_transitions
    )
    try:
        with _progress_bar(horizon, label) as progress:
            run = simulate(factory, outages, horizon, settings, seed, analysis, progress)
    except ScenarioError as exc:
        parser.error(str(exc))
    return analysis.finish(), run.leaked_tasks


def _changed(settings: Settings, changes: dict[str, float]) -> Settings:
    values = {
        "check_network_interval": settings.check_network_interval,
        "check_network_timeout": settings.check_network_timeout,
        "network_error_wait_time": settings.network_error_wait_time,
    }
    for key, value in changes.items():
        values[_COMPARE_KEYS[key]] = value
    return Settings(**values)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (| head): not an error of ours. Point stdout at devnull so the
        # interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    horizon = args.hours * 3600.0

    factory: ProcessorFactory = SimulatedProcessor
    processor_name = DEFAULT_PROCESSOR_NAME
    try:
        if args.processor is not None:
            factory = load_processor_factory(args.processor)
            processor_name = args.processor
        if args.random_outages:
            rng = random.Random(f"chronopype-sim outages {args.seed}")
            outages = random_outages(args.random_outages, horizon, rng)
            outage_source = f"{len(outages)} random, from seed {args.seed}"
        else:
            outages = validate_outages(args.outage, horizon)
            outage_source = f"{len(outages)} from --outage" if outages else "none"
    except ScenarioError as exc:
        parser.error(str(exc))
    if args.plot is not None:
        if args.compare is not None:
            parser.error("--plot draws one run: use it without --compare")
        problem = check_plot_path(args.plot)
        if problem is not None:
            parser.error(problem)

    if args.via_proxy is not None:
        from chronopype_testing._sim_proxy import via_proxy_main

        settings_by_name = {
            "check_network_interval": args.interval,
            "check_network_timeout": args.timeout,
            "network_error_wait_time": args.error_wait,
        }
        return via_proxy_main(
            args.processor,
            args.via_proxy,
            args.fault,
            outages,
            horizon,
            settings_by_name,
            ReportHeader(args.hours, args.seed, processor_name, outage_source),
            ascii_only=args.ascii or not _can_print_unicode(),
        )

    try:
        load_fake_clock()
    except ImportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if args.plot is not None:
        try:
            load_pyplot()
        except ImportError as exc:
            print(
                f"{PROG}: error: --plot needs matplotlib, which is not installed ({exc}); "
                f"install it with: {PLOT_EXTRA_HINT}",
                file=sys.stderr,
            )
            return 1

    header = ReportHeader(args.hours, args.seed, processor_name, outage_source)
    settings = Settings(args.interval, args.timeout, args.error_wait)
    runs = [("A" if args.compare is not None else "run", settings)]
    if args.compare is not None:
        runs.append(("B", _changed(settings, args.compare)))
    began = time.perf_counter()
    results: list[tuple[str, RunAnalysis]] = []
    leaked: list[str] = []
    for label, run_settings in runs:
        analysis, leaked_tasks = _run_one(
            parser,
            factory,
            outages,
            horizon,
            run_settings,
            args.seed,
            keep_checks=args.plot is not None,
            keep_transitions=args.json and args.compare is None,
            label=f"{PROG} {label}",
        )
        results.append((label, analysis))
        leaked += leaked_tasks
    real_seconds = time.perf_counter() - began
    ascii_only = args.ascii or not _can_print_unicode()

    if args.compare is not None:
        if args.json:
            report: dict[str, Any] = {
                "compare": {label: json_report(analysis, header) for label, analysis in results}
            }
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            sys.stdout.write(compare_report(results, header, ascii_only=ascii_only))
    elif args.json:
        print(json.dumps(json_report(results[0][1], header), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(text_report(results[0][1], header, ascii_only=ascii_only))
    sys.stdout.flush()
    if args.plot is not None:
        title = f"{PROG}: {args.hours:g} h, seed {args.seed}, processor {processor_name}"
        try:
            write_plot(results[0][1], args.plot, title=title)
        except OSError as exc:  # checked before the run, but the disk can still say no
            print(f"{PROG}: error: cannot write {args.plot}: {exc}", file=sys.stderr)
            return 1
        print(f"{PROG}: wrote the timeline to {args.plot}", file=sys.stderr)
    for label, analysis in results:
        if analysis.never_connected:
            prefix = f"{PROG}: " if len(results) == 1 else f"{PROG}: {label}: "
            print(prefix + never_connected_warning(processor_name, analysis), file=sys.stderr)
    if leaked:
        print(
            f"{PROG}: warning: tasks still pending after stop() and await_cleanup(): "
            + ", ".join(sorted(set(leaked))),
            file=sys.stderr,
        )
    # Real time varies from run to run, so it goes to stderr and stdout stays reproducible.
    print(
        f"{PROG}: simulated {args.hours:g} h of virtual time "
        + (f"{len(results)} times " if len(results) > 1 else "")
        + f"in {real_seconds:.2f} s of real time",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
