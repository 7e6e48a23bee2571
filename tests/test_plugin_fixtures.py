"""The plugin's fake_network_processor / transition_recorder / chronopype_rng fixtures and seeds,
exercised as a downstream suite meets them: its own files, no conftest from us (pytester)."""

from __future__ import annotations

import re

import pytest

# In-process pytester runs drop the modules they imported; the plugin loads these lazily, so
# keep them loaded here, or each run would build a second set of classes (Step, processors).
import chronopype_testing._fixtures
import chronopype_testing.strategies  # noqa: F401

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
    result = pytester.runpytest("-s", "--strict-markers", "-p", "no:cacheprovider")
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
        result = pytester.runpytest("-s", "-p", "no:cacheprovider", *args)
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

    random_seed, output = run("--chronopype-seed=random")
    header = re.search(
        r"chronopype seed: (\d+) \(random; re-run with --chronopype-seed=\1\)", output
    )
    assert header is not None, output
    picked = header.group(1)
    assert f"chronopype seed: {picked} (re-run with --chronopype-seed={picked})" in output
    replayed, _ = run(f"--chronopype-seed={picked}")
    assert replayed == random_seed


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("chronopype_seed = lots", (), "ini option chronopype_seed must be an integer or "
         "'random', got 'lots'"),
        ("", ("--chronopype-seed=1.5",), "--chronopype-seed must be an integer or 'random', "
         "got '1.5'"),
    ],
    ids=["ini", "option"],
)
def test_a_bad_seed_is_one_usage_error_at_start_up(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], message: str
) -> None:
    _ini(pytester, extra=ini)
    pytester.makepyfile("def test_unrelated():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "test_unrelated" not in result.stdout.str()  # nothing ran, nothing failed


SEEDED_FILE = """
import asyncio

from chronopype.processors.events import WaitScheduled
from chronopype_testing import Step

async def test_{name}(fake_network_processor, chronopype_rng):
    processor = fake_network_processor([Step.not_connected(times=3)])
    await asyncio.sleep(20)
    delays = [round(w.delay, 12) for w in processor.recorder.of_type(WaitScheduled)]
    assert False, f"SEEDED {name} {{delays}} {{chronopype_rng.random()!r}}"
"""


def _seeded_outcomes(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, str], set[str]]:
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)
    result.assert_outcomes(failed=4)
    text = result.stdout.str()
    found = dict(re.findall(r"SEEDED (\w+) (\[.*?\] \S+?)['\"]?$", text, re.MULTILINE))
    seeds = set(re.findall(r"chronopype seed: (\d+) \(re-run", text))
    assert len(found) == 4, text
    return found, seeds


@pytest.mark.slow(seconds=8)  # three inner runs, two of them with two xdist workers
def test_xdist_workers_run_under_the_same_seed(pytester: pytest.Pytester) -> None:
    _ini(pytester)
    for name in ("a", "b", "c", "d"):
        pytester.makepyfile(**{f"test_{name}": SEEDED_FILE.format(name=name)})
    serial, serial_seeds = _seeded_outcomes(pytester, "--chronopype-seed=99")
    parallel, parallel_seeds = _seeded_outcomes(pytester, "--chronopype-seed=99", "-n", "2")
    assert parallel == serial
    assert serial_seeds == parallel_seeds == {"99"}
    # A random seed is picked once, by the controller, and every worker uses it.
    _, random_seeds = _seeded_outcomes(pytester, "--chronopype-seed=random", "-n", "2")
    assert len(random_seeds) == 1, random_seeds


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
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", *flags)
    # Failures of the tests themselves, not errors at teardown, not a broken session.
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*chronopype cleanup after the test body:",
            "1 task(s) started during the test are still pending after fake_network_processor "
            "#1 stopped and cleaned up: stray background task",
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
    _ini(pytester)
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
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


# A user's own processors: one correct, and one for each way the safety net must catch.
MANAGED_SUITE = '''
import asyncio
import logging

import pytest

from chronopype import NetworkProcessor, NetworkStatus


class Inventory(NetworkProcessor):
    """Opens a session on start_network and keeps a reader task while connected."""

    def __init__(self, *, rng, leak_reader=False):
        super().__init__(rng=rng)
        self.leak_reader = leak_reader
        self.reader = None
        self.sessions = 0

    @classmethod
    def logger(cls):
        return logging.getLogger("inventory")

    async def check_network(self):
        return NetworkStatus.CONNECTED

    async def start_network(self):
        self.sessions += 1
        self.reader = asyncio.get_running_loop().create_task(
            asyncio.Event().wait(), name="Inventory reader"
        )

    async def stop_network(self):
        self.sessions -= 1
        if not self.leak_reader:
            self.reader.cancel()


{mark}
async def test_correct(managed_processor, chronopype_rng):
    service = managed_processor(Inventory(rng=chronopype_rng))  # started by the fixture
    assert service.state.is_active
    await service.wait_for_status(NetworkStatus.CONNECTED, timeout=1)
    await asyncio.sleep(3600)
    assert service.sessions == 1


{mark}
async def test_correct_started_and_stopped_by_the_test(managed_processor, chronopype_rng):
    service = Inventory(rng=chronopype_rng)
    service.start(0.0)
    managed_processor(service)
    await asyncio.sleep(60)
    service.stop()
    await service.await_cleanup()


{mark}
async def test_left_running(managed_processor, chronopype_rng):
    service = Inventory(rng=chronopype_rng)
    service.start(0.0)  # the test starts it, so the test must stop it ... and forgets
    managed_processor(service)
    await asyncio.sleep(60)


{mark}
async def test_leaked_task(managed_processor, chronopype_rng):
    managed_processor(Inventory(rng=chronopype_rng, leak_reader=True))
    await asyncio.sleep(60)


{mark}
async def test_broken_pairing(managed_processor, chronopype_rng):
    service = managed_processor(Inventory(rng=chronopype_rng))
    await asyncio.sleep(60)
    await service.stop_network()  # behind the processor's back: its own stop pairs again


{mark}
async def test_not_a_processor(managed_processor):
    managed_processor(object())
'''


@pytest.mark.parametrize(
    ("mode", "mark"), [("auto", ""), ("strict", ""), ("strict", "@pytest.mark.asyncio")]
)
def test_managed_processor_catches_what_a_users_processor_gets_wrong(
    pytester: pytest.Pytester, mode: str, mark: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(test_inventory=MANAGED_SUITE.format(mark=mark))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*test_left_running*",
            "*chronopype cleanup after the test body:",
            "managed_processor #1 (<*Inventory*>) was still running when the test ended: the "
            "test started it, so the test must stop() it (and await await_cleanup()); the "
            "safety net stopped it",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_leaked_task*",
            "*chronopype cleanup after the test body:",
            "1 task(s) started during the test are still pending after managed_processor #1 "
            "stopped and cleaned up: Inventory reader",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_broken_pairing*",
            "*chronopype cleanup after the test body:",
            "managed_processor #1 (*): stop_network() call #2 at loop time 60.0 ran without "
            "a start_network() to pair with",
            "managed_processor #1 (*): start_network() ran 1 time(s) but stop_network() "
            "2 time(s)",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*TypeError: managed_processor() takes a NetworkProcessor, got object*"]
    )
    text = result.stdout.str()
    assert "Task was destroyed" not in text + result.stderr.str()
    # The correct tests report nothing, and nothing leaks from the failing ones. Counted in the
    # reports, not the summary (whose lines pytest leaves untruncated when CI is set).
    reports = text.partition("short test summary info")[0]
    assert reports.count("chronopype cleanup after the test body:") == 3


def test_fixture_factory_types_are_exported_for_annotations() -> None:
    import chronopype_testing
    from chronopype_testing import _fixtures

    for name in (
        "FakeNetworkProcessorFactory",
        "ManagedProcessorFactory",
        "TransitionRecorderFactory",
        "HookFault",
    ):
        assert name in chronopype_testing.__all__
        assert getattr(chronopype_testing, name) is not None
    assert chronopype_testing.ManagedProcessorFactory is _fixtures.ManagedProcessorFactory


def test_the_readme_testing_section_example_runs(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    example = next(block for block in blocks if block.startswith("# test_inventory.py"))
    _ini(pytester)
    pytester.makepyfile(test_inventory=example)
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    # The comment is true: without the cancel, managed_processor reports the leak.
    pytester.makepyfile(
        test_inventory=example.replace("self.reader.cancel()", "pass")
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", "reconnects")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [  # one reader per connection: before and after the outage
            "2 task(s) started during the test are still pending after managed_processor #1 "
            "stopped and cleaned up: Task-*, Task-*"
        ]
    )


def test_managed_processor_reports_an_illegal_transition(pytester: pytest.Pytester) -> None:
    _ini(pytester)
    pytester.makepyfile(
        test_broken="""
        import asyncio
        import logging

        from chronopype import NetworkProcessor, NetworkStatus


        class JumpsToError(NetworkProcessor):
            @classmethod
            def logger(cls):
                return logging.getLogger("broken")

            async def check_network(self):
                return NetworkStatus.CONNECTED

            def on_connected(self):
                super().on_connected()
                self._set_status(NetworkStatus.ERROR)  # the defect (a private shortcut)


        async def test_broken(managed_processor, chronopype_rng):
            managed_processor(JumpsToError(rng=chronopype_rng))
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chronopype cleanup after the test body:",
            # As a status change (a core that makes it) or a refused one (a core that won't).
            "managed_processor #1 (<*JumpsToError*>): *at loop time 0.0: "
            "CONNECTED -> ERROR is not a legal transition",
        ]
    )
