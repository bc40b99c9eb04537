"""The client's typed subtask state: one casing on the wire, old records read, attempts recorded."""

from __future__ import annotations

from client_agent.state import LOCAL, TERMINAL, Outcome, Status, SubtaskState


def test_the_wire_is_camel_case_throughout_and_round_trips():
    state = SubtaskState(a2a_task_id="remote", input_required="which fund?")
    state.cost.estimated_usd = 0.5
    state.attempts.append(Outcome(False, LOCAL, "it failed", cost_usd=0.0012345678, seconds=1.23456).record(1))
    wire = state.wire()
    assert wire["a2aTaskId"] == "remote" and wire["inputRequired"] == "which fund?"
    assert wire["cost"] == {"estimatedUsd": 0.5, "actualUsd": 0.0}
    assert wire["attempts"] == [
        {
            "attempt": 1,
            "where": LOCAL,
            "ok": False,
            "reason": "it failed",
            "costUsd": 0.001235,
            "seconds": 1.235,
        }
    ]
    assert all("_" not in key for key in wire)
    assert SubtaskState.model_validate(wire) == state


def test_an_empty_or_foreign_record_reads_as_a_fresh_state():
    assert SubtaskState.model_validate({}) == SubtaskState()
    assert SubtaskState.model_validate({"someOldKey": 1}).attempts == []


def test_terminal_statuses():
    assert {s for s in Status if s.terminal} == TERMINAL == {Status.COMPLETED, Status.FAILED, Status.CANCELED}
    assert "completed" in TERMINAL and "working" not in TERMINAL
