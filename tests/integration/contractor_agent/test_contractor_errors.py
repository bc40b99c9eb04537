"""Bad input gets the right JSON-RPC error (or 413), never a 500 or a hang."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import StartContractor, card_named, data_message, rpc, text_message


def envelope(method: str, params: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


def post(url: str, body: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json", **headers}, timeout=30)


def error_code(response: httpx.Response) -> int:
    assert response.status_code in (200, 413), response.text
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"\xff\xfe\x00garbage", -32700),
        (b"[" * 100_000 + b"]" * 100_000, -32700),  # nesting deeper than any parser should follow
        (b"[]", -32600),
        (b'"just a string"', -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "tasks/get"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": [1, 2]}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/explode", "params": {}}', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {}}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": 12}}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "nope"}}', -32001),
        (envelope("tasks/send", {"id": "x", "message": {"role": "user", "parts": []}}), -32602),
        (
            envelope("tasks/send", {"id": "x", "message": {"role": "boss", "parts": [{"type": "text", "text": "hi"}]}}),
            -32602,
        ),
        (
            envelope("SendMessage", {"message": {"role": "ROLE_USER", "parts": [{"nothing": 1}]}}),
            -32602,
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": "hi"}}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "GetExtendedAgentCard", "params": {}}', -32007),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"pageSize": 100000}}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"pageToken": "../../etc"}}', -32602),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"status": "TASK_STATE_BORED"}}',
            -32602,
        ),
    ],
)
def test_malformed_requests_get_their_error_code(cpu_contractor: str, body: bytes, code: int):
    assert error_code(post(cpu_contractor, body)) == code


def test_error_keeps_the_request_id(cpu_contractor: str):
    response = post(cpu_contractor, json.dumps({"jsonrpc": "2.0", "id": "abc", "method": "nope"}))
    assert response.json()["id"] == "abc"


def test_oversized_body_is_413(start_contractor: StartContractor):
    url = start_contractor(card_named("cpu_optimised"), max_body_bytes=1024)
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tasks/send", "params": {"x": "a" * 5000}})
    response = post(url, big)
    assert response.status_code == 413 and response.json()["error"]["code"] == -32600

    def chunks():  # no content-length: the limit holds on the stream too
        for _ in range(10):
            yield b"a" * 500

    streamed = httpx.post(url, content=chunks(), timeout=30)
    assert streamed.status_code == 413


def test_unsupported_version_header_is_32009(cpu_contractor: str):
    response = post(
        cpu_contractor,
        b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}',
        **{"A2A-Version": "7.1"},
    )
    assert error_code(response) == -32009
    ok = post(
        cpu_contractor,
        b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}',
        **{"A2A-Version": "1.0"},
    )
    assert error_code(ok) == -32001


def test_unknown_skill_is_invalid_params(cpu_contractor: str):
    params = {"id": "t", "message": data_message({}), "metadata": {"skill": "juggling"}}
    assert rpc(cpu_contractor, "tasks/send", params)["error"]["code"] == -32602


def test_content_types_the_skill_does_not_take_or_make_are_32005(cpu_contractor: str):
    text_to_numbers = {"id": "t1", "message": text_message("hello"), "metadata": {"skill": "risk-assessment"}}
    assert rpc(cpu_contractor, "tasks/send", text_to_numbers)["error"]["code"] == -32005
    wants_images = {
        "id": "t2",
        "message": data_message({}),
        "acceptedOutputModes": ["image/png"],
        "metadata": {"skill": "risk-assessment"},
    }
    assert rpc(cpu_contractor, "tasks/send", wants_images)["error"]["code"] == -32005
    wildcard = {
        "id": "t3",
        "message": data_message({"seed": 1}),
        "acceptedOutputModes": ["application/*"],
        "metadata": {"skill": "risk-assessment"},
    }
    assert rpc(cpu_contractor, "tasks/send", wildcard)["result"]["status"]["state"] == "input-required"


def test_a_finished_task_takes_no_new_message_and_cannot_be_canceled(cpu_contractor: str):
    params = {
        "id": "done-1",
        "message": data_message({"portfolio_value": 1, "mu": 0, "sigma": 0.01}),
        "metadata": {"skill": "risk-assessment"},
    }
    assert rpc(cpu_contractor, "tasks/send", params)["result"]["status"]["state"] == "completed"
    assert rpc(cpu_contractor, "tasks/send", params)["error"]["code"] == -32004
    assert rpc(cpu_contractor, "tasks/cancel", {"id": "done-1"})["error"]["code"] == -32002


def test_follow_up_with_a_foreign_context_is_refused(cpu_contractor: str):
    first = rpc(
        cpu_contractor,
        "message/send",
        {
            "message": {"role": "user", "messageId": "a", "parts": [{"kind": "data", "data": {"seed": 1}}]},
            "metadata": {"skill": "risk-assessment"},
        },
    )["result"]
    assert first["status"]["state"] == "input-required"
    foreign = {
        "message": {
            "role": "user",
            "messageId": "b",
            "taskId": first["id"],
            "contextId": "someone-else",
            "parts": [{"kind": "data", "data": {"portfolio_value": 1}}],
        }
    }
    assert rpc(cpu_contractor, "message/send", foreign)["error"]["code"] == -32602
    unknown = {
        "message": {
            "role": "user",
            "messageId": "c",
            "taskId": "never-made",
            "parts": [{"kind": "text", "text": "x"}],
        }
    }
    assert rpc(cpu_contractor, "message/send", unknown)["error"]["code"] == -32001


def test_push_is_refused_when_the_contractor_has_none(start_contractor: StartContractor):
    url = start_contractor(card_named("cpu_optimised"), push_notifications=False)
    assert httpx.get(url + ".well-known/agent.json").json()["capabilities"]["pushNotifications"] is False
    task = rpc(
        url,
        "tasks/send",
        {"id": "p", "message": data_message({"seed": 1}), "metadata": {"skill": "risk-assessment"}},
    )["result"]
    answer = rpc(
        url,
        "tasks/pushNotification/set",
        {"id": task["id"], "pushNotificationConfig": {"url": "http://127.0.0.1:9/x"}},
    )
    assert answer["error"]["code"] == -32003


def test_bad_push_url_is_invalid_params(cpu_contractor: str):
    task = rpc(
        cpu_contractor,
        "tasks/send",
        {
            "id": uuid.uuid4().hex,
            "message": data_message({"seed": 1}),
            "metadata": {"skill": "risk-assessment"},
        },
    )["result"]
    answer = rpc(
        cpu_contractor,
        "tasks/pushNotification/set",
        {"id": task["id"], "pushNotificationConfig": {"url": "file:///etc/passwd"}},
    )
    assert answer["error"]["code"] == -32602


def test_worker_errors_fail_the_task_with_a_reason(cpu_contractor: str):
    params = {
        "id": "bad-cov",
        "message": data_message({"expected_returns": [0.1, 0.2], "covariance": [[1, 2], [3, 4]]}),
        "metadata": {"skill": "portfolio-optimisation"},
    }
    task = rpc(cpu_contractor, "tasks/send", params)["result"]
    assert task["status"]["state"] == "failed"
    assert "symmetric" in task["status"]["message"]["parts"][0]["text"]
    assert task["metadata"]["coalesce"]["costUsd"] == 0.0


def test_cards_are_served_at_both_well_known_paths_with_the_bound_url(cpu_contractor: str):
    old = httpx.get(cpu_contractor + ".well-known/agent.json").json()
    new = httpx.get(cpu_contractor + ".well-known/agent-card.json").json()
    assert old == new
    assert old["url"] == cpu_contractor
    assert {i["protocolVersion"] for i in old["supportedInterfaces"]} == {"1.0", "0.3"}
    assert all(i["url"] == cpu_contractor for i in old["supportedInterfaces"])
