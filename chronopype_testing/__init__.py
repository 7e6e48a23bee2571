"""chronopype_testing: virtual asyncio time and fakes for testing chronopype processors.

Needs the ``testing`` extra: ``pip install 'chronopype[testing]'``.
"""

from chronopype_testing._fakes import BackoffWait, CheckRecord, FakeNetworkProcessor, Step
from chronopype_testing._loop import DEFAULT_START, FakeClock, VirtualTimeDeadlock
from chronopype_testing._recorder import Transition, TransitionRecorder, assert_backoff_schedule

__all__ = [
    "DEFAULT_START",
    "BackoffWait",
    "CheckRecord",
    "FakeClock",
    "FakeNetworkProcessor",
    "Step",
    "Transition",
    "TransitionRecorder",
    "VirtualTimeDeadlock",
    "assert_backoff_schedule",
]
