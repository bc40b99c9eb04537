"""The seeded item generators: reproducible, varied, and their ground truth consistent with their text and data."""

from __future__ import annotations

import math

import numpy as np
from text_to_num import alpha2digit

from client_agent.gold import Expectation, grade, load_items
from coalesce.datagen import EVALUATION_SIZES, GAMMA, HEADLINES, evaluation_set, generate, gold_bank, in_family
from shared.a2a.models import Artifact, Part


def test_the_same_seed_gives_the_same_items_and_another_seed_others():
    for skill in ("sentiment-analysis", "financial-document-analysis"):
        assert generate(skill, 20, seed=5) == generate(skill, 20, seed=5)
        texts = {str(i["subtask"]) for i in generate(skill, 20, seed=5)}
        assert len(texts) == 20 and texts.isdisjoint(str(i["subtask"]) for i in generate(skill, 20, seed=6))
    labels = [i["truth"] for i in generate("sentiment-analysis", 300, seed=1)]
    assert {labels.count(label) for label in ("positive", "negative", "neutral")} == {100}


def test_document_truth_is_in_the_text_and_grades_a_right_answer_fully():
    written_in_words = 0
    for item in generate("financial-document-analysis", 60, seed=2):
        truth, text = item["truth"], item["subtask"]["input_text"]
        digits = alpha2digit(text, "en")  # figures written in words, as digits
        written_in_words += digits != text
        revenue = truth["revenue_musd"]
        stated = f"{revenue:g} million" in text or f"{revenue / 1000:.2f} billion" in text
        stated = stated or f"{revenue * 1e6:.0f} dollars" in digits
        income = abs(truth["net_income_musd"])
        assert stated and (f"{income:g} million" in text or f"{income * 1e6:.0f} dollars" in digits)
        right = f"Revenue {revenue} million, net income {truth['net_income_musd']} million, outlook {truth['outlook']}."
        artifacts = [Artifact(name="a", parts=[Part.of_text(right)])]
        assert grade(Expectation.model_validate(item["expect"]), artifacts) == 1.0
    assert written_in_words > 0


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
        "similarity-search",
    }
    assert len({i.id for i in items}) == 25


def test_the_gold_bank_and_the_evaluation_set_are_written_from_disjoint_templates():
    for label, templates in HEADLINES.items():
        gold, held_out = set(in_family(templates, "gold")), set(in_family(templates, "evaluation"))
        assert gold and held_out and gold.isdisjoint(held_out), label
    gold_texts = {i["name"] for i in generate("sentiment-analysis", 100, seed=1000, family="gold")}
    held_out_texts = {i["name"] for i in generate("sentiment-analysis", 100, seed=2000, family="evaluation")}
    assert gold_texts.isdisjoint(held_out_texts)


def test_the_evaluation_set_is_big_enough_fixed_in_order_and_interleaved():
    assert EVALUATION_SIZES["sentiment-analysis"] + 100 >= 300
    assert EVALUATION_SIZES["financial-document-analysis"] + 100 >= 300
    assert min(EVALUATION_SIZES["risk-assessment"], EVALUATION_SIZES["portfolio-optimisation"]) >= 50
    sizes = {"sentiment-analysis": 12, "financial-document-analysis": 6, "risk-assessment": 3}
    first, again = evaluation_set(sizes), evaluation_set(sizes)
    assert [i["id"] for i in first] == [i["id"] for i in again] and len(first) == 21
    kinds = [i["kind"] for i in first]
    assert {k: kinds.count(k) for k in sizes} == sizes
    assert kinds[:6] != sorted(kinds[:6]) or len(set(kinds[:10])) > 1  # interleaved, not one type after another


def test_in_words_spells_whole_numbers():
    from coalesce.datagen import in_words

    assert in_words(371) == "three hundred and seventy-one"
    assert in_words(40) == "forty" and in_words(13) == "thirteen"
    assert alpha2digit(f"{in_words(2504)} million", "en").startswith("2504")
