"""chronopype-sim: exact delays from the backoff semantics, output formats, usage errors.

Every run here is in-process on virtual time; expected check schedules are computed
independently from the pinned semantics (issue 3: checks every interval while connected,
``min(2**(n-1), 300) * (1 + U(-0.1, 0.1))`` clamped to [1, 300] after the n-th consecutive
failure, the error wait after a raising check, each wait measured from the end of the attempt).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chronopype import NetworkProcessor, NetworkStatus
from chronopype.processors.backoff import BACKOFF_JITTER, backoff_base, jittered_backoff
from chronopype_testing._sim_report import nearest_rank
from chronopype_testing._sim_scenario import (
    MIN_OUTAGE_GAP_SECONDS,
    Outage,
    ScenarioError,
    format_seconds,
    parse_duration,
    random_outages,
)
from chronopype_testing.sim import main

MODULE = __name__


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """--processor makes the current directory importable; keep that out of other tests."""
    monkeypatch.setattr(sys, "path", [*sys.path])


def expected_backoff(rng: random.Random, failures: int) -> float:
    draw = rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
    return jittered_backoff(backoff_base(failures), draw)


def expected_checks(
    horizon: float,
    outages: list[tuple[float, float]],
    seed: int,
    interval: float = 10.0,
) -> tuple[list[float], list[float]]:
    """(check times, times the status became CONNECTED) for an instant check that succeeds
    outside the outages, as the pinned semantics schedule them."""
    rng = random.Random(seed)
    checks: list[float] = []
    connects: list[float] = []
    failures = 0
    connected = False
    t = 0.0
    while t < horizon:
        checks.append(t)
        if any(start <= t < end for start, end in outages):
            failures += 1
            connected = False
            t = t + expected_backoff(rng, failures)
        else:
            if not connected:
                connects.append(t)
            connected = True
            failures = 0
            t = t + interval
    return checks, connects


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    assert main(list(argv)) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    out, _ = run(capsys, *argv, "--json")
    result: dict[str, Any] = json.loads(out)
    return result


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # One line: what is wrong and where to look, never a traceback.
    assert captured.err.startswith("chronopype-sim: error: ")
    assert captured.err.endswith(" (see chronopype-sim --help)\n")
    assert captured.err.count("\n") == 1
    return captured.err


# -- exact delays -----------------------------------------------------------------------------


def test_detection_and_recovery_delays_follow_the_backoff_schedule_exactly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_json(capsys, "--hours", "2", "--outage", "3605:3900", "--seed", "11")

    checks, connects = expected_checks(7200.0, [(3605.0, 3900.0)], seed=11)
    # Checks land every 10 s while connected: the first one inside the outage is at 3610.
    failed = [t for t in checks if 3605.0 <= t < 3900.0]
    assert failed[0] == 3610.0
    reconnected = connects[1]
    assert 3900.0 < reconnected < 3900.0 + 300.0 * 1.1
    [outage] = result["outages"]
    assert outage == {
        "number": 1,
        "start": 3605.0,
        "end": 3900.0,
        "detected_at": 3610.0,
        "detection_delay": 5.0,
        "reconnected_at": reconnected,
        "recovery_delay": reconnected - 3900.0,
        "checks": len(failed),
        "note": "",
        "check_log": [
            *({"started": t, "finished": t, "connected": False, "why": "outage"} for t in failed),
            {
                "started": reconnected,
                "finished": reconnected,
                "connected": True,
                "why": "connected",
            },
        ],
        "check_log_left_out": 0,
        "check_log_end": [],
        # The network came back during the wait after the 9th failure: backoff_delay(9).
        "recovery_wait": {
            "failed_check_at": failed[-1],
            "waited": reconnected - failed[-1],
            "kind": "backoff",
            "failures_in_a_row": 9,
            "backoff_base": 256.0,
        },
    }
    # 3610, then 1, 2, 4 ... 256 s (+/-10%) later: 9 failed checks before the network is back.
    assert len(failed) == 9
    summary = result["summary"]
    assert summary["total_checks"] == len(checks)
    assert summary["checks_during_outages"] == 9
    assert summary["outage_seconds"] == 295.0
    assert summary["checks_per_hour_while_down"] == 9 / (295.0 / 3600.0)
    assert summary["detection_delay"] == {"count": 1, "p50": 5.0, "p95": 5.0, "max": 5.0}
    recovery = reconnected - 3900.0
    assert summary["recovery_delay"] == {
        "count": 1,
        "p50": recovery,
        "p95": recovery,
        "max": recovery,
    }
    assert summary["connected_seconds"] == 7200.0 - (reconnected - 3610.0)

    transitions = [(t["at"], t["from"], t["to"]) for t in result["transitions"]]
    expected = [
        (0.0, "STOPPED", "NOT_CONNECTED"),
        (0.0, "NOT_CONNECTED", "CONNECTING"),
        (0.0, "CONNECTING", "CONNECTED"),
        (3610.0, "CONNECTED", "DISCONNECTING"),
        (3610.0, "DISCONNECTING", "NOT_CONNECTED"),
    ]
    for t in failed[1:]:
        expected += [(t, "NOT_CONNECTED", "CONNECTING"), (t, "CONNECTING", "NOT_CONNECTED")]
    expected += [
        (reconnected, "NOT_CONNECTED", "CONNECTING"),
        (reconnected, "CONNECTING", "CONNECTED"),
        (7200.0, "CONNECTED", "STOPPED"),
    ]
    assert transitions == expected


def test_outage_on_a_check_is_detected_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--hours", "2", "--outage", "1h:1h05m", "--seed", "3")

    _, connects = expected_checks(7200.0, [(3600.0, 3900.0)], seed=3)
    [outage] = result["outages"]
    assert (outage["detected_at"], outage["detection_delay"]) == (3600.0, 0.0)
    assert outage["reconnected_at"] == connects[1]


def test_text_report_shows_the_band_the_table_and_the_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, err = run(capsys, "--hours", "2", "--outage", "3605:3900", "--seed", "11")

    checks, connects = expected_checks(7200.0, [(3605.0, 3900.0)], seed=11)
    reconnected = connects[1]
    lines = out.splitlines()
    assert lines[0] == "chronopype-sim: 2 h of virtual time (7200 s), seed 11"
    assert lines[1] == "processor: default (checks return CONNECTED outside outages, instantly)"
    assert lines[2] == (
        "settings:  check_network_interval 10 s, check_network_timeout 5 s, "
        "network_error_wait_time 60 s"
    )
    assert "  #1  1:00:05 - 1:05:00  (295 s)" in lines
    # Not connected from 3610 until the reconnect, in the minutes that overlap that span.
    down_minutes = math.ceil(reconnected / 60) - 60
    assert "0h│" + "█" * 60 + "│" in lines
    hour_1 = lines.index("1h│" + "·" * down_minutes + "█" * (60 - down_minutes) + "│")
    # The outage covers minutes 60-64 (3605 s to 3900 s).
    assert lines[hour_1 + 1] == "   " + "^" * 5 + " " * 55 + " outage #1"

    recovery = f"{reconnected - 3900.0:.3f}".rstrip("0").rstrip(".") + " s"
    whole = math.floor(reconnected)
    millis = round((reconnected - whole) * 1000)
    clock = f"1:{(whole - 3600) // 60:02d}:{whole % 60:02d}.{millis:03d}"
    row = next(line for line in lines if line.startswith("  #1 ") and "1:00:10" in line)
    assert row.split() == [
        "#1",
        "1:00:05",
        "1:05:00",
        "1:00:10",
        "5",
        "s",
        clock,
        *recovery.split(),
        "9",
    ]
    assert f"checks: {len(checks)} in total" in lines
    assert "checks while down: 9 during 295 s of outages = 109.8 per hour" in lines
    assert err.startswith("chronopype-sim: simulated 2 h of virtual time in ")
    assert err.count("\n") == 1  # nothing else: in particular no leaked-task warning


def test_missed_outages_and_recoveries_cut_short_are_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_json(
        capsys,
        *("--hours", "2", "--seed", "5", "--outage", "3601:3605"),
        *("--outage", "5000:5300", "--outage", "5400:5500"),
    )

    missed, first, second = result["outages"]
    # 3601-3605 falls between the checks at 3600 and 3610.
    assert missed["checks"] == 0
    assert (missed["detected_at"], missed["reconnected_at"]) == (None, None)
    assert missed["note"] == "missed: no check saw it"
    # The retry after the one near 5255 s comes about 256 s later, after 5400: still down
    # when the next outage begins.
    assert (first["detected_at"], first["detection_delay"]) == (5000.0, 0.0)
    assert first["recovery_delay"] is None
    assert first["note"] == "not reconnected before the next outage"
    assert second["detected_at"] is None
    assert second["note"] == "already not connected when it began"
    _, connects = expected_checks(7200.0, [(5000.0, 5300.0), (5400.0, 5500.0)], seed=5)
    assert second["reconnected_at"] == connects[1]
    assert result["summary"]["detection_delay"]["count"] == 1
    assert result["summary"]["recovery_delay"]["count"] == 1


def test_starting_inside_an_outage_has_only_a_recovery(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_json(capsys, "--hours", "1", "--seed", "2", "--outage", "0:30")

    _, connects = expected_checks(3600.0, [(0.0, 30.0)], seed=2)
    [outage] = result["outages"]
    assert outage["detected_at"] is None
    assert outage["note"] == "already not connected when it began"
    assert outage["reconnected_at"] == connects[0]
    assert outage["recovery_delay"] == connects[0] - 30.0
    assert result["transitions"][:3] == [
        {"at": 0.0, "from": "STOPPED", "to": "NOT_CONNECTED"},
        {"at": 0.0, "from": "NOT_CONNECTED", "to": "CONNECTING"},
        {"at": 0.0, "from": "CONNECTING", "to": "NOT_CONNECTED"},
    ]


# -- the processor's own settings and subclasses -------------------------------------------------


def test_interval_sets_the_check_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(
        capsys,
        *("--hours", "1", "--interval", "30", "--timeout", "2", "--error-wait", "45"),
    )

    scenario = result["scenario"]
    assert (
        scenario["check_network_interval"],
        scenario["check_network_timeout"],
        scenario["network_error_wait_time"],
    ) == (30.0, 2.0, 45.0)
    assert result["summary"]["total_checks"] == 120  # 0, 30 ... 3570
    assert result["summary"]["checks_per_hour_while_down"] is None


class HandshakeProcessor(NetworkProcessor):
    """Checks instantly, but start_network takes 20 virtual seconds; records every call."""

    calls: ClassVar[list[tuple[str, float]]] = []

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.handshake")

    def _record(self, what: str) -> None:
        type(self).calls.append((what, asyncio.get_running_loop().time()))

    async def check_network(self) -> NetworkStatus:
        self._record("check")
        return NetworkStatus.CONNECTED

    async def start_network(self) -> None:
        self._record("start_network")
        await asyncio.sleep(20)

    async def stop_network(self) -> None:
        self._record("stop_network")


def test_user_processor_runs_with_its_check_wrapped_and_its_hooks_for_real(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HandshakeProcessor, "calls", [])
    result = run_json(
        capsys,
        *("--hours", "2", "--outage", "3600:3900", "--seed", "3"),
        *("--processor", f"{MODULE}:HandshakeProcessor"),
    )

    calls = HandshakeProcessor.calls
    # Connected at 20 (after the handshake), checks every 10 s from 30: one lands on 3600.
    assert calls[:3] == [("check", 0.0), ("start_network", 0.0), ("check", 30.0)]
    assert ("stop_network", 3600.0) in calls
    rng = random.Random(3)
    failures, t = 0, 3600.0
    while t < 3900.0:
        failures += 1
        t = t + expected_backoff(rng, failures)
    back = t
    # Their check is never called inside the outage; the wrapped one answers instead.
    their_checks = [at for what, at in calls if what == "check"]
    assert not [at for at in their_checks if 3600.0 <= at < 3900.0]
    assert ("check", back) in calls
    assert ("start_network", back) in calls
    assert [what for what, _ in calls if what != "check"] == [
        "start_network",
        "stop_network",
        "start_network",
        "stop_network",  # paired by stop() and await_cleanup() at the end of the run
    ]
    assert calls[-1] == ("stop_network", 7200.0)
    [outage] = result["outages"]
    assert outage["detection_delay"] == 0.0
    assert outage["reconnected_at"] == back + 20.0
    assert outage["recovery_delay"] == back + 20.0 - 3900.0
    assert result["scenario"]["processor"] == f"{MODULE}:HandshakeProcessor"
    # The 20 s handshakes show as connecting.
    assert result["timeline"]["hours"][0] == "░" + "█" * 59
    hour_1 = result["timeline"]["hours"][1]
    down = math.ceil(back / 60) - 60
    connecting = math.ceil((back + 20.0) / 60) - 60 - down
    assert hour_1 == "·" * down + "░" * connecting + "█" * (60 - down - connecting)


def test_processor_module_is_found_in_the_current_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probes.py").write_text(
        "import logging\n"
        "from chronopype import NetworkProcessor, NetworkStatus\n"
        "class Outer:\n"
        "    class Probe(NetworkProcessor):\n"
        "        @classmethod\n"
        "        def logger(cls):\n"
        "            return logging.getLogger('myapp')\n"
        "        async def check_network(self):\n"
        "            return NetworkStatus.CONNECTED\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "myapp", raising=False)
    monkeypatch.delitem(sys.modules, "myapp.probes", raising=False)

    result = run_json(capsys, "--hours", "1", "--processor", "myapp.probes:Outer.Probe")

    assert result["scenario"]["processor"] == "myapp.probes:Outer.Probe"
    assert result["summary"]["total_checks"] == 360
    assert str(tmp_path) in sys.path


class SlowCheckProcessor(NetworkProcessor):
    """A check that takes 3 virtual seconds."""

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.slow")

    async def check_network(self) -> NetworkStatus:
        await asyncio.sleep(3)
        return NetworkStatus.CONNECTED


def test_timeout_reaches_the_processor(capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"{MODULE}:SlowCheckProcessor"
    within = run_json(capsys, "--hours", "1", "--processor", spec, "--timeout", "5")
    assert within["transitions"][2] == {"at": 3.0, "from": "CONNECTING", "to": "CONNECTED"}

    too_slow = run_json(capsys, "--hours", "1", "--processor", spec, "--timeout", "2")
    assert too_slow["summary"]["connected_seconds"] == 0.0
    assert too_slow["transitions"][2] == {"at": 2.0, "from": "CONNECTING", "to": "NOT_CONNECTED"}


class RaisingProcessor(NetworkProcessor):
    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.raising")

    async def check_network(self) -> NetworkStatus:
        raise ConnectionResetError("peer reset")


def test_error_wait_reaches_the_processor(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(
        capsys,
        *("--hours", "1", "--error-wait", "45", "--processor", f"{MODULE}:RaisingProcessor"),
    )

    assert result["summary"]["total_checks"] == 80  # 0, 45 ... 3555
    assert result["timeline"]["hours"] == ["!" * 60]


class OwnIntervalProcessor(NetworkProcessor):
    def __init__(self) -> None:
        super().__init__(rng=random.Random(999))
        self.check_network_interval = 60

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.own")

    async def check_network(self) -> NetworkStatus:
        return NetworkStatus.CONNECTED


def test_processor_settings_are_kept_without_flags_and_seed_replaces_its_rng(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = f"{MODULE}:OwnIntervalProcessor"
    result = run_json(capsys, "--hours", "2", "--processor", spec, "--outage", "3600:3900")

    assert result["scenario"]["check_network_interval"] == 60.0
    assert result["summary"]["total_checks"] - result["summary"]["checks_during_outages"] > 0
    # --seed (default 0) seeds the processor's rng, whatever the constructor passed.
    rng = random.Random(0)
    t, failures = 3600.0, 0
    while t < 3900.0:
        failures += 1
        t = t + expected_backoff(rng, failures)
    assert result["outages"][0]["reconnected_at"] == t


class LeakyProcessor(NetworkProcessor):
    """Starts a heartbeat task in start_network and never cancels it."""

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.leaky")

    async def check_network(self) -> NetworkStatus:
        return NetworkStatus.CONNECTED

    async def start_network(self) -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(10**9), name="leaky heartbeat")


def test_tasks_left_behind_by_the_processor_are_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, err = run(capsys, "--hours", "1", "--processor", f"{MODULE}:LeakyProcessor")

    assert "warning: tasks still pending after stop() and await_cleanup(): leaky heartbeat" in err


# -- determinism and random outages -----------------------------------------------------------


def test_same_seed_gives_byte_identical_output(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--hours", "24", "--random-outages", "6", "--seed", "7")
    first, _ = run(capsys, *argv)
    second, _ = run(capsys, *argv)
    other_seed, _ = run(capsys, "--hours", "24", "--random-outages", "6", "--seed", "8")

    assert first == second
    assert first != other_seed
    assert (
        len([line for line in first.splitlines() if line.startswith("  #") and " - " in line]) == 6
    )
    short = ("--hours", "6", "--random-outages", "2", "--seed", "7")
    assert run_json(capsys, *short) == run_json(capsys, *short)


def test_random_outages_fit_the_horizon_without_overlap() -> None:
    for seed in range(300):
        outages = random_outages(6, 86_400.0, random.Random(seed))

        assert len(outages) == 6, seed
        assert outages[0].start >= MIN_OUTAGE_GAP_SECONDS, seed
        assert outages[-1].end <= 86_400.0 - MIN_OUTAGE_GAP_SECONDS, seed
        for outage in outages:
            assert 20 <= outage.duration <= 1800, (seed, outage)
            assert outage.start == int(outage.start), (seed, outage)
            assert outage.end == int(outage.end), (seed, outage)
        for earlier, later in itertools.pairwise(outages):
            assert later.start - earlier.end >= MIN_OUTAGE_GAP_SECONDS, (seed, earlier, later)


def test_random_outages_shrink_to_fit_a_short_run_or_refuse() -> None:
    outages = random_outages(2, 3600.0, random.Random(1))
    assert len(outages) == 2
    assert outages[-1].end <= 3600.0 - MIN_OUTAGE_GAP_SECONDS
    assert random_outages(0, 3600.0, random.Random(1)) == []
    with pytest.raises(ScenarioError, match="5 random outages do not fit in 3600 s"):
        random_outages(5, 3600.0, random.Random(1))


def test_random_outages_use_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--random-outages", "3", "--seed", "42")

    assert result["scenario"]["outages"] == [
        {"start": o.start, "end": o.end}
        for o in random_outages(3, 86_400.0, random.Random("chronopype-sim outages 42"))
    ]
    assert result["scenario"]["outage_source"] == "3 random, from seed 42"


# -- parsing and summaries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5400", 5400.0),
        ("5400.5", 5400.5),
        ("90m", 5400.0),
        ("1h30m", 5400.0),
        ("1h30m15.5s", 5415.5),
        ("1.5h", 5400.0),
        ("45s", 45.0),
        ("0", 0.0),
    ],
)
def test_times_are_seconds_or_h_m_s(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1h30", "-5", "nan", "inf", "1m1h", "h", "5 m", "1e3"])
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(ScenarioError, match="is not a time"):
        parse_duration(text)


def test_nearest_rank_percentiles_are_values_of_the_sample() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert nearest_rank(values, 50) == 3.0
    assert nearest_rank(values, 95) == 5.0
    assert nearest_rank(values, 20) == 1.0
    assert nearest_rank([], 50) is None
    assert Outage(10.0, 25.0).duration == 15.0


def test_ascii_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, "--hours", "1", "--outage", "10m:20m", "--ascii")

    assert "0h|" + "#" * 10 + "." * 10 in out
    assert out.isascii()


def test_ascii_is_used_when_stdout_cannot_encode_the_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)

    assert main(["--hours", "1", "--outage", "10m:20m"]) == 0

    stdout.flush()
    text = raw.getvalue().decode("ascii")
    assert "0h|" + "#" * 10 + "." * 10 in text


# -- usage errors --------------------------------------------------------------------------------


class NotAProcessor:
    pass


class HalfDone(NetworkProcessor):
    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.half")


class NeedsDsn(NetworkProcessor):
    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.dsn")

    async def check_network(self) -> NetworkStatus:
        return NetworkStatus.CONNECTED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--outage", "3900:3600"], "outage '3900:3600' ends before it starts"),
        (["--outage", "1h:1h"], "outage '1h:1h' ends before it starts"),
        (["--outage", "5400"], "outage '5400' must be START:END"),
        (["--outage", "1h30:2h"], "'1h30' is not a time"),
        (["--hours", "2", "--outage", "1h:3h"], "outage 1:00:00-3:00:00 ends after the run does"),
        (["--outage", "10:20", "--outage", "15:30"], "overlap or touch"),
        (["--outage", "10:20", "--outage", "20:30"], "overlap or touch"),
        (["--outage", "10:20", "--random-outages", "2"], "not allowed with argument --outage"),
        (["--hours", "0"], "argument --hours: must be > 0 hours, got 0"),
        (["--hours", "-1"], "argument --hours: must be > 0 hours, got -1"),
        (["--hours", "nan"], "argument --hours: must be a finite number of hours, got 'nan'"),
        (["--hours", "1e9"], "must be at most 8784 hours"),
        (["--hours", "two"], "argument --hours: 'two' is not a number"),
        (["--interval", "-1"], "argument --interval: must be >= 0.1 seconds, got -1"),
        (["--interval", "0.05"], "argument --interval: must be >= 0.1 seconds, got 0.05"),
        (["--timeout", "nan"], "argument --timeout: must be a finite number of seconds"),
        (["--error-wait", "inf"], "argument --error-wait: must be a finite number of seconds"),
        (["--seed", "-3"], "argument --seed: must be >= 0, got -3"),
        (["--seed", "1.5"], "argument --seed: '1.5' is not a whole number"),
        (["--random-outages", "-1"], "argument --random-outages: must be >= 0, got -1"),
        (["--hours", "1", "--random-outages", "5"], "5 random outages do not fit"),
        (["--processor", "NoColon"], "must be module:Class"),
        (["--processor", "no_such_module_xyz:P"], "cannot import 'no_such_module_xyz'"),
        ([f"--processor={MODULE}:Missing"], f"{MODULE!r} has no attribute 'Missing'"),
        ([f"--processor={MODULE}:NotAProcessor"], "is not a subclass of chronopype.Network"),
        (["--processor=chronopype:NetworkProcessor"], "NetworkProcessor is abstract"),
        ([f"--processor={MODULE}:HalfDone"], "does not implement check_network)"),
        ([f"--processor={MODULE}:NeedsDsn"], "cannot construct NeedsDsn() with no arguments"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_problem(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    err = usage_error(capsys, *argv)
    assert message in err
    assert "chronopype-sim: error: " in err


def test_missing_matplotlib_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    picture = tmp_path / "timeline.png"

    assert main(["--hours", "1", "--plot", str(picture)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""  # refused before simulating anything
    assert "--plot needs matplotlib" in captured.err
    assert "pip install 'chronopype[plot]'" in captured.err
    assert not picture.exists()


def test_missing_testing_extra_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chronopype_testing

    monkeypatch.delattr(chronopype_testing, "FakeClock", raising=False)
    monkeypatch.delitem(sys.modules, "chronopype_testing._loop", raising=False)
    monkeypatch.setitem(sys.modules, "time_machine", None)

    assert main(["--hours", "1"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("chronopype-sim: error: chronopype_testing.FakeClock needs")
    assert "pip install 'chronopype[testing]'" in captured.err


def test_plot_writes_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    picture = tmp_path / "timeline.png"

    out, err = run(capsys, "--hours", "3", "--outage", "1h:1h20m", "--plot", str(picture))

    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"wrote the timeline to {picture}" in err
    assert "outage #1" in out


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.subprocess
def test_python_dash_m_help() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "chronopype_testing.sim", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: chronopype-sim")
    for flag in ("--hours", "--outage START:END", "--random-outages", "--interval", "--timeout"):
        assert flag in completed.stdout
    for flag in ("--error-wait", "--seed", "--processor", "--json", "--plot", "1h30m"):
        assert flag in completed.stdout


@pytest.mark.subprocess
def test_python_dash_m_runs_a_scenario() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "chronopype_testing.sim", "--hours", "1", "--outage", "10m:12m"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )

    assert completed.returncode == 0, completed.stderr
    assert "  #1  0:10:00 - 0:12:00  (120 s)" in completed.stdout
    assert "0h│" + "█" * 10 in completed.stdout


# -- bounded work --------------------------------------------------------------------------------

# Peak memory the analysis may use, whatever the length of the run (tracemalloc, bytes).
MEMORY_BOUND = 256 * 1024
# Half an hour by default (about 16,000 checks: keeping 32 bytes per check, a float in a list,
# would already pass the bound); `make test-deep` sets 720 (30 days at 0.1 s, 25.9 million
# checks, about an hour of real time under tracemalloc).
MEMORY_HOURS = float(os.environ.get("CHRONOPYPE_SIM_MEMORY_HOURS", "0.5"))


@pytest.mark.slow(seconds=2)  # a few seconds under tracemalloc; not in `make quick`
def test_memory_is_bounded_by_outages_not_by_checks(summary_lines: list[str]) -> None:
    import time
    import tracemalloc

    from chronopype_testing._sim_analysis import RunAnalysis
    from chronopype_testing._sim_run import Settings, SimulatedProcessor, simulate

    horizon = MEMORY_HOURS * 3600.0
    # One-minute outages, one every tenth of the run.
    outages = [Outage(horizon * k / 10, horizon * k / 10 + 60.0) for k in range(1, 10)]
    # A first, short run pays the one-off costs (imports on first use, the clock's caches), so
    # that the traced run measures what grows with the run: with this test run alone, those
    # imports alone peak at 3.9 MB.
    warm_up = [Outage(300.0, 360.0)]
    simulate(SimulatedProcessor, warm_up, 600.0, Settings(0.1), 0, RunAnalysis(600.0, warm_up))
    analysis = RunAnalysis(horizon, outages)
    tracemalloc.start()
    began = time.perf_counter()
    try:
        simulate(SimulatedProcessor, outages, horizon, Settings(0.1), 0, analysis)
        analysis.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - began

    down = sum(o.duration for o in outages)
    # Every 0.1 s while connected: the run really did make that many checks.
    assert analysis.total_checks > (horizon - down - 9 * 120.0) / 0.1
    assert [r.note for r in analysis.outages] == [""] * 9
    assert peak < MEMORY_BOUND, f"peak {peak} bytes for {analysis.total_checks} checks"
    summary_lines.append(
        f"sim memory: {MEMORY_HOURS:g} h at 0.1 s, {analysis.total_checks} checks: "
        f"tracemalloc peak {peak / 1024:.0f} kB (bound {MEMORY_BOUND // 1024} kB), "
        f"{elapsed:.1f} s real time under tracemalloc"
    )


# -- the story of each outage, the worst case, --compare ---------------------------------------


def expected_outcomes(
    horizon: float, outages: list[tuple[float, float]], seed: int, interval: float = 10.0
) -> list[tuple[float, bool]]:
    """(check time, succeeded) for every check of the default processor (see expected_checks)."""
    checks, _ = expected_checks(horizon, outages, seed, interval)
    return [(t, not any(start <= t < end for start, end in outages)) for t in checks]


def offset(seconds: float) -> str:
    return f"+{seconds:.1f}s"


def test_each_outage_lists_its_checks_and_the_wait_that_made_recovery_late(
    capsys: pytest.CaptureFixture[str],
) -> None:
    windows = [(3605.0, 3900.0), (5000.0, 5040.0)]
    out, _ = run(
        capsys, "--hours", "2", "--seed", "11", "--outage", "3605:3900", "--outage", "5000:5040"
    )

    outcomes = expected_outcomes(7200.0, windows, seed=11)
    lines = out.splitlines()
    story = lines.index(
        "checks during and after each outage, in seconds from its start (✓ connected, ✗ failed):"
    )
    # Outage #1: the failed checks from 3610 on, the end, then the check that connected.
    first = [(t, ok) for t, ok in outcomes if t >= 3605.0]
    back = next(i for i, (_, ok) in enumerate(first) if ok)
    marks = [f"{offset(t - 3605.0)} ✗" for t, _ in first[:back]]
    marks += ["| end +295.0s |", f"{offset(first[back][0] - 3605.0)} ✓"]
    text = "  ".join(line.strip() for line in lines[story + 1 : story + 3])
    assert re.split(" {2,}", text) == ["#1", *marks]
    waited = first[back][0] - first[back - 1][0]
    recovery = first[back][0] - 3900.0
    detail = " ".join(line.strip() for line in lines[story + 3 : story + 5])
    assert detail == (
        f"detected after 5 s; back {format_seconds(recovery)} after the end, after a "
        f"{format_seconds(waited)} wait (the backoff after 9 failed checks in a row: "
        "backoff_delay(9) = 256 s ±10%)"
    )
    # Outage #2 (40 s): six failed checks 1, 2, 4, 8, 16 s (+/-10%) apart, then one after it.
    second = [(t, ok) for t, ok in outcomes if t >= 5000.0]
    second = second[: next(i for i, (_, ok) in enumerate(second) if ok) + 1]
    assert [ok for _, ok in second] == [False] * 6 + [True]
    row = next(line for line in lines[story:] if line.startswith("  #2 "))
    assert re.split(" {2,}", row.strip()) == [
        "#2",
        *(f"{offset(t - 5000.0)} ✗" for t, _ in second[:-1]),
        "| end +40.0s |",
        f"{offset(second[-1][0] - 5000.0)} ✓",
    ]
    # The worst recovery is outage #1's, with its cause.
    first_worst = next(i for i, line in enumerate(lines) if line.startswith("worst recovery"))
    worst = " ".join(line.strip() for line in lines[first_worst : first_worst + 3])
    assert worst.startswith(
        f"worst recovery:  #1, {format_seconds(recovery)} after it ended; the network came back "
        f"during a {format_seconds(waited)} wait (the backoff after 9 failed checks in a row"
    )
    assert "worst detection: #1, 5 s after it began (checks run every 10 s while connected;" in out


def test_compare_runs_two_settings_on_the_same_outages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ("--hours", "2", "--seed", "11", "--outage", "3605:3900", "--compare", "interval=30")
    out, err = run(capsys, *argv)
    result = run_json(capsys, *argv)

    _, connects_a = expected_checks(7200.0, [(3605.0, 3900.0)], seed=11)
    checks_b, connects_b = expected_checks(7200.0, [(3605.0, 3900.0)], seed=11, interval=30.0)
    a, b = result["compare"]["A"], result["compare"]["B"]
    assert a["scenario"]["outages"] == [{"start": 3605.0, "end": 3900.0}]
    assert b["scenario"]["outages"] == a["scenario"]["outages"]
    assert (a["scenario"]["check_network_interval"], b["scenario"]["check_network_interval"]) == (
        10.0,
        30.0,
    )
    assert a["outages"][0]["reconnected_at"] == connects_a[1]
    assert b["outages"][0]["reconnected_at"] == connects_b[1]
    # B checks every 30 s, so it first sees the outage at 3630.
    assert b["outages"][0]["detected_at"] == 3630.0
    assert b["summary"]["total_checks"] == len(checks_b)

    lines = out.splitlines()
    assert lines[0] == (
        "chronopype-sim --compare: 2 h of virtual time (7200 s), seed 11, the same outages for each"
    )
    assert "  A: check_network_interval 10 s, check_network_timeout 5 s, " in out
    assert "  B: check_network_interval 30 s, check_network_timeout 5 s, " in out
    header = next(line for line in lines if line.startswith("  outage"))
    assert header.split() == [
        "outage", "start", "end", "detection", "A", "detection", "B", "recovery", "A",
        "recovery", "B", "checks", "A", "checks", "B",
    ]  # fmt: skip
    row = lines[lines.index(header) + 1].split()
    recoveries = [
        format_seconds(connects[1] - 3900.0).split()[0] for connects in (connects_a, connects_b)
    ]
    assert row[:9] == ["#1", "1:00:05", "1:05:00", "5", "s", "25", "s", recoveries[0], "s"]
    assert row[9:11] == [recoveries[1], "s"]
    assert "simulated 2 h of virtual time 2 times in " in err


class NeverUp(NetworkProcessor):
    """Its check never succeeds: the service it probes is not there."""

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("tests.sim.never")

    async def check_network(self) -> NetworkStatus:
        return NetworkStatus.NOT_CONNECTED


def test_a_processor_that_never_connects_is_warned_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ("--hours", "1", "--outage", "10m:20m", "--processor", f"{MODULE}:NeverUp")
    out, err = run(capsys, *argv)
    result = run_json(capsys, *argv)

    warning = f"warning: {MODULE}:NeverUp never connected outside the outages ("
    assert out.startswith(warning)
    assert "so this report shows a processor that is down all along" in out.splitlines()[0]
    assert f"chronopype-sim: {warning}" in err
    [outage] = result["outages"]
    assert (
        outage["note"]
        == "already not connected when it began; not reconnected before the end of the run"
    )
    assert result["warnings"][0].startswith(warning)
    # A processor that connects gets no warning.
    out, err = run(capsys, "--hours", "1", "--outage", "10m:20m")
    assert "warning" not in out + err
    assert run_json(capsys, "--hours", "1")["warnings"] == []


# -- factories -----------------------------------------------------------------------------------


def make_handshake_processor() -> NetworkProcessor:
    processor = HandshakeProcessor()
    processor.check_network_interval = 20.0
    return processor


def make_a_number() -> object:
    return 42


def make_and_fail() -> NetworkProcessor:
    raise RuntimeError("no config file")


async def make_asynchronously() -> NetworkProcessor:
    return HandshakeProcessor()


NOT_CALLABLE = 5


def test_a_factory_builds_the_processor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HandshakeProcessor, "calls", [])
    result = run_json(
        capsys,
        *("--hours", "1", "--outage", "600:700", "--seed", "3"),
        *("--processor", f"{MODULE}:make_handshake_processor"),
    )

    assert result["scenario"]["processor"] == f"{MODULE}:make_handshake_processor"
    assert result["scenario"]["check_network_interval"] == 20.0  # set by the factory
    calls = HandshakeProcessor.calls
    # Connected at 20 (after the handshake), then checks every 20 s: 40, 60 ... 600.
    assert calls[:3] == [("check", 0.0), ("start_network", 0.0), ("check", 40.0)]
    assert ("stop_network", 600.0) in calls
    assert result["outages"][0]["detected_at"] == 600.0
    assert not [at for what, at in calls if what == "check" and 600.0 <= at < 700.0]


# -- more usage errors ---------------------------------------------------------------------------


def _write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([f"--processor={MODULE}:make_a_number"], "make_a_number() returned int, not a chronop"),
        ([f"--processor={MODULE}:make_and_fail"], "make_and_fail() raised RuntimeError('no conf"),
        ([f"--processor={MODULE}:make_asynchronously"], "'make_asynchronously' is an async fun"),
        ([f"--processor={MODULE}:NOT_CALLABLE"], "5 is neither a NetworkProcessor subclass nor"),
        (["--compare", "interval"], "argument --compare: 'interval' must be SETTING=SECONDS"),
        (["--compare", "speed=3"], "'speed=3' must be SETTING=SECONDS with SETTING one of inter"),
        (["--compare", "interval=0.01"], "argument --compare: interval: must be >= 0.1 seconds"),
        (["--compare", "timeout=nan"], "timeout: must be a finite number of seconds"),
        (["--compare", "timeout=1,timeout=2"], "argument --compare: timeout is given twice"),
        (["--compare", "interval=3", "--plot", "x.png"], "--plot draws one run: use it without"),
        (["--plot", "timeline.txt"], "--plot 'timeline.txt': the name must end in one of .png"),
        (["--plot", "timeline"], "--plot 'timeline': the name must end in one of .png"),
        (["--plot", ""], "--plot '' is not a file name"),
        (["--plot", "/nonexistent/dir/x.png"], "the directory /nonexistent/dir does not exist"),
        (["--hours", "721", "--interval", "0.1"], "is 25,956,000 checks; the bound is 25,920,000"),
        (["--hours", "8784", "--interval", "0.1"], "lower --hours or raise --interval"),
    ],
)
def test_more_bad_arguments_are_one_line_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    err = usage_error(capsys, *argv)
    assert message in err


def test_a_directory_or_a_read_only_one_is_refused_for_the_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert f"--plot {str(tmp_path)!r} is a directory" in usage_error(
        capsys, "--plot", str(tmp_path)
    )
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: nothing to refuse
        return
    assert "is not writable" in usage_error(capsys, "--plot", str(locked / "x.png"))


def test_a_module_that_exits_while_imported_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _write_module(tmp_path, monkeypatch, "exits_on_import", "import sys\nsys.exit(0)\n")

    err = usage_error(capsys, "--processor", "exits_on_import:P")
    assert "cannot import 'exits_on_import': SystemExit(0)" in err


def test_a_closed_pipe_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["--hours", "1"]) == 0


def test_progress_shows_on_a_terminal_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["--hours", "2", "--outage", "1h:1h05m"]) == 0
    shown = terminal.getvalue()
    # tqdm draws the bar, then (leave=False) wipes it: the report stays clean.
    assert "\rchronopype-sim run:   0%|" in shown
    assert "/2 virtual h" in shown
    assert shown.endswith("in 0.00 s of real time\n"[-len("real time\n") :])
    # The same run with stderr not a terminal (capsys) prints the one timing line only.
    monkeypatch.undo()
    _, err = run(capsys, "--hours", "2", "--outage", "1h:1h05m")
    assert err.count("\n") == 1 and "virtual h" not in err


@pytest.mark.parametrize("hours", [1, 24])
def test_plot_marks_every_check_shades_outages_and_keeps_the_legend_clear(hours: int) -> None:
    pytest.importorskip("matplotlib")
    from chronopype_testing._sim_analysis import RunAnalysis
    from chronopype_testing._sim_plot import draw, load_pyplot
    from chronopype_testing._sim_run import Settings, SimulatedProcessor, simulate

    horizon = hours * 3600.0
    outages = [Outage(600.0, 1500.0)]
    analysis = RunAnalysis(horizon, outages, keep_checks=True)
    simulate(SimulatedProcessor, outages, horizon, Settings(), 0, analysis)
    analysis.finish()
    pyplot = load_pyplot()
    figure = draw(analysis, title="test")
    try:
        figure.canvas.draw()
        [axes] = figure.axes
        marks = [c for c in axes.collections if type(c).__name__ == "PathCollection"]
        succeeded, failed = (len(c.get_offsets()) for c in marks)
        assert succeeded + failed == analysis.total_checks
        assert failed == analysis.checks_during_outages > 0
        # The outage is shaded across its whole row: minutes 10 to 25 of hour 0.
        shaded = [
            c for c in axes.collections
            if type(c).__name__ == "PolyCollection" and tuple(c.get_facecolor()[0][:3])
            == pytest.approx((0xEF / 255, 0x9A / 255, 0x9A / 255))
        ]  # fmt: skip
        [outage_box] = shaded[0].get_paths()
        xs, ys = outage_box.vertices[:, 0], outage_box.vertices[:, 1]
        assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10.0, 25.0, -0.5, 0.5)
        renderer = figure.canvas.get_renderer()
        legend = figure.legends[0].get_window_extent(renderer)
        # The axes' tight box includes its tick labels and the x-axis label.
        assert not legend.overlaps(axes.get_tightbbox(renderer))
        assert [t.get_text() for t in figure.legends[0].get_texts()][-2:] == [
            "check succeeded",
            "check failed",
        ]
    finally:
        pyplot.close(figure)


def test_a_plot_the_disk_refuses_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    from chronopype_testing import sim

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sim, "write_plot", disk_full)
    picture = tmp_path / "x.png"

    assert main(["--hours", "1", "--plot", str(picture)]) == 1

    err = capsys.readouterr().err
    assert f"chronopype-sim: error: cannot write {picture}: [Errno 28] No space left" in err
    assert "Traceback" not in err


def test_compare_names_an_outage_one_setting_missed(capsys: pytest.CaptureFixture[str]) -> None:
    # Checks at 3600 and 3610 (A) see it; at 3600 and 3630 (B) they do not.
    out, _ = run(capsys, "--hours", "2", "--outage", "3605:3615", "--compare", "interval=30")

    row = next(line for line in out.splitlines() if line.startswith("  #1 "))
    assert row.split()[:6] == ["#1", "1:00:05", "1:00:15", "5", "s", "missed"]
    # Checks inside it: A at 3610, then after backoffs of ~1 and ~2 s; B none.
    assert row.split()[-2:] == ["3", "0"]


def test_without_tqdm_a_terminal_gets_no_progress_and_the_run_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError

    assert main(["--hours", "1", "--outage", "10m:12m", "--json"]) == 0
    assert terminal.getvalue().startswith("chronopype-sim: simulated 1 h of virtual time in ")
    assert terminal.getvalue().count("\n") == 1


def test_a_run_longer_than_fake_clocks_30_day_guard_completes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--hours allows a year; FakeClock's default max_elapsed is 30 days (a guard for tests)."""
    result = run_json(
        capsys, "--hours", "800", "--interval", "600", "--outage", "760h:760h10m"
    )

    [outage] = result["outages"]
    assert outage["start"] == 760 * 3600.0
    assert outage["detection_delay"] == 0.0  # a check is due exactly at 760 h (600 s grid)
    assert outage["reconnected_at"] == outage["end"] + outage["recovery_delay"]
    assert 0 < outage["recovery_delay"] <= 300 * 1.1
    assert result["transitions"][-1] == {"at": 800 * 3600.0, "from": "CONNECTED", "to": "STOPPED"}


def test_a_missed_outages_story_ends_at_the_first_check_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Checks every 300 s from 0: at 3:00:00, then 3:05:00; the outage falls between them.
    result = run_json(capsys, "--hours", "6", "--interval", "300", "--outage", "3h01m:3h02m")

    [missed] = result["outages"]
    assert missed["note"] == "missed: no check saw it"
    # Connected before, during and after: the check at 3:05:00 shows it; none after it belong.
    assert [(c["started"], c["connected"]) for c in missed["check_log"]] == [(3 * 3600 + 300, True)]
    assert missed["check_log_left_out"] == 0 and missed["check_log_end"] == []
