"""The pytest plugin, exercised the way a downstream suite meets it (pytester, subprocess)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")

VIRTUAL_TESTS = """
import asyncio
import time

import pytest


@pytest.fixture
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


{mark}
async def test_other_tests_keep_the_default_loop():
    assert type(asyncio.get_running_loop()).__name__ != "_VirtualTimeLoop"
"""


def _ini(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = function
        """
    )


def test_auto_mode(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(VIRTUAL_TESTS.format(mark=""))
    result = pytester.runpytest_subprocess("--strict-markers")
    result.assert_outcomes(passed=4)


def test_strict_mode(pytester: pytest.Pytester) -> None:
    _ini(pytester, "strict")
    source = VIRTUAL_TESTS.format(mark="@pytest.mark.asyncio").replace(
        "@pytest.fixture\nasync", "@pytest_asyncio.fixture\nasync"
    )
    pytester.makepyfile("import pytest_asyncio\n" + source)
    result = pytester.runpytest_subprocess("--strict-markers")
    result.assert_outcomes(passed=4)


def test_strict_mode_without_the_asyncio_marker_still_runs_fake_clock_tests(
    pytester: pytest.Pytester,
) -> None:
    _ini(pytester, "strict")
    pytester.makepyfile(
        """
        import asyncio

        async def test_sleep(fake_clock):
            await asyncio.sleep(1e6)
            assert asyncio.get_running_loop().time() == 1e6
        """
    )
    pytester.runpytest_subprocess("--strict-markers").assert_outcomes(passed=1)


def test_entry_point_loads_and_registers_the_marker(pytester: pytest.Pytester) -> None:
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
    result = pytester.runpytest_subprocess("-p", "no:chronopype", "--strict-markers")
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
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_time_machine_alongside_the_fake_clock_is_a_clear_error(
    pytester: pytest.Pytester,
) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        async def test_both_fixtures(fake_clock, time_machine):
            await asyncio.sleep(1)

        @pytest.mark.time_machine(0)
        async def test_marker_and_fixture(fake_clock):
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fake clock owns the wall clock*"])


def test_a_non_function_loop_scope_is_refused(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio(loop_scope="module")
        async def test_module_loop(fake_clock):
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*need a function-scoped event loop*'module'*"])


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
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*io_grace must be >= 0*"])
    assert result.ret != 0


def test_a_deadlocked_test_fails_instead_of_hanging(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import asyncio

        async def test_stuck(fake_clock):
            await asyncio.Event().wait()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*VirtualTimeDeadlock*every task is blocked*"])


def test_without_the_testing_extra_pytest_still_runs(pytester: pytest.Pytester) -> None:
    # Shadow time-machine (the test dir comes first on PYTHONPATH) as if chronopype were
    # installed without [testing].
    pytester.makepyfile(
        time_machine="raise ModuleNotFoundError('no time_machine here', name='time_machine')"
    )
    pytester.makepyfile(
        test_user="""
        def test_ordinary():
            assert 1 + 1 == 2

        def test_wants_the_clock(fake_clock):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:asyncio", "-p", "no:time_machine", "--strict-markers", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*needs the testing extra*chronopype[[]testing[]]*"])


def test_too_old_pytest_asyncio_fails_at_configure_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    from chronopype_testing import plugin

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.25.3")
    with pytest.raises(pytest.UsageError, match=r"needs pytest-asyncio >= 1\.4.*0\.25\.3"):
        plugin._require_loop_factory_hook()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.4.0")
    plugin._require_loop_factory_hook()
