"""The suite's own fixtures and hooks: PostgreSQL servers, summary lines, scheduling, leaks."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator

import pytest
from pg_server import PostgresServer, PostgresUnavailable

import chronopype_testing

# In-process pytester runs (``runpytest_inprocess``) drop every module first imported during the
# inner run. chronopype_testing imports its parts on first use and keeps what it exported, so a
# part first imported inside one inner run would come back as a second copy in the next, and
# isinstance would fail across the copies. Import every part before any inner run.
for _exported in chronopype_testing.__all__:
    getattr(chronopype_testing, _exported)

REQUIRE_POSTGRES = "CHRONOPYPE_REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway server for the session; tests may kill and restart it but must leave it up.

    Skips when no server can be started, unless CHRONOPYPE_REQUIRE_POSTGRES=1 (as in CI), where
    that is a failure.
    """
    server: PostgresServer | None = None
    try:
        server = PostgresServer.create()
        server.start()
    except PostgresUnavailable as exc:
        if server is not None:
            server.destroy()
        if os.environ.get(REQUIRE_POSTGRES) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES}=1 but no PostgreSQL server could be started: {exc}")
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    try:
        yield server
    finally:
        server.destroy()


_SUMMARY_PROPERTY = "chronopype-summary"


@pytest.fixture
def summary_lines(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines a test wants in the terminal summary (and so in the CI log), even without ``-s``.

    They travel as user properties of the test's teardown report, so under pytest-xdist they
    reach the controller, which prints the summary.
    """
    lines: list[str] = []
    yield lines
    request.node.user_properties.extend((_SUMMARY_PROPERTY, line) for line in lines)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pytester" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pytester)
    # Long tests first, longest first (a stable sort on the ``slow`` marker's ``seconds``, its
    # rough real duration here), so that none of them starts last and runs alone.
    items.sort(key=_expected_seconds, reverse=True)
    # `make test` runs xdist's worksteal scheduler: idle workers take tests from the tail of a
    # busy worker's queue, but never the test after the running one. Keep that one short, so
    # the next long test does not wait out the longest (the PostgreSQL chaos test) behind it.
    first_short = next((i for i, item in enumerate(items) if not _expected_seconds(item)), None)
    if first_short is not None and first_short > 1:
        items.insert(1, items.pop(first_short))


def _expected_seconds(item: pytest.Item) -> float:
    slow = item.get_closest_marker("slow")
    if slow is None:
        return 0.0
    return float(slow.kwargs.get("seconds", 1.0))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        for name, value in report.user_properties
        if name == _SUMMARY_PROPERTY
    ]
    if lines:
        terminalreporter.write_sep("=", "chronopype real-server numbers")
        for line in lines:
            terminalreporter.write_line(line)


class _DestroyedPendingTasks(logging.Handler):
    """What asyncio logs when a pending task is garbage-collected: a leaked task."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Task was destroyed but it is pending" in message:
            self.messages.append(message)


@pytest.fixture(scope="session", autouse=True)
def _no_task_destroyed_pending() -> Iterator[_DestroyedPendingTasks]:
    """Fail the session's last test if any pending task was destroyed during the session.

    A leaked task is found only when the garbage collector gets to it, often during a later,
    innocent test, so the per-test guard below names where it was seen, not who leaked it.
    """
    handler = _DestroyedPendingTasks()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)
    try:
        yield handler
        gc.collect()
        if handler.messages:
            pytest.fail("a pending task was destroyed: " + handler.messages[0])
    finally:
        asyncio_logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _no_task_destroyed_pending_here(
    _no_task_destroyed_pending: _DestroyedPendingTasks,
) -> Iterator[None]:
    seen = len(_no_task_destroyed_pending.messages)
    yield
    new = _no_task_destroyed_pending.messages[seen:]
    if new:
        pytest.fail(
            "a pending task was destroyed during this test (a leak from this test or an "
            "earlier one; the collector decides when it is found): " + new[0]
        )
