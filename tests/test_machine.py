"""NetworkProcessorMachine: random lifecycles of a NetworkProcessor, checked after every step.

CI runs CHRONOPYPE_MACHINE_EXAMPLES (default 200) examples of 30 steps, derandomized so every
run checks the same examples; ``make test-deep`` sets 2000 and draws fresh random examples.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from chronopype import NetworkStatus
from chronopype.processors import AttemptOutcome
from chronopype.processors.events import CheckFinished
from chronopype_testing import FakeNetworkProcessor, Step
from chronopype_testing._fakes import HookFault
from chronopype_testing.strategies import NetworkProcessorMachine, machine_examples

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
    max_examples=100,
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
