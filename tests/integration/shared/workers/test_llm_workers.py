"""LLM workers against the real local model (and the Anthropic SDK through a named test double), and an LLM
contractor serving a real task over A2A."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.a2a.models import AgentSkill, Message, Part
from shared.runtime.serving import ServerThread, bind_socket
from shared.workers import compute
from shared.workers.base import WorkerError, WorkRequest
from shared.workers.llm import AnthropicWorker, LLMSettings, OpenAIChatWorker
from tests.conftest import StartContractor, card_named, rpc, sse_events

NEVER = threading.Event()
BACKENDS = [compute.Backend("numpy"), compute.Backend("torch", "cpu")]
SKILL = AgentSkill(id="sentiment-analysis", name="Sentiment analysis", description="Classifies sentiment.")


def request_with(*messages: Message) -> WorkRequest:
    return WorkRequest(task_id="t", skill=SKILL, messages=list(messages))


async def test_openai_worker_answers_with_the_local_model_and_records_tokens(local_llm: LLMSettings):
    worker = OpenAIChatWorker(local_llm)
    message = Message(role="user", parts=[Part.of_text("Is 'Profits soared to a record high' positive or negative?")])
    result = await worker.run(request_with(message))
    await worker.close()
    text = result.artifacts[0].parts[0].text
    assert isinstance(text, str) and len(text) > 0
    assert result.usage.output_tokens > 0 and result.usage.input_tokens > 10


async def test_openai_worker_reports_an_unreachable_server_as_a_worker_error():
    from shared.workers.local_model import free_port

    dead = LLMSettings(model="x", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=2)
    worker = OpenAIChatWorker(dead)
    with pytest.raises(WorkerError, match="LLM call failed"):
        await worker.run(request_with(Message(role="user", parts=[Part.of_text("hi")])))
    await worker.close()


def anthropic_shim(openai_base_url: str, model: str) -> FastAPI:
    """TEST DOUBLE for Anthropic's cloud (unreachable here): the Messages API, answered by the real local
    model through its OpenAI-compatible server."""
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> dict:
        body = await request.json()
        chat = [{"role": "system", "content": body.get("system", "")}, *body["messages"]]
        async with httpx.AsyncClient(timeout=60) as client:
            answer = (
                await client.post(
                    f"{openai_base_url}/chat/completions",
                    json={"model": model, "messages": chat, "max_tokens": body["max_tokens"]},
                )
            ).json()
        return {
            "id": "msg_local",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": answer["choices"][0]["message"]["content"]}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": answer["usage"]["prompt_tokens"],
                "output_tokens": answer["usage"]["completion_tokens"],
            },
        }

    return app


@pytest.fixture
def anthropic_double(local_llm: LLMSettings) -> Iterator[str]:
    sock = bind_socket()
    with ServerThread(anthropic_shim(local_llm.base_url, local_llm.model), sock) as server:
        yield server.url.rstrip("/")


async def test_anthropic_worker_through_the_sdk(anthropic_double: str):
    worker = AnthropicWorker(LLMSettings(model="claude-local", base_url=anthropic_double, max_tokens=32))
    result = await worker.run(request_with(Message(role="user", parts=[Part.of_text("Name one colour.")])))
    await worker.close()
    assert result.artifacts[0].parts[0].text
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


def test_llm_contractor_serves_a_real_task_over_a2a(start_contractor: StartContractor, local_llm: LLMSettings):
    url = start_contractor(card_named("edge_computing"), llm=local_llm)
    params = {
        "id": "llm-1",
        "message": {
            "role": "user",
            "parts": [{"type": "text", "text": "Headline: 'Shares plunge 30% after profit warning.' Sentiment?"}],
        },
    }
    events = sse_events(url, "tasks/sendSubscribe", params)
    results = [e["result"] for e in events]
    assert [r["status"]["state"] for r in results if "status" in r] == ["submitted", "working", "completed"]
    answer = next(r for r in results if "artifact" in r)["artifact"]["parts"][0]["text"]
    assert answer.strip()
    task = rpc(url, "tasks/get", {"id": "llm-1"})["result"]
    usage = task["metadata"]["coalesce"]["usage"]
    assert usage["outputTokens"] > 0
    price = card_named("edge_computing").coalesce.price
    expected = (  # the quote plus the metered usage at the card's prices
        task["metadata"]["coalesce"]["quoteUsd"]
        + usage["inputTokens"] / 1000 * price.per_1k_input_tokens_usd
        + usage["outputTokens"] / 1000 * price.per_1k_output_tokens_usd
        + usage["computeSeconds"] * price.per_compute_second_usd
    )
    assert usage["computeSeconds"] > 0 and price.per_compute_second_usd > 0
    assert task["metadata"]["coalesce"]["costUsd"] == pytest.approx(expected, rel=1e-3, abs=1e-8)


async def test_the_base_model_answers_by_few_shot_completion_and_the_tiers_meter_their_compute(local_llm: LLMSettings):
    from shared.workers.factory import embedded_llm_settings
    from shared.workers.local_model import GEMMA_ALIAS, LocalLLMServer
    from shared.workers.tiers import FewShotCompletionWorker, VotingWorker, sloppy_settings

    labels = {"metadata": {"coalesce": {"answerOneOf": ["positive", "negative", "neutral"]}}}
    headline = Message(role="user", parts=[Part.of_text("Classify this headline: Profits soar to a record")], **labels)
    with LocalLLMServer(model=GEMMA_ALIAS) as server:
        gemma = FewShotCompletionWorker(embedded_llm_settings(server, max_tokens=8, temperature=0.0))
        result = await gemma.run(request_with(headline))
        await gemma.close()
    answer = result.artifacts[0].parts[0].text or ""
    assert "\n" not in answer and 0 < len(answer) < 80  # one line: the completion stopped at the example's end
    assert result.usage.input_tokens > 50 and result.usage.compute_seconds > 0  # the examples are in the prompt
    single = OpenAIChatWorker(local_llm)
    premium = VotingWorker(OpenAIChatWorker(local_llm), k=3)
    sloppy = OpenAIChatWorker(sloppy_settings(local_llm))
    one, three = await single.run(request_with(headline)), await premium.run(request_with(headline))
    assert three.usage.input_tokens == 3 * one.usage.input_tokens  # three samples, each metered
    assert three.usage.compute_seconds > one.usage.compute_seconds
    loose = await sloppy.run(request_with(headline))
    assert loose.usage.output_tokens <= 32  # the sloppy tier's short budget
    for worker in (single, premium, sloppy):
        await worker.close()
