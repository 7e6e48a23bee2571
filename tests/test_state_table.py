"""chronopype.processors.machine on its own: the tables and the decision, no event loop."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
from pathlib import Path

import pytest

import chronopype
import chronopype_testing
from chronopype import processors
from chronopype.processors import machine
from chronopype.processors.machine import (
    DECISIONS,
    LEGAL_TRANSITIONS,
    TRANSITION_CAUSES,
    AttemptOutcome,
    Decision,
    NetworkStatus,
    WaitKind,
    attempt_status,
    decide,
    defect_status,
    is_legal,
    legal_next,
    status_after_pause,
)

S = NetworkStatus
OUT = AttemptOutcome
README = Path(__file__).resolve().parent.parent / "README.md"


def test_legal_transitions_are_exactly_the_pinned_edges() -> None:
    expected = {
        (S.STOPPED, S.NOT_CONNECTED),
        (S.NOT_CONNECTED, S.CONNECTING),
        (S.ERROR, S.CONNECTING),
        (S.CONNECTING, S.CONNECTED),
        (S.CONNECTING, S.NOT_CONNECTED),
        (S.CONNECTING, S.ERROR),
        (S.CONNECTED, S.DISCONNECTING),
        (S.DISCONNECTING, S.NOT_CONNECTED),
        (S.DISCONNECTING, S.ERROR),
    } | {(status, S.STOPPED) for status in S if status is not S.STOPPED}
    assert expected == LEGAL_TRANSITIONS
    assert isinstance(LEGAL_TRANSITIONS, frozenset)
    assert not any(old is new for old, new in LEGAL_TRANSITIONS)
    # The defect path never needs these: a status settles once per attempt.
    assert not is_legal(S.NOT_CONNECTED, S.ERROR)
    assert not is_legal(S.CONNECTED, S.ERROR)
    assert not is_legal(S.STOPPED, S.STOPPED)


def test_every_status_is_reachable_and_left() -> None:
    assert {new for _, new in LEGAL_TRANSITIONS} == set(S)
    for status in S:
        assert legal_next(status), status
    assert legal_next(S.STOPPED) == {S.NOT_CONNECTED}
    assert legal_next(S.CONNECTED) == {S.DISCONNECTING, S.STOPPED}


def test_every_legal_transition_has_a_cause_and_only_those() -> None:
    assert set(TRANSITION_CAUSES) == LEGAL_TRANSITIONS
    assert all(cause.strip() for cause in TRANSITION_CAUSES.values())
    assert TRANSITION_CAUSES[S.STOPPED, S.NOT_CONNECTED] == "start()"
    assert all(TRANSITION_CAUSES[s, S.STOPPED] == "stop()" for s in S if s is not S.STOPPED)


@pytest.mark.parametrize(
    ("status", "outcome", "decision"),
    [
        (S.CONNECTING, OUT.CONNECTED, Decision(S.CONNECTED, WaitKind.INTERVAL, True, True)),
        (S.CONNECTED, OUT.CONNECTED, Decision(S.CONNECTED, WaitKind.INTERVAL, True)),
        (S.CONNECTING, OUT.NOT_CONNECTED, Decision(S.NOT_CONNECTED, WaitKind.BACKOFF, False)),
        (S.CONNECTING, OUT.TIMED_OUT, Decision(S.NOT_CONNECTED, WaitKind.BACKOFF, False)),
        (S.CONNECTING, OUT.ERROR_RETURNED, Decision(S.ERROR, WaitKind.BACKOFF, False)),
        (S.CONNECTING, OUT.RAISED, Decision(S.ERROR, WaitKind.ERROR_WAIT, False)),
        (
            S.CONNECTING,
            OUT.START_NETWORK_FAILED,
            Decision(S.ERROR, WaitKind.ERROR_WAIT, False, release_network=True),
        ),
        (
            S.CONNECTED,
            OUT.NOT_CONNECTED,
            Decision(S.NOT_CONNECTED, WaitKind.BACKOFF, False, False, True, True),
        ),
        (
            S.CONNECTED,
            OUT.TIMED_OUT,
            Decision(S.NOT_CONNECTED, WaitKind.BACKOFF, False, False, True, True),
        ),
        (
            S.CONNECTED,
            OUT.ERROR_RETURNED,
            Decision(S.ERROR, WaitKind.BACKOFF, False, False, True, True),
        ),
        (
            S.CONNECTED,
            OUT.RAISED,
            Decision(S.ERROR, WaitKind.ERROR_WAIT, False, False, True, True),
        ),
    ],
)
def test_decide(status: NetworkStatus, outcome: AttemptOutcome, decision: Decision) -> None:
    assert decide(status, outcome) == decision
    assert DECISIONS[status, outcome] is decide(status, outcome)


def test_decisions_cover_exactly_the_reachable_pairs() -> None:
    reachable = {(s, o) for s in (S.CONNECTING, S.CONNECTED) for o in OUT}
    reachable.discard((S.CONNECTED, OUT.START_NETWORK_FAILED))  # start_network only connects
    assert set(DECISIONS) == reachable
    with pytest.raises(ValueError, match="no decision for START_NETWORK_FAILED from CONNECTED"):
        decide(S.CONNECTED, OUT.START_NETWORK_FAILED)
    for status in (S.STOPPED, S.NOT_CONNECTED, S.ERROR, S.DISCONNECTING):
        with pytest.raises(ValueError, match=f"from {status.name}"):
            decide(status, OUT.CONNECTED)


def test_every_decision_only_walks_legal_edges() -> None:
    # Carrying a decision out: [DISCONNECTING if disconnect] then settle_status.
    for (status, _), decision in DECISIONS.items():
        path = [status]
        if decision.disconnect:
            path.append(S.DISCONNECTING)
        path.append(decision.settle_status)
        for old, new in itertools.pairwise(path):
            assert old is new or is_legal(old, new), (status, decision)
        # Teardown (disconnect) and bring-up (start_network) exclude each other, and a
        # teardown always releases the network.
        assert not (decision.disconnect and decision.start_network)
        assert decision.release_network or not decision.disconnect
        assert decision.reset_retries is (decision.settle_status is S.CONNECTED)
        assert (decision.wait_kind is WaitKind.INTERVAL) is (decision.settle_status is S.CONNECTED)


def test_decision_is_a_frozen_slotted_value() -> None:
    decision = decide(S.CONNECTED, OUT.CONNECTED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.settle_status = S.ERROR  # type: ignore[misc]
    assert not hasattr(decision, "__dict__")


def test_attempt_status() -> None:
    assert attempt_status(S.CONNECTED) is S.CONNECTED
    assert attempt_status(S.NOT_CONNECTED) is S.CONNECTING
    assert attempt_status(S.ERROR) is S.CONNECTING
    for status in (S.STOPPED, S.CONNECTING, S.DISCONNECTING):
        with pytest.raises(ValueError, match=f"cannot begin from {status.name}"):
            attempt_status(status)
    for status in (S.NOT_CONNECTED, S.ERROR):
        assert is_legal(status, attempt_status(status))


def test_status_after_pause_and_defect_status_stay_legal() -> None:
    assert status_after_pause(S.CONNECTING, S.ERROR) is S.ERROR
    assert status_after_pause(S.DISCONNECTING, S.NOT_CONNECTED) is S.NOT_CONNECTED
    for status in (S.CONNECTED, S.NOT_CONNECTED, S.ERROR, S.STOPPED):
        assert status_after_pause(status, S.ERROR) is status
    for restore in (S.NOT_CONNECTED, S.ERROR):
        for status in (S.CONNECTING, S.DISCONNECTING):
            assert is_legal(status, status_after_pause(status, restore))
    assert defect_status(S.CONNECTING) is S.ERROR
    assert defect_status(S.DISCONNECTING) is S.ERROR
    for status in (S.CONNECTED, S.NOT_CONNECTED, S.ERROR, S.STOPPED):
        assert defect_status(status) is status


def test_the_module_is_stdlib_only_and_knows_no_asyncio() -> None:
    tree = ast.parse(inspect.getsource(machine))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"__future__", "dataclasses", "enum", "types", "typing"}
    assert machine.__doc__ is not None and "Legal transitions" in machine.__doc__


def test_one_copy_exported_everywhere() -> None:
    assert processors.LEGAL_TRANSITIONS is LEGAL_TRANSITIONS
    assert chronopype.LEGAL_TRANSITIONS is LEGAL_TRANSITIONS
    assert chronopype.decide is decide and processors.WaitKind is WaitKind
    assert chronopype.AttemptOutcome is AttemptOutcome
    assert chronopype.NetworkStatus is S
    from chronopype_testing import _recorder

    assert _recorder.LEGAL_TRANSITIONS is LEGAL_TRANSITIONS
    assert chronopype_testing is not None


def readme_table() -> str:
    """The README's transition table, generated from the machine."""
    rows = ["| from | to | cause |", "| --- | --- | --- |"]
    order = list(S)
    for old, new in sorted(
        LEGAL_TRANSITIONS, key=lambda pair: (order.index(pair[0]), order.index(pair[1]))
    ):
        rows.append(f"| {old.name} | {new.name} | {TRANSITION_CAUSES[old, new]} |")
    return "\n".join(rows)


def test_readme_state_machine_section_matches_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The state machine, pinned", 1)[1].split("\n## ", 1)[0]
    assert readme_table() in section, "regenerate with: python tests/test_state_table.py"
    # The diagram names only legal edges: every "A ──...──▶ B" arrow between two statuses.
    names = "|".join(status.name for status in S)
    import re

    arrows = re.findall(rf"\b({names})\b[^\n▶◀]*?──▶ (?=({names})\b)", section)
    assert len(arrows) >= 3, arrows
    for old, new in arrows:
        assert is_legal(NetworkStatus[old], NetworkStatus[new]), (
            f"README diagram shows {old} -> {new}"
        )


if __name__ == "__main__":
    print(readme_table())
