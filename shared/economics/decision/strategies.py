"""The decision strategies, from the paper's deterministic rule (Listing 1) and ε-greedy (Listing 2) to UCB1
and Thompson sampling, the all-local baseline and a hindsight oracle; `STRATEGIES` is their one registry.
"""

from __future__ import annotations

import numpy as np

from shared.economics.decision.engine import DecisionEngine, Strategy
from shared.economics.decision.problem import (
    ALWAYS_LOCAL,
    BELOW_THRESHOLDS,
    CANNOT_LOCAL,
    ESTIMATE_HIRE,
    EXPLORE,
    GUARD,
    GUARD_ESTIMATE,
    ORACLE_HIRE,
    ORACLE_LOCAL,
    PAPER_HIRE,
    Choice,
    Evaluation,
    best_among,
)
from shared.economics.decision.topsis import DecisionError

# ================================================================ strategies


class LocalOnly:
    """The baseline: everything runs on the client's machine."""

    name = "local-only"
    hindsight = False

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        batch = evaluation.scores.shape[0]
        choice = engine.choice(self.name, evaluation, np.full(batch, -1), np.full(batch, ALWAYS_LOCAL))
        choice.hire[:] = -1  # even where local is impossible: the baseline does not hire
        choice.reason[:] = ALWAYS_LOCAL
        return choice


def _paper_rule(evaluation: Evaluation, engine: DecisionEngine, name: str) -> Choice:
    """Listing 1: OUTSOURCE(best) if TOPSIS_best > τ and confidence > ρ_min, else LOCAL (plus the guard)."""
    config, problem = engine.config, evaluation.problem
    rows = np.arange(evaluation.scores.shape[0])
    best = best_among(evaluation.scores, evaluation.eligible)
    picked = np.maximum(best, 0)
    low = (evaluation.scores[rows, picked] <= config.topsis_threshold) | (
        evaluation.confidence[rows, picked] <= config.confidence_threshold
    )
    local_ok = problem.local_available
    afford = engine.affordable(problem, evaluation.matrix[..., 0])[rows, picked]
    hire = np.where((low & ~local_ok) | (~low & afford), best, -1)
    reason = np.select([low & local_ok, low, ~afford], [BELOW_THRESHOLDS, CANNOT_LOCAL, GUARD], PAPER_HIRE)
    return engine.choice(name, evaluation, hire, reason)


class PaperDeterministic:
    name = "paper-deterministic"
    hindsight = False

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        return _paper_rule(evaluation, engine, self.name)


class PaperEpsilonGreedy:
    """Listing 2: with probability ε, hire a random contractor (skill filter bypassed, safety kept, confidence
    0.7, marked as exploration); otherwise the deterministic rule. The guard counts the learning value of
    eq. (20): V_exploration = C_external − λ·I_learning, with I_learning the posterior standard deviation of
    the contractor's success probability times the value at stake (what knowing it better is worth)."""

    name = "paper-epsilon-greedy"
    hindsight = False

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        config, problem = engine.config, evaluation.problem
        c = problem.candidates
        batch = evaluation.scores.shape[0]
        rows = np.arange(batch)
        explore = np.asarray(engine.rng.random(batch) < config.epsilon)
        safe = c.available & (c.p_security <= config.max_security_risk)
        pick = np.argmax(np.where(safe, engine.rng.random(safe.shape), -1.0), axis=1)
        a, b = c.success_a[rows, pick], c.success_b[rows, pick]
        information = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) * problem.column(problem.value_at_stake)
        # (20) V_exploration = C_external + λ × I_learning (learning credited against the cost)
        value = evaluation.matrix[rows, pick, 0] - config.exploration_lambda * information
        explore &= safe.any(axis=1) & engine.affordable(problem, value[:, None])[:, 0]
        base = _paper_rule(evaluation, engine, self.name)
        if not explore.any():
            return base
        base.hire = np.where(explore, pick, base.hire)
        base.reason = np.where(explore, EXPLORE, base.reason)
        base.exploration = base.exploration | explore
        base.confidence = np.where(explore, config.exploration_confidence, base.confidence)
        base.score = np.where(explore, 0.5, base.score)  # TOPSIS over the one explored contractor
        base.cost = np.where(explore, evaluation.matrix[rows, pick, 0], base.cost)
        return base


def _choose_by_estimate(
    evaluation: Evaluation,
    engine: DecisionEngine,
    name: str,
    reliability: np.ndarray,
    estimate: str,
    local_quality: np.ndarray | None = None,
) -> Choice:
    """Re-evaluate the eligible candidates with `reliability` (optimistic or sampled), keep those the guard
    allows against the local option under the same estimate (`local_quality`, when the local worker's quality is
    learnt), hire the TOPSIS best; marked exploration when it differs from the choice under posterior means."""
    problem = evaluation.problem
    estimated = engine.evaluate(problem, reliability=reliability, base=evaluation)
    local_cost = None if local_quality is None else problem.local_cost(1.0 - local_quality)
    affordable = engine.affordable(problem, estimated.matrix[..., 0], local_cost)
    pick = best_among(estimated.scores, estimated.eligible & affordable)
    greedy = best_among(evaluation.scores, evaluation.eligible & engine.affordable(problem, evaluation.matrix[..., 0]))
    reason = np.where(pick >= 0, ESTIMATE_HIRE, GUARD_ESTIMATE)
    exploration = (pick >= 0) & (pick != greedy)
    return engine.choice(name, estimated, pick, reason, exploration, estimate=estimate, local_cost=local_cost)


class UCB1:
    """Optimism under uncertainty: each contractor's success probability is taken at its UCB1 bound,
    p̂ + c √(ln N / n); a contractor never hired counts as perfect until tried (no cold start)."""

    name = "ucb1"
    hindsight = False

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        problem = evaluation.problem
        c = problem.candidates
        prior = engine.reputation.config.prior_success + engine.reputation.config.prior_failure
        evidence = np.maximum(c.success_a + c.success_b - prior, 0.0)  # decayed observations of quality
        local_evidence = None
        if problem.local_learnt:
            local_a, local_b = problem.column(problem.local.quality_a), problem.column(problem.local.quality_b)
            local_evidence = np.maximum(local_a + local_b - prior, 0.0)
        total = evidence.sum(axis=1) + (0.0 if local_evidence is None else local_evidence)
        log_total = np.sqrt(np.log(np.maximum(total, 1.0) + 1.0))

        def bound(mean: np.ndarray, seen: np.ndarray, log_n: np.ndarray) -> np.ndarray:
            # p̂ + c √(ln N / n), perfect until tried
            bonus = np.divide(
                engine.config.ucb_exploration * log_n, np.sqrt(seen), out=np.full(seen.shape, np.inf), where=seen > 0
            )
            return np.minimum(mean + bonus, 1.0)

        optimistic = bound(c.reliability, evidence, log_total[:, None])
        local = None
        if local_evidence is not None:
            local_a, local_b = problem.column(problem.local.quality_a), problem.column(problem.local.quality_b)
            local = bound(local_a / (local_a + local_b), local_evidence, log_total)
        return _choose_by_estimate(evaluation, engine, self.name, optimistic, "optimistic (UCB1)", local)


class ThompsonSampling:
    """Each contractor's success probability is drawn from its Beta posterior; the draw decides."""

    name = "thompson"
    hindsight = False

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        problem = evaluation.problem
        c = problem.candidates
        sampled = engine.rng.beta(c.success_a, c.success_b)
        local = None
        if problem.local_learnt:
            local = engine.rng.beta(problem.column(problem.local.quality_a), problem.column(problem.local.quality_b))
        return _choose_by_estimate(evaluation, engine, self.name, sampled, "sampled (Thompson)", local)


class Oracle:
    """Hindsight: knows every contractor's true success probability and takes the lowest expected cost among
    local and all candidates (skill filter included). For evaluation only: regret is measured against it."""

    name = "oracle"
    hindsight = True  # the engine evaluates with the truth

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        problem = evaluation.problem
        rows = np.arange(evaluation.scores.shape[0])
        best = best_among(-evaluation.matrix[..., 0], evaluation.eligible)
        cheaper = evaluation.matrix[rows, np.maximum(best, 0), 0] < problem.expected_local_cost
        hire = np.where(cheaper | ~problem.local_available, best, -1)
        return engine.choice(self.name, evaluation, hire, np.where(hire >= 0, ORACLE_HIRE, ORACLE_LOCAL))


# The one registry of strategies, by name. LIVE_STRATEGIES: those a live client can run (the oracle needs the truth).
STRATEGIES: dict[str, type] = {
    s.name: s for s in (LocalOnly, PaperDeterministic, PaperEpsilonGreedy, UCB1, ThompsonSampling, Oracle)
}
LIVE_STRATEGIES = tuple(name for name in STRATEGIES if name != Oracle.name)


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise DecisionError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
