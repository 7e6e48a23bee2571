import math
import statistics
from datetime import datetime

import pytest

from chronopype import ProcessorState


def test_defaults() -> None:
    state = ProcessorState()
    assert state.last_timestamp is None  # as in 0.8.3: not set until started or ticked
    assert state.is_active is False
    assert state.retry_count == 0
    assert state.max_consecutive_retries == 0
    assert state.error_count == 0
    assert state.consecutive_errors == 0
    assert state.last_error is None
    assert state.last_exception is None
    assert state.last_error_time is None
    assert state.last_error_timestamp is None
    assert state.last_success_time is None
    assert state.last_success_timestamp is None
    assert state.stats_window_size == 100
    assert (state.total_count, state.successful_count, state.failed_count) == (0, 0, 0)
    assert state.error_rate == 0.0
    assert state.error_fraction == 0.0
    assert state.avg_execution_time == 0.0
    assert state.max_execution_time == 0.0
    assert state.std_execution_time == 0.0
    assert state.percentile(50) == 0.0


@pytest.mark.parametrize("bad", [True, False, 1.0, "3", None])
def test_window_size_type_is_checked(bad: object) -> None:
    with pytest.raises(TypeError, match="stats_window_size must be an int >= 1"):
        ProcessorState(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1])
def test_window_size_range_is_checked(bad: int) -> None:
    with pytest.raises(ValueError, match=f"stats_window_size must be an int >= 1, got {bad}"):
        ProcessorState(bad)


def test_max_consecutive_retries_is_validated() -> None:
    assert ProcessorState(max_consecutive_retries=2).max_consecutive_retries == 2
    with pytest.raises(TypeError, match="max_consecutive_retries"):
        ProcessorState(max_consecutive_retries=True)
    with pytest.raises(ValueError, match="max_consecutive_retries"):
        ProcessorState(max_consecutive_retries=-1)


def test_statistics_cover_only_the_window_but_counters_do_not() -> None:
    state = ProcessorState(4)
    for seconds in [9.0, 1.0, 2.0, 3.0, 4.0, 10.0]:
        state.record_execution(seconds, timestamp=seconds * 100)
    window = [2.0, 3.0, 4.0, 10.0]
    assert list(state.execution_times) == window
    assert state.successful_count == 6
    assert state.total_count == 6
    assert state.avg_execution_time == pytest.approx(statistics.fmean(window))
    assert state.max_execution_time == 10.0
    assert state.std_execution_time == pytest.approx(statistics.pstdev(window))
    assert state.std_dev_execution_time == pytest.approx(statistics.stdev(window))
    assert state.last_success_timestamp == 1000.0
    assert state.last_success_time == datetime.fromtimestamp(1000.0)


def test_percentile_interpolates_linearly() -> None:
    state = ProcessorState()
    for seconds in [4.0, 1.0, 3.0, 2.0]:
        state.record_execution(seconds)
    assert state.percentile(0) == 1.0
    assert state.percentile(100) == 4.0
    assert state.percentile(50) == pytest.approx(2.5)
    assert state.percentile(25) == pytest.approx(1.75)
    single = ProcessorState()
    single.record_execution(0.5)
    assert single.percentile(99) == 0.5
    assert single.std_execution_time == 0.0


@pytest.mark.parametrize("bad", [-0.1, 100.1, math.nan])
def test_percentile_range_is_checked(bad: float) -> None:
    with pytest.raises(ValueError, match="percentile must be in"):
        ProcessorState().percentile(bad)


def test_percentile_type_is_checked() -> None:
    with pytest.raises(TypeError, match="percentile"):
        ProcessorState().percentile(True)


def test_errors_count_and_reset_on_success() -> None:
    state = ProcessorState()
    first, second = ValueError("a"), OSError("b")
    state.record_error(first, 10.0)
    state.record_error(second, 11.0)
    assert state.error_count == 2
    assert state.consecutive_errors == 2
    assert state.last_exception is second
    assert state.last_error == "b"
    assert state.last_error_timestamp == 11.0
    assert state.last_error_time == datetime.fromtimestamp(11.0)
    state.record_execution(0.25)
    assert state.consecutive_errors == 0
    assert state.error_count == 2
    assert state.failed_count == 2
    assert state.total_count == 3
    assert state.error_fraction == pytest.approx(2 / 3)
    assert state.error_rate == pytest.approx(200 / 3)  # a percentage, as in 0.8.3
    assert state.last_exception is second


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        (-1.0, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_execution_time_is_validated(bad: object, exc: type[Exception]) -> None:
    state = ProcessorState()
    with pytest.raises(exc, match="execution time"):
        state.record_execution(bad)  # type: ignore[arg-type]
    assert state.successful_count == 0


def test_execution_times_are_kept_exactly() -> None:
    state = ProcessorState()
    for seconds in (0.1, 0.2, 0.3, 1e300):
        state.record_execution(seconds)
    assert list(state.execution_times) == [0.1, 0.2, 0.3, 1e300]
    assert state.max_execution_time == 1e300


def test_record_error_rejects_non_exceptions() -> None:
    with pytest.raises(TypeError, match="exc must be an exception"):
        ProcessorState().record_error("boom", 1.0)  # type: ignore[arg-type]


def test_state_has_no_instance_dict() -> None:
    state = ProcessorState()
    with pytest.raises(AttributeError):
        state.typo_field = 1  # type: ignore[attr-defined]


def test_memory_stays_bounded_over_many_records() -> None:
    state = ProcessorState(10)
    for i in range(10_000):
        state.record_execution(i / 1000)
    assert len(state.execution_times) == 10
    assert state.successful_count == 10_000
    assert state.max_execution_time == 9.999


# -- chronopype 0.8.3's names, types and copy-style API ---------------------------------------


def test_0_8_3_constructor_fields_are_accepted() -> None:
    when = datetime(2024, 5, 1, 12, 30, 15, 250_000)
    state = ProcessorState(
        last_timestamp=1000.0,
        is_active=True,
        retry_count=2,
        error_count=1,
        consecutive_errors=1,
        max_consecutive_retries=2,
        last_error="Test error",
        last_error_time=when,
        last_success_time=when,
        execution_times=[0.1, 0.2],
    )
    assert state.last_timestamp == 1000.0
    assert state.is_active
    assert (state.retry_count, state.max_consecutive_retries) == (2, 2)
    assert state.last_error == "Test error"
    assert state.last_exception is None
    assert state.last_error_time == when
    assert state.last_success_timestamp == when.timestamp()
    assert state.successful_ticks == 2
    assert state.total_ticks == 3
    assert state.failed_ticks == 1


def test_retry_count_raises_its_high_water_mark() -> None:
    state = ProcessorState()
    assert state.update_retry_count(1) is state
    state.retry_count += 2
    assert (state.retry_count, state.max_consecutive_retries) == (3, 3)
    assert state.reset_retries() is state
    assert (state.retry_count, state.max_consecutive_retries) == (0, 3)
    state.retry_count = 1
    assert state.max_consecutive_retries == 3


def test_copy_style_methods_update_and_return_the_state() -> None:
    state = ProcessorState()
    assert state.record_error(Exception("test1"), 1000.0) is state
    state = state.record_error(Exception("test2"), 2000.0)
    assert (state.error_count, state.consecutive_errors, state.last_error) == (2, 2, "test2")
    state = state.update_execution_time(0.1, 100)
    assert state.consecutive_errors == 0
    assert state.last_success_time is not None
    state = state.update_execution_time(0.3, 1)  # the window shrinks to the newest entry
    assert list(state.execution_times) == [0.3]
    assert state.stats_window_size == 1
    assert state.successful_ticks == 2


def test_model_copy_is_independent_and_applies_updates() -> None:
    state = ProcessorState(last_timestamp=1000.0, execution_times=[0.1])
    state.record_error(ValueError("boom"), 1000.0)
    copy = state.model_copy(update={"last_timestamp": 2000.0, "is_active": True})
    assert (copy.last_timestamp, copy.is_active) == (2000.0, True)
    assert (state.last_timestamp, state.is_active) == (1000.0, False)
    assert copy.last_exception is state.last_exception
    assert copy.error_count == 1 and copy.successful_count == 1
    copy.record_execution(0.2)
    assert len(state.execution_times) == 1 and len(copy.execution_times) == 2
    with pytest.raises(ValueError, match="no field 'typo'"):
        state.model_copy(update={"typo": 1})


def test_last_error_accepts_a_message_or_an_exception_only() -> None:
    state = ProcessorState()
    error = KeyError("k")
    state.last_error = error
    assert state.last_exception is error and state.last_error == "'k'"
    state.last_error = "plain"
    assert state.last_exception is None and state.last_error == "plain"
    with pytest.raises(TypeError, match="last_error"):
        state.last_error = 3  # type: ignore[assignment]
    with pytest.raises(TypeError, match="last_error_time"):
        ProcessorState(last_error_time="yesterday")  # type: ignore[arg-type]


def test_percentile_by_its_0_8_3_name() -> None:
    state = ProcessorState(execution_times=[0.5, 0.1, 0.4, 0.2, 0.3])
    assert state.get_execution_percentile(25) == state.percentile(25)
    assert state.total_execution_time == pytest.approx(1.5, abs=1e-6)
