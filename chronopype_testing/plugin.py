"""pytest plugin: run async tests on a FakeClock (entry point ``chronopype``).

One mechanism, three doors: the ``fake_clock`` fixture, the ``@pytest.mark.fake_clock``
marker, and ``FakeClock`` itself. A test that asks for either door runs, with the async
fixtures it uses, on a virtual-time loop made by that test's FakeClock.

The plugin loads with nothing but pytest installed: without the ``testing`` extra the
fixture fails the test that asks for it with a message naming what to install, and
every other test runs as before.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chronopype_testing._loop import FakeClock

try:
    from chronopype_testing._loop import FakeClock as _FakeClock
except ImportError as missing:  # the testing extra is not installed
    _IMPORT_ERROR: ImportError | None = missing
else:
    _IMPORT_ERROR = None

from chronopype_testing._fixtures import (  # noqa: F401  (fixtures and hooks of this plugin)
    chronopype_rng,
    fake_network_processor,
    pytest_report_header,
    pytest_runtest_call,
    pytest_runtest_makereport,
    transition_recorder,
)
from chronopype_testing._plugin_real_work import (
    MAX_ELAPSED_INI,
    MAX_ELAPSED_INI_HELP,
    apply_max_elapsed_default,
    note_real_work,
    write_real_work_summary,
)
from chronopype_testing._proxy_fixture import outage_proxy  # noqa: F401  (a fixture)

__all__ = ["fake_clock"]

MIN_PYTEST_ASYNCIO = (1, 4)

_MARKER_HELP = (
    "fake_clock(start=..., autojump=True, io_grace=2.0, max_elapsed=30 days): run this "
    "async test and its "
    "async fixtures on a chronopype_testing.FakeClock virtual-time loop"
)

_CLOCK = pytest.StashKey["FakeClock"]()
_CURRENT_ITEM = pytest.StashKey[pytest.Item | None]()


def _missing_extra_message() -> str:
    return (
        "chronopype's fake clock needs the testing extra "
        f"(pip install 'chronopype[testing]'): {_IMPORT_ERROR}"
    )


def _wants_fake_clock(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return "fake_clock" in names or item.get_closest_marker("fake_clock") is not None


def _clock_for(item: pytest.Item) -> FakeClock:
    """The item's FakeClock, made on first use from its ``fake_clock`` marker."""
    clock = item.stash.get(_CLOCK, None)
    if clock is None:
        if _IMPORT_ERROR is not None:
            pytest.fail(_missing_extra_message(), pytrace=False)
        marker = item.get_closest_marker("fake_clock")
        options = dict(marker.kwargs) if marker is not None else {}
        if marker is not None and marker.args:
            pytest.fail("@pytest.mark.fake_clock takes keyword arguments only", pytrace=False)
        apply_max_elapsed_default(item.config, options)
        try:
            clock = _FakeClock(**options)
        except (TypeError, ValueError) as exc:
            pytest.fail(f"@pytest.mark.fake_clock{options}: {exc}", pytrace=False)
        item.stash[_CLOCK] = clock
    return clock


class _FakeClockLoopFactory:
    """Loop factory handed to pytest-asyncio; makes the running test's clock's loop."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def __call__(self) -> asyncio.AbstractEventLoop:
        item = self._config.stash.get(_CURRENT_ITEM, None)
        if item is None:
            raise RuntimeError(
                "a fake_clock event loop was requested outside a test: fake-clock tests "
                "need a function-scoped loop (asyncio loop_scope='function')"
            )
        return _clock_for(item).new_event_loop()

    def __repr__(self) -> str:
        return "<chronopype fake_clock loop factory>"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chronopype", "chronopype fake clock")
    group.addoption(
        "--chronopype-seed",
        dest="chronopype_seed",
        default=None,
        type=int,
        help="seed from which every rng the chronopype plugin hands out is derived",
    )
    parser.addini("chronopype_seed", "default for --chronopype-seed", default="")
    parser.addini(MAX_ELAPSED_INI, MAX_ELAPSED_INI_HELP, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    config.stash[_CURRENT_ITEM] = None
    if config.pluginmanager.has_plugin("asyncio"):
        _require_loop_factory_hook()


def _require_loop_factory_hook() -> None:
    # Older pytest-asyncio ignores our loop factory and would run a "virtual" 10^6 s sleep
    # for real, so refuse to start instead.
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("pytest-asyncio")
    except PackageNotFoundError:
        return
    numbers: list[int] = []
    for part in installed.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    if tuple(numbers) < MIN_PYTEST_ASYNCIO:
        raise pytest.UsageError(
            f"chronopype's fake_clock needs pytest-asyncio >= 1.4 (for its "
            f"pytest_asyncio_loop_factories hook); pytest-asyncio {installed} is installed. "
            "Upgrade it (pip install 'chronopype[testing]'), or disable one of the plugins "
            "with -p no:chronopype or -p no:asyncio."
        )


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    if _wants_fake_clock(item) and _IMPORT_ERROR is None:
        return {"fake_clock": _FakeClockLoopFactory(config)}
    others = [
        impl
        for impl in config.hook.pytest_asyncio_loop_factories.get_hookimpls()
        if impl.function is not pytest_asyncio_loop_factories
    ]
    if others:
        return None  # let the user's own hook choose the loop for ordinary tests
    return {"asyncio": asyncio.new_event_loop}


def _loop_scope(item: pytest.Item) -> str:
    marker = item.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        try:
            scope = item.config.getini("asyncio_default_test_loop_scope")
        except ValueError:
            scope = None
    return str(scope or "function")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[_CURRENT_ITEM] = item
    if not _wants_fake_clock(item):
        return
    names = getattr(item, "fixturenames", ())
    if "time_machine" in names or item.get_closest_marker("time_machine") is not None:
        pytest.fail(
            "this test uses both chronopype's fake clock and time-machine's "
            "time_machine fixture/marker. The fake clock owns the wall clock for the whole "
            "test (time.time() follows virtual time); set the start instant with "
            "@pytest.mark.fake_clock(start=...) instead.",
            pytrace=False,
        )
    if _loop_scope(item) != "function":
        pytest.fail(
            f"fake-clock tests need a function-scoped event loop, but this test's asyncio "
            f"loop_scope is {_loop_scope(item)!r}",
            pytrace=False,
        )


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    item.config.stash[_CURRENT_ITEM] = None
    note_real_work(item, item.stash.get(_CLOCK, None))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    write_real_work_summary(terminalreporter)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # pytest-asyncio swaps a coroutine test for a sync wrapper before this hook runs, so a
    # coroutine here is one nobody else will run (strict mode without @pytest.mark.asyncio,
    # or pytest-asyncio disabled). Run it on the test's clock.
    if not (inspect.iscoroutinefunction(pyfuncitem.obj) and _wants_fake_clock(pyfuncitem)):
        return None
    funcargs: dict[str, Any] = pyfuncitem.funcargs
    arguments = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    _clock_for(pyfuncitem).run(pyfuncitem.obj(**arguments))
    return True


@pytest.fixture
def fake_clock(request: pytest.FixtureRequest) -> FakeClock:
    """This test's ``chronopype_testing.FakeClock``.

    An async test that takes it (or carries ``@pytest.mark.fake_clock(...)``) runs, with its
    function-scoped async fixtures, on the clock's virtual-time loop: ``asyncio.sleep``,
    timeouts and ``time.time()``/``datetime.now()`` follow virtual time, and idle time
    jumps straight to the next deadline. Configure it with
    ``@pytest.mark.fake_clock(start=..., autojump=..., io_grace=..., max_elapsed=...)``
    (``max_elapsed`` defaults to the ``chronopype_max_elapsed`` ini option).
    """
    return _clock_for(request.node)
