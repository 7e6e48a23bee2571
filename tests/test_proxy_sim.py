"""chronopype-sim --via-proxy: the outages as proxy faults in front of a real service."""

from __future__ import annotations

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
    # Checks every 300 s from 0: the check at 1:00:00 times out 5 s later; the one-minute
    # outage at 3h falls between two checks and is missed.
    [long_outage] = [line for line in lines if line.startswith("1:00:00-1:20:00")]
    assert long_outage.split()[1:3] == ["5", "s"]
    [short_outage] = [line for line in lines if line.startswith("3:00:00-3:01:00")]
    assert short_outage.split()[1:] == ["missed", "-"]
    assert lines[-1].strip().endswith("STOPPED")
