"""The legacy generation (`tasks/send`, the paper's): real server, real HTTP and SSE."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from shared.a2a.models import Artifact, Part
from shared.workers.base import StatelessWorker, WorkRequest, WorkResult
from tests.conftest import (
    StartContractor,
    Webhook,
    card_named,
    data_message,
    rpc,
    sse_events,
    text_message,
    wait_until,
)

PORTFOLIO = {"expected_returns": [0.05, 0.1, 0.07], "covariance": [[0.04, 0, 0], [0, 0.09, 0], [0, 0, 0.02]]}


def send_params(data: dict, skill: str, task_id: str | None = None, **extra) -> dict:
    return {
        "id": task_id or uuid.uuid4().hex,
        "message": data_message(data),
        "metadata": {"skill": skill},
        **extra,
    }


def test_send_runs_the_work_and_returns_the_completed_task(cpu_contractor: str):
    params = send_params(PORTFOLIO, "portfolio-optimisation", task_id="client-chosen-1", sessionId="s-1")
    task = rpc(cpu_contractor, "tasks/send", params)["result"]
    assert task["id"] == "client-chosen-1"
    assert task["sessionId"] == "s-1"
    assert task["status"]["state"] == "completed"
    [artifact] = task["artifacts"]
    weights = artifact["parts"][0]["data"]["weights"]
    assert artifact["parts"][0]["type"] == "data"
    assert sum(weights) == pytest.approx(1.0)
    assert all(w >= -1e-9 for w in weights)
    cost = task["metadata"]["coalesce"]
    assert cost["costUsd"] >= cost["quoteUsd"] > 0


def test_send_subscribe_streams_every_state_and_closes_after_the_final_event(cpu_contractor: str):
    events = sse_events(cpu_contractor, "tasks/sendSubscribe", send_params(PORTFOLIO, "portfolio-optimisation"))
    results = [e["result"] for e in events]
    states = [r["status"]["state"] for r in results if "status" in r]
    assert states == ["submitted", "working", "completed"]
    assert [r["final"] for r in results if "status" in r] == [False, False, True]
    artifact_events = [r for r in results if "artifact" in r]
    assert len(artifact_events) == 1 and artifact_events[0]["artifact"]["lastChunk"] is True
    assert all(e["id"] == 7 for e in events)


def test_get_returns_history_bounded_by_history_length(cpu_contractor: str):
    params = send_params({"seed": 3}, "risk-assessment")
    first = rpc(cpu_contractor, "tasks/send", params)["result"]
    assert first["status"]["state"] == "input-required"
    follow_up = {
        "id": first["id"],
        "message": data_message({"portfolio_value": 10.0, "mu": 0.0, "sigma": 0.01}),
    }
    done = rpc(cpu_contractor, "tasks/send", follow_up)["result"]
    assert done["status"]["state"] == "completed"
    full = rpc(cpu_contractor, "tasks/get", {"id": first["id"]})["result"]
    assert [m["role"] for m in full["history"]] == ["user", "agent", "user", "agent"]
    short = rpc(cpu_contractor, "tasks/get", {"id": first["id"], "historyLength": 1})["result"]
    assert len(short["history"]) == 1 and short["history"][0]["role"] == "agent"


def test_cancel_really_stops_the_work(cpu_contractor: str):
    slow = {"portfolio_value": 1e6, "mu": 0.0, "sigma": 0.01, "simulations": 5_000_000, "horizon_days": 100}
    task_id = uuid.uuid4().hex
    with httpx.Client(timeout=60) as client:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tasks/sendSubscribe",
            "params": send_params(slow, "risk-assessment", task_id),
        }
        with client.stream("POST", cpu_contractor, json=body) as stream:
            lines = stream.iter_lines()
            while "working" not in next(lines):
                pass
            started = time.monotonic()
            cancelled = rpc(cpu_contractor, "tasks/cancel", {"id": task_id})["result"]
            assert cancelled["status"]["state"] == "canceled"
            rest = [line for line in lines if line.startswith("data:")]
        assert '"canceled"' in rest[-1] and '"final":true' in rest[-1]
    wait_until(lambda: httpx.get(cpu_contractor + "health").json()["load"]["running"] == 0, timeout=10)
    assert time.monotonic() - started < 10  # 500 M draws would take minutes: the worker stopped early
    final = rpc(cpu_contractor, "tasks/get", {"id": task_id})["result"]
    assert final["status"]["state"] == "canceled" and final["artifacts"] == []


def test_resubscribe_to_a_finished_task_gives_its_final_state(cpu_contractor: str):
    task = rpc(cpu_contractor, "tasks/send", send_params(PORTFOLIO, "portfolio-optimisation"))["result"]
    [event] = sse_events(cpu_contractor, "tasks/resubscribe", {"id": task["id"]})
    assert event["result"]["status"]["state"] == "completed"
    assert event["result"]["final"] is True


def test_resubscribe_to_an_unknown_task_is_task_not_found(cpu_contractor: str):
    response = rpc(cpu_contractor, "tasks/resubscribe", {"id": "missing"})
    assert response["error"]["code"] == -32001


def test_push_notification_set_get_and_delivery_with_retries(cpu_contractor: str, flaky_webhook: Webhook):
    config = {
        "url": flaky_webhook.url,
        "token": "t",
        "authentication": {"schemes": ["Bearer"], "credentials": "c"},
    }
    params = send_params({"seed": 1}, "risk-assessment", pushNotification=config)
    task = rpc(cpu_contractor, "tasks/send", params)["result"]
    got = rpc(cpu_contractor, "tasks/pushNotification/get", {"id": task["id"]})["result"]
    assert got["pushNotificationConfig"]["url"] == flaky_webhook.url
    wait_until(lambda: "input-required" in flaky_webhook.states())
    assert flaky_webhook.attempts >= 3  # two 503s, then delivered
    headers, body = flaky_webhook.received[-1]
    assert headers["authorization"] == "Bearer c" and body["id"] == task["id"]


def test_push_notification_set_on_a_running_task(cpu_contractor: str, webhook: Webhook):
    task = rpc(cpu_contractor, "tasks/send", send_params({"seed": 1}, "risk-assessment"))["result"]
    config = {"url": webhook.url}
    result = rpc(cpu_contractor, "tasks/pushNotification/set", {"id": task["id"], "pushNotificationConfig": config})
    assert result["result"]["pushNotificationConfig"]["url"] == webhook.url
    rpc(
        cpu_contractor,
        "tasks/send",
        {
            "id": task["id"],
            "message": data_message(PORTFOLIO | {"portfolio_value": 5, "mu": 0, "sigma": 0.1}),
        },
    )
    wait_until(lambda: "completed" in webhook.states())
    assert webhook.states() == ["working", "completed"]


def test_capacity_is_bounded_and_says_so(start_contractor: StartContractor):
    from contractor_agent.admission import Limits

    url = start_contractor(card_named("cpu_optimised"), limits=Limits(max_concurrent=1, max_queued=1))
    slow = {"portfolio_value": 1e6, "mu": 0.0, "sigma": 0.01, "simulations": 5_000_000, "horizon_days": 100}
    ids = [uuid.uuid4().hex for _ in range(3)]
    with httpx.Client(timeout=30) as client:

        def send(task_id: str) -> dict:
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {
                    "message": {
                        "kind": "message",
                        "role": "user",
                        "messageId": task_id,
                        "parts": [{"kind": "data", "data": slow}],
                    },
                    "configuration": {"blocking": False},
                    "metadata": {"skill": "risk-assessment"},
                },
            }
            return client.post(url, json=body).json()

        first, second, third = (send(i) for i in ids)
        assert first["result"]["status"]["state"] in ("submitted", "working")
        assert second["result"]["status"]["state"] == "submitted"  # queued
        assert third["error"]["code"] == -32050
        assert third["error"]["data"]["load"] == {
            "running": 1,
            "queued": 1,
            "maxConcurrent": 1,
            "maxQueued": 1,
            "tasksKept": 2,
        }
        for answer in (first, second):
            rpc(url, "tasks/cancel", {"id": answer["result"]["id"]})
    wait_until(
        lambda: (
            httpx.get(url + "health").json()["load"]
            == {"running": 0, "queued": 0, "maxConcurrent": 1, "maxQueued": 1, "tasksKept": 2}
        )
    )


def test_quote_rises_with_load(start_contractor: StartContractor):
    from contractor_agent.admission import Limits

    url = start_contractor(card_named("cpu_optimised"), limits=Limits(max_concurrent=2, max_queued=4))
    idle = httpx.get(url + "v1/quote").json()["priceUsd"]
    base = card_named("cpu_optimised").coalesce.price.base_usd
    assert idle == pytest.approx(base * (1 + 0.4 * (1 - 2) / 2))  # eq. (7): D = 1, S_available = 2, S_total = 2
    slow = {"portfolio_value": 1e6, "mu": 0.0, "sigma": 0.01, "simulations": 5_000_000, "horizon_days": 100}
    tasks = [
        rpc(
            url,
            "message/send",
            {
                "message": {"role": "user", "messageId": str(i), "parts": [{"kind": "data", "data": slow}]},
                "configuration": {"blocking": False},
                "metadata": {"skill": "risk-assessment"},
            },
        )["result"]["id"]
        for i in range(3)
    ]
    busy = httpx.get(url + "v1/quote").json()["priceUsd"]
    assert busy == pytest.approx(base * (1 + 0.4 * (4 - 0) / 2))  # D = 2 running + 1 queued + 1, S_available = 0
    for task_id in tasks:
        rpc(url, "tasks/cancel", {"id": task_id})


class BlocksTheLoop(StatelessWorker):
    """Work whose first step holds the event loop (CPU work run inline): nothing else is sent while it runs."""

    name = "blocks-the-loop"

    def __init__(self) -> None:
        self.finished_at = 0.0

    async def run(self, request: WorkRequest) -> WorkResult:
        time.sleep(0.3)  # noqa: ASYNC251 - the point: a step that holds the loop
        self.finished_at = time.monotonic()
        return WorkResult(artifacts=[Artifact(parts=[Part.of_text("done")])])


def test_a_streams_opening_event_goes_out_before_the_work_starts(start_contractor: StartContractor):
    card = card_named("edge_computing")
    worker = BlocksTheLoop()
    url = start_contractor(card, {skill.id: worker for skill in card.skills})
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": text_message("hi")}}
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        lines = (line for line in response.iter_lines() if line.startswith("data:"))
        opening = json.loads(next(lines)[5:])["result"]
        opened_at = time.monotonic()
        rest = [json.loads(line[5:])["result"] for line in lines]
    assert opening["kind"] == "task" and opening["status"]["state"] == "submitted"
    assert opened_at < worker.finished_at  # the client knew its task while the work ran
    assert rest[-1]["status"]["state"] == "completed"
