"""The protocol models: one source of truth for cards, parts, the state machine and the three dialects."""

from __future__ import annotations

import json

import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.compat.v0_3 import types as v03
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.a2a.dialects import Dialect
from shared.a2a.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    A2AError,
    Artifact,
    Message,
    Part,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    can_transition,
)
from shared.a2a.wire import parse_send, render_event, render_task
from tests.conftest import CARD_NAMES, CARDS, card_named


def test_the_market_has_the_papers_six_contractor_types_and_the_specialists():
    assert CARD_NAMES == [
        "budget_provider",
        "cloud_services",
        "cpu_optimised",
        "document_extractor",
        "edge_computing",
        "finance_lexicon",
        "gemma_fewshot",
        "gpu_specialist",
        "quantum_optimisation",
    ]


@pytest.mark.parametrize("name", CARD_NAMES)
def test_every_card_validates_and_carries_the_coalesce_block(name: str):
    card = card_named(name)
    profile = card.coalesce
    assert profile is not None and profile.price.base_usd > 0
    assert set(profile.workers) == {s.id for s in card.skills}
    served = card.served_at("http://127.0.0.1:8001/").wire()
    sdk_card = parse_agent_card(json.loads(json.dumps(served)))  # the official SDK reads our card
    assert sdk_card.name == card.name
    assert {i.protocol_version for i in sdk_card.supported_interfaces} == {"1.0", "0.3"}
    assert len(sdk_card.skills) == len(card.skills)


def test_a_card_without_skills_is_refused():
    raw = json.loads((CARDS / "edge_computing.json").read_text())
    raw["skills"] = []
    with pytest.raises(ValidationError):
        type(card_named("edge_computing")).model_validate(raw)


def test_parts_accept_the_legacy_type_tag_and_refuse_empty_content():
    assert Part.model_validate({"type": "text", "text": "hi"}).kind == "text"
    with pytest.raises(ValidationError):
        Part.model_validate({"kind": "data"})
    with pytest.raises(ValidationError):
        Part.model_validate({"kind": "file", "file": {"name": "x"}})  # neither bytes nor uri


def test_state_machine_refuses_illegal_moves():
    for state in TERMINAL_STATES:
        assert all(not can_transition(state, other) for other in TaskState)
    assert can_transition(TaskState.WORKING, TaskState.INPUT_REQUIRED)
    assert can_transition(TaskState.INPUT_REQUIRED, TaskState.WORKING)
    assert not can_transition(TaskState.SUBMITTED, TaskState.COMPLETED)
    assert not can_transition(TaskState.INPUT_REQUIRED, TaskState.COMPLETED)
    assert set(TRANSITIONS) == {s for s in TaskState if not s.terminal and s is not TaskState.UNKNOWN}


def _task() -> Task:
    message = Message(role="user", parts=[Part.of_text("hi"), Part.of_data({"a": 1})], task_id="t", context_id="c")
    artifact = Artifact(name="answer", parts=[Part.of_data([1, 2, 3])])
    return Task(
        id="t",
        context_id="c",
        status=TaskStatus(state=TaskState.INPUT_REQUIRED),
        history=[message],
        artifacts=[artifact],
    )


def test_legacy_and_v03_rendering_is_valid_v03_and_keeps_legacy_fields():
    rendered = render_task(_task(), Dialect.LEGACY)
    parsed = v03.Task.model_validate(rendered)  # the official v0.3 model accepts it
    assert parsed.status.state.value == "input-required"
    assert rendered["sessionId"] == "c"
    assert rendered["history"][0]["parts"][0]["type"] == "text"
    assert rendered["artifacts"][0]["parts"][0]["data"] == {"value": [1, 2, 3]}  # v0.3 data must be an object


def test_v1_rendering_is_protobuf_json():
    from a2a.types.a2a_pb2 import Task as PbTask
    from google.protobuf.json_format import ParseDict

    rendered = render_task(_task(), Dialect.V1_0)
    task = ParseDict(rendered, PbTask())  # strict: unknown fields would raise
    assert task.status.state == 6  # TASK_STATE_INPUT_REQUIRED
    assert task.history[0].parts[1].data.struct_value["a"] == 1
    event = render_event(
        TaskArtifactUpdateEvent(task_id="t", context_id="c", artifact=_task().artifacts[0], last_chunk=True),
        Dialect.V1_0,
    )
    assert event["artifactUpdate"]["lastChunk"] is True
    status = render_event(
        TaskStatusUpdateEvent(task_id="t", context_id="c", status=TaskStatus(state=TaskState.FAILED), final=True),
        Dialect.V1_0,
    )
    assert status["statusUpdate"]["status"]["state"] == "TASK_STATE_FAILED"
    assert "final" not in status["statusUpdate"]


def test_parse_send_in_each_dialect():
    legacy = parse_send(
        {"id": "t1", "sessionId": "s", "message": {"role": "user", "parts": [{"type": "text", "text": "x"}]}},
        Dialect.LEGACY,
    )
    assert (legacy.task_id, legacy.context_id, legacy.client_chooses_id) == ("t1", "s", True)
    v03_request = parse_send(
        {
            "message": {
                "kind": "message",
                "messageId": "m",
                "role": "user",
                "taskId": "t2",
                "parts": [{"kind": "text", "text": "x"}],
            },
            "configuration": {"blocking": False},
        },
        Dialect.V0_3,
    )
    assert (v03_request.task_id, v03_request.blocking) == ("t2", False)
    v1 = parse_send(
        {
            "message": {
                "messageId": "m",
                "role": "ROLE_USER",
                "parts": [{"raw": "aGk=", "mediaType": "text/plain", "filename": "a.txt"}],
            },
            "configuration": {
                "returnImmediately": True,
                "taskPushNotificationConfig": {
                    "url": "http://127.0.0.1:1/h",
                    "authentication": {"scheme": "Basic", "credentials": "x"},
                },
            },
        },
        Dialect.V1_0,
    )
    assert v1.message.parts[0].file.name == "a.txt" and v1.blocking is False
    assert v1.push_config.authentication.schemes == ["Basic"]
    with pytest.raises(A2AError):
        parse_send({"message": {"role": "ROLE_ROBOT", "parts": [{"text": "x"}]}}, Dialect.V1_0)


@given(
    st.text(max_size=200),
    st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=5),
)
def test_v1_message_round_trip(text: str, data: dict):
    message = Message(role="agent", parts=[Part.of_text(text), Part.of_data(data)], context_id="c")
    rendered = render_event(
        Task(id="t", context_id="c", status=TaskStatus(state=TaskState.WORKING, message=message)),
        Dialect.V1_0,
    )
    raw = rendered["task"]["status"]["message"]
    back = parse_send({"message": raw | {"role": "ROLE_USER"}}, Dialect.V1_0).message
    assert back.text() == text and back.data() == data
