"""The exchange is itself an A2A agent: the official a2a-sdk client, in its v1.0 and v0.3 forms, gets work done
through the market with no COALESCE-specific code: hired out, graded and paid; the exchange's events streamed as
status updates; a contractor's input-required relayed to the A2A caller and its answer back; cancel."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from a2a.types import a2a_pb2 as sdk
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from tests.conftest import RISK, SdkClient, StartContractor, card_named, data_request, risk_input_round_trip

VERSIONS = ["1.0", "0.3"]


def text_request(text: str, **metadata: object) -> sdk.SendMessageRequest:
    meta = Struct()
    meta.update(metadata)
    message = sdk.Message(message_id=uuid.uuid4().hex, role=sdk.Role.ROLE_USER, parts=[sdk.Part(text=text)])
    return sdk.SendMessageRequest(message=message, metadata=meta)


def texts(artifact: sdk.Artifact) -> str:
    return " ".join(p.text for p in artifact.parts if p.text)


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_a2a_sdk_client_gets_a_task_done_through_the_exchange(sdk_agent, make_client, version):
    agent = sdk_agent()
    client = make_client(own_skills=set())
    seller = client.http.post("/v1/contractors", json={"card_url": agent.url, "price_usd": 0.002}).json()
    async with httpx.AsyncClient() as http:
        card = (await http.get(client.url + ".well-known/agent-card.json")).json()
    assert card["name"] == "COALESCE exchange"
    assert {s["id"] for s in card["skills"]} >= {"delegate", "sentiment-analysis"}

    request = text_request("Classify the sentiment of: 'Shares soar on record profits'", skill="sentiment-analysis")
    async with SdkClient(client.url, version) as a2a:
        events = [e async for e in a2a.send_message(request)]
        final = events[-1].status_update
        assert final.status.state == sdk.TaskState.TASK_STATE_COMPLETED
        news = [e.status_update.status.message for e in events if e.HasField("status_update")]
        assert any("decision" in " ".join(p.text for p in m.parts) or seller["id"] in str(m) for m in news)
        task = await a2a.get_task(sdk.GetTaskRequest(id=final.task_id))
    answer = next(a for a in task.artifacts if a.name == "sentiment-analysis")
    assert texts(answer) == "positive"
    account = MessageToDict(next(a for a in task.artifacts if a.name == "coalesce").parts[0].data)
    [hired] = account["subtasks"]
    assert hired["contractor"] == seller["id"] and hired["verified"] is True
    assert hired["costUsd"] == pytest.approx(0.002)
    exchange_task = client.http.get(f"/v1/tasks/{account['taskId']}").json()
    assert exchange_task["status"] == "completed"


@pytest.mark.parametrize("version", VERSIONS)
async def test_input_required_is_relayed_both_ways(make_client, start_contractor: StartContractor, version):
    cpu = start_contractor(card_named("cpu_optimised"))
    client = make_client(own_skills=set())
    client.register(cpu)
    async with SdkClient(client.url, version) as a2a:
        waiting, _ = await risk_input_round_trip(a2a)
        assert "portfolio_value" in " ".join(p.text for p in waiting.status.message.parts)  # the contractor's prompt
        task = await a2a.get_task(sdk.GetTaskRequest(id=waiting.task_id))
    var = MessageToDict(next(a for a in task.artifacts if a.name == "risk-assessment").parts[0].data)
    assert var["var"] == pytest.approx(1000 * 1.6449 * 0.01, rel=0.05)


async def test_cancel_reaches_the_exchange_task_and_refunds(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    client = make_client(own_skills=set())
    client.register(cpu)
    slow = {**RISK, "simulations": 5_000_000, "horizon_days": 60}
    async with SdkClient(client.url, "1.0", streaming=False, polling=True) as a2a:
        [sent] = [e async for e in a2a.send_message(data_request(slow, "risk-assessment"))]
        for _ in range(100):  # until the exchange has hired
            if client.service.ledger.entries():
                break
            await asyncio.sleep(0.1)
        canceled = await a2a.cancel_task(sdk.CancelTaskRequest(id=sent.task.id))
        assert canceled.status.state == sdk.TaskState.TASK_STATE_CANCELED
    for _ in range(100):
        [task] = client.http.get("/v1/tasks").json()["tasks"]
        if task["status"] == "canceled":
            break
        await asyncio.sleep(0.1)
    assert task["status"] == "canceled"
    balances = client.http.get("/v1/ledger").json()["balances"]
    assert balances["escrow"] == pytest.approx(0.0, abs=1e-9) and balances["client"] == pytest.approx(0.0, abs=1e-9)


async def test_a_task_in_words_is_decomposed_by_the_exchange(sdk_agent, make_client):
    agent = sdk_agent()
    client = make_client(own_skills=set())
    client.http.post("/v1/contractors", json={"card_url": agent.url, "price_usd": 0.002})
    async with SdkClient(client.url, "1.0", streaming=False) as a2a:
        [reply] = [
            e
            async for e in a2a.send_message(text_request("Classify the sentiment of: 'Shares soar on record profits'"))
        ]
    assert reply.task.status.state == sdk.TaskState.TASK_STATE_COMPLETED, reply
    account = MessageToDict(next(a for a in reply.task.artifacts if a.name == "coalesce").parts[0].data)
    assert [s["skill"] for s in account["subtasks"]] == ["sentiment-analysis"]
