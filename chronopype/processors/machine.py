"""The NetworkProcessor's state machine: every status, every legal change, every decision.

Everything that decides a ``NetworkProcessor``'s status lives in this module, as data; the
processor (``chronopype.processors.network``) only runs checks and hooks and carries out
what the tables here say. Standard library only, no asyncio: the tables are tested without
an event loop.

Statuses
--------
``STOPPED`` (not started, or stopped), ``NOT_CONNECTED`` and ``ERROR`` (between attempts,
after a failure), ``CONNECTING`` (a check runs, or ``start_network()``, from a status other
than CONNECTED), ``CONNECTED``, ``DISCONNECTING`` (tearing a connection down:
``on_disconnected()`` and ``stop_network()``).

Legal transitions (``LEGAL_TRANSITIONS``, each with its cause in ``TRANSITION_CAUSES``)
-------------------------------------------------------------------------------------
- ``STOPPED -> NOT_CONNECTED``: ``start()``.
- ``NOT_CONNECTED | ERROR -> CONNECTING``: an attempt begins (``attempt_status``).
- ``CONNECTING -> CONNECTED``: the check said CONNECTED and ``start_network()`` succeeded.
- ``CONNECTING -> NOT_CONNECTED | ERROR``: the attempt failed (``decide``), or ``pause()``
  interrupted it and restored the status it began from (``status_after_pause``).
- ``CONNECTED -> DISCONNECTING``: a check from CONNECTED failed; the teardown begins.
- ``DISCONNECTING -> NOT_CONNECTED | ERROR``: the teardown ended (or ``pause()`` cut it
  short) and the status settles where ``decide`` said.
- any status but STOPPED ``-> STOPPED``: ``stop()``.

Nothing else. In particular ``NOT_CONNECTED -> ERROR`` and ``CONNECTED -> ERROR`` are
illegal: a status is settled once per attempt. A defect of the processor itself (say an
overridden ``backoff_delay()`` raising) is caught before the status settles, and the attempt
then settles on ``defect_status(status)``: ERROR where that is legal, else the status stays
(see ``defect_status``). ``NetworkProcessor._set_status`` refuses any change not in the
table: it logs it and records a ``ProcessorDefect`` of kind ``"illegal_transition"``.

An attempt
----------
One attempt is: begin (``attempt_status``: CONNECTED stays, anything else becomes
CONNECTING), run the check, classify what happened as an ``AttemptOutcome``, and carry out
``decide(status, outcome)``, a ``Decision`` read from ``DECISIONS``:

==========================  ====================  ==========  =======  ========================
outcome                     from CONNECTING       from        wait     retries
                                                  CONNECTED
==========================  ====================  ==========  =======  ========================
CONNECTED                   start_network(),      stays       INTERVAL reset to 0
                            CONNECTED
NOT_CONNECTED, TIMED_OUT    NOT_CONNECTED         via DISC.   BACKOFF  +1
ERROR_RETURNED              ERROR                 via DISC.   BACKOFF  +1
RAISED (or a bad value)     ERROR                 via DISC.   ERROR_   +1
                                                              WAIT
START_NETWORK_FAILED        stop_network(), ERROR  (never)    ERROR_   +1
                                                              WAIT
==========================  ====================  ==========  =======  ========================

"via DISC." means CONNECTED -> DISCONNECTING, ``on_disconnected()``, ``stop_network()``,
then the settle status. START_NETWORK_FAILED is the outcome of carrying out the CONNECTED
decision from CONNECTING when ``start_network()`` raised or ran over ``hook_timeout``; the
processor then decides again with it. The wait (``WaitKind``) is measured from the end of
the attempt: INTERVAL is ``check_network_interval``, BACKOFF is
``backoff_delay(retry_count)`` (after the retry count grew), ERROR_WAIT is
``network_error_wait_time``.

``pause()`` interrupts an attempt; ``status_after_pause`` restores the status it began from
(CONNECTING) or the status its teardown was heading for (DISCONNECTING).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

__all__ = [
    "DECISIONS",
    "LEGAL_TRANSITIONS",
    "TRANSITION_CAUSES",
    "AttemptOutcome",
    "Decision",
    "NetworkStatus",
    "WaitKind",
    "attempt_status",
    "decide",
    "defect_status",
    "is_legal",
    "legal_next",
    "status_after_pause",
]


class NetworkStatus(Enum):
    STOPPED = 0
    NOT_CONNECTED = 1
    CONNECTING = 2
    CONNECTED = 3
    DISCONNECTING = 4
    ERROR = 5


class AttemptOutcome(Enum):
    """What one attempt's check (or, after it, ``start_network()``) came to."""

    CONNECTED = "check returned CONNECTED"
    NOT_CONNECTED = "check returned NOT_CONNECTED"
    ERROR_RETURNED = "check returned ERROR"
    TIMED_OUT = "check ran over check_network_timeout"
    RAISED = "check raised, or returned something else"
    START_NETWORK_FAILED = "start_network() raised or ran over hook_timeout"


class WaitKind(Enum):
    """Which wait follows an attempt."""

    INTERVAL = "check_network_interval"
    BACKOFF = "backoff_delay(retry_count)"
    ERROR_WAIT = "network_error_wait_time"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the processor does after an attempt's outcome, in this order:

    ``start_network`` first (then CONNECTED and ``on_connected()``); ``disconnect``
    (CONNECTED -> DISCONNECTING, ``on_disconnected()``); ``release_network`` (the
    ``stop_network()`` paired with the last ``start_network()``); then the status settles on
    ``settle_status`` and the ``wait_kind`` wait begins. ``reset_retries``: the retry count
    becomes 0 when True, else it grows by one."""

    settle_status: NetworkStatus
    wait_kind: WaitKind
    reset_retries: bool
    start_network: bool = False
    disconnect: bool = False
    release_network: bool = False


_S = NetworkStatus
_O = AttemptOutcome


def _pairs(
    table: dict[NetworkStatus, tuple[NetworkStatus, ...]],
) -> frozenset[tuple[NetworkStatus, NetworkStatus]]:
    return frozenset((old, new) for old, news in table.items() for new in news)


#: Every status change a NetworkProcessor may make, as (old, new) pairs.
LEGAL_TRANSITIONS: Final[frozenset[tuple[NetworkStatus, NetworkStatus]]] = _pairs(
    {
        _S.STOPPED: (_S.NOT_CONNECTED,),
        _S.NOT_CONNECTED: (_S.CONNECTING, _S.STOPPED),
        _S.ERROR: (_S.CONNECTING, _S.STOPPED),
        _S.CONNECTING: (_S.CONNECTED, _S.NOT_CONNECTED, _S.ERROR, _S.STOPPED),
        _S.CONNECTED: (_S.DISCONNECTING, _S.STOPPED),
        _S.DISCONNECTING: (_S.NOT_CONNECTED, _S.ERROR, _S.STOPPED),
    }
)

#: Why each legal transition happens (one line each; the README's table is checked against it).
TRANSITION_CAUSES: Final[MappingProxyType[tuple[NetworkStatus, NetworkStatus], str]] = (
    MappingProxyType(
        {
            (_S.STOPPED, _S.NOT_CONNECTED): "start()",
            (_S.NOT_CONNECTED, _S.CONNECTING): "an attempt begins",
            (_S.ERROR, _S.CONNECTING): "an attempt begins",
            (_S.CONNECTING, _S.CONNECTED): "check said CONNECTED, start_network() done",
            (_S.CONNECTING, _S.NOT_CONNECTED): "NOT_CONNECTED or timeout; pause() restores",
            (_S.CONNECTING, _S.ERROR): (
                "ERROR returned, raised, bad value, start_network() failed; pause() restores"
            ),
            (_S.CONNECTED, _S.DISCONNECTING): "a check from CONNECTED failed",
            (_S.DISCONNECTING, _S.NOT_CONNECTED): "teardown done after NOT_CONNECTED or timeout",
            (_S.DISCONNECTING, _S.ERROR): "teardown done after ERROR returned or raised",
            (_S.NOT_CONNECTED, _S.STOPPED): "stop()",
            (_S.ERROR, _S.STOPPED): "stop()",
            (_S.CONNECTING, _S.STOPPED): "stop()",
            (_S.CONNECTED, _S.STOPPED): "stop()",
            (_S.DISCONNECTING, _S.STOPPED): "stop()",
        }
    )
)


# The same, keyed by the members' values: Enum.__hash__ is written in Python, and the
# processor asks on every status change.
_LEGAL_VALUES: Final = frozenset((old._value_, new._value_) for old, new in LEGAL_TRANSITIONS)


def is_legal(old: NetworkStatus, new: NetworkStatus) -> bool:
    """Whether ``old -> new`` is in ``LEGAL_TRANSITIONS``."""
    return (old._value_, new._value_) in _LEGAL_VALUES


def legal_next(old: NetworkStatus) -> frozenset[NetworkStatus]:
    """The statuses ``old`` may change to."""
    return frozenset(new for was, new in LEGAL_TRANSITIONS if was is old)


def _failure(settle: NetworkStatus, wait: WaitKind, *, from_connected: bool) -> Decision:
    return Decision(
        settle,
        wait,
        reset_retries=False,
        disconnect=from_connected,
        release_network=from_connected,
    )


#: ``decide``'s table: (the status while the check ran, outcome) -> Decision.
DECISIONS: Final[MappingProxyType[tuple[NetworkStatus, AttemptOutcome], Decision]] = (
    MappingProxyType(
        {
            (_S.CONNECTING, _O.CONNECTED): Decision(
                _S.CONNECTED, WaitKind.INTERVAL, reset_retries=True, start_network=True
            ),
            (_S.CONNECTED, _O.CONNECTED): Decision(
                _S.CONNECTED, WaitKind.INTERVAL, reset_retries=True
            ),
            **{
                (status, outcome): _failure(settle, wait, from_connected=status is _S.CONNECTED)
                for status in (_S.CONNECTING, _S.CONNECTED)
                for outcome, settle, wait in (
                    (_O.NOT_CONNECTED, _S.NOT_CONNECTED, WaitKind.BACKOFF),
                    (_O.TIMED_OUT, _S.NOT_CONNECTED, WaitKind.BACKOFF),
                    (_O.ERROR_RETURNED, _S.ERROR, WaitKind.BACKOFF),
                    (_O.RAISED, _S.ERROR, WaitKind.ERROR_WAIT),
                )
            },
            (_S.CONNECTING, _O.START_NETWORK_FAILED): Decision(
                _S.ERROR, WaitKind.ERROR_WAIT, reset_retries=False, release_network=True
            ),
        }
    )
)


# decide()'s table keyed by the members' values (see _LEGAL_VALUES): it runs once per check.
_DECISIONS_BY_VALUE: Final = {
    (status._value_, outcome._value_): decision for (status, outcome), decision in DECISIONS.items()
}


def attempt_status(status: NetworkStatus) -> NetworkStatus:
    """The status while an attempt's check runs, when it begins from ``status``."""
    if status is _S.CONNECTED:
        return status
    if status is _S.NOT_CONNECTED or status is _S.ERROR:
        return _S.CONNECTING
    raise ValueError(f"an attempt cannot begin from {status.name}")


def decide(status: NetworkStatus, outcome: AttemptOutcome) -> Decision:
    """What follows ``outcome`` of an attempt whose check ran while the status was
    ``status`` (CONNECTING or CONNECTED). ValueError for any other pair."""
    try:
        return _DECISIONS_BY_VALUE[status._value_, outcome._value_]
    except KeyError:
        raise ValueError(f"no decision for {outcome.name} from {status.name}") from None


def status_after_pause(status: NetworkStatus, restore: NetworkStatus) -> NetworkStatus:
    """Where ``pause()`` leaves ``status``: an interrupted attempt (CONNECTING or
    DISCONNECTING) goes to ``restore``, the status it began from or was heading for."""
    if status is _S.CONNECTING or status is _S.DISCONNECTING:
        return restore
    return status


def defect_status(status: NetworkStatus) -> NetworkStatus:
    """Where an attempt settles after a defect of the processor itself: ERROR if that is a
    legal change from ``status``, else ``status`` (the error wait follows either way)."""
    return _S.ERROR if is_legal(status, _S.ERROR) else status
