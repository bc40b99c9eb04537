"""The simulator's outcome model: properties over many draws (quality, checks, breaches, skill fit, the money
split) and the `local-market` preset's agents against the recording they come from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.market import MONEY, SPECS, TASK_TYPES, Market, Step
from simulator.recorded import RECORDING, TASK_TYPE_OF_SKILL, live_market
from simulator.run import RunConfig, metrics, simulate


def steps(market: Market, hours: int) -> list[Step]:
    return [s for s in (market.step(h) for h in range(hours)) if len(s)]


def hire_everyone(step: Step) -> tuple[np.ndarray, np.ndarray]:
    """Every (task, contractor) pair, as rows and hires."""
    rows, hires = np.indices(step.price.shape)
    return rows.ravel(), hires.ravel()


def test_a_perfect_agent_loses_no_value():
    market = Market("paper", clients=20, contractors=12, seed=4)
    market.reliability[:] = 1.0
    market.p_right = np.ones_like(market.p_right)
    for step in steps(market, 6):
        rows, hires = hire_everyone(step)
        money, _, observed, right = step.hired_outcome(rows, hires, step.local_outcome())
        assert right.all() and observed.all() and not money.value_lost.any()
        assert np.allclose(money.paid, step.price[rows, hires])  # every answer passes, so every one is paid


def test_breaches_happen_at_their_rate_and_cost_value_times_sensitivity():
    market = Market("paper", clients=60, contractors=20, seed=5)
    drawn = steps(market, 24)
    breaches = np.concatenate([s.breach.ravel() for s in drawn])
    rate = np.concatenate([s.p_security.ravel() for s in drawn]).mean()
    assert breaches.sum() > 50
    assert abs(breaches.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / breaches.size)
    step = drawn[0]
    rows, hires = hire_everyone(step)
    money, *_ = step.hired_outcome(rows, hires, step.local_outcome())
    leaked = step.breach[rows, hires]
    assert np.allclose(money.breach[leaked], (step.value * step.risk_level)[rows][leaked])
    assert not money.breach[~leaked].any()


def test_the_check_lets_wrong_answers_through_at_one_minus_its_detection():
    market = Market("paper", clients=60, contractors=20, seed=6)
    wrong_passed, expected, count = 0.0, 0.0, 0
    for step in steps(market, 24):
        p_right = market.p_right[step.task_type]
        wrong_passed += (step.passes & ~step.right).sum()
        expected += ((1.0 - p_right) * (1.0 - step.detection[:, None])).sum()
        count += step.passes.size
    assert wrong_passed > 100
    assert abs(wrong_passed - expected) < 4 * np.sqrt(expected)


def test_skill_fit_changes_the_chance_of_a_right_answer():
    market = Market("paper", clients=10, contractors=400, seed=7)
    fit = market.fit.mean(axis=2)
    good_fit, poor_fit = market.p_right[fit >= 0.9], market.p_right[(fit > 0) & (fit <= 0.5)]
    assert good_fit.mean() > 0.9 and poor_fit.mean() < 0.5
    good, poor = [], []
    for step in steps(market, 3):
        pair_fit = fit[step.task_type]  # (B, n)
        good.append(step.right[pair_fit >= 0.9])
        poor.append(step.right[(pair_fit > 0) & (pair_fit <= 0.5)])
    assert np.concatenate(good).mean() > 0.9 > 0.5 > np.concatenate(poor).mean()


@pytest.fixture(scope="module")
def penalised() -> dict[str, dict[str, dict]]:
    out = {}
    for penalty in (False, True):
        config = RunConfig("p", clients=6, contractors=12, days=2, seed=3, outcomes={"deadline_penalty": penalty})
        out[str(penalty)] = {r["strategy"]: r for r in metrics(config, simulate(config))}
    return out


def test_the_money_columns_sum_to_the_total(penalised):
    for rows in penalised.values():
        for row in rows.values():
            assert sum(row[f"{name}_usd"] for name in MONEY) == pytest.approx(row["total_usd"], rel=1e-9)
        local = rows["local-only"]
        assert local["paid_usd"] == local["overhead_usd"] == local["breach_usd"] == 0.0
        assert local["value_lost_usd"] > 0.0 and local["quality"] < 1.0


def test_the_deadline_penalty_is_an_option_and_shows_in_its_own_column(penalised):
    off, on = penalised["False"], penalised["True"]
    assert all(row["penalty_usd"] == 0.0 for row in off.values())
    assert on["local-only"]["penalty_usd"] > 0.0
    assert on["local-only"]["value_lost_usd"] == pytest.approx(off["local-only"]["value_lost_usd"])  # same luck
    assert SPECS["paper"]["outcomes"]["deadline_penalty"] is False and "source" in SPECS["paper"]["outcomes"]


def recorded_attempts() -> dict[tuple[str, str], list[dict]]:
    raw = json.loads(RECORDING.read_text())
    names = {**raw["agents"], "local": "local"}
    out: dict[tuple[str, str], list[dict]] = {}
    for item in raw["evaluation"]:
        for agent, attempt in item["attempts"].items():
            out.setdefault((names[agent], TASK_TYPE_OF_SKILL[item["skill"]]), []).append(attempt)
    return out


def test_the_local_market_agents_are_the_recorded_ones():
    live = live_market()
    attempts = recorded_attempts()
    assert set(live.agents) == {name for name, _ in attempts if name != "local"} and len(live.agents) == 9
    for (name, task_type), recorded in attempts.items():
        measured = live.local[task_type] if name == "local" else live.measured[name][task_type]
        delivered = np.mean([a["grade"] if a["passed"] else 0.0 for a in recorded])  # the replay's delivered grade
        assert measured.delivered == pytest.approx(delivered)
        assert measured.reliability * measured.pass_rate * measured.quality == pytest.approx(delivered)
        assert measured.cost_usd == pytest.approx(np.mean([a["cost_usd"] for a in recorded]))
        assert measured.seconds == pytest.approx(np.mean([a["seconds"] for a in recorded]))
    market = Market("local-market", clients=1, contractors=9, seed=1)
    assert sorted(market.type_names[k] for k in market.kind) == sorted(live.agents)  # the live market: each once
    many = Market("local-market", clients=1, contractors=9 * 200, seed=1)  # 200 instances of each agent
    for t, task_type in enumerate(TASK_TYPES):
        for k, name in enumerate(many.type_names):
            record, mine = live.measured[name].get(task_type), many.kind == k
            if record is None:
                assert not many.reliability[t, mine].any()  # a skill it lacks: never available
                continue
            for drawn, rate, trials in (
                (many.reliability, record.reliability, record.attempts),
                (many.pass_rate, record.pass_rate, record.answered),
                (many.p_right, record.quality, record.passed),
            ):  # each instance draws from the posterior of its agent's record: on average, the record
                assert drawn[t, mine].mean() == pytest.approx(rate, abs=1.0 / (trials + 1) + 0.02)


def test_the_local_market_reproduces_the_recorded_local_quality():
    config = RunConfig("live", market="local-market", clients=4, contractors=9, days=5, seed=2)
    local = {r["strategy"]: r for r in metrics(config, simulate(config))}["local-only"]
    live = live_market()
    expected = sum(live.mix[t] * live.local[t].delivered for t in live.mix)
    assert local["quality"] == pytest.approx(expected, abs=4 * np.sqrt(0.25 / local["tasks"]))


def test_the_paper_markets_detection_is_the_one_measured_live():
    live = live_market()
    for task_type in TASK_TYPES:
        assert SPECS["paper"]["task_types"][task_type]["detection"] == pytest.approx(
            live.detection[task_type], abs=0.005
        )


def test_gold_probes_cost_their_price_and_reveal_the_truth():
    market = Market("paper", clients=40, contractors=10, seed=8)
    step = steps(market, 1)[0]
    step.probed[:] = np.arange(len(step)) % 2 == 0  # every other task probed
    rows, hires = np.arange(len(step)), np.full(len(step), 3)
    local = step.local_outcome()
    plain, _, seen, _ = step.hired_outcome(rows, hires, local)
    probed, _, truth, _ = step.hired_outcome(rows, hires, local, probing=True)
    assert np.allclose(probed.overhead - plain.overhead, step.probed * step.price[rows, hires])
    ok = step.delivers[rows, hires] & step.passes[rows, hires]
    assert np.array_equal(seen, ok)  # without probes the client sees only its check
    assert np.array_equal(truth, np.where(step.probed, ok & step.right[rows, hires], ok))
    observed, cost = step.local_observed(probing=True)
    assert np.allclose(cost, step.probed * step.local_cost)
    assert np.array_equal(observed[step.probed], (step.local_passes[:, 0] & step.local_right[:, 0])[step.probed])
    assert not step.local_observed(probing=False)[1].any()


def test_the_interval_is_students_t():
    from simulator.experiments import interval

    assert interval(1.0, 20) == pytest.approx(2.093 / np.sqrt(20), rel=1e-3)
    assert np.isnan(interval(1.0, 1))
