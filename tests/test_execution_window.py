"""ExecutionWindow: the compact latency window behaves like the deque(maxlen=n) it replaced,
holding each value exactly (C doubles)."""

from __future__ import annotations

import math
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronopype.processors.state import ExecutionWindow, ProcessorState

seconds = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(maxlen=st.integers(1, 8), values=st.lists(seconds, max_size=40))
def test_appending_matches_a_bounded_deque(maxlen: int, values: list[float]) -> None:
    window = ExecutionWindow(maxlen=maxlen)
    reference: deque[float] = deque(maxlen=maxlen)
    for value in values:
        window.append(value)
        reference.append(value)
        assert list(window) == list(reference)
        assert len(window) == len(reference)
        assert bool(window) == bool(reference)
        assert [window[i] for i in range(-len(reference), len(reference))] == [
            reference[i] for i in range(-len(reference), len(reference))
        ]
        assert list(reversed(window)) == list(reversed(reference))
        assert window[1:-1] == list(reference)[1:-1]


def test_index_out_of_range_raises_index_error() -> None:
    window = ExecutionWindow([1.0, 2.0], maxlen=3)
    with pytest.raises(IndexError, match="ExecutionWindow index out of range"):
        window[2]
    with pytest.raises(IndexError):
        window[-3]
    with pytest.raises(IndexError):
        ExecutionWindow(maxlen=1)[0]


def test_extend_clear_repr_and_equality() -> None:
    window = ExecutionWindow([0.5], maxlen=3)
    window.extend([1.0, 2.0, 3.0])
    assert repr(window) == "ExecutionWindow([1.0, 2.0, 3.0], maxlen=3)"
    assert window == ExecutionWindow([1.0, 2.0, 3.0], maxlen=3)
    assert window != ExecutionWindow([1.0, 2.0, 3.0], maxlen=4)
    assert window == [1.0, 2.0, 3.0]  # as 0.8.3's list did
    assert window != [1.0, 2.0]
    assert window != (1.0, 2.0, 3.0)  # other sequences: like a deque, never equal
    assert 2.0 in window and 0.5 not in window
    window.clear()
    assert list(window) == [] and window.maxlen == 3
    window.append(7.0)
    assert list(window) == [7.0]


def test_window_is_unhashable_like_a_deque() -> None:
    with pytest.raises(TypeError):
        hash(ExecutionWindow(maxlen=1))


@pytest.mark.parametrize("bad", [0, -1])
def test_maxlen_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match=f"maxlen must be an int >= 1, got {bad}"):
        ExecutionWindow(maxlen=bad)


def test_maxlen_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="maxlen must be an int >= 1"):
        ExecutionWindow(maxlen=2.0)  # type: ignore[arg-type]


def test_state_statistics_read_the_window_oldest_first() -> None:
    state = ProcessorState(3)
    for value in (9.0, 1.0, 2.0, 3.0):  # 9.0 falls out
        state.record_execution(value)
    assert list(state.execution_times) == [1.0, 2.0, 3.0]
    assert state.avg_execution_time == 2.0
    assert state.max_execution_time == 3.0
    assert state.percentile(0) == 1.0 and state.percentile(100) == 3.0
    assert math.isclose(state.std_execution_time, math.sqrt(2 / 3))
    assert state.successful_count == 4


def test_assigning_a_deque_resizes_the_window_keeping_the_newest() -> None:
    """What the clocks do to apply ClockConfig.stats_window_size to a registered processor."""
    state = ProcessorState(5)
    for value in range(8):
        state.record_execution(float(value))
    state.execution_times = deque(state.execution_times, maxlen=2)
    assert isinstance(state.execution_times, ExecutionWindow)
    assert list(state.execution_times) == [6.0, 7.0]
    assert state.stats_window_size == 2
    state.record_execution(8.0)
    assert list(state.execution_times) == [7.0, 8.0]


def test_assigning_values_without_maxlen_keeps_the_window_size() -> None:
    state = ProcessorState(2)
    state.execution_times = [1.0, 2.0, 3.0]
    assert list(state.execution_times) == [2.0, 3.0]
    assert state.stats_window_size == 2


@pytest.mark.parametrize(
    ("bad", "error"), [(-1.0, ValueError), (math.nan, ValueError), ("1", TypeError)]
)
def test_assigned_values_are_validated_like_recorded_ones(bad: object, error: type) -> None:
    state = ProcessorState(2)
    state.record_execution(1.0)
    with pytest.raises(error, match="execution time must be"):
        state.execution_times = [0.5, bad]  # type: ignore[list-item]
    assert list(state.execution_times) == [1.0]  # unchanged


def test_values_read_back_exactly() -> None:
    window = ExecutionWindow([0.3, 1e-3, 12.345678, 1e300], maxlen=4)
    assert list(window) == [0.3, 1e-3, 12.345678, 1e300]
    assert window._values.itemsize == 8  # C doubles


def test_storage_grows_to_maxlen_and_never_beyond() -> None:
    window = ExecutionWindow(maxlen=50)
    storage = window._values
    assert len(storage) == 0  # nothing allocated before the first value
    window.extend([0.5, 0.25])
    assert len(storage) == 2
    for value in range(175):
        window.append(float(value))
    assert window._values is storage and len(storage) == 50
    full = storage.buffer_info()
    window.clear()
    window.extend([1.0, 2.0])
    assert window._values is storage and storage.buffer_info() == full
    assert list(window) == [1.0, 2.0]
