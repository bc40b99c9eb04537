"""Compute workers: numeric results checked against closed forms, on both backends."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.stats import norm

from shared.a2a.models import AgentSkill, Message, Part
from shared.workers import compute
from shared.workers.base import NeedsInput, WorkRequest
from shared.workers.compute import ComputeWorker

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
