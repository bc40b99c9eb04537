"""The decision engine: weights (11, 13), confidence (18), Nash (16), and every strategy, with the rational
guard checked on random markets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.economics.cost_model import Offer, TaskProfile
from shared.economics.decision.engine import DecisionEngine, decision_confidence, nash_price
from shared.economics.decision.problem import CandidateOffer, Candidates, DecisionConfig, LocalOption, Problem
from shared.economics.decision.strategies import (
    STRATEGIES,
    UCB1,
    LocalOnly,
    Oracle,
    PaperDeterministic,
    PaperEpsilonGreedy,
    ThompsonSampling,
    make_strategy,
)
from shared.economics.decision.topsis import CRITERIA, DecisionError
from shared.economics.decision.weights import MarketSignals, correlation_adjusted_weights, market_weights

TASK = TaskProfile(flops=1e15, value_usd=100.0)


def offers(*rows: tuple[str, float, float, float]) -> list[CandidateOffer]:
    """(contractor, compatibility, price, latency) rows."""
    return [
        CandidateOffer(c, "skill", compat, Offer(price_usd=price, latency_s=latency, p_security=0.01))
        for c, compat, price, latency in rows
    ]


def problem(
    engine: DecisionEngine,
    rows: list[CandidateOffer],
    local_cost: float = 10.0,
    local_ok: bool = True,
    truth: list[float] | None = None,
    at: float = 0.0,
) -> Problem:
    return Problem(
        value_usd=100.0,
        value_at_stake=20.0,
        local=LocalOption(cost_usd=local_cost, latency_s=60, available=local_ok),
        candidates=engine.candidates(rows, TASK, at),
        true_reliability=None if truth is None else np.array(truth),
    )


# ---------------------------------------------------------------- weights and confidence


def test_market_weights_follow_signals_with_beta():
    signals = MarketSignals(market_pressure=1.0, failure_rate=0.0, task_urgency=0.0, risk_level=0.0)
    weights = market_weights(signals, np.full(4, 0.25), beta=0.7)
    assert weights == pytest.approx(np.array([0.7 + 0.075, 0.075, 0.075, 0.075]))
    assert weights.sum() == pytest.approx(1.0)


def test_correlation_adjustment_by_hand():
    # cost and latency perfectly correlated, reliability perfectly anti-correlated with both, security constant
    matrix = np.array([[1.0, 0.9, 10.0, 0.1], [2.0, 0.8, 20.0, 0.1], [3.0, 0.7, 30.0, 0.1]])
    weights = np.full(4, 0.25)
    adjusted = correlation_adjusted_weights(matrix, weights, alpha=0.3)
    # (11): each of the three varying criteria has Σ|ρ| = 2 → × 0.4; security keeps × 1
    raw = np.array([0.25 * 0.4, 0.25 * 0.4, 0.25 * 0.4, 0.25])
    assert adjusted == pytest.approx(raw / raw.sum())
    assert correlation_adjusted_weights(matrix[:2], weights, 0.3) == pytest.approx(weights)  # too few rows


def test_weight_learning_credits_what_the_chosen_contractor_was_good_at():
    engine = DecisionEngine(UCB1())
    rows = [
        CandidateOffer(c, "skill", 0.9, Offer(price_usd=p, latency_s=30, p_security=0.01))
        for c, p in (("cheap", 1.0), ("pricey", 2.0))
    ]
    evaluation = engine.evaluate(problem(engine, rows))
    engine.learn(evaluation, 0, 0, -1.0)  # hiring "cheap" went wrong
    # (13): "cheap" was best on cost (goodness 1), alike on the rest (0.5): v − mean = [3, −1, −1, −1] / 8
    expected = np.full(4, 0.25) - 0.01 * np.array([3, -1, -1, -1]) / 8
    np.testing.assert_allclose(engine.learner.weights, expected)
    engine.learn(evaluation, 0, 1, -1.0)  # and hiring "pricey" went wrong too: the nudge is undone
    np.testing.assert_allclose(engine.learner.weights, np.full(4, 0.25), atol=1e-12)


def test_confidence_by_hand():
    # (18): 1 − 1.96 √(0.9 × 0.1) / √25
    assert decision_confidence(0.9, 25) == pytest.approx(1 - 1.96 * 0.3 / 5)
    assert decision_confidence(0.5, 0) == 0.0
    assert decision_confidence(0.5, 1) == pytest.approx(0.02)
    assert decision_confidence(0.5, 1, z=2.576) == 0.0  # clipped at 0


def test_nash_price_splits_the_surplus():
    assert nash_price(10.0, 4.0) == pytest.approx(7.0)
    assert nash_price(10.0, 4.0, client_power=0.8) == pytest.approx(5.2)
    assert nash_price(3.0, 4.0) is None


def test_config_defaults_are_the_papers():
    c = DecisionConfig()
    assert (
        c.epsilon,
        c.skill_threshold,
        c.topsis_threshold,
        c.confidence_threshold,
        c.learning_rate,
        c.market_beta,
        c.correlation_alpha,
    ) == (0.1, 0.7, 0.6, 0.8, 0.01, 0.7, 0.3)
    assert 0.1 <= c.calibration_lambda <= 0.3


# ---------------------------------------------------------------- strategies


CHEAP_AND_NEW = offers(("cheap", 0.9, 1.0, 30.0), ("pricey", 0.9, 8.0, 20.0))


def test_paper_rule_cannot_start_cold():
    engine = DecisionEngine(PaperDeterministic())
    decision = engine.decide(problem(engine, CHEAP_AND_NEW))
    assert decision.action == "local" and "confidence" in decision.reason  # no record, confidence 0


def test_ucb1_tries_an_untried_cheap_contractor_at_once():
    engine = DecisionEngine(UCB1())
    decision = engine.decide(problem(engine, CHEAP_AND_NEW))
    assert decision.action == "outsource" and decision.contractor == "cheap"
    record = decision.record()
    assert record["strategy"] == "ucb1" and set(record["weights"]) == set(CRITERIA)
    assert record["candidatesEligible"] == 2 and record["thresholds"]["skill"] == 0.7


def test_skill_threshold_filters_and_local_is_the_fallback():
    engine = DecisionEngine(UCB1())
    unskilled = offers(("cheap", 0.5, 1.0, 30.0))
    decision = engine.decide(problem(engine, unskilled))
    assert decision.action == "local" and "skill threshold" in decision.reason
    forced = engine.decide(problem(engine, unskilled, local_ok=False))
    assert forced.action == "outsource" and "cannot run locally" in forced.reason
    assert engine.decide(problem(engine, [])).action == "local"


@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - {"local-only"}))
def test_a_client_that_cannot_work_locally_always_hires(name: str):
    engine = DecisionEngine(make_strategy(name))
    pricey = offers(("a", 0.9, 50.0, 30.0), ("b", 0.8, 60.0, 30.0))
    decision = engine.decide(problem(engine, pricey, local_ok=False, truth=[0.9, 0.9]))
    assert decision.action == "outsource"


def test_oracle_uses_the_truth():
    engine = DecisionEngine(Oracle())
    rows = offers(("looks-good", 0.9, 2.0, 30.0), ("looks-bad", 0.9, 3.0, 30.0))
    decision = engine.decide(problem(engine, rows, truth=[0.2, 0.99]))
    assert decision.contractor == "looks-bad"  # 2 + 20 × 0.8 + ... > 3 + 20 × 0.01 + ...
    assert engine.decide(problem(engine, rows, local_cost=1.0, truth=[0.2, 0.99])).action == "local"
    with pytest.raises(DecisionError):
        engine.decide(problem(engine, rows))


def test_epsilon_greedy_explores_about_epsilon_of_the_time():
    engine = DecisionEngine(PaperEpsilonGreedy(), DecisionConfig(epsilon=0.2), seed=11)
    decisions = [engine.decide(problem(engine, CHEAP_AND_NEW, local_cost=100.0)) for _ in range(2000)]
    explored = sum(d.exploration for d in decisions)
    assert 0.17 < explored / 2000 < 0.23
    assert all(d.confidence == 0.7 for d in decisions if d.exploration)
    assert all(d.action == "local" for d in decisions if not d.exploration)  # the cold rule, as in the paper


def learn_loop(strategy, rounds: int = 400, seed: int = 3) -> list[str]:
    """Two contractors that look alike; only one really delivers. Returns who was hired each round."""
    rng = np.random.default_rng(seed)
    engine = DecisionEngine(strategy, seed=seed)
    truth = {"good": 0.95, "flaky": 0.3}
    rows = offers(("good", 0.9, 2.0, 30.0), ("flaky", 0.9, 1.5, 30.0))
    hired = []
    for t in range(rounds):
        decision = engine.decide(problem(engine, rows, at=float(t)))
        hired.append(decision.contractor or "local")
        if decision.action == "outsource":
            success = bool(rng.random() < truth[decision.contractor])
            cost = 2.0 if success else 2.0 + 10.0
            engine.observe(decision, success, cost, at=float(t))
    return hired


@pytest.mark.parametrize("strategy", [UCB1, ThompsonSampling])
def test_bandits_learn_which_contractor_delivers(strategy):
    hired = learn_loop(strategy())
    late = hired[-150:]
    assert late.count("good") / len(late) > 0.85
    assert "flaky" in hired  # both were tried: no cold start


def test_same_seed_same_decisions():
    for name in ("paper-epsilon-greedy", "thompson"):
        first = learn_loop(make_strategy(name), rounds=120, seed=5)
        again = learn_loop(make_strategy(name), rounds=120, seed=5)
        assert first == again
    assert learn_loop(ThompsonSampling(), 120, 5) != learn_loop(ThompsonSampling(), 120, 6)


def test_observe_updates_the_record_behind_confidence():
    engine = DecisionEngine(UCB1())
    rows = offers(("cheap", 0.9, 1.0, 30.0))
    for t in range(30):
        decision = engine.decide(problem(engine, rows, at=float(t)))
        engine.observe(decision, True, 1.0, at=float(t))
    assert engine.hires["cheap"] == 30 and engine.good_hires["cheap"] == 30
    later = DecisionEngine(PaperDeterministic())
    later.hires, later.good_hires, later.reputation = engine.hires, engine.good_hires, engine.reputation
    decision = later.decide(problem(later, rows + offers(("other", 0.9, 5.0, 90.0))))
    assert decision.action == "outsource" and decision.contractor == "cheap" and decision.confidence == 1.0


def test_unknown_strategy_and_bad_candidates_are_clear_errors():
    with pytest.raises(DecisionError):
        make_strategy("coin-flip")
    with pytest.raises(DecisionError):
        Candidates(["a"], ["s"], *[np.array([np.nan])] + [np.zeros(1)] * 9)


# ---------------------------------------------------------------- the rational guard on random markets

market = st.lists(
    st.tuples(
        st.floats(0.0, 1.0),
        st.floats(0.01, 50.0),
        st.floats(1.0, 600.0),
        st.floats(0.0, 0.3),
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(market, st.floats(0.01, 40.0), st.floats(0.0, 0.5), st.sampled_from(sorted(STRATEGIES)), st.integers(0, 99))
def test_guard_never_outsources_at_a_higher_expected_cost(rows, local_cost, local_failure, name, seed):
    engine = DecisionEngine(make_strategy(name), seed=seed)
    for i, (_, _, _, _, wins, losses) in enumerate(rows):
        for _ in range(wins):
            engine.reputation.record(f"c{i}", "skill", True, at=0.0)
        for _ in range(losses):
            engine.reputation.record(f"c{i}", "skill", False, at=0.0)
        engine.hires[f"c{i}"], engine.good_hires[f"c{i}"] = wins + losses, wins
    candidate_offers = [
        CandidateOffer(f"c{i}", "skill", compat, Offer(price, latency, p_security=security))
        for i, (compat, price, latency, security, _, _) in enumerate(rows)
    ]
    p = Problem(
        value_usd=50.0,
        value_at_stake=25.0,
        local=LocalOption(local_cost, 60.0, local_failure),
        candidates=engine.candidates(candidate_offers, TASK, 0.0),
        deadline_s=300.0,
        true_reliability=np.random.default_rng(seed).uniform(0.3, 1.0, len(rows)),
    )
    decision = engine.decide(p)
    if decision.action == "local":
        return
    assert decision.expected_external_cost is not None
    if name == "paper-epsilon-greedy" and decision.exploration:
        c = p.candidates
        i = decision.candidate_index
        a, b = c.success_a[0, i], c.success_b[0, i]
        credit = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) * p.value_at_stake  # eq. (20)
        assert decision.expected_external_cost - credit < p.expected_local_cost[0]
    else:
        assert decision.expected_external_cost < p.expected_local_cost[0]
    assert name != LocalOnly.name


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 7),
    st.integers(0, 1000),
    st.sampled_from(["paper-deterministic", "ucb1", "oracle"]),
)
def test_a_batch_decides_each_problem_as_if_alone(batch, n, seed, name):
    """The simulator decides a market step as one batch; the client decides one problem: same answers."""
    rng = np.random.default_rng(seed)

    def arrays(low, high):
        return rng.uniform(low, high, (batch, n))

    fields = dict(
        compatibility=arrays(0.5, 1.0),
        price=arrays(0.1, 20),
        latency_s=arrays(1, 300),
        p_security=arrays(0, 0.1),
        p_quality=arrays(0, 0.1),
        overhead=arrays(0, 2),
        success_a=arrays(1, 20),
        success_b=arrays(1, 20),
        good_decisions=np.zeros((batch, n)),
        hires=rng.integers(0, 5, (batch, n)).astype(float),
    )
    fields["good_decisions"] = np.minimum(fields["hires"], rng.integers(0, 5, (batch, n)))
    local = dict(
        cost=rng.uniform(0.1, 30, batch),
        latency=rng.uniform(1, 300, batch),
        failure=rng.uniform(0, 0.3, batch),
        available=rng.random(batch) < 0.8,
    )
    value, deadline, truth = rng.uniform(1, 50, batch), rng.uniform(30, 600, batch), rng.uniform(0.3, 1, (batch, n))
    ids = [f"c{i}" for i in range(n)]

    def problem(rows):
        return Problem(
            value_usd=value[rows],
            value_at_stake=value[rows],
            local=LocalOption(
                local["cost"][rows], local["latency"][rows], local["failure"][rows], local["available"][rows]
            ),
            candidates=Candidates(ids, ["s"] * n, **{k: v[rows] for k, v in fields.items()}),
            deadline_s=deadline[rows],
            true_reliability=truth[rows],
        )

    together = DecisionEngine(make_strategy(name)).choose(problem(np.arange(batch)))
    for row in range(batch):
        alone = DecisionEngine(make_strategy(name)).choose(problem(np.array([row])))
        assert alone.hire[0] == together.hire[row]
        assert alone.reason[0] == together.reason[row]
        np.testing.assert_allclose(alone.cost[0], together.cost[row])


def test_thompson_explores_a_local_worker_it_knows_little_of_and_settles_once_it_knows():
    """The local option is learnt like any contractor's: with no evidence its quality is sampled too, so an
    unknown local worker gets tried; once it is known to be good it keeps the work it does cheaper."""

    def local_share(a: float, b: float) -> float:
        engine = DecisionEngine(make_strategy("thompson"), DecisionConfig(), seed=3)
        for _ in range(20):  # the contractor is known good: twenty right answers
            engine.reputation.record("known", "skill", True, 0.0)
        picks = []
        for _ in range(300):
            local = LocalOption(cost_usd=0.0, latency_s=1.0, p_failure=b / (a + b), quality_a=a, quality_b=b)
            rows = offers(("known", 0.9, 0.5, 1.0))
            decided = Problem(
                value_usd=10.0, value_at_stake=10.0, local=local, candidates=engine.candidates(rows, TASK, 0.0)
            )
            picks.append(engine.decide(decided).action == "local")
        return sum(picks) / len(picks)

    assert 0.1 < local_share(1.0, 1.0) < 0.9  # unknown: sometimes tried
    assert local_share(40.0, 1.0) > 0.9  # known good and cheaper: it keeps the work
