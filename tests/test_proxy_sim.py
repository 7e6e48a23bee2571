"""chronopype-sim --via-proxy: the outages as proxy faults in front of a real service."""

from __future__ import annotations

import re

import pytest
from pg_server import PostgresServer

from chronopype_testing import sim


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--via-proxy", "127.0.0.1:5432"], "--via-proxy needs --processor"),
        (
            ["--processor", "examples.tcp_processor:TcpProcessor", "--via-proxy", "nowhere"],
            "must be HOST:PORT",
        ),
        (
            ["--processor", "examples.tcp_processor:TcpProcessor", "--via-proxy", "http://x/"],
            "must name a host and a port",
        ),
        (
            [
                "--processor", "examples.tcp_processor:TcpProcessor",
                "--via-proxy", "127.0.0.1:1", "--fault", "meteor",
            ],
            "--fault: unknown fault 'meteor'",
        ),
    ],
)  # fmt: skip
def test_bad_via_proxy_arguments_are_clear_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sim.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.postgres
def test_database_processor_through_the_scenario_against_real_postgres(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = postgres_server.dsn(client_min_messages="warning")
    argv = [
        "--processor", "examples.database_processor:DatabaseProcessor",
        "--via-proxy", dsn,
        "--outage", "1h:1h20m", "--outage", "3h:3h01m",
        "--fault", "blackhole", "--hours", "6", "--interval", "300", "--seed", "3",
    ]  # fmt: skip
    assert sim.main(argv) == 0
    first = capsys.readouterr().out
    assert sim.main(argv) == 0
    assert capsys.readouterr().out.replace(str(postgres_server.port), "PORT") == first.replace(
        str(postgres_server.port), "PORT"
    )
    lines = first.splitlines()
    assert "fault blackhole in each outage" in lines[0]
    # The simulator's own per-outage report, with each check's real outcome. Checks every
    # 300 s from 0: the check at 1:00:00 times out 5 s later (the black hole); the one-minute
    # outage at 3h falls between two checks and is missed.
    rows = {line.split()[0]: line.split() for line in lines if re.match(r"  #\d+ {4}", line)}
    assert rows["#1"][1:6] == ["1:00:00", "1:20:00", "1:00:05", "5", "s"]
    assert " ".join(rows["#2"][1:]) == "3:00:00 3:01:00 - - - - 0 missed: no check saw it"
    story = first[first.index("checks during and after each outage") :]
    assert story.count("✗ (timed out)") == int(rows["#1"][-1])  # every check in #1 timed out
    assert "  #2   | end +60.0s |  +241.1s ✓\n" in story  # ends at the first good check
