"""The plugin's share of issue 12: max_elapsed= on the marker, the chronopype_max_elapsed ini
option, and the terminal summary of tests that held virtual time for real work."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")

CAPPED_TESTS = """
import asyncio
import pytest


@pytest.mark.fake_clock(max_elapsed=60)
async def test_marker_cap():
    await asyncio.sleep(120)


async def test_ini_cap(fake_clock):
    await asyncio.sleep(200)


@pytest.mark.fake_clock(max_elapsed=None)
async def test_marker_lifts_the_cap(fake_clock):
    await asyncio.sleep(10 ** 7)
    assert fake_clock.elapsed == 10 ** 7


async def test_within_the_cap(fake_clock):
    await asyncio.sleep(100)
"""


def _ini(pytester: pytest.Pytester, max_elapsed: str) -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        chronopype_max_elapsed = {max_elapsed}
        """
    )


def test_marker_and_ini_set_the_virtual_time_cap(pytester: pytest.Pytester) -> None:
    _ini(pytester, "150")
    pytester.makepyfile(CAPPED_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*VirtualTimeLimitExceeded: virtual time would jump to 120.0 s, past this "
            "FakeClock's max_elapsed=60.0 s*",
            "*VirtualTimeLimitExceeded: virtual time would jump to 200.0 s, past this "
            "FakeClock's max_elapsed=150.0 s*",
        ]
    )
    # The blocked task is named with the user's own line.
    result.stdout.fnmatch_lines(["*test_marker_and_ini_set_the_virtual_time_cap.py:7 in*"])


def test_ini_none_disables_the_cap(pytester: pytest.Pytester) -> None:
    _ini(pytester, "none")
    pytester.makepyfile(
        """
        import asyncio

        async def test_long(fake_clock):
            await asyncio.sleep(365 * 86400)
            assert fake_clock.elapsed == 365 * 86400
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_bad_ini_value_fails_the_test_clearly(pytester: pytest.Pytester) -> None:
    _ini(pytester, "forever")
    pytester.makepyfile(
        """
        async def test_any(fake_clock):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*chronopype_max_elapsed must be a number*'forever'*"])


def test_the_summary_lists_tests_that_held_time_over_a_second(pytester: pytest.Pytester) -> None:
    _ini(pytester, "")
    pytester.makepyfile(
        """
        import asyncio
        import time

        def slow_query():
            time.sleep(1.3)

        async def test_slow_real_work(fake_clock):
            await asyncio.to_thread(slow_query)

        async def test_quick(fake_clock):
            await asyncio.to_thread(time.sleep, 0.01)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= fake clock held virtual time > 1 s for real work =*",
            "*::test_slow_real_work: 1.* s real: executor job slow_query (1.* s)",
        ]
    )
    assert "test_quick:" not in result.stdout.str()
