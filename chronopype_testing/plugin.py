"""pytest plugin: run async tests on a FakeClock (entry point ``chronopype``).

One mechanism, three doors: the ``fake_clock`` fixture, the ``@pytest.mark.fake_clock``
marker, and ``FakeClock`` itself. A test that asks for either door runs, with the async
fixtures it uses, on a virtual-time loop made by a FakeClock: one clock per asyncio loop
scope (the test's own by default; the module's, class's, package's or session's when the
test's ``loop_scope`` says so, and then virtual time continues across that scope's tests).

Never silently elsewhere: a fake-clock test that cannot run on its clock (testing extra
missing, pytest-asyncio too old, an anyio/trio marker, an async fixture on another loop
scope, a sync test with the marker, another time patcher inside it) fails at setup with
what to change, and every other test runs as before.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import random
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from chronopype_testing._plugin_real_work import (
    MAX_ELAPSED_INI,
    MAX_ELAPSED_INI_HELP,
    apply_max_elapsed_default,
    note_real_work,
    write_real_work_summary,
)
from chronopype_testing._seeds import configure_seed, derive_rng, seed_was_random, session_seed

if TYPE_CHECKING:
    from chronopype_testing._fixtures import (
        FakeNetworkProcessorFactory,
        ManagedProcessorFactory,
        TransitionRecorderFactory,
    )
    from chronopype_testing._loop import FakeClock

# Only pytest, the standard library and _seeds load with the plugin: a project that never
# uses the fake clock pays for nothing more. The rest loads on a fake-clock test's first use.

__all__ = [
    "chronopype_rng",
    "fake_clock",
    "fake_network_processor",
    "managed_processor",
    "transition_recorder",
]

#: Fixtures of this plugin; a failing test that used one (or the fake clock) prints the seed.
CHRONOPYPE_FIXTURES = frozenset(
    {
        "fake_clock",
        "fake_network_processor",
        "managed_processor",
        "transition_recorder",
        "chronopype_rng",
    }
)

MIN_PYTEST_ASYNCIO = (1, 4)
LOOP_SCOPES = ("function", "class", "module", "package", "session")

_MARKER_HELP = (
    "fake_clock(start=..., autojump=True, io_grace=2.0, max_elapsed=30 days): run this "
    "async test and its "
    "async fixtures on a chronopype_testing.FakeClock virtual-time loop"
)
_INSTALL = "pip install 'chronopype[testing]'"
# Fixtures that start processors on the test's clock: with @given they would outlive examples.
_PER_TEST_FIXTURES = ("fake_clock", "fake_network_processor", "managed_processor")
# How far time.time() may be from the clock's wall time before another patcher is blamed.
_WALL_CLOCK_TOLERANCE = 1e-3

_CLOCK = pytest.StashKey["FakeClock"]()
_CURRENT_ITEM = pytest.StashKey[pytest.Item | None]()
_SHARED_CLOCKS = pytest.StashKey[dict[tuple[str, str], "FakeClock"]]()
_SHARED_FACTORIES = pytest.StashKey[dict[tuple[str, str], "_FakeClockLoopFactory"]]()
_ASYNCIO_PROBLEM = pytest.StashKey[str | None]()
_FIXTURES_BEING_SET_UP = pytest.StashKey[list[str]]()


def _load(name: str) -> ModuleType:
    """``chronopype_testing.<name>``, imported on first use (sys.modules after that; never
    cached here, so that a run which reloads chronopype sees one set of classes)."""
    return importlib.import_module(f"chronopype_testing.{name}")


def _missing_extra() -> ImportError | None:
    """Why the fake clock cannot load (the testing extra is missing), or None."""
    try:
        _load("_loop")
    except ImportError as exc:
        return exc
    return None


def _fixtures() -> ModuleType:
    return _load("_fixtures")


# -- which clock ---------------------------------------------------------------------------------


def _wants_fake_clock(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return "fake_clock" in names or item.get_closest_marker("fake_clock") is not None


def clock_options(item: pytest.Item) -> dict[str, Any]:
    """The FakeClock arguments of the item's ``@pytest.mark.fake_clock(...)`` (one parser for
    every option the marker takes)."""
    marker = item.get_closest_marker("fake_clock")
    if marker is None:
        return {}
    if marker.args:
        pytest.fail("@pytest.mark.fake_clock takes keyword arguments only", pytrace=False)
    return dict(marker.kwargs)


def _new_clock(item: pytest.Item) -> FakeClock:
    if _missing_extra() is not None:
        pytest.fail(_missing_extra_message(), pytrace=False)
    options = clock_options(item)
    apply_max_elapsed_default(item.config, options)
    try:
        clock: FakeClock = _load("_loop").FakeClock(**options)
        return clock
    except (TypeError, ValueError) as exc:
        pytest.fail(f"@pytest.mark.fake_clock{options}: {exc}", pytrace=False)


def _runs_under_pytest_asyncio(item: pytest.Item) -> bool:
    return (
        item.config.pluginmanager.has_plugin("asyncio")
        and item.config.stash.get(_ASYNCIO_PROBLEM, None) is None
        and item.get_closest_marker("asyncio") is not None
    )


def _loop_scope(item: pytest.Item) -> str:
    """The item's asyncio loop scope, as pytest-asyncio decides it (marker, else ini)."""
    marker = item.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        try:
            scope = item.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # a pytest-asyncio without loop scopes
            scope = None
    return str(scope or "function")


def _scope_key(item: pytest.Item, scope: str) -> tuple[str, str]:
    """Which instance of ``scope`` the item belongs to: (scope, node id of that node)."""
    node_types: dict[str, type[pytest.Collector]] = {
        "class": pytest.Class,
        "module": pytest.Module,
        "package": pytest.Package,
    }
    if scope == "session":
        return scope, ""
    node = item.getparent(node_types[scope]) if scope in node_types else None
    if node is None and scope == "package":  # a module outside any package: its directory
        module = item.getparent(pytest.Module)
        return scope, str(module.path.parent) if module is not None else ""
    return scope, node.nodeid if node is not None else item.nodeid


def _clock_for(item: pytest.Item) -> FakeClock:
    """The item's FakeClock: its own, or the one shared by its loop scope."""
    clock = item.stash.get(_CLOCK, None)
    if clock is not None:
        return clock
    scope = _loop_scope(item) if _runs_under_pytest_asyncio(item) else "function"
    if scope == "function":
        clock = _new_clock(item)
    else:
        shared = item.config.stash[_SHARED_CLOCKS]
        key = _scope_key(item, scope)
        clock = shared.get(key)
        if clock is None:  # the scope's first test configures its clock
            clock = shared[key] = _new_clock(item)
    item.stash[_CLOCK] = clock
    return clock


class _FakeClockLoopFactory:
    """Loop factory handed to pytest-asyncio; makes a loop of the running test's clock.

    One instance per loop scope instance, so pytest-asyncio's parametrization shares the
    scope's runner (and so its loop and clock) across the scope's tests.
    """

    def __init__(self, config: pytest.Config, scope: str) -> None:
        self._config = config
        self._scope = scope

    def __call__(self) -> asyncio.AbstractEventLoop:
        item = self._config.stash.get(_CURRENT_ITEM, None)
        if item is None:
            raise RuntimeError("a fake_clock event loop was requested outside a test's setup")
        return _clock_for(item).new_event_loop()

    def __repr__(self) -> str:
        return f"<chronopype fake_clock loop factory, loop_scope={self._scope!r}>"


# -- configuration -------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chronopype", "chronopype fake clock")
    group.addoption(
        "--chronopype-seed",
        dest="chronopype_seed",
        default=None,
        metavar="SEED|random",
        help="seed from which every rng the chronopype plugin hands out is derived; "
        "'random' picks one and prints it",
    )
    parser.addini("chronopype_seed", "default for --chronopype-seed (an int or 'random')")
    parser.addini(MAX_ELAPSED_INI, MAX_ELAPSED_INI_HELP, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    config.stash[_CURRENT_ITEM] = None
    config.stash[_SHARED_CLOCKS] = {}
    config.stash[_SHARED_FACTORIES] = {}
    config.stash[_FIXTURES_BEING_SET_UP] = []
    config.stash[_ASYNCIO_PROBLEM] = _pytest_asyncio_problem(config)
    configure_seed(config)  # a bad seed is one usage error now, not a failure per test


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker runs under the seed the controller settled."""
    node.workerinput["chronopype_seed"] = session_seed(node.config)
    node.workerinput["chronopype_seed_random"] = seed_was_random(node.config)


def pytest_report_header(config: pytest.Config) -> str:
    seed = session_seed(config)
    if seed_was_random(config):
        return f"chronopype seed: {seed} (random; re-run with --chronopype-seed={seed})"
    return f"chronopype seed: {seed}"


def _missing_extra_message() -> str:
    return f"chronopype's fake clock needs the testing extra ({_INSTALL}): {_missing_extra()}"


def _pytest_asyncio_problem(config: pytest.Config) -> str | None:
    """Why pytest-asyncio cannot run fake-clock tests (too old for loop factories), or None."""
    if not config.pluginmanager.has_plugin("asyncio"):
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("pytest-asyncio")
    except PackageNotFoundError:
        return None
    if _version_tuple(installed) >= MIN_PYTEST_ASYNCIO:
        return None
    return (
        f"chronopype's fake clock needs pytest-asyncio >= 1.4 (for its "
        f"pytest_asyncio_loop_factories hook); pytest-asyncio {installed} is installed, "
        f"which would run this test on a real event loop. Upgrade it ({_INSTALL}, or "
        "pip install 'pytest-asyncio>=1.4'), or run without it: -p no:asyncio."
    )


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers)


# -- collection: one loop, always ----------------------------------------------------------------


def _asks_directly(collector: pytest.Collector, obj: object) -> bool:
    """Whether a test function asks for the fake clock in its own signature or marks."""
    try:
        parameters = inspect.signature(obj).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if any(name in parameters for name in _PER_TEST_FIXTURES):
        return True
    marks = getattr(obj, "pytestmark", [])
    if any(getattr(mark, "name", None) == "fake_clock" for mark in marks):
        return True
    return collector.get_closest_marker("fake_clock") is not None


def _has_asyncio_mark(collector: pytest.Collector, obj: object) -> bool:
    marks = getattr(obj, "pytestmark", [])
    if any(getattr(mark, "name", None) in ("asyncio", "anyio", "trio") for mark in marks):
        return True
    return any(collector.get_closest_marker(name) is not None for name in ("anyio", "trio")) or (
        collector.get_closest_marker("asyncio") is not None
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, object, object]:
    # In strict mode pytest-asyncio only takes marked tests, and an unmarked fake-clock test
    # would run apart from its @pytest_asyncio.fixture fixtures: mark it, before the item
    # (and pytest-asyncio's loop parametrization) is made from the function.
    if (
        inspect.iscoroutinefunction(obj)
        and collector.config.stash.get(_ASYNCIO_PROBLEM, "") is None
        and collector.config.pluginmanager.has_plugin("asyncio")
        and _asks_directly(collector, obj)
        and not _has_asyncio_mark(collector, obj)
    ):
        pytest.mark.asyncio(obj)
    return (yield)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    if _wants_fake_clock(item) and _missing_extra() is None:
        scope = _loop_scope(item)
        if scope == "function":
            return {"fake_clock": _FakeClockLoopFactory(config, scope)}
        factories = config.stash[_SHARED_FACTORIES]
        key = _scope_key(item, scope)
        factory = factories.get(key)
        if factory is None:
            factory = factories[key] = _FakeClockLoopFactory(config, scope)
        return {"fake_clock": factory}
    others = [
        impl
        for impl in config.hook.pytest_asyncio_loop_factories.get_hookimpls()
        if impl.function is not pytest_asyncio_loop_factories
    ]
    if others:
        return None  # let the user's own hook choose the loop for ordinary tests
    return {"asyncio": asyncio.new_event_loop}


# -- setup: fail at once what cannot run on its clock --------------------------------------------


def _setup_problem(item: pytest.Item) -> str | None:
    """Why this fake-clock test cannot run on its FakeClock, with the fix; or None."""
    if _missing_extra() is not None:
        return _missing_extra_message()
    asyncio_problem = item.config.stash.get(_ASYNCIO_PROBLEM, None)
    function = getattr(item, "obj", None)
    is_async = inspect.iscoroutinefunction(function)
    if asyncio_problem is not None and is_async:
        return asyncio_problem
    for runner in ("anyio", "trio"):
        if item.get_closest_marker(runner) is not None:
            return (
                f"@pytest.mark.{runner} and chronopype's fake clock do not mix: the fake "
                f"clock is an asyncio loop run by pytest-asyncio, and {runner}'s plugin "
                "would run this test on its own real-time loop. Remove the "
                f"{runner} marker from this test (or don't use fake_clock here)."
            )
    names = getattr(item, "fixturenames", ())
    if "anyio_backend" in names:
        return (
            "this test uses anyio's anyio_backend fixture and chronopype's fake clock: "
            "anyio would run it on a real-time loop. Drop anyio_backend (and the anyio "
            "marker) from fake-clock tests."
        )
    if getattr(function, "is_hypothesis_test", False):
        used = sorted(set(names) & set(_PER_TEST_FIXTURES))
        return (
            f"@given with the per-test fixture(s) {', '.join(used)}: every Hypothesis "
            "example would share one clock and its processors. Use "
            "chronopype_testing.strategies.on_fake_clock below @given instead (a fresh "
            "FakeClock per example; a parameter named clock receives it), and build "
            "processors inside the test."
        )
    if item.get_closest_marker("fake_clock") is not None and not is_async:
        return (
            "@pytest.mark.fake_clock is on a sync test, where it would do nothing: make "
            "the test async def, or remove the marker (a sync test can still take the "
            "fake_clock fixture and call fake_clock.run(...))"
        )
    if "time_machine" in names or item.get_closest_marker("time_machine") is not None:
        return (
            "this test uses both chronopype's fake clock and time-machine's "
            "time_machine fixture/marker. The fake clock owns the wall clock for the whole "
            "test (time.time() follows virtual time); set the start instant with "
            "@pytest.mark.fake_clock(start=...) instead."
        )
    if (
        is_async
        and item.config.pluginmanager.has_plugin("asyncio")
        and item.get_closest_marker("asyncio") is None
    ):
        return (
            "this async test uses the fake clock through a fixture, but pytest-asyncio "
            "(strict mode) will not run it, so its async fixtures would run on another "
            "loop. Add @pytest.mark.asyncio to the test (or set asyncio_mode = auto)."
        )
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[_CURRENT_ITEM] = item
    item.config.stash[_FIXTURES_BEING_SET_UP] = []
    if not _wants_fake_clock(item):
        return
    problem = _setup_problem(item)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    item = request.config.stash.get(_CURRENT_ITEM, None)
    if item is None or not _wants_fake_clock(item):
        return (yield)
    stack = request.config.stash[_FIXTURES_BEING_SET_UP]
    name = fixturedef.argname
    runner_scope = _runner_scope(name)
    if runner_scope is not None and stack and _runs_under_pytest_asyncio(item):
        test_scope = _loop_scope(item)
        if runner_scope != test_scope:
            pytest.fail(_scope_mismatch(item, stack[-1], runner_scope, test_scope), pytrace=False)
    stack.append(name)
    try:
        return (yield)
    finally:
        stack.pop()


def _runner_scope(fixture_name: str) -> str | None:
    """The loop scope of one of pytest-asyncio's ``_<scope>_scoped_runner`` fixtures."""
    for scope in LOOP_SCOPES:
        if fixture_name == f"_{scope}_scoped_runner":
            return scope
    return None


def _scope_mismatch(item: pytest.Item, fixture: str, fixture_scope: str, test_scope: str) -> str:
    return (
        f"async fixture {fixture!r} runs on a {fixture_scope}-scoped event loop "
        f"(loop_scope={fixture_scope!r}), but {item.name} runs on a {test_scope}-scoped "
        "fake-clock loop. One FakeClock drives one loop per loop scope, so give both the "
        f"same loop scope: mark the test @pytest.mark.asyncio(loop_scope={fixture_scope!r}) "
        f"(or set asyncio_default_test_loop_scope = {fixture_scope}), or declare the fixture "
        f"with @pytest_asyncio.fixture(loop_scope={test_scope!r})."
    )


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    item.config.stash[_CURRENT_ITEM] = None
    note_real_work(item, item.stash.get(_CLOCK, None))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    write_real_work_summary(terminalreporter)


# -- the call: on the clock, under the safety net --------------------------------------------


def _on_its_clock(
    test: Callable[..., Coroutine[Any, Any, object]], clock: FakeClock
) -> Callable[..., Coroutine[Any, Any, None]]:
    """The async test, refusing to run anywhere but on its clock's loop, and failing when
    another time patcher (freezegun, time-machine) replaced the wall clock during it."""

    @functools.wraps(test)
    async def on_the_fake_clock(*args: Any, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        if type(clock).current() is not clock:
            pytest.fail(
                f"this fake-clock test is running on {loop!r}, not on its FakeClock's loop "
                "(another plugin ran it); virtual time would not apply",
                pytrace=False,
            )
        patched: list[tuple[float, float]] = []

        def compare_wall_clocks() -> None:
            wall, virtual = time.time(), clock.time()
            if abs(wall - virtual) > _WALL_CLOCK_TOLERANCE and not patched:
                patched.append((wall, virtual))

        loop.call_soon(compare_wall_clocks)  # runs once the test first suspends
        interrupted: list[BaseException] = []
        restore_alarm = _alarm_to_the_test(loop, asyncio.current_task(), interrupted)
        try:
            await test(*args, **kwargs)
        except asyncio.CancelledError:
            if interrupted:  # pytest-timeout's failure, delivered as a cancellation
                raise interrupted[0] from None
            raise
        finally:
            restore_alarm()
            compare_wall_clocks()
            if patched:
                wall, virtual = patched[0]
                pytest.fail(
                    "another time patcher (freezegun's freeze_time, time-machine's travel) "
                    f"replaced the wall clock inside this fake-clock test: time.time() read "
                    f"{wall!r} while the FakeClock's wall time was {virtual!r}. The fake "
                    "clock owns the wall clock; remove the other patcher and set the start "
                    "with @pytest.mark.fake_clock(start=...).",
                    pytrace=False,
                )

    return on_the_fake_clock


def _alarm_to_the_test(
    loop: asyncio.AbstractEventLoop,
    test_task: asyncio.Task[Any] | None,
    caught: list[BaseException],
) -> Callable[[], None]:
    """Make a SIGALRM handler's exception (pytest-timeout's ``signal`` method) end the test.

    Raised wherever the signal lands, it would often hit a callback or another task, where
    asyncio logs and drops it, and a fake-clock test that races through virtual time forever
    would never stop. Raised inside the test's own task, it is left alone; anywhere else it
    is kept and the test's task cancelled, and the test then fails with it.
    """
    if threading.current_thread() is not threading.main_thread() or test_task is None:
        return lambda: None
    handler = signal.getsignal(signal.SIGALRM)
    if not callable(handler):
        return lambda: None
    alarm_handler = handler

    def deliver_to_the_test(signum: int, frame: Any) -> None:
        try:
            alarm_handler(signum, frame)
        except BaseException as exc:
            if asyncio.current_task(loop) is test_task:
                raise
            caught.append(exc)
            loop.call_soon_threadsafe(test_task.cancel)

    signal.signal(signal.SIGALRM, deliver_to_the_test)

    def restore() -> None:
        if signal.getsignal(signal.SIGALRM) is deliver_to_the_test:
            signal.signal(signal.SIGALRM, alarm_handler)

    return restore


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    uses_chronopype = _uses_chronopype(item)
    # Recorders built by the test print the seed; only load them if the test may use them.
    recorder = _load("_recorder") if uses_chronopype else sys.modules.get(_RECORDER)
    previous_seed = getattr(recorder, "_active_seed", None)
    if recorder is not None:
        recorder.__dict__["_active_seed"] = session_seed(item.config)
    swapped: tuple[pytest.Function, object] | None = None
    if (
        _wants_fake_clock(item)
        and isinstance(item, pytest.Function)
        and inspect.iscoroutinefunction(item.obj)
    ):
        test = _on_its_clock(item.obj, _clock_for(item))
        net = _safety_net_of(item)
        swapped = (item, item.obj)
        item.obj = _fixtures().then_clean_up(test, net) if net is not None else test
    try:
        try:
            result = yield
        except BaseException:
            _clean_up_after_failure(item)
            raise
        net = _safety_net_of(item)
        problems = net.finish() if net is not None else []
        if problems:
            pytest.fail(_fixtures().cleanup_failure(problems), pytrace=False)
        return result
    finally:
        if swapped is not None:
            function, original = swapped
            function.obj = original
        if recorder is not None:
            recorder.__dict__["_active_seed"] = previous_seed


_RECORDER = "chronopype_testing._recorder"


def _uses_chronopype(item: pytest.Item) -> bool:
    return _wants_fake_clock(item) or bool(
        CHRONOPYPE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    )


def _safety_net_of(item: pytest.Item) -> Any:
    if not _uses_chronopype(item) or _missing_extra() is not None:
        return None
    return _fixtures().safety_net_of(item)


def _clean_up_after_failure(item: pytest.Item) -> None:
    """The test failed (an assertion, a deadlock, a time limit, pytest-timeout): clean up
    anyway, and put what the cleanup found after the test's own error."""
    net = _safety_net_of(item)
    if net is None:
        return
    try:
        problems = net.finish()
    except Exception as cleanup_error:  # the test's own failure matters more
        problems = [f"cleanup after the failure raised {cleanup_error!r}"]
    if problems:
        item.add_report_section(
            "call", "chronopype cleanup", _fixtures().cleanup_failure(problems)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # pytest-asyncio swaps a coroutine test for a sync wrapper before this hook runs, so a
    # coroutine here is one nobody else will run (pytest-asyncio disabled). Run it on the
    # test's clock.
    if not (inspect.iscoroutinefunction(pyfuncitem.obj) and _wants_fake_clock(pyfuncitem)):
        return None
    funcargs: dict[str, Any] = pyfuncitem.funcargs
    arguments = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    _clock_for(pyfuncitem).run(pyfuncitem.obj(**arguments))
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _uses_chronopype(item) and "chronopype seed:" not in report.longreprtext:
        seed = session_seed(item.config)
        report.sections.append(
            ("chronopype seed", f"chronopype seed: {seed} (re-run with --chronopype-seed={seed})")
        )
    return report


# -- the fixtures -------------------------------------------------------------------------------


@pytest.fixture
def fake_clock(request: pytest.FixtureRequest) -> FakeClock:
    """This test's ``chronopype_testing.FakeClock`` (its loop scope's, for wider scopes).

    An async test that takes it (or carries ``@pytest.mark.fake_clock(...)``) runs, with its
    async fixtures, on the clock's virtual-time loop: ``asyncio.sleep``, timeouts and
    ``time.time()``/``datetime.now()`` follow virtual time, and idle time jumps straight to
    the next deadline. Configure it with
    ``@pytest.mark.fake_clock(start=..., autojump=..., io_grace=..., max_elapsed=...)``
    (``max_elapsed`` defaults to the ``chronopype_max_elapsed`` ini option).
    """
    return _clock_for(request.node)


@pytest.fixture
def fake_network_processor(
    request: pytest.FixtureRequest, fake_clock: FakeClock
) -> Generator[FakeNetworkProcessorFactory, None, None]:
    """Factory for scripted ``chronopype_testing.FakeNetworkProcessor``s, returned started.

    ``fake_network_processor([Step.connected(), Step.not_connected(times=3)], then=...,
    outages=[(60, 120)], start_network=Step.hangs(), check_network_interval=...)`` takes the
    constructor's arguments, builds the processor and starts it on this test's fake clock,
    so call it from an async test. Each processor's rng derives from ``--chronopype-seed``
    and the test's node id. Right after the test body every processor is stopped and its
    cleanup awaited; the test fails if a task leaked, the start/stop_network pairing broke,
    or a transition was illegal (the safety net of ``managed_processor``).
    """
    fixtures = _fixtures()
    net = fixtures.safety_net(request, fake_clock)
    factory: FakeNetworkProcessorFactory = fixtures.FakeNetworkProcessorFactory(
        net, fake_clock, session_seed(request.config), request.node.nodeid
    )
    yield factory
    fixtures.finish_at_teardown(net)


@pytest.fixture
def managed_processor(
    request: pytest.FixtureRequest, fake_clock: FakeClock
) -> Generator[ManagedProcessorFactory, None, None]:
    """``managed_processor(my_processor)``: your own ``NetworkProcessor`` under a safety net.

    Starts the processor on this test's fake clock unless it is started already, and right
    after the test body stops it, awaits its cleanup and fails the test on a leaked task or
    timer, an unpaired ``start_network()``/``stop_network()``, an illegal transition, or a
    processor the test started itself and left running. Call it from an async test.
    """
    fixtures = _fixtures()
    net = fixtures.safety_net(request, fake_clock)
    factory: ManagedProcessorFactory = fixtures.ManagedProcessorFactory(net, fake_clock)
    yield factory
    fixtures.finish_at_teardown(net)


@pytest.fixture
def transition_recorder(
    request: pytest.FixtureRequest,
) -> Generator[TransitionRecorderFactory, None, None]:
    """Factory: ``transition_recorder(processor)`` attaches a ``TransitionRecorder``.

    Works with any ``NetworkProcessor``, your own subclass included; attach before
    ``start()`` to record everything. Its failure messages (an ASCII timeline of expected
    and actual) name the seed to re-run with. Recorders detach at teardown.
    """
    factory: TransitionRecorderFactory = _fixtures().TransitionRecorderFactory(
        session_seed(request.config)
    )
    yield factory
    factory.close()


@pytest.fixture
def chronopype_rng(request: pytest.FixtureRequest) -> random.Random:
    """A ``random.Random`` derived from ``--chronopype-seed`` and this test's node id.

    Pass it as ``rng=`` to your own ``NetworkProcessor`` so its backoff jitter reproduces.
    """
    return derive_rng(session_seed(request.config), request.node.nodeid, "chronopype_rng")


# The proxy's module loads on first use, like the rest: only the fixture's name lives here.
try:
    import pytest_asyncio
except ImportError:  # the testing extra is not installed

    @pytest.fixture
    def outage_proxy() -> Any:
        """Needs pytest-asyncio (pip install 'chronopype[testing]')."""
        pytest.fail(_missing_extra_message(), pytrace=False)

else:

    @pytest_asyncio.fixture
    async def outage_proxy(  # type: ignore[misc]  # one of two definitions
        fake_clock: FakeClock,
    ) -> AsyncIterator[Any]:
        """Factory for ``chronopype_testing.OutageProxy``s on this test's fake clock.

        ``proxy = await outage_proxy((host, port), windows=[(60, 120, "blackhole")])`` starts
        a proxy to the real upstream ``(host, port)``; point the client at ``proxy.host`` and
        ``proxy.port`` (or ``proxy.rewrite(url)``). Asking for it makes the test a fake-clock
        test. At teardown the proxies close, and the test fails if the client left a
        proxied connection open.
        """
        proxies = _load("_proxy_fixture")
        factory = proxies.OutageProxyFactory()
        try:
            yield factory
        finally:
            problems = await factory.close()
        proxies.report_left_open(problems)
