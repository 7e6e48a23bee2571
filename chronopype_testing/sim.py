"""chronopype-sim: what will my reconnect behaviour be?

Runs the production ``NetworkProcessor`` logic on a ``FakeClock`` against an outage scenario
and reports, in exact virtual time, when each outage was detected and when the processor was
connected again. A day of virtual time takes about a second.

    chronopype-sim --hours 24 --random-outages 6 --seed 7
    chronopype-sim --outage 1h:1h05m --outage 5400:6300 --interval 30
    chronopype-sim --processor myapp.db:DbProcessor --outage 2h:2h30m --json
    python -m chronopype_testing.sim --help
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence

from chronopype.processors.network import MIN_SETTING_SECONDS, NetworkProcessor
from chronopype_testing._sim_report import (
    analyse,
    json_report,
    load_pyplot,
    text_report,
    write_plot,
)
from chronopype_testing._sim_run import (
    DEFAULT_PROCESSOR_NAME,
    Settings,
    SimulatedProcessor,
    load_fake_clock,
    load_processor_class,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
            "output."
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
        metavar="MODULE:CLASS",
        help=(
            "your NetworkProcessor subclass, constructed with no arguments; inside an outage "
            "its check_network is not called and NOT_CONNECTED is returned instead, outside "
            "one it runs as written, and its hooks run for real (default: an instant check "
            "that always succeeds)"
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
        help=f"also draw the timeline to an image (needs matplotlib: {PLOT_EXTRA_HINT})",
    )
    return parser


def _can_print_unicode() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "█░·│".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    horizon = args.hours * 3600.0

    processor_class: type[NetworkProcessor] = SimulatedProcessor
    processor_name = DEFAULT_PROCESSOR_NAME
    try:
        if args.processor is not None:
            processor_class = load_processor_class(args.processor)
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
            args.seed,
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

    settings = Settings(args.interval, args.timeout, args.error_wait)
    began = time.perf_counter()
    try:
        run = simulate(processor_class, outages, horizon, settings, args.seed)
    except ScenarioError as exc:
        parser.error(str(exc))
    real_seconds = time.perf_counter() - began
    analysis = analyse(run)

    if args.json:
        report = json_report(
            analysis,
            hours=args.hours,
            seed=args.seed,
            processor_name=processor_name,
            outage_source=outage_source,
        )
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        text = text_report(
            analysis,
            hours=args.hours,
            seed=args.seed,
            processor_name=processor_name,
            outage_source=outage_source,
            ascii_only=args.ascii or not _can_print_unicode(),
        )
        sys.stdout.write(text)
    if args.plot is not None:
        title = f"{PROG}: {args.hours:g} h, seed {args.seed}, processor {processor_name}"
        write_plot(analysis, args.plot, title=title)
        print(f"{PROG}: wrote the timeline to {args.plot}", file=sys.stderr)
    if run.leaked_tasks:
        print(
            f"{PROG}: warning: tasks still pending after stop() and await_cleanup(): "
            + ", ".join(run.leaked_tasks),
            file=sys.stderr,
        )
    # Real time varies from run to run, so it goes to stderr and stdout stays reproducible.
    print(
        f"{PROG}: simulated {args.hours:g} h of virtual time in {real_seconds:.2f} s of real time",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
