"""chronopype_testing: virtual asyncio time and fakes for testing chronopype processors.

Needs the ``testing`` extra: ``pip install 'chronopype[testing]'``.
"""

from chronopype_testing._loop import DEFAULT_START, FakeClock, VirtualTimeDeadlock

__all__ = ["DEFAULT_START", "FakeClock", "VirtualTimeDeadlock"]
