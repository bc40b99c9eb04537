"""The replay of strategies on a recording, on a recording made here by hand: two contractors (one right and cheap,
one wrong and dear) and the client's own worker (right half the time)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from client_agent.state import LOCAL
from coalesce.validation import report
from coalesce.validation.recording import Attempt, Item, Recording
from coalesce.validation.replay import LEARNING, STRATEGY_ORDER, oracle_attempt, replay

SKILL = "sentiment-analysis"


def attempt(agent: str, grade: float, cost: float, passed: bool = True) -> Attempt:
    return Attempt(agent, True, passed, False, grade, cost, cost, 0.9, 1.0, 0.5)


def recording(items: int = 120, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)

    def item(i: int, split: str) -> Item:
        attempts = {
            "good": attempt("good", float(rng.random() < 0.95), 0.00002),
            "bad": attempt("bad", float(rng.random() < 0.3), 0.0002),
            LOCAL: attempt(LOCAL, float(rng.random() < 0.5), 0.00005),
        }
        subtask = {"skill": SKILL, "description": f"Classify: headline {i}", "required_skills": [f"skill:{SKILL}"]}
        return Item(f"{split}-{i}", SKILL, 0.2, subtask, {"label": "positive"}, attempts)

    return Recording(
        {"good": "Good", "bad": "Bad"},
        [item(i, "eval") for i in range(items)],
        [item(i, "gold") for i in range(30)],
    )


@pytest.fixture(scope="module")
def results():
    return replay(recording(), STRATEGY_ORDER, seeds=3)


def test_the_oracle_is_never_beaten_on_total_cost(results):
    oracle = min(r.total_cost_usd for r in results if r.strategy == "oracle")
    assert all(r.total_cost_usd >= oracle - 1e-12 for r in results)
    item = recording().evaluation[0]
    best = oracle_attempt(item)
    assert all(
        best.cost_usd + 0.2 * (1 - best.delivered_grade()) <= a.cost_usd + 0.2 * (1 - a.delivered_grade())
        for a in item.attempts.values()
    )


def test_all_local_counts_the_local_answers_exactly(results):
    rec = recording()
    local = next(r for r in results if r.strategy == "all-local")
    assert local.spend_usd == pytest.approx(sum(i.attempts[LOCAL].cost_usd for i in rec.evaluation))
    assert local.correct == pytest.approx(sum(i.attempts[LOCAL].grade for i in rec.evaluation))
    assert local.probe_usd == 0 and local.outsourced == 0


def test_learning_strategies_find_the_good_contractor_and_pay_for_probes(results):
    for r in (x for x in results if x.strategy == "thompson"):
        assert r.chosen.get("good", 0) > r.subtasks / 2, r.chosen
        assert r.chosen.get("bad", 0) < r.subtasks / 10, r.chosen
    for r in (x for x in results if x.strategy in LEARNING):
        assert r.probes > 0 and r.probe_usd > 0
    fixed = {r.strategy: r for r in results if r.seed == 0}
    assert fixed["always-best"].chosen == {"good": 120} and fixed["always-cheapest"].chosen == {"good": 120}


def test_the_report_has_the_columns_and_the_goals(results, tmp_path):
    report.write(results, recording(), tmp_path, "test", with_plots=False)
    with (tmp_path / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    required = (
        "strategy seed subtasks spend_usd value_lost_usd total_cost_usd quality correct cost_per_correct_usd time_s"
    )
    assert set(required.split()) <= set(rows[0])
    assert len(rows) == len(STRATEGY_ORDER) * 3
    assert {r["strategy"] for r in rows} == set(STRATEGY_ORDER) and set(LEARNING) < set(STRATEGY_ORDER)
    text = (tmp_path / "results.md").read_text()
    assert "## Goals" in text and "oracle" in text


def test_intervals_cover_the_mean():
    iv = report.interval([1.0, 2.0, 3.0])
    assert iv.low < 2.0 == iv.mean < iv.high
    assert report.interval([5.0, 5.0]).text() == "5.0000"
