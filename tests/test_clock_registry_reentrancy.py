"""Issue 10, point 8: the clock never iterates its registry while calling into processors.

Callbacks (a processor's own start/stop, a NetworkProcessor status listener) may add or remove
processors while the clock starts them, ticks them or stops them; every processor started is
stopped exactly once on exit, and a failing ``__aenter__`` stops everything it started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from chronopype.clocks import BacktestClock, ClockConfig, ClockError, ClockMode
from chronopype.processors import NetworkProcessor, NetworkStatus, TickProcessor
from chronopype_testing import FakeClock


class Net(NetworkProcessor):
    """Connects at once; counts its start_network/stop_network hooks."""

    def __init__(self, name: str = "net") -> None:
        super().__init__()
        self.name = name
        self.hooks: list[str] = []

    @classmethod
    def logger(cls) -> logging.Logger:
        return logging.getLogger("test.reentrancy")

    async def check_network(self) -> NetworkStatus:
        return NetworkStatus.CONNECTED

    async def start_network(self) -> None:
        self.hooks.append("start_network")

    async def stop_network(self) -> None:
        self.hooks.append("stop_network")


class Recorder(TickProcessor):
    """Records lifecycle calls into a shared journal; hooks run inside start/stop."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        on_start: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.journal = journal
        self.on_start = on_start
        self.on_stop = on_stop
        self.ticks: list[float] = []

    def __repr__(self) -> str:
        return f"Recorder({self.name})"

    def start(self, timestamp: float) -> None:
        super().start(timestamp)
        self.journal.append(f"start {self.name}")
        if self.on_start is not None:
            self.on_start()

    def stop(self) -> None:
        super().stop()
        self.journal.append(f"stop {self.name}")
        if self.on_stop is not None:
            self.on_stop()

    def tick(self, timestamp: float) -> None:
        self.ticks.append(timestamp)


def backtest(end_time: float = 3.0) -> BacktestClock:
    return BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=end_time))


def started_equals_stopped(journal: list[str]) -> None:
    started = sorted(line.split()[1] for line in journal if line.startswith("start "))
    stopped = sorted(line.split()[1] for line in journal if line.startswith("stop "))
    assert started == stopped, journal


async def test_a_companion_added_while_entering_is_started_ticked_and_stopped(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    companion = Recorder("companion", journal)
    first = Recorder("first", journal, on_start=lambda: clock.add_processor(companion))
    last = Recorder("last", journal)
    clock.add_processor(first)
    clock.add_processor(last)
    async with clock:
        assert companion.state.is_active
        await clock.run()
    assert journal[:3] == ["start first", "start last", "start companion"]
    assert companion.ticks == [1.0, 2.0, 3.0]
    assert sorted(journal[3:]) == ["stop companion", "stop first", "stop last"]


async def test_removing_a_processor_not_yet_started_while_entering_never_starts_it(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    victim = Recorder("victim", journal)
    first = Recorder("first", journal, on_start=lambda: clock.remove_processor(victim))
    clock.add_processor(first)
    clock.add_processor(victim)
    async with clock:
        await clock.run()
    assert journal == ["start first", "stop first"]
    assert clock.processors == [first]
    assert victim.ticks == []


async def test_removing_a_started_processor_while_entering_stops_it_once(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    early = Recorder("early", journal)
    late = Recorder("late", journal, on_start=lambda: clock.remove_processor(early))
    clock.add_processor(early)
    clock.add_processor(late)
    async with clock:
        await clock.run()
    assert journal == ["start early", "start late", "stop early", "stop late"]
    assert early.ticks == []


async def test_processors_that_remove_each_other_while_stopping_are_all_stopped_once(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    processors: list[Recorder] = []

    def remove_next(index: int) -> Callable[[], None]:
        def remove() -> None:
            following = processors[index + 1 :]
            if following and following[0] in clock.processors:
                clock.remove_processor(following[0])

        return remove

    for index in range(5):
        processors.append(Recorder(f"p{index}", journal, on_stop=remove_next(index)))
        clock.add_processor(processors[-1])
    async with clock:
        await clock.run()
    started_equals_stopped(journal)
    assert [line for line in journal if line.startswith("stop")] == [
        "stop p0", "stop p1", "stop p2", "stop p3", "stop p4",
    ]


async def test_a_processor_that_removes_itself_on_stop_does_not_break_exit(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    selfish = Recorder("selfish", journal)

    def leave() -> None:
        if selfish in clock.processors:
            clock.remove_processor(selfish)

    selfish.on_stop = leave
    other = Recorder("other", journal)
    clock.add_processor(selfish)
    clock.add_processor(other)
    async with clock:
        await clock.run()
    assert journal == ["start selfish", "start other", "stop selfish", "stop other"]
    assert clock.processors == [other]


async def test_a_processor_added_while_stopping_is_registered_but_never_started(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    late = Recorder("late", journal)
    first = Recorder("first", journal, on_stop=lambda: clock.add_processor(late))
    clock.add_processor(first)
    async with clock:
        await clock.run()
    assert journal == ["start first", "stop first"]
    assert clock.processors == [first, late]
    # A later context starts (and stops) both.
    async with clock:
        pass
    assert journal[2:] == ["start first", "start late", "stop first", "stop late"]


async def test_failing_enter_stops_what_it_started_including_companions(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()
    companion = Recorder("companion", journal)

    class WontStart(Recorder):
        def start(self, timestamp: float) -> None:
            raise OSError("no port")

    good = Recorder("good", journal, on_start=lambda: clock.add_processor(companion))
    clock.add_processor(good)
    clock.add_processor(WontStart("bad", journal))
    with pytest.raises(ClockError, match="Failed to start processor") as caught:
        async with clock:
            pytest.fail("the body must not run")
    assert isinstance(caught.value.__cause__, OSError)
    assert not clock.is_in_context
    # The companion is registered after the failing processor, so it was never started.
    assert journal == ["start good", "stop good"]
    assert not good.state.is_active and not companion.state.is_active


async def test_failing_enter_stops_a_companion_started_before_the_failure(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest()

    class WontStart(Recorder):
        def start(self, timestamp: float) -> None:
            raise OSError("no port")

    bad = WontStart("bad", journal)
    companion = Recorder("companion", journal)
    # good starts, registers the companion; the next pass starts it... but bad fails first in
    # this pass, so make the companion come before bad by adding bad from the companion.
    good = Recorder("good", journal, on_start=lambda: clock.add_processor(companion))
    companion.on_start = lambda: clock.add_processor(bad)
    clock.add_processor(good)
    with pytest.raises(ClockError, match="Failed to start processor"):
        async with clock:
            pytest.fail("the body must not run")
    assert journal[:2] == ["start good", "start companion"]
    assert sorted(journal[2:]) == ["stop companion", "stop good"]


async def test_failing_enter_stops_a_network_processor_and_awaits_its_cleanup(
    fake_clock: FakeClock,
) -> None:
    class WontStart(TickProcessor):
        def start(self, timestamp: float) -> None:
            raise OSError("no port")

    clock = backtest()
    net = Net()
    clock.add_processor(net)
    # A status listener registers the failing processor as the network processor starts.
    net.add_status_listener(
        lambda old, new: clock.add_processor(WontStart())
        if new is NetworkStatus.NOT_CONNECTED
        else None
    )
    with pytest.raises(ClockError, match="Failed to start processor"):
        async with clock:
            pytest.fail("the body must not run")
    assert net.network_status is NetworkStatus.STOPPED
    assert not net.check_loop_active
    await fake_clock.advance(60.0)
    assert net.hooks in ([], ["start_network", "stop_network"])


async def test_status_listener_removing_its_processor_on_stopped_is_safe(
    fake_clock: FakeClock,
) -> None:
    clock = backtest(end_time=30.0)
    nets = [Net(f"n{index}") for index in range(4)]
    for net in nets:
        clock.add_processor(net)

        def leave(old: NetworkStatus, new: NetworkStatus, net: Net = net) -> None:
            if new is NetworkStatus.STOPPED and net in clock.processors:
                clock.remove_processor(net)

        net.add_status_listener(leave)
    async with clock:
        await fake_clock.advance(1.0)
        assert all(net.network_status is NetworkStatus.CONNECTED for net in nets)
        await clock.run()
    assert all(net.network_status is NetworkStatus.STOPPED for net in nets)
    assert not any(net.check_loop_active for net in nets)
    assert [net.hooks for net in nets] == [["start_network", "stop_network"]] * 4
    assert clock.processors == []
    await fake_clock.advance(60.0)
    assert [net.hooks for net in nets] == [["start_network", "stop_network"]] * 4


async def test_status_listener_adding_a_companion_on_start_is_safe(fake_clock: FakeClock) -> None:
    clock = backtest(end_time=30.0)
    net = Net("main")
    companion = Net("companion")
    clock.add_processor(net)
    net.add_status_listener(
        lambda old, new: clock.add_processor(companion)
        if new is NetworkStatus.NOT_CONNECTED and companion not in clock.processors
        else None
    )
    async with clock:
        await fake_clock.advance(1.0)
        assert companion.network_status is NetworkStatus.CONNECTED
        await clock.run()
    assert net.network_status is NetworkStatus.STOPPED
    assert companion.network_status is NetworkStatus.STOPPED
    assert companion.hooks == ["start_network", "stop_network"]


async def test_a_tick_that_adds_and_removes_processors_keeps_the_pairing(
    fake_clock: FakeClock,
) -> None:
    journal: list[str] = []
    clock = backtest(end_time=4.0)
    spawned: list[Recorder] = []

    class Churn(Recorder):
        def tick(self, timestamp: float) -> None:
            super().tick(timestamp)
            if spawned:
                clock.remove_processor(spawned.pop())
            new = Recorder(f"s{timestamp:g}", journal)
            spawned.append(new)
            clock.add_processor(new)

    clock.add_processor(Churn("churn", journal))
    async with clock:
        await clock.run()
    started_equals_stopped(journal)
    assert journal.count("start churn") == 1
    assert len([line for line in journal if line.startswith("start s")]) == 4
