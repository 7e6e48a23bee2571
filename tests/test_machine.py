"""NetworkProcessorMachine: random lifecycles of a NetworkProcessor, checked after every step.

CI runs CHRONOPYPE_MACHINE_EXAMPLES (default 200) examples of 30 steps, derandomized so every
run checks the same examples; ``make test-deep`` sets 2000 and draws fresh random examples.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from chronopype import NetworkProcessor, NetworkStatus
from chronopype.processors import AttemptOutcome, WaitKind
from chronopype.processors.events import CheckFinished, WaitScheduled
from chronopype_testing import FakeNetworkProcessor, Step
from chronopype_testing._fakes import HookFault
from chronopype_testing.strategies import (
    NetworkProcessorMachine,
    backoff_bounds,
    machine_examples,
)

EXAMPLES = machine_examples()
STEPS = 30
DEEP = EXAMPLES > 200


class CountingMachine(NetworkProcessorMachine):
    """The machine as shipped, plus counters that show what the run covered."""

    steps_per_example: ClassVar[list[int]] = []
    statuses_seen: ClassVar[set[NetworkStatus]] = set()
    retries_checked: ClassVar[list[int]] = [0]
    hook_faults_seen: ClassVar[list[int]] = [0]

    def __init__(self) -> None:
        super().__init__()
        self.steps = -1  # invariants run once before the first step too

    @invariant(check_during_init=True)
    def count_steps(self) -> None:
        self.steps += 1

    def teardown(self) -> None:
        type(self).steps_per_example.append(self.steps)
        if self._processor is not None:
            processor = self._processor
            type(self).statuses_seen.update(t.new for t in processor.transitions)
            type(self).retries_checked[0] += self._backoffs_checked
            type(self).hook_faults_seen[0] += processor.start_network_calls > 0 and any(
                event.outcome is not AttemptOutcome.CONNECTED
                for event in processor.recorder.of_type(CheckFinished)
            )
        super().teardown()


def test_network_processor_machine(summary_lines: list[str]) -> None:
    began = time.perf_counter()
    run_state_machine_as_test(
        CountingMachine,
        # Without a minimum, a quarter of the examples end after a few steps (Hypothesis's
        # generation tactics); every valid example should run the full 30.
        _min_steps=STEPS,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=not DEEP,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    wall = time.perf_counter() - began
    runs = CountingMachine.steps_per_example
    full = sum(steps == STEPS for steps in runs)
    line = (
        f"NetworkProcessorMachine: {len(runs)} examples, {full} of {STEPS} steps, "
        f"{sum(runs)} steps, {CountingMachine.retries_checked[0]} retry waits checked, "
        f"{wall:.1f} s wall"
    )
    summary_lines.append(line)
    print(line)
    assert full >= EXAMPLES
    assert CountingMachine.statuses_seen == set(NetworkStatus)
    assert CountingMachine.retries_checked[0] >= EXAMPLES


# -- the machine catches broken processors --------------------------------------------------------

CATCH = settings(
    max_examples=200,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


def machine_for(processor_class: type[FakeNetworkProcessor]) -> type[NetworkProcessorMachine]:
    class MachineForBrokenProcessor(NetworkProcessorMachine):
        def make_processor(
            self,
            *,
            script: list[Step],
            then: NetworkStatus,
            rng: random.Random,
            start_network: HookFault | None,
            stop_network: HookFault | None,
        ) -> FakeNetworkProcessor:
            return processor_class(script, then=then, rng=rng)

    return MachineForBrokenProcessor


class SecondLoopOnResume(FakeNetworkProcessor):
    def resume(self) -> None:
        super().resume()
        run = self._current_run
        if run is not None:  # the defect: a second attempt chain per resume
            self._spawn_attempt(asyncio.get_running_loop(), run, restarted=False)


class SloppyBackoff(FakeNetworkProcessor):
    def backoff_delay(self, n: int) -> float:
        return super().backoff_delay(n) * 1.5


class ErrorFromConnected(FakeNetworkProcessor):
    def on_connected(self) -> None:
        super().on_connected()
        self._set_status(NetworkStatus.ERROR)


class ForgetsStopNetwork(FakeNetworkProcessor):
    forgot = False

    async def stop_network(self) -> None:
        if not self.forgot:  # the first teardown skips releasing the network
            self.forgot = True
            return
        await super().stop_network()


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (SecondLoopOnResume, r"2 check loop\(s\) running, expected 1"),
        (SloppyBackoff, r"backoff_delay\(\d+\) = [\d.]+, outside \["),
        (ErrorFromConnected, r"CONNECTED -> ERROR is not a legal transition"),
        (
            ForgetsStopNetwork,
            r"start_network\(\) call #2 .* began before the previous one|after cleanup "
            r"start_network ran 1 time\(s\), stop_network 0",
        ),
    ],
    ids=["second-loop", "backoff", "illegal-transition", "pairing"],
)
def test_machine_catches_a_broken_processor(
    broken: type[FakeNetworkProcessor], message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        run_state_machine_as_test(machine_for(broken), settings=CATCH)


# -- a user's own processor, and long outages --------------------------------------------------


class Inventory(NetworkProcessor):
    """A user's processor: its network is up or down as its own rng says."""

    def __init__(self, *, rng: random.Random) -> None:
        super().__init__(rng=rng)
        self.check_network_interval = 5.0
        self.sessions_open = 0

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("inventory")

    async def check_network(self) -> NetworkStatus:
        await asyncio.sleep(self.rng.choice([0.0, 0.5, 7.0]))  # 7 s: over the check timeout
        return self.rng.choice([NetworkStatus.CONNECTED, NetworkStatus.NOT_CONNECTED])

    async def start_network(self) -> None:
        await asyncio.sleep(0.25)
        self.sessions_open += 1

    async def stop_network(self) -> None:
        self.sessions_open -= 1


class InventoryMachine(NetworkProcessorMachine):
    statuses_seen: ClassVar[set[NetworkStatus]] = set()

    def make_processor(self, *, rng: random.Random, **fake_options: object) -> NetworkProcessor:
        return Inventory(rng=rng)

    def teardown(self) -> None:
        type(self).statuses_seen.update(t.new for t in self.transitions)
        super().teardown()


def test_machine_drives_a_users_own_processor() -> None:
    run_state_machine_as_test(InventoryMachine, settings=settings(CATCH, max_examples=60))
    assert {
        NetworkStatus.CONNECTED,
        NetworkStatus.NOT_CONNECTED,
        NetworkStatus.DISCONNECTING,
        NetworkStatus.STOPPED,
    } <= InventoryMachine.statuses_seen


class DoubleStart(Inventory):
    def on_connected(self) -> None:
        super().on_connected()
        # The defect: a second start_network() while the first is still unpaired.
        asyncio.get_running_loop().create_task(self.start_network())


def test_machine_catches_a_users_broken_pairing() -> None:
    class DoubleStartMachine(NetworkProcessorMachine):
        def make_processor(
            self, *, rng: random.Random, **fake_options: object
        ) -> NetworkProcessor:
            return DoubleStart(rng=rng)

    with pytest.raises(AssertionError, match=r"start_network\(\) call #2 at loop time .* began"):
        run_state_machine_as_test(DoubleStartMachine, settings=CATCH)


@pytest.mark.parametrize("failures", [1, 2, 9, 10, 1024, 1025, 1026, 10**6, 10**18])
def test_backoff_bounds_hold_the_cores_delay_and_never_overflow(failures: int) -> None:
    low, high = backoff_bounds(failures)
    assert 1.0 <= low <= high <= 300.0
    processor = FakeNetworkProcessor(rng=random.Random(failures))
    delays = [processor.backoff_delay(failures) for _ in range(200)]
    assert all(low <= delay <= high for delay in delays)
    expected_base = min(2.0 ** (failures - 1), 300.0) if failures < 20 else 300.0
    assert (low, high) == (max(expected_base * 0.9, 1.0), min(expected_base * 1.1, 300.0))


def test_backoff_bounds_reject_bad_counts() -> None:
    # strategies.backoff_bounds is the core's: TypeError for a wrong type, ValueError below 1.
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n must be an int >= 1"):
            backoff_bounds(bad)
    for wrong in (True, 1.5):
        with pytest.raises(TypeError, match="n must be an int >= 1"):
            backoff_bounds(wrong)  # type: ignore[arg-type]


def test_the_machine_survives_1100_consecutive_failures() -> None:
    # A check that raises retries after network_error_wait_time (0.1 s) and still counts a
    # failure: 1,100 of them take 110 virtual seconds, then one NOT_CONNECTED backs off.
    machine = NetworkProcessorMachine()
    try:
        machine.create_processor(
            seed=7,
            script=[Step.raises(OSError)] * 1100 + [Step.not_connected()],
            then=NetworkStatus.NOT_CONNECTED,
            start_fault=None,
            stop_fault=None,
        )
        fake = machine.fake
        assert fake is not None
        fake.network_error_wait_time = 0.1
        machine.start()
        machine.advance(200.0)
        machine.advance(400.0)  # past the retry after the longest backoff (330 s)
        machine.retry_waits_follow_backoff()  # 2.0 ** 1100 would overflow here
        failures = [
            wait.retry_count
            for wait in fake.recorder.of_type(WaitScheduled)
            if wait.kind is WaitKind.BACKOFF
        ]
        assert failures[0] == 1101 and machine._backoffs_checked >= 1
    finally:
        machine.teardown()
