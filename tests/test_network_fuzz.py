"""A fuzzer for NetworkProcessor's guarantees under hostile callbacks (issue 10).

Each seed builds a processor whose checks, hooks, listeners and ``on_connected`` /
``on_disconnected`` call ``start``/``stop``/``pause``/``resume`` at random, return random
statuses, raise anything (``CancelledError`` included), sleep, hang until cancelled, or
swallow cancellations for a while; a driver task meanwhile makes lifecycle calls of its own
and cancels the processor's tasks at random. It runs on FakeClock, under the default task
factory and (Python 3.12+) ``asyncio.eager_task_factory``, and asserts:

- only legal transitions, each listener's ``old`` always its previous ``new``, and the last
  ``new`` it saw is the status;
- a check or ``start_network`` begins only while the processor is active and its check loop
  runs (so never after ``stop()`` or during ``pause()``), and never while another check that
  has not been cancelled is in flight;
- ``start_network``/``stop_network`` strictly alternate, starting with a start, and are
  paired after ``stop()`` + ``await_cleanup()``;
- ``check_loop_active`` is True exactly when an attempt task or the idle timer exists;
- after ``stop()`` + ``await_cleanup()`` no task is left but abandoned callees that ignore
  cancellation, and none at all once those have run out; asyncio never reports "Task was
  destroyed".

``CHRONOPYPE_FUZZ_SEEDS`` (default 300) sets the seeds per task factory; ``make test-deep``
runs many more. A failure names the seed; re-run one with ``CHRONOPYPE_FUZZ_SEED=<n>``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import sys
from collections.abc import Callable
from typing import Any

import pytest

from chronopype import LEGAL_TRANSITIONS, NetworkProcessor, NetworkStatus
from chronopype.processors.events import (
    CheckFinished,
    CheckStarted,
    LoopPaused,
    LoopStopped,
    ProcessorEvent,
    WaitScheduled,
)
from chronopype_testing import FakeClock

SEEDS = int(os.environ.get("CHRONOPYPE_FUZZ_SEEDS", "300"))
ONE_SEED = os.environ.get("CHRONOPYPE_FUZZ_SEED")
S = NetworkStatus
LOGGER = logging.getLogger("tests.fuzz")


class Hostile(NetworkProcessor):
    """Every callback draws from ``rng`` what to do."""

    LOGGER_NAME = "tests.fuzz"

    def __init__(self, seed: int) -> None:
        super().__init__(rng=random.Random(seed))
        self.chaos = random.Random(seed * 7919 + 1)
        self.violations: list[str] = []
        self.hook_calls: list[str] = []
        self.checks_in_flight = 0
        self.checks = 0
        self.calm = False
        self.check_network_timeout = self.chaos.choice([0.5, 2.0, 5.0])
        self.hook_timeout = self.chaos.choice([1.0, 3.0])
        self.network_error_wait_time = self.chaos.choice([0.5, 5.0])
        self.check_network_interval = self.chaos.choice([0.5, 3.0])

    @classmethod
    def logger(cls) -> logging.Logger:
        return LOGGER

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def violation(self, message: str) -> None:
        self.violations.append(f"t={self.now():.3f}: {message}")

    def poke(self, where: str) -> None:
        """A random lifecycle call, or none."""
        roll = self.chaos.random()
        if roll < 0.55 or self.calm:
            return
        call = self.chaos.choice(["start", "stop", "pause", "resume", "stop_start"])
        if call == "start":
            self.start(self.now())
        elif call == "stop":
            self.stop()
        elif call == "pause":
            self.pause()
        elif call == "resume":
            self.resume()
        else:
            self.stop()
            self.start(self.now())

    async def misbehave(self, cancelled: Callable[[], None] = lambda: None) -> None:
        """Sleep, hang until cancelled, or swallow a few cancellations, at random."""
        roll = self.chaos.random()
        if roll < 0.35:
            return
        if roll < 0.7:
            await asyncio.sleep(self.chaos.choice([0.0, 0.1, 1.0, 4.0]))
        elif roll < 0.85:
            await asyncio.sleep(3600)  # until a timeout, pause or stop cancels it
        else:
            for _ in range(self.chaos.randint(1, 3)):
                try:
                    await asyncio.sleep(self.chaos.uniform(0.0, 20.0))
                except BaseException:  # swallowed, as a retry loop catching everything does
                    cancelled()

    def maybe_raise(self) -> None:
        roll = self.chaos.random()
        if roll < 0.06:
            raise asyncio.CancelledError("leaked by a library")
        if roll < 0.12:
            raise RuntimeError("boom")

    def entering(self, what: str) -> None:
        if not (self.state.is_active and self.check_loop_active):
            self.violation(
                f"{what} began while active={self.state.is_active}, "
                f"check_loop_active={self.check_loop_active}"
            )

    async def check_network(self) -> NetworkStatus:
        self.entering("check_network")
        if self.checks_in_flight:
            self.violation(f"a check began while {self.checks_in_flight} were in flight")
        self.checks += 1
        self.checks_in_flight += 1
        counted = True

        def cancelled() -> None:  # the processor is done with this check (or will abandon it)
            nonlocal counted
            if counted:
                counted = False
                self.checks_in_flight -= 1

        try:
            self.poke("check")
            self.maybe_raise()
            try:
                await self.misbehave(cancelled)
            except BaseException:
                cancelled()
                raise
            self.poke("check after")
            answers: list[object] = [S.CONNECTED, S.CONNECTED, S.NOT_CONNECTED, S.ERROR]
            answers += [S.STOPPED, None]  # bad values: a failure of the check
            return self.chaos.choice(answers)  # type: ignore[return-value]
        finally:
            if counted:
                self.checks_in_flight -= 1

    async def start_network(self) -> None:
        self.entering("start_network")
        self.hook_call("start_network")
        self.poke("start_network")
        self.maybe_raise()
        await self.misbehave()

    async def stop_network(self) -> None:
        self.hook_call("stop_network")
        self.poke("stop_network")
        self.maybe_raise()
        await self.misbehave()

    def hook_call(self, name: str) -> None:
        expected = "start_network" if len(self.hook_calls) % 2 == 0 else "stop_network"
        if name != expected:
            self.violation(f"{name} called when {expected} was due: {self.hook_calls[-4:]}")
        self.hook_calls.append(name)

    def on_connected(self) -> None:
        super().on_connected()
        self.poke("on_connected")
        self.maybe_raise()

    def on_disconnected(self) -> None:
        super().on_disconnected()
        self.poke("on_disconnected")
        self.maybe_raise()


def watch(processor: Hostile, name: str) -> list[tuple[NetworkStatus, NetworkStatus]]:
    seen: list[tuple[NetworkStatus, NetworkStatus]] = []

    def listener(old: NetworkStatus, new: NetworkStatus) -> None:
        if (old, new) not in LEGAL_TRANSITIONS:
            processor.violation(f"listener {name} saw illegal {old.name} -> {new.name}")
        if seen and seen[-1][1] is not old:
            processor.violation(
                f"listener {name} saw {old.name} -> {new.name} after ... -> {seen[-1][1].name}"
            )
        seen.append((old, new))
        processor.poke(f"listener {name}")
        processor.maybe_raise()

    processor.add_status_listener(listener)
    return seen


def observe(processor: Hostile) -> None:
    """A hostile observer (issue 11) that also checks the events: loop time never goes back,
    a check finishes only after it started, and the check after a wait of the same run starts
    exactly ``delay`` after the wait began."""
    pending: dict[str, Any] = {}

    def observer(event: ProcessorEvent) -> None:
        last = pending.get("last")
        if last is not None and event.at < last.at:
            processor.violation(f"event at {event.at} after one at {last.at}")
        pending["last"] = event
        if isinstance(event, CheckStarted):
            wait = pending.pop("wait", None)
            if wait is not None and wait.run == event.run and event.at != wait.at + wait.delay:
                processor.violation(f"check at {event.at}, wait said {wait.at} + {wait.delay}")
            pending["check"] = event
        elif isinstance(event, CheckFinished) and pending.pop("check", None) is None:
            processor.violation(f"{event} without a CheckStarted")
        elif isinstance(event, WaitScheduled):
            pending["wait"] = event
        elif isinstance(event, LoopPaused | LoopStopped):
            pending.pop("wait", None)
            pending.pop("check", None)
        # Far fewer pokes than a listener's: every event would otherwise breed new ones.
        if processor.chaos.random() < 0.1:
            processor.poke("observer")
        processor.maybe_raise()

    processor.add_observer(observer)


def check_loop_consistent(processor: Hostile) -> None:
    parts = len(processor.owned_timer_handles()) + sum(
        1 for task in processor.owned_tasks() if task.get_name().endswith(":attempt")
    )
    if processor.check_loop_active and parts == 0:
        processor.violation("check_loop_active with nothing scheduled")


async def fuzz_one(seed: int, eager: bool) -> list[str]:
    loop = asyncio.get_running_loop()
    if eager:
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    processor = Hostile(seed)
    chaos = random.Random(seed)
    listeners = [watch(processor, str(number)) for number in range(chaos.randint(1, 3))]
    observe(processor)
    processor.start(0.0)
    for _ in range(chaos.randint(10, 60)):
        await asyncio.sleep(chaos.choice([0.0, 0.05, 0.5, 2.0, 10.0]))
        check_loop_consistent(processor)
        roll = chaos.random()
        if roll < 0.2:
            processor.poke("driver")
        elif roll < 0.3:
            tasks = processor.owned_tasks()
            if tasks:
                chaos.choice(tasks).cancel()
        elif roll < 0.35:
            processor.stop()
            await processor.await_cleanup(timeout=chaos.choice([0.0, 1.0, 100.0]))
            processor.start(processor.now())
    processor.calm = True  # no more lifecycle calls from callbacks: the end is the end
    processor.stop()
    await processor.await_cleanup(timeout=100.0)
    problems = list(processor.violations)
    # Only callees that ignore cancellation (abandoned, by design) may still be running.
    unfinished = [t.get_name() for t in processor.owned_tasks()]
    if any(not name.endswith(":abandoned") for name in unfinished):
        problems.append(f"tasks left after await_cleanup(): {unfinished}")
    await asyncio.sleep(200.0)  # every hang runs out by now
    for number, seen in enumerate(listeners):
        if seen and seen[-1][1] is not processor.network_status:
            problems.append(f"listener {number} last saw {seen[-1][1].name}, status STOPPED")
    if processor.network_status is not S.STOPPED:
        problems.append(f"status {processor.network_status.name} after stop()")
    if processor.hook_calls.count("start_network") != processor.hook_calls.count("stop_network"):
        problems.append(f"unpaired hooks: {processor.hook_calls[-6:]}")
    illegal = [d for d in processor.recorded_defects if d.kind == "illegal_transition"]
    problems.extend(f"refused: {d.message}" for d in illegal)
    if processor.owned_tasks() or processor.owned_timer_handles():
        problems.append(f"left behind: {processor.owned_tasks()} {processor.owned_timer_handles()}")
    current = asyncio.current_task()
    stray = [t for t in asyncio.all_tasks() if t is not current]
    if stray:
        problems.append(f"tasks left on the loop: {stray}")
    return problems


def run_seeds(seeds: list[int], eager: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="tests.fuzz")
    caplog.set_level(logging.CRITICAL, logger="chronopype.processors.network")
    failures: list[str] = []
    unraisable: list[str] = []
    current_seed = -1

    def hook(report: Any) -> None:
        unraisable.append(
            f"seed {current_seed} or up to 19 before: {report.exc_value!r} in {report.object!r}"
        )

    previous_hook, sys.unraisablehook = sys.unraisablehook, hook
    try:
        for seed in seeds:
            current_seed = seed
            failures.extend(run_seed(seed, eager))
            if seed % 20 == 19:  # a full collection per seed would cost 30 ms each
                gc.collect()
            if len(failures) >= 5:
                break
        gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    destroyed = [r.getMessage() for r in caplog.records if "Task was destroyed" in r.getMessage()]
    assert not destroyed, destroyed[:3]
    assert not unraisable, unraisable[:3]
    assert not failures, "\n".join(failures)


def run_seed(seed: int, eager: bool) -> list[str]:
    async def main() -> list[str]:
        return await fuzz_one(seed, eager)

    try:
        problems = FakeClock().run(main())
    except BaseException as exc:  # the fuzz itself must never crash
        problems = [f"crashed: {exc!r}"]
    if problems:
        return [f"seed {seed} (eager={eager}):\n  " + "\n  ".join(problems[:5])]
    return []


def seeds() -> list[int]:
    first = int(os.environ.get("CHRONOPYPE_FUZZ_FIRST_SEED", "0"))
    return [int(ONE_SEED)] if ONE_SEED is not None else list(range(first, first + SEEDS))


def test_fuzz_default_task_factory(caplog: pytest.LogCaptureFixture) -> None:
    run_seeds(seeds(), eager=False, caplog=caplog)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is new in 3.12")
def test_fuzz_eager_task_factory(caplog: pytest.LogCaptureFixture) -> None:
    run_seeds(seeds(), eager=True, caplog=caplog)
