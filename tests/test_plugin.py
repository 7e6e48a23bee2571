"""The pytest plugin, exercised the way a downstream suite meets it (pytester).

In-process runs (``pytester.runpytest``) unless a test needs a fresh interpreter: a missing
package, another pytest-asyncio, or the entry point itself.
"""

from __future__ import annotations

import pytest

# In-process pytester runs drop the modules they imported; the plugin loads these lazily, so
# keep them loaded here, or each run would build a second set of classes (Step, processors).
import chronopype_testing._fixtures
import chronopype_testing.strategies  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")

MODES = pytest.mark.parametrize("mode", ["strict", "auto"])

VIRTUAL_TESTS = """
import asyncio
import time

import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def warmed_up():
    # An async fixture runs on the same virtual loop as the test.
    await asyncio.sleep(100)
    return asyncio.get_running_loop().time()


{mark}
async def test_million_second_sleep(fake_clock, warmed_up):
    loop = asyncio.get_running_loop()
    assert warmed_up == 100.0
    wall = time.time()
    await asyncio.sleep(1e6)
    assert loop.time() == 1e6 + 100.0
    assert time.time() - wall == 1e6
    assert fake_clock.elapsed == 1e6 + 100.0


{mark}
@pytest.mark.fake_clock(start=0.0, autojump=False)
async def test_marker_configures_the_clock(fake_clock):
    assert fake_clock.autojump is False
    assert time.time() == 0.0
    fired = []
    asyncio.get_running_loop().call_later(5, fired.append, "x")
    await fake_clock.advance(5)
    assert fired == ["x"]


{mark}
@pytest.mark.fake_clock
async def test_marker_alone_turns_it_on():
    await asyncio.sleep(3600)
    assert asyncio.get_running_loop().time() == 3600.0


@pytest.mark.asyncio
async def test_other_tests_keep_the_default_loop():
    assert type(asyncio.get_running_loop()).__name__ != "_VirtualTimeLoop"
"""


def _ini(pytester: pytest.Pytester, mode: str, extra: str = "") -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = function
        {extra}
        """
    )


@pytest.mark.parametrize("mark", ["@pytest.mark.asyncio", ""], ids=["marked", "unmarked"])
@MODES
def test_fake_clock_tests_and_their_async_fixtures_share_one_virtual_loop(
    pytester: pytest.Pytester, mode: str, mark: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(VIRTUAL_TESTS.format(mark=mark))
    pytester.runpytest("--strict-markers").assert_outcomes(passed=4)


SERVER_TESTS = """
import asyncio

import pytest_asyncio


@pytest_asyncio.fixture
async def srv():
    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], asyncio.get_running_loop()
    server.close()
    await server.wait_closed()


async def test_x(fake_clock, srv):  # as in the README: no asyncio mark
    port, fixture_loop = srv
    assert asyncio.get_running_loop() is fixture_loop
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\\n")
    assert await asyncio.wait_for(reader.readline(), 30) == b"ping\\n"
    writer.close()
    await asyncio.sleep(3600)
    assert fake_clock.elapsed >= 3600.0
"""


@MODES
def test_a_server_started_in_an_async_fixture_answers_the_unmarked_test(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(SERVER_TESTS)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_strict_mode_fixture_only_use_says_what_to_add(pytester: pytest.Pytester) -> None:
    _ini(pytester, "strict")
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        import pytest_asyncio

        @pytest.fixture
        def clock_user(fake_clock):
            return fake_clock

        async def test_through_a_fixture(clock_user):
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Add @pytest.mark.asyncio to the test (or set asyncio_mode*"])


SCOPED_TESTS = """
import asyncio

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="module")
clocks = []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service():
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(10)
    yield started, asyncio.get_running_loop()


async def test_first(fake_clock, service):
    started, loop = service
    assert asyncio.get_running_loop() is loop
    assert started == 0.0
    await asyncio.sleep(100)
    assert fake_clock.elapsed == 110.0
    clocks.append(fake_clock)


async def test_second_continues_the_modules_virtual_time(fake_clock, service):
    assert asyncio.get_running_loop() is service[1]
    assert fake_clock is clocks[0]
    assert fake_clock.elapsed == 110.0
    await asyncio.sleep(1)
    assert asyncio.get_running_loop().time() == 111.0
"""


@MODES
def test_module_loop_scope_shares_one_clock_across_the_module(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(test_one=SCOPED_TESTS, test_two=SCOPED_TESTS)
    # Each module has a clock of its own: both files start at virtual 0.
    pytester.runpytest("--strict-markers", "-p", "no:randomly").assert_outcomes(passed=4)


@MODES
def test_class_loop_scope_shares_one_clock_per_class(pytester: pytest.Pytester, mode: str) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio(loop_scope="class")
        class TestOne:
            async def test_a(self, fake_clock):
                await asyncio.sleep(5)
                assert fake_clock.elapsed == 5.0

            async def test_b(self, fake_clock):
                await asyncio.sleep(5)
                assert fake_clock.elapsed == 10.0  # the class's clock continues

        @pytest.mark.asyncio(loop_scope="class")
        class TestTwo:
            async def test_c(self, fake_clock):
                await asyncio.sleep(5)
                assert fake_clock.elapsed == 5.0  # another class, another clock
        """
    )
    pytester.runpytest("--strict-markers", "-p", "no:randomly").assert_outcomes(passed=3)


@MODES
def test_project_wide_session_loop_scope(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = session
        asyncio_default_test_loop_scope = session
        """
    )
    pytester.makepyfile(
        test_a="""
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_a(fake_clock):
            await asyncio.sleep(60)
            assert fake_clock.elapsed == 60.0
        """,
        test_b="""
        import asyncio
        import pytest

        @pytest.mark.fake_clock
        async def test_b():
            await asyncio.sleep(60)
            assert asyncio.get_running_loop().time() == 120.0  # the session's clock
        """,
    )
    pytester.runpytest("--strict-markers", "-p", "no:randomly").assert_outcomes(passed=2)


@MODES
def test_an_async_fixture_on_another_loop_scope_names_itself_and_the_fix(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        import pytest_asyncio

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def srv():
            yield asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_function_loop(fake_clock, srv):
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*async fixture 'srv' runs on a module-scoped event loop (loop_scope='module'), "
            "but test_function_loop runs on a function-scoped fake-clock loop*"
            "@pytest.mark.asyncio(loop_scope='module')*"
        ]
    )
    assert "already drives an open event loop" not in result.stdout.str()


@MODES
def test_anyio_or_trio_marker_with_the_fake_clock_is_a_clear_error(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.anyio
        async def test_anyio(fake_clock):
            await asyncio.sleep(3600)

        @pytest.mark.trio
        async def test_trio(fake_clock):
            await asyncio.sleep(3600)

        @pytest.mark.anyio
        async def test_anyio_alone():
            pass
        """
    )
    result = pytester.runpytest("-p", "anyio", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(errors=2, passed=1)  # anyio's own test runs (asyncio backend)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.anyio and chronopype's fake clock do not mix*Remove the anyio marker*"]
    )
    result.stdout.fnmatch_lines(["*@pytest.mark.trio and chronopype's fake clock do not mix*"])


@MODES
def test_marker_on_a_sync_test_is_a_clear_error(pytester: pytest.Pytester, mode: str) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fake_clock
        def test_sync():
            pass

        def test_sync_with_the_fixture_may_drive_the_clock_itself(fake_clock):
            import asyncio
            assert fake_clock.run(asyncio.sleep(5, result="done")) == "done"
            assert fake_clock.elapsed == 5.0
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.fake_clock is on a sync test*async def*"])


@MODES
def test_other_time_patchers_inside_a_fake_clock_test_are_a_clear_error(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio
        import time

        import time_machine
        from freezegun import freeze_time

        @freeze_time("2012-01-14")
        async def test_freezegun(fake_clock):
            await asyncio.sleep(1)

        @time_machine.travel(0, tick=False)
        async def test_time_machine_decorator(fake_clock):
            await asyncio.sleep(1)

        async def test_both_fixtures(fake_clock, time_machine):
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2, errors=1)
    # Count in the reports, not in the summary (untruncated there when CI is set).
    text = result.stdout.str().partition("short test summary info")[0]
    assert text.count("another time patcher (freezegun's freeze_time") == 2
    assert "1326499200.0 while the FakeClock's wall time was" in text  # 2012-01-14
    result.stdout.fnmatch_lines(["*fake clock owns the wall clock*"])


@MODES
def test_hypothesis_given_with_a_per_test_fixture_fails_with_a_hint(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio
        from hypothesis import given, settings, strategies as st, HealthCheck
        from chronopype_testing.strategies import on_fake_clock

        @settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=3)
        @given(st.integers(0, 10))
        async def test_given_with_fixture(fake_clock, n):
            await asyncio.sleep(n)

        @settings(max_examples=5, deadline=None)
        @given(st.integers(0, 10))
        @on_fake_clock
        async def test_given_on_fake_clock(n, clock):
            await asyncio.sleep(n)
            assert clock.elapsed == n
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(["*@given with the per-test fixture(s) fake_clock*on_fake_clock*"])


def test_entry_point_loads_and_registers_the_marker(pytester: pytest.Pytester) -> None:
    # A subprocess: the plugin must come from the installed entry point.
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.fake_clock(start=*autojump=True*"])
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.fnmatch_lines(["fake_clock*", "*This test's ``chronopype_testing.FakeClock``*"])


def test_disabling_the_plugin_leaves_other_tests_alone(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import asyncio

        async def test_plain():
            await asyncio.sleep(0)

        def test_sync():
            assert True
        """
    )
    result = pytester.runpytest("-p", "no:chronopype", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_runs_with_pytest_asyncio_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        async def test_virtual(fake_clock):
            await asyncio.sleep(1e6)
            assert fake_clock.elapsed == 1e6

        def test_sync():
            assert True
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_bad_marker_arguments_fail_the_test_clearly(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fake_clock(io_grace=-1)
        async def test_bad(fake_clock):
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*io_grace must be >= 0*"])
    assert result.ret != 0


@MODES
def test_a_deadlocked_test_reports_the_deadlock_not_a_cancellation(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio

        async def test_stuck(fake_clock):
            await asyncio.Event().wait()

        async def test_stuck_with_a_processor(fake_network_processor):
            processor = fake_network_processor()
            await asyncio.sleep(1)
            processor.pause()  # no timer of its own left: nothing can move time
            await asyncio.Event().wait()
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--timeout=60")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*VirtualTimeDeadlock*every task is blocked*"])
    assert "CancelledError" not in result.stdout.str()


@MODES
@pytest.mark.slow(seconds=3)
def test_pytest_timeout_reports_the_timeout_and_the_cleanup_after_it(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio

        async def test_spins_forever(fake_network_processor):
            processor = fake_network_processor()
            while True:  # virtual time races ahead; only pytest-timeout can stop this
                await asyncio.sleep(1)
        """
    )
    # A subprocess: pytest-timeout's SIGALRM must not reach the outer run.
    result = pytester.runpytest_subprocess("--timeout=1", "--timeout-method=signal", timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>1.0s) from pytest-timeout*"])
    text = result.stdout.str()
    assert "CancelledError" not in text
    assert "chronopype seed: 0 (re-run with --chronopype-seed=0)" in text


@MODES
def test_assertion_first_then_cleanup_findings(pytester: pytest.Pytester, mode: str) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        """
        import asyncio

        async def test_fails_and_breaks_pairing(fake_network_processor):
            processor = fake_network_processor()
            await asyncio.sleep(1)
            await processor.stop_network()  # behind the processor's back
            assert processor.start_network_calls == 5, "the test's own failure"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    own = text.index("AssertionError: the test's own failure")
    cleanup = text.index("chronopype cleanup after the test body:")
    assert own < cleanup
    assert "ran without a start_network() to pair with" in text[cleanup:]


def test_the_plugin_reads_no_private_internals() -> None:
    from pathlib import Path

    import chronopype_testing

    package = Path(chronopype_testing.__file__).parent
    for module in ("plugin.py", "strategies.py"):
        source = (package / module).read_text()
        for private in ("f_locals", "co_name", "cr_frame", "._timers", "._scheduled", "._ready"):
            assert private not in source, f"{module} reads {private}"
