"""Workers: numeric results checked against closed forms, LLM workers against the real local model."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Request
from scipy.stats import norm

from shared.a2a.models import AgentSkill, Message, Part
from shared.runtime.serving import ServerThread, bind_socket
from shared.workers import compute
from shared.workers.base import NeedsInput, WorkerError, WorkRequest
from shared.workers.compute import ComputeWorker
from shared.workers.llm import AnthropicWorker, LLMSettings, OpenAIChatWorker
from tests.conftest import StartContractor, card_named, rpc, sse_events

NEVER = threading.Event()
BACKENDS = [compute.Backend("numpy"), compute.Backend("torch", "cpu")]
SKILL = AgentSkill(id="sentiment-analysis", name="Sentiment analysis", description="Classifies sentiment.")


def request_with(*messages: Message) -> WorkRequest:
    return WorkRequest(task_id="t", skill=SKILL, messages=list(messages))


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_value_at_risk_matches_the_normal_closed_form(backend: compute.Backend):
    mu, sigma, horizon, value = 0.0005, 0.012, 10, 2_000_000.0
    result = compute.value_at_risk(
        {
            "portfolio_value": value,
            "mu": mu,
            "sigma": sigma,
            "horizon_days": horizon,
            "simulations": 400_000,
            "confidence": 0.99,
            "seed": 7,
        },
        NEVER,
        backend,
    )
    h_mu, h_sigma = mu * horizon, sigma * np.sqrt(horizon)
    exact_var = -value * np.expm1(h_mu + h_sigma * norm.ppf(0.01))
    assert result["var"] == pytest.approx(exact_var, rel=0.02)
    assert result["cvar"] > result["var"]
    assert result["backend"] == backend.name


def test_value_at_risk_is_deterministic_under_a_seed_and_same_on_both_backends():
    data = {"portfolio_value": 1e5, "returns": [0.01, -0.02, 0.003, 0.015, -0.007], "seed": 3}
    numpy_result = compute.value_at_risk(data, NEVER, BACKENDS[0])
    assert compute.value_at_risk(data, NEVER, BACKENDS[0]) == numpy_result
    torch_result = compute.value_at_risk(data, NEVER, BACKENDS[1])
    assert torch_result["var"] == pytest.approx(numpy_result["var"], rel=0.03)  # different generators


def test_value_at_risk_stops_when_cancelled():
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(compute.Cancelled):
        compute.value_at_risk({"portfolio_value": 1.0, "mu": 0, "sigma": 0.1}, cancelled)


def test_unconstrained_portfolio_matches_the_analytic_solution():
    mu = np.array([0.06, 0.09, 0.12])
    cov = np.array([[0.04, 0.006, 0.002], [0.006, 0.09, 0.01], [0.002, 0.01, 0.16]])
    gamma = 4.0
    result = compute.optimise_portfolio(
        {
            "expected_returns": mu.tolist(),
            "covariance": cov.tolist(),
            "risk_aversion": gamma,
            "long_only": False,
        },
        NEVER,
    )
    inverse = np.linalg.inv(cov)
    ones = np.ones(3)
    lagrange = (ones @ inverse @ mu - gamma) / (ones @ inverse @ ones)  # from the KKT conditions
    exact = inverse @ (mu - lagrange) / gamma
    assert np.allclose(result["weights"], exact, atol=1e-5)


def test_long_only_portfolio_respects_its_bounds():
    result = compute.optimise_portfolio(
        {
            "expected_returns": [0.01, 0.3, 0.02],
            "covariance": np.eye(3).tolist(),
            "max_weight": 0.5,
            "risk_aversion": 0.1,
        },
        NEVER,
    )
    weights = np.array(result["weights"])
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(weights >= -1e-9) and np.all(weights <= 0.5 + 1e-9)
    assert weights[1] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_similarity_search_matches_brute_force(backend: compute.Backend):
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(500, 32))
    query = rng.normal(size=32)
    result = compute.similarity_search({"query": query.tolist(), "corpus": corpus.tolist(), "k": 5}, NEVER, backend)
    cosine = corpus @ query / (np.linalg.norm(corpus, axis=1) * np.linalg.norm(query))
    assert result["indices"] == list(np.argsort(-cosine)[:5])
    assert np.allclose(result["scores"], np.sort(cosine)[::-1][:5])


@pytest.mark.parametrize(
    ("function", "data", "message"),
    [
        (compute.value_at_risk, {"portfolio_value": -1, "mu": 0, "sigma": 0.1}, "portfolio_value"),
        (
            compute.value_at_risk,
            {"portfolio_value": 1, "mu": 0, "sigma": 0.1, "confidence": 1.5},
            "confidence",
        ),
        (compute.value_at_risk, {"portfolio_value": 1, "returns": [0.1]}, "returns"),
        (
            compute.value_at_risk,
            {"portfolio_value": 1, "mu": 0, "sigma": 0.1, "simulations": 10**9},
            "simulations",
        ),
        (compute.optimise_portfolio, {"expected_returns": [0.1], "covariance": [[1, 2]]}, "covariance"),
        (compute.similarity_search, {"query": [1, 2], "corpus": [[1, 2, 3]]}, "corpus"),
        (compute.similarity_search, {"query": [float("nan")], "corpus": [[1]]}, "query"),
    ],
)
def test_bad_numeric_input_is_a_clear_error(function, data, message):
    with pytest.raises(ValueError, match=message):
        function(data, NEVER)


async def test_compute_worker_asks_for_missing_input_and_then_works():
    worker = ComputeWorker("var", compute.value_at_risk)
    first = Message(role="user", parts=[Part.of_data({"confidence": 0.95})])
    asked = await worker.run(request_with(first))
    assert isinstance(asked, NeedsInput) and set(asked.missing) == {"portfolio_value", "returns"}
    second = Message(role="user", parts=[Part.of_data({"portfolio_value": 100.0, "mu": 0.0, "sigma": 0.02})])
    result = await worker.run(request_with(first, second))
    assert result.artifacts[0].parts[0].data["confidence"] == 0.95
    assert result.usage.compute_seconds > 0


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
    expected = (
        task["metadata"]["coalesce"]["quoteUsd"]
        + usage["inputTokens"] / 1000 * price.per_1k_input_tokens_usd
        + usage["outputTokens"] / 1000 * price.per_1k_output_tokens_usd
    )
    assert task["metadata"]["coalesce"]["costUsd"] == pytest.approx(expected, abs=1e-6)
