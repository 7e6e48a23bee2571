"""0.8.3's import path for :class:`ProcessorState` (defined in
:mod:`chronopype.processors.state`)."""

from chronopype.processors.state import ProcessorState

__all__ = ["ProcessorState"]
