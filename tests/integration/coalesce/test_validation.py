"""A small validation run on the real local market (both embedded models, every contractor, real answers):
the recording, the replay of every strategy for three seeds, the live check, the report."""

from __future__ import annotations

import csv

from coalesce.validation.replay import STRATEGY_ORDER
from coalesce.validation.run import validate

COLUMNS = "strategy seed subtasks spend_usd value_lost_usd total_cost_usd quality correct cost_per_correct_usd time_s"


def test_a_small_validation_run_reports_every_strategy_and_the_oracle_is_never_beaten(tmp_path):
    sizes = {
        "sentiment-analysis": 3,
        "financial-document-analysis": 2,
        "risk-assessment": 1,
        "portfolio-optimisation": 1,
    }
    gold = {
        "sentiment-analysis": 2,
        "financial-document-analysis": 2,
        "risk-assessment": 1,
        "portfolio-optimisation": 1,
    }
    out = tmp_path / "out"
    validate(tmp_path / "state", out, "test", sizes, gold, seeds=3, live_items=2)
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert set(COLUMNS.split()) <= set(rows[0])
    assert sorted({r["strategy"] for r in rows}) == sorted(STRATEGY_ORDER)
    assert all(int(r["subtasks"]) == 7 for r in rows) and len(rows) == 3 * len(STRATEGY_ORDER)
    oracle = min(float(r["total_cost_usd"]) for r in rows if r["strategy"] == "oracle")
    assert all(float(r["total_cost_usd"]) >= oracle for r in rows)
    local = [r for r in rows if r["strategy"] == "all-local"]
    assert all(float(r["spend_usd"]) > 0 and r["outsourcing_rate"] == "0.0" for r in local)
    text = (out / "results.md").read_text()
    assert "## The live check" in text and "## Goals" in text and "Finance Lexicon" in text
    assert (out / "cost-quality.png").stat().st_size > 10_000 and (out / "learning.png").exists()
    assert (out / "recording.json").exists()
