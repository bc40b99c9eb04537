"""The seeded item generators: reproducible, varied, and their ground truth consistent with their text and data."""

from __future__ import annotations

import math

import numpy as np

from client_agent.gold import Expectation, grade, load_items
from coalesce.datagen import GAMMA, generate, gold_bank
from shared.a2a.models import Artifact, Part


def test_the_same_seed_gives_the_same_items_and_another_seed_others():
    for skill in ("sentiment-analysis", "financial-document-analysis"):
        assert generate(skill, 20, seed=5) == generate(skill, 20, seed=5)
        texts = {str(i["subtask"]) for i in generate(skill, 20, seed=5)}
        assert len(texts) == 20 and texts.isdisjoint(str(i["subtask"]) for i in generate(skill, 20, seed=6))
    labels = [i["truth"] for i in generate("sentiment-analysis", 300, seed=1)]
    assert {labels.count(label) for label in ("positive", "negative", "neutral")} == {100}


def test_document_truth_is_in_the_text_and_grades_a_right_answer_fully():
    for item in generate("financial-document-analysis", 60, seed=2):
        truth, text = item["truth"], item["subtask"]["input_text"]
        revenue = truth["revenue_musd"]
        stated = f"{revenue:g} million" in text or f"{revenue / 1000:.2f} billion" in text
        assert stated and f"{abs(truth['net_income_musd']):g} million" in text
        right = f"Revenue {revenue} million, net income {truth['net_income_musd']} million, outlook {truth['outlook']}."
        artifacts = [Artifact(name="a", parts=[Part.of_text(right)])]
        assert grade(Expectation.model_validate(item["expect"]), artifacts) == 1.0


def test_numeric_truth_is_the_closed_form_and_the_optimum():
    for item in generate("risk-assessment", 10, seed=3):
        data = item["subtask"]["input_data"]
        logs = np.log1p(np.asarray(data["returns"]))
        z = -2.3263478740408408  # the 1 % quantile of the normal
        horizon = data["horizon_days"]
        expected = -data["portfolio_value"] * math.expm1(
            logs.mean() * horizon + logs.std(ddof=1) * math.sqrt(horizon) * z
        )
        assert item["truth"]["var_parametric"] == round(expected, 2) and expected > 0
    for item in generate("portfolio-optimisation", 10, seed=4):
        weights = np.asarray(item["truth"]["weights"])
        data = item["subtask"]["input_data"]
        mu, sigma = np.asarray(data["expected_returns"]), np.asarray(data["covariance"])
        assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-5
        best = mu @ weights - GAMMA / 2 * weights @ sigma @ weights
        for _ in range(200):  # no random long-only portfolio does better
            other = np.random.default_rng(_).dirichlet(np.ones(len(mu)))
            assert mu @ other - GAMMA / 2 * other @ sigma @ other <= best + 1e-6


def test_the_default_gold_bank_loads_and_covers_every_task_type():
    items = load_items(gold_bank(per_skill=5))
    assert {i.skill for i in items} == {
        "sentiment-analysis",
        "financial-document-analysis",
        "risk-assessment",
        "portfolio-optimisation",
    }
    assert len({i.id for i in items}) == 20
