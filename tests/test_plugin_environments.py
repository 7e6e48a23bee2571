"""The plugin in projects that lack a piece: no ``testing`` extra, or an old pytest-asyncio.

Both need a fresh interpreter (subprocess). The old pytest-asyncio lives in a side venv made
once under ``.venv/side/`` and reused; without network it is skipped, except under CI=true.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")

REPO = Path(__file__).resolve().parent.parent

USER_SUITE = """
import asyncio

import pytest


def test_ordinary():
    assert 1 + 1 == 2


async def test_ordinary_async():
    await asyncio.sleep(0)


async def test_wants_the_clock(fake_clock):
    await asyncio.sleep(3)


@pytest.mark.fake_clock
async def test_marker_only(): # without the fake clock this would really wait 3 seconds
    await asyncio.sleep(3)
"""


def test_without_the_testing_extra_only_fake_clock_tests_fail(pytester: pytest.Pytester) -> None:
    # time-machine is what the extra adds beyond pytest: shadow it (the test dir comes first
    # on sys.path) so that importing it fails as in a project without [testing], and keep
    # its pytest plugin, which would not be installed either, from loading.
    pytester.makepyfile(
        time_machine="raise ModuleNotFoundError('No module named time_machine', "
        "name='time_machine')"
    )
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function")
    pytester.makepyfile(test_user=USER_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:time_machine", "--strict-markers", "-p", "no:cacheprovider", "--durations=0",
        timeout=120,
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_wants_the_clock*",
            "*chronopype's fake clock needs the testing extra "
            "(pip install 'chronopype[[]testing[]]'): No module named time_machine*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_marker_only*", "*needs the testing extra*"]
    )
    assert "call     test_user.py::test_marker_only" not in result.stdout.str()  # never ran


def _side_venv(name: str, requirements: list[str]) -> Path:
    """A venv under .venv/side/<name> with ``requirements`` and this checkout (no deps)."""
    venv = REPO / ".venv" / "side" / f"{name}-py{sys.version_info[0]}.{sys.version_info[1]}"
    python = venv / "bin" / "python"
    stamp = venv / ".complete"
    if stamp.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        subprocess.run([*install, *requirements], check=True, capture_output=True, timeout=600)
        subprocess.run(
            [*install, "--no-deps", "-e", str(REPO)], check=True, capture_output=True, timeout=600
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        message = f"cannot build the side venv {venv.name}: {output.decode(errors='replace')}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message[-2000:])
    stamp.touch()
    return python


@pytest.mark.slow(seconds=3)  # builds its side venv on the first run (about 30 s)
def test_an_old_pytest_asyncio_fails_only_fake_clock_tests(pytester: pytest.Pytester) -> None:
    python = _side_venv(
        "pytest-asyncio-0.24",
        ["pytest-asyncio==0.24.0", "pytest>=8.4,<9", "time-machine>=3.3", "hypothesis>=6.100"],
    )
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function")
    pytester.makepyfile(test_user=USER_SUITE)
    completed = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert "asyncio-0.24.0" in output, output  # the plugins line
    assert "2 passed, 2 errors" in output, output
    assert "PASSED test_user.py::test_ordinary_async" in output
    assert (
        "chronopype's fake clock needs pytest-asyncio >= 1.4 (for its "
        "pytest_asyncio_loop_factories hook); pytest-asyncio 0.24.0 is installed" in output
    )
    assert output.count("ERROR test_user.py::test_") == 2
