"""FakeClock: the five semantics of virtual time, and the traps seen in prototypes."""

from __future__ import annotations

import asyncio
import random
import socket
import sys
import threading
import time
import warnings
from datetime import UTC, date, datetime, timedelta

import pytest

from chronopype_testing import DEFAULT_START, FakeClock, VirtualTimeDeadlock

DAY = 86_400.0


# -- 1. exactness ---------------------------------------------------------------------


def test_loop_time_starts_at_zero_and_jumps_exactly_to_each_deadline() -> None:
    seen: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen.append(loop.time())
        for delay in (0.1, 0.2, 2.5, 300.0):
            await asyncio.sleep(delay)
            seen.append(loop.time())

    FakeClock().run(main())
    assert seen == [0.0, 0.1, 0.1 + 0.2, 0.1 + 0.2 + 2.5, 0.1 + 0.2 + 2.5 + 300.0]


def test_timers_fire_in_exact_float_order_with_fifo_ties() -> None:
    rng = random.Random(1234)
    delays = [rng.choice([rng.uniform(0, 100), 7.0, 0.1 + 0.2]) for _ in range(2_000)]
    fired: list[tuple[float, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for index, delay in enumerate(delays):
            loop.call_later(delay, lambda i=index: fired.append((loop.time(), i)))
        await asyncio.sleep(101)

    FakeClock().run(main())
    # Exact float arithmetic: deadline = 0.0 + delay; ties keep insertion order.
    expected = sorted(((0.0 + d, i) for i, d in enumerate(delays)), key=lambda e: e[0])
    assert fired == expected


def test_a_24_hour_span_ends_at_24_hours_exactly() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        for _ in range(24 * 60):
            await asyncio.sleep(60)
        return loop.time()

    clock = FakeClock()
    assert clock.run(main()) == DAY
    assert clock.elapsed == DAY
    assert clock.monotonic() == DAY


def test_a_jump_does_not_spin_idle_iterations() -> None:
    iterations = 0

    async def main() -> int:
        loop = asyncio.get_running_loop()
        original = loop._run_once  # type: ignore[attr-defined]

        def counting() -> None:
            nonlocal iterations
            iterations += 1
            original()

        loop._run_once = counting  # type: ignore[attr-defined]
        before = iterations
        await asyncio.sleep(1e6)
        return iterations - before

    # One iteration jumps and fires the timer; the next resumes the sleeping task.
    assert FakeClock().run(main()) == 2


def test_advance_runs_everything_due_in_order_at_its_exact_time() -> None:
    async def main() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        log: list[tuple[float, str]] = []
        loop.call_later(3.0, lambda: log.append((loop.time(), "c")))
        loop.call_later(1.0, lambda: log.append((loop.time(), "a")))
        loop.call_later(2.0, lambda: log.append((loop.time(), "b")))
        loop.call_later(10.0, lambda: log.append((loop.time(), "late")))
        await manual.advance(2.0)
        assert log == [(1.0, "a"), (2.0, "b")]
        assert loop.time() == 2.0
        await manual.advance_to(5.0)
        assert loop.time() == 5.0
        return log

    manual = FakeClock(autojump=False)
    assert manual.run(main()) == [(1.0, "a"), (2.0, "b"), (3.0, "c")]


def test_run_until_idle_runs_ready_work_without_moving_time() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        steps: list[int] = []

        async def chain() -> None:
            for i in range(5):
                steps.append(i)
                await asyncio.sleep(0)

        task = asyncio.create_task(chain())
        loop.call_later(1.0, steps.append, 99)
        await manual.run_until_idle()
        assert steps == [0, 1, 2, 3, 4]
        assert task.done()
        assert loop.time() == 0.0
        await manual.advance(1.0)
        assert steps[-1] == 99

    manual = FakeClock(autojump=False)
    manual.run(main())


def test_autojump_can_be_switched_at_run_time() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        clock.autojump = False
        assert not clock.autojump
        sleeper = asyncio.create_task(asyncio.sleep(50))
        await clock.advance(49.0)
        assert not sleeper.done()
        clock.autojump = True
        await sleeper
        assert loop.time() == 50.0

    clock = FakeClock()
    clock.run(main())


def test_advance_refuses_to_move_backwards_and_bad_durations() -> None:
    async def main() -> None:
        await asyncio.sleep(10)
        with pytest.raises(ValueError, match="backwards"):
            await clock.advance_to(5.0)
        with pytest.raises(ValueError, match="finite"):
            await clock.advance(float("nan"))
        with pytest.raises(ValueError, match=">= 0"):
            await clock.advance(-1)
        with pytest.raises(TypeError):
            await clock.advance("1")  # type: ignore[arg-type]

    clock = FakeClock()
    clock.run(main())


def test_advance_outside_its_loop_is_a_clear_error() -> None:
    clock = FakeClock()

    async def elsewhere() -> None:
        await clock.advance(1)

    with pytest.raises(RuntimeError, match="does not drive the running event loop"):
        asyncio.run(elsewhere())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start": float("nan")}, ValueError, "start must be finite"),
        ({"start": "2024-01-01"}, TypeError, "start must be epoch seconds"),
        ({"start": True}, TypeError, "start must be epoch seconds"),
        ({"io_grace": -0.1}, ValueError, "io_grace must be >= 0"),
        ({"io_grace": float("inf")}, ValueError, "io_grace must be finite"),
        ({"autojump": 1}, TypeError, "autojump must be a bool"),
    ],
)
def test_constructor_rejects_bad_input(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        FakeClock(**kwargs)  # type: ignore[arg-type]


def test_a_nan_deadline_is_rejected_and_an_infinite_sleep_is_a_deadlock() -> None:
    async def nan_timer() -> None:
        asyncio.get_running_loop().call_at(float("nan"), lambda: None)

    with pytest.raises(ValueError, match="NaN"):
        FakeClock().run(nan_timer())
    with pytest.raises(VirtualTimeDeadlock):
        FakeClock().run(asyncio.sleep(float("inf")))


# -- 2. wall clock in step ------------------------------------------------------------


def test_wall_clock_functions_follow_virtual_time_while_the_loop_runs() -> None:
    start = datetime(2030, 5, 17, 23, 59, 30, tzinfo=UTC)
    readings: dict[str, object] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        readings["time0"] = time.time()
        readings["mono0"] = time.monotonic()
        await asyncio.sleep(45.5)
        readings["loop"] = loop.time()
        readings["time"] = time.time()
        readings["time_ns"] = time.time_ns()
        readings["now_utc"] = datetime.now(UTC)
        readings["utcnow"] = datetime.utcnow()
        readings["today"] = date.today()
        readings["clock"] = clock.time()
        readings["mono1"] = time.monotonic()

    clock = FakeClock(start=start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # utcnow() on 3.12+
        clock.run(main())
    expected = start + timedelta(seconds=45.5)
    assert readings["time0"] == start.timestamp()
    assert readings["loop"] == 45.5
    assert readings["time"] == expected.timestamp()
    assert readings["time_ns"] == int(start.timestamp()) * 1_000_000_000 + 45_500_000_000
    assert readings["now_utc"] == expected
    assert readings["utcnow"] == expected.replace(tzinfo=None)
    assert readings["today"] == date(2030, 5, 18)
    assert readings["clock"] == expected.timestamp()
    # time.monotonic() is deliberately real: far less than 45 s passed.
    mono = float(readings["mono1"]) - float(readings["mono0"])  # type: ignore[arg-type]
    assert 0 <= mono < 45


def test_wall_clock_is_real_again_after_the_run() -> None:
    clock = FakeClock(start=0.0)
    clock.run(asyncio.sleep(10))
    assert clock.time() == 10.0
    assert time.time() > 1_600_000_000  # real wall time, not 1970


def test_default_start_and_naive_datetimes_mean_utc() -> None:
    assert FakeClock().time() == DEFAULT_START.timestamp()
    naive = FakeClock(start=datetime(2025, 1, 1))
    assert naive.time() == datetime(2025, 1, 1, tzinfo=UTC).timestamp()


# -- 3. real I/O coexists -------------------------------------------------------------


def _slow_echo_server(delay: float) -> tuple[socket.socket, threading.Thread]:
    """A real loopback server (own thread) that answers each line after `delay` real s."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = conn.recv(1024)
            time.sleep(delay)  # the server's own latency, in its own thread
            conn.sendall(data.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_real_server_replying_after_50ms_beats_a_5s_virtual_timeout() -> None:
    listener, thread = _slow_echo_server(0.05)
    port = listener.getsockname()[1]

    async def main() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        reply = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        await writer.wait_closed()
        return reply, asyncio.get_running_loop().time()

    try:
        reply, loop_time = FakeClock().run(main())
    finally:
        listener.close()
        thread.join(5)
    assert reply == b"PING\n"
    assert loop_time < 5.0  # the virtual timeout never fired


def test_pending_executor_work_does_not_look_idle() -> None:
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        result = await asyncio.wait_for(
            loop.run_in_executor(None, lambda: (time.sleep(0.05), "done")[1]), 5
        )
        return result, loop.time()

    assert FakeClock().run(main()) == ("done", 0.0)


def test_listening_sockets_do_not_hold_time_back() -> None:
    real_waits: list[float] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        selector = loop._selector  # type: ignore[attr-defined]
        original = selector.select

        def recording(timeout: float | None = None) -> object:
            if timeout is None or timeout > 0:
                real_waits.append(-1.0 if timeout is None else timeout)
            return original(timeout)

        selector.select = recording
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        async with server:
            await asyncio.sleep(3_600)
        return loop.time()

    assert FakeClock(io_grace=30).run(main()) == 3_600.0
    assert real_waits == []  # never waited in real time for the listener


def test_a_hung_real_peer_ends_in_the_virtual_timeout_after_io_grace() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> float:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return loop.time()

    try:
        assert FakeClock(io_grace=0.01).run(main()) == 5.0
    finally:
        listener.close()


# -- 4. no silent hangs ---------------------------------------------------------------


def test_a_deadlock_raises_naming_the_blocked_tasks() -> None:
    async def waits_forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        helper = asyncio.create_task(waits_forever(), name="the-helper")
        await helper

    with pytest.raises(VirtualTimeDeadlock) as caught:
        FakeClock().run(main())
    message = str(caught.value)
    assert "the-helper" in message
    assert "waits_forever" in message
    assert "no timer is pending" in message


def test_a_timer_nobody_may_reach_with_autojump_off_is_a_deadlock() -> None:
    with pytest.raises(VirtualTimeDeadlock, match="autojump is off"):
        FakeClock(autojump=False).run(asyncio.sleep(10))


# -- 5. determinism -------------------------------------------------------------------


def _seeded_trace(seed: int) -> list[tuple[float, int, float]]:
    trace: list[tuple[float, int, float]] = []

    async def worker(index: int, rng: random.Random) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            try:
                async with asyncio.timeout(rng.uniform(0, 3)):
                    await asyncio.sleep(rng.uniform(0, 5))
            except TimeoutError:
                pass
            trace.append((loop.time(), index, time.time()))

    async def main() -> None:
        master = random.Random(seed)
        await asyncio.gather(*(worker(i, random.Random(master.random())) for i in range(50)))

    FakeClock().run(main())
    return trace


def test_the_same_program_and_seed_give_the_same_trace() -> None:
    first = _seeded_trace(7)
    assert first == _seeded_trace(7)
    assert len(first) == 1_000
    assert first != _seeded_trace(8)


# -- known traps ----------------------------------------------------------------------


def test_sub_ulp_delays_still_move_time_on_the_call_later_path() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1e9)  # large now: 1e-12 is far below one ulp here
        start = loop.time()
        spins = 0
        while loop.time() == start:
            await asyncio.sleep(1e-12)
            spins += 1
            assert spins < 10, "a sub-ulp sleep did not move time"
        return spins

    assert FakeClock(max_elapsed=None).run(main()) == 1


def test_sub_ulp_timeouts_still_fire_on_the_call_at_path() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1e9)
        timeouts = 0
        for _ in range(3):
            try:
                async with asyncio.timeout(1e-12):  # loop.call_at(now + 1e-12) == now
                    await asyncio.Event().wait()
            except TimeoutError:
                timeouts += 1
        deadline = loop.time() + 1e-12
        await asyncio.sleep(0)
        assert loop.time() >= deadline
        return timeouts

    assert FakeClock(max_elapsed=None).run(main()) == 3


def test_timers_beyond_97_days_still_fire() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(365 * DAY)
        year = loop.time()
        await asyncio.sleep(1e-9)  # below the float resolution at ~3e7 s
        return year, loop.time()

    year, after = FakeClock(max_elapsed=None).run(main())
    assert year == 365 * DAY
    assert after > year


def test_closing_does_not_expire_the_executor_join_in_virtual_time() -> None:
    finished = threading.Event()

    def slow_job() -> None:
        time.sleep(0.1)
        finished.set()

    async def main() -> None:
        asyncio.get_running_loop().run_in_executor(None, slow_job)  # left running on purpose

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FakeClock().run(main())
    assert finished.is_set()  # the close waited for the real thread
    assert not [w for w in caught if "executor" in str(w.message)]


def test_one_clock_drives_one_loop_at_a_time_and_continues_its_time() -> None:
    clock = FakeClock()
    loop = clock.new_event_loop()
    with pytest.raises(RuntimeError, match="already drives an open event loop"):
        clock.new_event_loop()
    loop.run_until_complete(asyncio.sleep(5))
    loop.close()
    assert clock.run(asyncio.sleep(5)) is None
    assert clock.elapsed == 10.0


def test_runner_loop_factory_works() -> None:
    clock = FakeClock()
    with asyncio.Runner(loop_factory=clock.new_event_loop) as runner:
        runner.run(asyncio.sleep(30))
        assert runner.get_loop().time() == 30.0
    assert clock.elapsed == 30.0


@pytest.mark.skipif(sys.platform == "win32", reason="selector loop only")
def test_no_task_is_leaked_and_nothing_is_destroyed_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async def child() -> None:
            await asyncio.sleep(100)

        task = asyncio.create_task(child())
        await asyncio.sleep(1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    FakeClock().run(main())
    assert "Task was destroyed" not in caplog.text


def test_timers_sharing_a_deadline_fire_in_scheduling_order_and_skip_cancelled_ones() -> None:
    fired: list[tuple[str, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def note(name: str) -> None:
            fired.append((name, loop.time()))

        loop.call_at(2.0, note, "a")
        loop.call_later(1.0, note, "early")
        cancelled = loop.call_at(2.0, note, "cancelled")
        loop.call_later(2.0, note, "b")
        loop.call_at(2.0, note, "c")
        cancelled.cancel()
        await asyncio.sleep(3.0)

    FakeClock().run(main())
    assert fired == [("early", 1.0), ("a", 2.0), ("b", 2.0), ("c", 2.0)]


def test_time_never_jumps_to_a_deadline_whose_timers_were_all_cancelled() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            loop.call_at(5.0, print).cancel()
        woke = loop.create_future()
        loop.call_at(7.0, woke.set_result, None)
        await woke
        return loop.time()

    assert FakeClock().run(main()) == 7.0


def test_many_cancelled_timers_are_compacted_and_the_rest_still_fire_in_order() -> None:
    # More cancelled timers than live ones, past the compaction threshold.
    fired: list[tuple[int, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handles = [
            loop.call_at(float(1 + index % 7), fired.append, (index, float(1 + index % 7)))
            for index in range(300)
        ]
        for index, handle in enumerate(handles):
            if index % 3:
                handle.cancel()
        await asyncio.sleep(0)  # one iteration: the loop compacts before anything is due
        assert all(not handle._scheduled for handle in handles[1::3])  # type: ignore[attr-defined]
        await asyncio.sleep(10.0)

    FakeClock().run(main())
    kept = [index for index in range(300) if index % 3 == 0]
    expected = sorted(((index, float(1 + index % 7)) for index in kept), key=lambda x: x[1])
    assert fired == expected
