"""What an OutageProxy can do to traffic, and the script of when it does it.

The vocabulary is Toxiproxy's (its proxy states and toxics), with virtual seconds instead of
milliseconds and bytes instead of kilobytes. A script is a list of ``(start, end, fault)``
windows in seconds from the proxy's start; outside every window the proxy passes traffic
through (``up``). Windows are half-open, ``[start, end)``, as everywhere in chronopype_testing,
and validated by the same rule as ``FakeNetworkProcessor.with_outages`` windows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from chronopype.validation import finite_number, outage_windows

__all__ = ["DIRECTIONS", "FAULT_KINDS", "Fault", "FaultLike", "FaultWindow", "parse_script"]

Direction = Literal["upstream", "downstream", "both"]
#: ``upstream`` is client -> server, ``downstream`` server -> client (Toxiproxy's words).
DIRECTIONS: tuple[str, ...] = ("upstream", "downstream", "both")

FAULT_KINDS: tuple[str, ...] = (
    "up",
    "refuse",
    "reset",
    "blackhole",
    "timeout",
    "latency",
    "bandwidth",
    "slow_close",
    "limit_data",
)


def _non_negative(name: str, value: object) -> float:
    number = finite_number(name, value, unit="seconds")
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number!r}")
    return number


def _direction(value: object) -> Direction:
    if value not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}; got {value!r}")
    direction: Direction = value  # type: ignore[assignment]  # checked just above
    return direction


@dataclass(frozen=True, slots=True)
class Fault:
    """One behaviour of the proxy. Build it with the class methods, or ``Fault.parse(text)``.

    ``seconds`` is the latency, the close delay (slow_close) or the time before closing
    (timeout); ``jitter`` the latency's +/- spread; ``rate`` bytes per second (bandwidth);
    ``limit`` bytes (limit_data). ``direction`` says which way latency, bandwidth and
    limit_data act; the other kinds act on both.
    """

    kind: str
    seconds: float | None = None
    jitter: float = 0.0
    rate: float = 0.0
    limit: int = 0
    direction: Direction = "both"

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def up(cls) -> Fault:
        """Pass everything through, both ways."""
        return cls("up")

    @classmethod
    def refuse(cls) -> Fault:
        """The proxy stops listening: new connections are refused (ECONNREFUSED), and the
        established ones are closed (FIN on both sides), as when a server goes away."""
        return cls("refuse")

    @classmethod
    def reset(cls) -> Fault:
        """Established connections are reset (RST on both sides); new ones are accepted and
        reset on their first byte (Toxiproxy's ``reset_peer``)."""
        return cls("reset")

    @classmethod
    def blackhole(cls) -> Fault:
        """Accept, read, never forward or answer: a network partition. Held bytes (and
        closes) are delivered when the fault ends, in order, as TCP retransmission would;
        new connections reach the server only then (Toxiproxy's ``timeout`` of 0)."""
        return cls("blackhole")

    @classmethod
    def timeout(cls, seconds: float) -> Fault:
        """Like ``blackhole``, but each connection is closed ``seconds`` after the fault began
        or the connection was accepted (Toxiproxy's ``timeout``; 0 is ``blackhole``)."""
        return cls("timeout", seconds=_non_negative("timeout seconds", seconds))

    @classmethod
    def latency(
        cls, seconds: float, jitter: float = 0.0, *, direction: Direction = "downstream"
    ) -> Fault:
        """Each chunk is delivered ``seconds`` +/- ``jitter`` (uniform) later; chunks never
        overtake each other. One jitter draw per burst (the chunks that arrive at one virtual
        instant), so how the kernel splits a reply never changes the timeline."""
        seconds = _non_negative("latency seconds", seconds)
        jitter = _non_negative("latency jitter", jitter)
        if jitter > seconds:
            raise ValueError(
                f"latency jitter ({jitter!r}) must not exceed the latency ({seconds!r})"
            )
        return cls("latency", seconds=seconds, jitter=jitter, direction=_direction(direction))

    @classmethod
    def bandwidth(cls, bytes_per_second: float, *, direction: Direction = "downstream") -> Fault:
        """At most ``bytes_per_second``: a chunk of n bytes arrives n / rate seconds after the
        previous one finished (or after it was read, if the line was idle)."""
        rate = finite_number("bandwidth bytes_per_second", bytes_per_second)
        if rate <= 0:
            raise ValueError(f"bandwidth bytes_per_second must be > 0, got {rate!r}")
        return cls("bandwidth", rate=rate, direction=_direction(direction))

    @classmethod
    def slow_close(cls, seconds: float | None = None) -> Fault:
        """A close (EOF) from either side reaches the other ``seconds`` late; with no
        ``seconds``, only when the fault ends. Data still flows."""
        delay = None if seconds is None else _non_negative("slow_close seconds", seconds)
        return cls("slow_close", seconds=delay)

    @classmethod
    def limit_data(cls, limit: int, *, direction: Direction = "downstream") -> Fault:
        """Close a connection (FIN both sides) once ``limit`` bytes went its ``direction``
        during the fault; the bytes up to the limit are delivered, the rest never are."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit_data limit must be an int number of bytes, got {limit!r}")
        if limit < 0:
            raise ValueError(f"limit_data limit must be >= 0 bytes, got {limit}")
        return cls("limit_data", limit=limit, direction=_direction(direction))

    # -- text form ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``up``, ``refuse``, ``reset``, ``blackhole``, ``timeout(30)``, ``latency(2)``,
        ``latency(2, 0.5, direction=both)``, ``bandwidth(1000)``, ``slow_close``,
        ``slow_close(3)``, ``limit_data(100, direction=upstream)``."""
        if not isinstance(text, str):
            raise TypeError(f"a fault is a Fault or its text form, got {text!r}")
        match = _FAULT_TEXT.fullmatch(text.strip())
        if match is None or match["kind"] not in _CONSTRUCTORS:
            raise ValueError(
                f"unknown fault {text!r}: expected one of {', '.join(FAULT_KINDS)}, "
                "optionally with arguments, e.g. latency(2, jitter=0.5)"
            )
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        arguments = match["arguments"]
        for part in arguments.split(",") if arguments and arguments.strip() else []:
            name, equals, value = part.partition("=")
            if equals:
                keywords[name.strip()] = _argument(value.strip(), text)
            elif keywords:
                raise ValueError(f"fault {text!r}: positional argument after a keyword")
            else:
                positional.append(_argument(name.strip(), text))
        try:
            return _CONSTRUCTORS[match["kind"]](*positional, **keywords)
        except TypeError as exc:
            raise ValueError(f"fault {text!r}: {exc}") from None

    def __str__(self) -> str:
        def number(value: float) -> str:
            return f"{value:g}"

        direction = (
            ""
            if self.direction == _DEFAULT_DIRECTION.get(self.kind)
            else (f", direction={self.direction}")
        )
        if self.kind == "latency":
            assert self.seconds is not None
            jitter = f", jitter={number(self.jitter)}" if self.jitter else ""
            return f"latency({number(self.seconds)}{jitter}{direction})"
        if self.kind == "bandwidth":
            return f"bandwidth({number(self.rate)}{direction})"
        if self.kind == "limit_data":
            return f"limit_data({self.limit}{direction})"
        if self.seconds is not None:
            return f"{self.kind}({number(self.seconds)})"
        return self.kind

    def acts_on(self, direction: str) -> bool:
        """Whether this fault shapes traffic going ``direction`` (upstream/downstream)."""
        return self.direction in ("both", direction)


_DEFAULT_DIRECTION = {
    "latency": "downstream",
    "bandwidth": "downstream",
    "limit_data": "downstream",
}
_FAULT_TEXT = re.compile(r"(?P<kind>[a-z_]+)\s*(?:\((?P<arguments>[^()]*)\))?")
_CONSTRUCTORS: dict[str, Callable[..., Fault]] = {
    "up": Fault.up,
    "refuse": Fault.refuse,
    "reset": Fault.reset,
    "blackhole": Fault.blackhole,
    "timeout": Fault.timeout,
    "latency": Fault.latency,
    "bandwidth": Fault.bandwidth,
    "slow_close": Fault.slow_close,
    "limit_data": Fault.limit_data,
}


def _argument(text: str, whole: str) -> Any:
    if text in DIRECTIONS:
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"fault {whole!r}: {text!r} is not a number or a direction") from None


FaultLike = Fault | str


def as_fault(value: object) -> Fault:
    """A Fault from a Fault or its text form."""
    if isinstance(value, Fault):
        return value
    if isinstance(value, str):
        return Fault.parse(value)
    raise TypeError(f"a fault is a Fault or its text form (e.g. 'blackhole'), got {value!r}")


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """``fault`` applies from ``start`` (inclusive) to ``end`` (exclusive), in seconds
    since the proxy started."""

    start: float
    end: float
    fault: Fault

    def __str__(self) -> str:
        return f"[{self.start:g}, {self.end:g}) {self.fault}"


def parse_script(windows: Iterable[object]) -> tuple[FaultWindow, ...]:
    """Validated, ordered windows from ``(start, end, fault)`` triples.

    Times must be finite and >= 0, each window must have start < end, and windows must not
    overlap (touching is fine); faults are Faults or their text forms.
    """
    if isinstance(windows, str | bytes):
        raise TypeError(f"windows must be (start, end, fault) triples, got {windows!r}")
    triples: list[tuple[Any, Any, Fault]] = []
    for window in windows:
        if not isinstance(window, tuple | list) or len(window) != 3:
            raise TypeError(f"each window must be a (start, end, fault) triple, got {window!r}")
        triples.append((window[0], window[1], as_fault(window[2])))
    # One rule for outage windows (FakeNetworkProcessor's): times, order, no overlap.
    checked = outage_windows((start, end) for start, end, _ in triples)
    faults_in_order = [
        fault
        for _, _, fault in sorted(
            ((float(s), float(e), f) for s, e, f in triples), key=lambda item: item[:2]
        )
    ]
    return tuple(
        FaultWindow(start, end, fault)
        for (start, end), fault in zip(checked, faults_in_order, strict=True)
    )
