"""The fake loop's own correctness: the virtual-time cap, error messages, teardown, bad input,
and the private asyncio names it relies on (issue 12, points 5 to 8)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import warnings
from typing import Any

import pytest

import chronopype_testing._loop as loop_module
from chronopype_testing import (
    DEFAULT_MAX_ELAPSED,
    FakeClock,
    VirtualTimeDeadlock,
    VirtualTimeLimitExceeded,
)

DAY = 86_400.0


# -- 5. a cap on virtual time ------------------------------------------------------------------


def test_the_default_cap_is_30_days_and_ends_a_periodic_test_waiting_for_ever() -> None:
    async def tick_forever() -> None:
        while True:  # noqa: ASYNC110 (a periodic timer, as a processor's check loop)
            await asyncio.sleep(60)

    async def main() -> None:
        ticker = asyncio.create_task(tick_forever(), name="ticker")
        try:
            await asyncio.Event().wait()  # never set: a test waiting for nothing
        finally:
            ticker.cancel()

    assert DEFAULT_MAX_ELAPSED == 30 * DAY
    clock = FakeClock()
    started = time.perf_counter()
    with pytest.raises(VirtualTimeLimitExceeded) as caught:
        clock.run(main())
    assert time.perf_counter() - started < 10  # was: 100 % CPU for ever
    message = str(caught.value)
    assert f"virtual time would jump to {30 * DAY + 60!r} s" in message
    assert f"max_elapsed={30 * DAY!r} s" in message
    assert f"elapsed now: {30 * DAY!r} s" in message
    assert "task ticker" in message
    assert "tick_forever" in message
    assert "main" in message
    assert clock.elapsed == 30 * DAY


def test_timers_exactly_at_the_cap_still_fire() -> None:
    async def main() -> float:
        await asyncio.sleep(100)
        return asyncio.get_running_loop().time()

    assert FakeClock(max_elapsed=100).run(main()) == 100.0
    with pytest.raises(VirtualTimeLimitExceeded):
        FakeClock(max_elapsed=99.5).run(main())


def test_advance_past_the_cap_raises_on_the_callers_line() -> None:
    async def main() -> None:
        with pytest.raises(VirtualTimeLimitExceeded, match=r"max_elapsed=10\.0"):
            await clock.advance(11)
        await clock.advance(10)
        assert clock.elapsed == 10.0

    clock = FakeClock(autojump=False, max_elapsed=10)
    clock.run(main())


def test_no_cap_with_none() -> None:
    async def main() -> float:
        await asyncio.sleep(1e9)
        return asyncio.get_running_loop().time()

    clock = FakeClock(max_elapsed=None)
    assert clock.max_elapsed is None
    assert clock.run(main()) == 1e9


# -- 6. errors that land on the user's line ------------------------------------------------------


async def _wait_for_a_reply(event: asyncio.Event) -> None:
    await event.wait()  # the line the deadlock message must point at


async def _client(event: asyncio.Event) -> None:
    await _wait_for_a_reply(event)


def test_a_deadlock_shows_each_blocked_task_from_the_users_frames_in_few_lines() -> None:
    async def main() -> None:
        event = asyncio.Event()
        clients = [asyncio.create_task(_client(event), name=f"client-{i}") for i in range(3)]
        await asyncio.gather(*clients)

    with pytest.raises(VirtualTimeDeadlock) as caught:
        FakeClock().run(main())
    lines = str(caught.value).splitlines()
    assert len(lines) < 30
    here = __file__.rsplit("/", 1)[-1]
    line_of_wait = _wait_for_a_reply.__code__.co_firstlineno + 1
    for name in ("client-0", "client-1", "client-2"):
        start = next(i for i, line in enumerate(lines) if f"task {name} " in line)
        chain = lines[start + 1 : start + 3]
        assert here in chain[0] and "_client" in chain[0]
        assert chain[1].strip().endswith(f"{here}:{line_of_wait} in _wait_for_a_reply")
    assert not any("asyncio/" in line or "chronopype_testing/" in line for line in lines)
    assert "expect_outside_work" in lines[-1]


# -- 7. the loop's own correctness -------------------------------------------------------------


def test_shutting_the_default_executor_down_mid_run_leaves_time_virtual() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, time.sleep, 0.01)
        await loop.shutdown_default_executor()
        await asyncio.sleep(3_600)
        return loop.time()

    started = time.perf_counter()
    assert FakeClock().run(main()) == 3_600.0
    assert time.perf_counter() - started < 3


def test_closing_the_running_loop_raises_and_keeps_every_timer() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        loop.call_later(5, lambda: fired.append(loop.time()))
        with pytest.raises(RuntimeError, match="running"):
            loop.close()
        await asyncio.sleep(10)
        return fired

    assert FakeClock().run(main()) == [5.0]


@pytest.mark.parametrize("autojump", [True, False])
def test_run_until_idle_runs_callbacks_due_now(autojump: bool) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        ran: list[str] = []
        loop.call_later(0, ran.append, "later-0")
        loop.call_at(loop.time(), ran.append, "at-now")
        await clock.run_until_idle()
        assert loop.time() == 0.0
        return ran

    clock = FakeClock(autojump=autojump)
    assert clock.run(main()) == ["later-0", "at-now"]


def test_a_second_fake_clock_running_in_another_thread_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first_running = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    async def hold_the_wall_clock() -> None:
        first_running.set()
        await asyncio.to_thread(release.wait, 10)

    def first() -> None:
        try:
            FakeClock(start=0).run(hold_the_wall_clock())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_running.wait(10)
        refused = asyncio.sleep(1)
        with pytest.raises(RuntimeError, match="another FakeClock loop is running"):
            FakeClock().run(refused)
        refused.close()
    finally:
        release.set()
        thread.join(10)
    assert errors == []
    assert FakeClock().run(asyncio.sleep(1)) is None  # free again once the first ended
    gc.collect()  # the refused run left no task behind to be destroyed pending
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


def test_teardown_with_a_timer_beyond_24_8_days_and_a_job_left_running() -> None:
    finished = threading.Event()

    def job() -> None:
        time.sleep(0.05)
        finished.set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        asyncio.create_task(asyncio.sleep(40 * DAY))  # noqa: RUF006 (left pending on purpose)
        loop.run_in_executor(None, job)  # left running on purpose

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FakeClock(max_elapsed=None).run(main())
    assert finished.is_set()
    assert time.perf_counter() - started < 3
    assert not [w for w in caught if "executor" in str(w.message)]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start": 1e300}, ValueError, "start must be a wall time in years 1 to 9999"),
        ({"start": -1e300}, ValueError, "start must be a wall time"),
        ({"io_grace": 1e7}, ValueError, "io_grace must be <= 3600"),
        ({"max_elapsed": 0}, ValueError, "max_elapsed must be > 0"),
        ({"max_elapsed": float("nan")}, ValueError, "max_elapsed must be finite"),
        ({"max_elapsed": "1d"}, TypeError, "max_elapsed must be a number"),
    ],
)
def test_out_of_range_constructor_arguments_name_the_argument(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        FakeClock(**kwargs)


def test_huge_delays_are_a_clear_error_never_an_overflow() -> None:
    with pytest.raises(VirtualTimeLimitExceeded, match="max_elapsed"):
        FakeClock().run(asyncio.sleep(1e300))
    # Without a cap, a timer the wall clock cannot reach never fires, as on a real loop;
    # with nothing else to run that is a deadlock, said plainly.
    with pytest.raises(VirtualTimeDeadlock, match="beyond the year 9999"):
        FakeClock(max_elapsed=None).run(asyncio.sleep(1e300))


@pytest.mark.parametrize(
    ("max_elapsed", "error", "match"),
    [(DEFAULT_MAX_ELAPSED, VirtualTimeLimitExceeded, "max_elapsed"), (None, ValueError, "9999")],
)
def test_advancing_absurdly_far_is_a_clear_error(
    max_elapsed: float | None, error: type, match: str
) -> None:
    async def main() -> None:
        with pytest.raises(error, match=match):
            await clock.advance(1e300)
        assert clock.elapsed == 0.0

    clock = FakeClock(autojump=False, max_elapsed=max_elapsed)
    clock.run(main())


# -- 8. private asyncio names, checked up front ---------------------------------------------------


def test_a_missing_private_asyncio_name_fails_clearly_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loop_module, "_privates_checked", False)
    monkeypatch.setattr(
        loop_module, "_LOOP_PRIVATE_NAMES", (*loop_module._LOOP_PRIVATE_NAMES, "_no_such_thing")
    )
    version = ".".join(map(str, sys.version_info[:3]))
    with pytest.raises(RuntimeError, match=rf"Python {version}.*_no_such_thing"):
        FakeClock().new_event_loop()
