"""chronopype_testing: virtual asyncio time and fakes for testing chronopype processors.

Needs the ``testing`` extra: ``pip install 'chronopype[testing]'``. The package itself
imports without it (its pytest plugin must never break a user's run); each public name
is loaded on first use and says what to install when a dependency is missing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chronopype_testing._fakes import (
        FakeNetworkProcessor,
        HookFault,
        Step,
    )
    from chronopype_testing._fixtures import (
        FakeNetworkProcessorFactory,
        ManagedProcessorFactory,
        TransitionRecorderFactory,
    )
    from chronopype_testing._loop import (
        DEFAULT_MAX_ELAPSED,
        DEFAULT_START,
        FakeClock,
        VirtualTimeDeadlock,
        VirtualTimeLimitExceeded,
    )
    from chronopype_testing._proxy import OutageProxy, ProxiedConnection, ProxyEvent
    from chronopype_testing._proxy_faults import Fault, FaultWindow
    from chronopype_testing._recorder import (
        Transition,
        TransitionRecorder,
        assert_backoff_schedule,
    )

# public name -> private module that defines it
_EXPORTS = {
    "DEFAULT_MAX_ELAPSED": "chronopype_testing._loop",
    "DEFAULT_START": "chronopype_testing._loop",
    "FakeClock": "chronopype_testing._loop",
    "VirtualTimeDeadlock": "chronopype_testing._loop",
    "VirtualTimeLimitExceeded": "chronopype_testing._loop",
    "FakeNetworkProcessor": "chronopype_testing._fakes",
    "Step": "chronopype_testing._fakes",
    "HookFault": "chronopype_testing._fakes",
    "FakeNetworkProcessorFactory": "chronopype_testing._fixtures",
    "ManagedProcessorFactory": "chronopype_testing._fixtures",
    "TransitionRecorderFactory": "chronopype_testing._fixtures",
    "Transition": "chronopype_testing._recorder",
    "Fault": "chronopype_testing._proxy_faults",
    "FaultWindow": "chronopype_testing._proxy_faults",
    "OutageProxy": "chronopype_testing._proxy",
    "ProxiedConnection": "chronopype_testing._proxy",
    "ProxyEvent": "chronopype_testing._proxy",
    "TransitionRecorder": "chronopype_testing._recorder",
    "assert_backoff_schedule": "chronopype_testing._recorder",
}

__all__ = [
    "DEFAULT_MAX_ELAPSED",
    "DEFAULT_START",
    "FakeClock",
    "FakeNetworkProcessor",
    "FakeNetworkProcessorFactory",
    "Fault",
    "FaultWindow",
    "HookFault",
    "ManagedProcessorFactory",
    "OutageProxy",
    "ProxiedConnection",
    "ProxyEvent",
    "Step",
    "Transition",
    "TransitionRecorder",
    "TransitionRecorderFactory",
    "VirtualTimeDeadlock",
    "VirtualTimeLimitExceeded",
    "assert_backoff_schedule",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'chronopype_testing' has no attribute {name!r}")
    try:
        value = getattr(import_module(module_name), name)
    except ImportError as exc:
        raise ImportError(
            f"chronopype_testing.{name} needs the testing extra "
            f"(pip install 'chronopype[testing]'): {exc}"
        ) from exc
    globals()[name] = value
    return value
