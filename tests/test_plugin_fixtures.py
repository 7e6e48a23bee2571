"""The plugin's fake_network_processor / transition_recorder / chronopype_rng fixtures and seeds,
exercised as a downstream suite meets them: its own files, no conftest from us (pytester)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")

# A downstream suite: its own NetworkProcessor subclass, the public API and the plugin only.
DOWNSTREAM_SUITE = '''
import asyncio
import logging
import time

from chronopype import NetworkProcessor, NetworkStatus
from chronopype_testing import assert_backoff_schedule

HOUR = 3600.0
# 12 outages, one every other hour, 5, 10 or 15 minutes long.
OUTAGES = [
    (k * HOUR + 600.0, k * HOUR + 600.0 + 300.0 * (1 + (k // 2) % 3)) for k in range(0, 24, 2)
]


class InventoryService(NetworkProcessor):
    """The user's own processor: "the network" is down during OUTAGES (seconds after start)."""

    LOGGER_NAME = "inventory"

    def __init__(self, outages, *, rng):
        super().__init__(rng=rng)
        self.outages = outages
        self.origin = None
        self.sessions_opened = 0
        self.sessions_closed = 0

    @classmethod
    def logger(cls):
        return logging.getLogger(cls.LOGGER_NAME)

    def start(self, timestamp):
        self.origin = asyncio.get_running_loop().time()
        super().start(timestamp)

    async def check_network(self):
        since_start = asyncio.get_running_loop().time() - self.origin
        down = any(start <= since_start < end for start, end in self.outages)
        return NetworkStatus.NOT_CONNECTED if down else NetworkStatus.CONNECTED

    async def start_network(self):
        self.sessions_opened += 1

    async def stop_network(self):
        self.sessions_closed += 1


async def test_a_day_with_12_outages(fake_clock, transition_recorder, chronopype_rng):
    began = time.perf_counter()
    service = InventoryService(OUTAGES, rng=chronopype_rng)
    recorder = transition_recorder(service)
    service.start(time.time())
    await asyncio.sleep(24 * HOUR)
    service.stop()
    await service.await_cleanup()
    wall = time.perf_counter() - began

    origin = recorder.transitions[0].at
    downs = [t.at - origin for t in recorder.transitions if t.new is NetworkStatus.DISCONNECTING]
    ups = [t.at - origin for t in recorder.transitions if t.new is NetworkStatus.CONNECTED]
    assert len(downs) == 12 and len(ups) == 13
    for (start, end), down, up in zip(OUTAGES, downs, ups[1:]):
        assert start <= down < start + 10.0  # the first check inside the outage sees it
        assert end <= up < end + 300.0  # the next retry after it ends reconnects
    assert service.sessions_opened == 13 and service.sessions_closed == 13
    # The first outage lasts 300 s: retries 1, 2, 4 ... 128 s fail, the 256 s one reconnects.
    assert_backoff_schedule(recorder, [1, 2, 4, 8, 16, 32, 64, 128, 256])
    print(f"24h scenario with 12 outages: {len(recorder.transitions)} transitions, "
          f"wall time {wall:.3f} s")


async def test_a_wrong_expectation(fake_clock, transition_recorder, chronopype_rng):
    service = InventoryService([(30.0, 90.0)], rng=chronopype_rng)
    recorder = transition_recorder(service)
    service.start(time.time())
    await asyncio.sleep(120)
    # Wrong on purpose: it forgets the backoff retries during the outage.
    recorder.assert_timeline([
        (0, NetworkStatus.NOT_CONNECTED),
        (0, NetworkStatus.CONNECTING),
        (0, NetworkStatus.CONNECTED),
        (30, NetworkStatus.DISCONNECTING),
        (30, NetworkStatus.NOT_CONNECTED),
        (90, NetworkStatus.CONNECTING),
        (90, NetworkStatus.CONNECTED),
    ])
'''

FAKE_TESTS = """
import asyncio

import pytest

from chronopype import NetworkStatus
from chronopype_testing import Step


{mark}
async def test_scripted(fake_network_processor, fake_clock):
    processor = fake_network_processor(
        [Step.connected(), Step.not_connected(times=2), Step.hangs()],
        start_network=[Step.slow(2.0)],
    )
    await fake_clock.advance(2.0)
    assert processor.network_status is NetworkStatus.CONNECTED
    await asyncio.sleep(600)
    assert processor.start_network_calls == 2


{mark}
async def test_leaks_a_task(fake_network_processor):
    processor = fake_network_processor()

    async def forever(owner):
        await asyncio.Event().wait()

    asyncio.get_running_loop().create_task(forever(processor), name="stray background task")
    await asyncio.sleep(1)


{mark}
async def test_breaks_the_pairing(fake_network_processor):
    processor = fake_network_processor()
    await asyncio.sleep(1)
    await processor.stop_network()  # behind the processor's back


def test_sync_test_cannot_start_processors(fake_network_processor):
    fake_network_processor()
"""


def _ini(pytester: pytest.Pytester, mode: str = "auto", extra: str = "") -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error::pytest.PytestUnraisableExceptionWarning
        {extra}
        """
    )


def test_downstream_suite_day_of_outages_and_a_readable_failure(
    pytester: pytest.Pytester, summary_lines: list[str]
) -> None:
    _ini(pytester)
    pytester.makepyfile(test_inventory=DOWNSTREAM_SUITE)
    result = pytester.runpytest_subprocess("-s", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()

    wall = re.search(
        r"24h scenario with 12 outages: (\d+) transitions, wall time ([\d.]+) s", output
    )
    assert wall is not None, output
    summary_lines.append(wall.group(0))
    print(wall.group(0))  # the figure for the notes; not asserted (machine load varies)

    result.stdout.fnmatch_lines(
        [
            "*InventoryService timeline differs (tolerance 1e-06 s): first difference at #6: "
            "expected CONNECTING at t=90 s, got CONNECTING at t=31*",
            "*timeline (x: 2s per column; * status entered, - status held)",
            "*  expected",
            "*    NOT_CONNECTED  *              *-----------------------------",
            "*  actual",
            "*    DISCONNECTING                 *",
            "*  >>  6  CONNECTING at 90 s*CONNECTING at 31*",
            "*chronopype seed: 0 (re-run with --chronopype-seed=0)",
        ]
    )
    failure = output[
        output.index("_ test_a_wrong_expectation _") : output.index("short test summary")
    ]
    print(failure)


def test_seed_option_ini_header_and_reproduction(pytester: pytest.Pytester) -> None:
    _ini(pytester)
    pytester.makepyfile(
        """
        import asyncio
        from chronopype.processors.events import WaitScheduled
        from chronopype_testing import Step

        async def test_prints_its_randomness(fake_network_processor, chronopype_rng):
            processor = fake_network_processor([Step.not_connected(times=2)])
            await asyncio.sleep(10)
            delays = [wait.delay for wait in processor.recorder.of_type(WaitScheduled)]
            print(f"RANDOMNESS {delays[1]!r} {chronopype_rng.random()!r}")
            assert False, "fails on purpose"
        """
    )

    def run(*args: str) -> tuple[str, str]:
        result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
        result.assert_outcomes(failed=1)
        output = result.stdout.str()
        found = re.search(r"RANDOMNESS (\S+) (\S+)", output)
        assert found is not None, output
        return f"{found.group(1)} {found.group(2)}", output

    default, output = run()
    assert "chronopype seed: 0\n" in output  # the report header
    assert "chronopype seed: 0 (re-run with --chronopype-seed=0)" in output
    seeded, output = run("--chronopype-seed=1234")
    assert "chronopype seed: 1234 (re-run with --chronopype-seed=1234)" in output
    again, _ = run("--chronopype-seed=1234")
    assert seeded == again
    assert seeded != default
    _ini(pytester, extra="chronopype_seed = 1234")
    from_ini, output = run()
    assert from_ini == seeded
    assert "chronopype seed: 1234" in output

    _ini(pytester, extra="chronopype_seed = lots")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*chronopype_seed must be an integer, got 'lots'*"])


@pytest.mark.parametrize(
    ("mode", "mark", "flags"),
    [
        ("auto", "", ()),
        ("strict", "@pytest.mark.asyncio", ()),
        ("strict", "", ()),  # no marker: the chronopype plugin runs it on the fake clock
        ("auto", "", ("-p", "no:asyncio")),
    ],
    ids=["auto", "strict", "strict-unmarked", "no-pytest-asyncio"],
)
def test_fake_network_processor_fixture_fails_leaks_and_broken_pairing(
    pytester: pytest.Pytester, mode: str, mark: str, flags: tuple[str, ...]
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(FAKE_TESTS.format(mark=mark))
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider", *flags)
    # Failures of the tests themselves, not errors at teardown, not a broken session.
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*chronopype cleanup after the test body:",
            "fake_network_processor #1 (<FakeNetworkProcessor STOPPED *) leaked 1 task(s) "
            "after await_cleanup(): stray background task",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "fake_network_processor #1 (*): stop_network() call #2 at loop time 1.0 ran "
            "without a start_network() to pair with",
            "fake_network_processor #1 (*): start_network() ran 1 time(s) but stop_network() "
            "2 time(s)",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*RuntimeError: fake_network_processor(...) starts the processor on the test's*"]
    )
    assert "Task was destroyed" not in result.stdout.str() + result.stderr.str()


def test_fixtures_are_documented_and_markers_strict(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "fake_network_processor -- *",
            "*Factory for scripted ``chronopype_testing.FakeNetworkProcessor``s, returned started.",
        ]
    )
    result.stdout.fnmatch_lines(
        ["transition_recorder -- *", "*Factory: ``transition_recorder(processor)`` attaches*"]
    )
    result.stdout.fnmatch_lines(["chronopype_rng -- *", "*derived from ``--chronopype-seed``*"])
