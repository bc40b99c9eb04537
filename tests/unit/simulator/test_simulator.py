"""The market simulator: honest scoring, common random numbers, determinism, and the CLI's outputs."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from simulator.experiments import expand, run_all
from simulator.market import SPECS, Market
from simulator.reference import ReferenceRule, minmax_topsis
from simulator.run import (
    EngineAgent,
    LocalBaseline,
    RunConfig,
    hours,
    merge,
    metrics,
    regret_series,
    simulate,
    simulate_runs,
)


@pytest.fixture(scope="module")
def three_days() -> dict:
    config = RunConfig("t", clients=8, contractors=16, days=3, seed=11)
    return {r["strategy"]: r for r in metrics(config, simulate(config))}


def test_the_local_baseline_decides_as_the_engines_local_only_strategy():
    config = RunConfig("t", clients=8, contractors=16, days=1, seed=5)
    markets = [Market(config.market, config.clients, config.contractors, seed, config.outcomes) for seed in (5, 6)]
    engine = EngineAgent("local-only", config, markets)
    for hour in (9, 14):
        step, stream = merge([market.step(hour) for market in markets])
        assert len(step) > 0
        expected, baseline = engine.decide(step, stream), LocalBaseline().decide(step, stream)
        for name in ("hire", "exploration", "score"):
            np.testing.assert_array_equal(getattr(baseline, name), getattr(expected, name))


def test_every_market_parameter_has_a_source():
    for market in SPECS.values():
        assert "source" in market["outcomes"] and "source" in market["arrivals"]
        for name, kind in market.get("contractor_types", {}).items():
            assert "source" in kind or market is SPECS["reference"], name
        shares = sum(k["share"] for k in market.get("contractor_types", {"all": {"share": 1}}).values())
        assert shares == pytest.approx(1.0, abs=0.01)
    assert "source" in SPECS["paper"]["arrivals"] and "source" in SPECS["paper"]["client"]


def test_local_only_is_the_baseline_and_the_oracle_the_yardstick(three_days):
    local, oracle = three_days["local-only"], three_days["oracle"]
    assert local["cost_reduction"] == 0.0 and local["time_savings"] == 0.0 and local["outsourcing_rate"] == 0.0
    assert oracle["regret"] == 0.0
    assert local["regret"] == pytest.approx(oracle["cost_reduction"])  # the same tasks, the same luck
    assert len({r["tasks"] for r in three_days.values()}) == 1


def test_the_papers_deterministic_rule_cannot_start_cold(three_days):
    assert three_days["paper-deterministic"]["outsourcing_rate"] == 0.0


def test_thompson_learns_to_save_but_not_as_much_as_the_oracle(three_days):
    thompson, oracle = three_days["thompson"], three_days["oracle"]
    assert thompson["outsourcing_rate"] > 0.2 and 0.1 < thompson["cost_reduction"] < oracle["cost_reduction"]
    assert thompson["quality"] > three_days["local-only"]["quality"]


def test_a_failed_hire_costs_more_than_doing_it_locally():
    market = Market("paper", clients=10, contractors=12, seed=3)
    step = market.step(10)
    rows = np.arange(len(step))
    step.delivers[:] = False  # every hire fails: it is not paid, but done locally, later
    local = step.local_outcome()
    money, time, observed, right = step.hired_outcome(rows, np.zeros(len(step), dtype=int), local)
    assert not observed.any() and not money.paid.any()
    assert np.array_equal(right, local[2])  # the local answer is what the client is left with
    assert np.all(money.total > local[0].total - 1e-12) and np.all(time > local[1])


def test_runs_of_every_length_read_off_one_simulation_are_the_runs_themselves():
    # 1 day ends on a day's end, 1.5 days in the middle of one (its partial day closed), 2.5 days is the longest;
    # run_all simulates the family once, to 2.5 days, with both of its runs in lock step
    lengths = {"a": 1.0, "b": 1.5, "c": 2.5}
    configs = expand([RunConfig(name, clients=3, contractors=6, days=days) for name, days in lengths.items()], 2)
    rows, series = run_all(configs, workers=1)
    for name, days in lengths.items():
        alone = expand([RunConfig(name, clients=3, contractors=6, days=days)], 2)
        expected = [
            (metrics(c, t), regret_series(t)) for c, t in zip(alone, simulate_runs(alone)[hours(alone[0])], strict=True)
        ]
        by_run = sorted((r for r in rows if r["config"] == name), key=lambda r: r["run"])  # stable: strategies kept
        assert repr(by_run) == repr([row for m, _ in expected for row in m])
        assert series[name] == {s: [regrets[s] for _, regrets in expected] for s in expected[0][1]}
        assert len(series[name]["oracle"][0]) == math.ceil(days)  # one point per day, the partial one included


def test_same_seed_same_results_different_seed_different():
    config = RunConfig("d", clients=4, contractors=8, days=1, seed=5)
    assert repr(metrics(config, simulate(config))) == repr(metrics(config, simulate(config)))  # NaN-safe
    other = RunConfig("d", clients=4, contractors=8, days=1, seed=6)
    assert repr(metrics(config, simulate(config))) != repr(metrics(other, simulate(other)))


def test_reference_rule_waits_ten_decisions_and_then_reads_its_own_history():
    rule = ReferenceRule(Market("reference", 15, 12, seed=1), seed=1)
    assert rule.confidence() == 0.8  # not > 0.8: no hire before ten recorded decisions
    rule.history = [0.0] * 10
    assert rule.confidence() == 1.0  # ten local decisions make it certain
    rule.history = [0.9, 0.0] * 25
    assert rule.confidence() == pytest.approx(1 - (2 * 0.5 / np.sqrt(50)) * 1.96)
    scores = minmax_topsis(np.array([[10.0, 0.9, 5.0, 0.9], [20.0, 0.8, 50.0, 0.8]]), np.full(4, 0.25))
    assert scores.tolist() == [1.0, 0.0]


def test_simulate_cli_writes_csv_markdown_and_plots(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coalesce.cli",
            "simulate",
            "--preset",
            "smoke",
            "--out",
            str(tmp_path),
            "--runs",
            "2",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    required = {
        "quality",
        "compute_usd",
        "paid_usd",
        "overhead_usd",
        "penalty_usd",
        "value_lost_usd",
        "breach_usd",
        "total_usd",
        "config",
        "strategy",
        "run",
        "seed",
        "cost_reduction",
        "time_savings",
        "outsourcing_rate",
        "exploration_rate",
        "success_rate",
        "regret",
    }
    assert required <= set(rows[0])
    assert {r["strategy"] for r in rows} >= {
        "local-only",
        "paper-deterministic",
        "paper-epsilon-greedy",
        "ucb1",
        "thompson",
        "oracle",
        "reference-code",
    }
    assert len(rows) == 2 * (6 + 7)
    assert all(0.0 <= float(r["outsourcing_rate"]) <= 1.0 for r in rows)
    assert "| config | strategy |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "regret_over_time.png").stat().st_size > 10_000
    assert (tmp_path / "money_split.png").stat().st_size > 10_000
    assert "value lost" in (tmp_path / "results.md").read_text()
