import asyncio

import pytest

from chronopype import ProcessorState, TickProcessor


def test_lifecycle_sets_active_and_timestamp() -> None:
    processor = TickProcessor()
    assert isinstance(processor.state, ProcessorState)
    assert processor.state.is_active is False
    processor.start(1_700_000_000.0)
    assert processor.state.is_active is True
    assert processor.current_timestamp == 1_700_000_000.0
    processor.pause()
    processor.resume()
    assert processor.state.is_active is True
    processor.stop()
    assert processor.state.is_active is False
    processor.stop()
    assert processor.state.is_active is False


def test_window_size_is_passed_to_state() -> None:
    assert TickProcessor(7).state.stats_window_size == 7
    with pytest.raises(TypeError, match="stats_window_size"):
        TickProcessor(True)
    with pytest.raises(ValueError, match="stats_window_size"):
        TickProcessor(0)


def test_async_tick_calls_tick() -> None:
    seen: list[float] = []

    class Recorder(TickProcessor):
        def tick(self, timestamp: float) -> None:
            seen.append(timestamp)

    processor = Recorder()
    asyncio.run(processor.async_tick(42.0))
    assert seen == [42.0]


def test_base_tick_is_a_no_op() -> None:
    processor = TickProcessor()
    processor.tick(5.0)
    asyncio.run(processor.async_tick(6.0))
    assert processor.state.total_count == 0


def test_record_execution_stamps_current_timestamp() -> None:
    processor = TickProcessor()
    processor.start(100.0)
    processor.record_execution(0.5)
    assert processor.state.last_success_timestamp == 100.0
    assert processor.state.successful_count == 1
    error = RuntimeError("x")
    processor.record_error(error, 101.0)
    assert processor.state.last_exception is error
    assert processor.state.last_error_timestamp == 101.0
    assert processor.state.consecutive_errors == 1


async def test_pause_and_resume_toggle_is_active_as_in_0_8_3() -> None:
    from chronopype.clocks import BacktestClock, ClockConfig, ClockMode

    clock = BacktestClock(ClockConfig(ClockMode.BACKTEST, end_time=3.0))
    processor = TickProcessor()
    clock.add_processor(processor)
    async with clock:
        assert processor.state.is_active
        clock.pause_processor(processor)
        assert not processor.state.is_active
        await clock.step()
        clock.resume_processor(processor)
        assert processor.state.is_active
        await clock.step()
    assert not processor.state.is_active
    assert processor.state.successful_count == 1  # not ticked while paused
