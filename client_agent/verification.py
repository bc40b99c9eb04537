"""Checks a delivered result against its subtask's criteria before anything is paid.

Compute results are re-checked with numbers the client can afford to compute: a closed-form value at risk, the
optimality of portfolio weights on small problems, the cosine scores of the returned matches. Text results are
checked for substance and, when the spec lists labels, for exactly one of them; figures an answer about a document
states must occur in the document; an LLM judge can be asked for (only a model stronger than the workers it
judges is worth configuring as one).

A verdict is `graded` when a check that a wrong answer would fail has passed (a recomputed number, the judge):
only such a pass says anything about the agent's competence. A well-formed answer (a label, some text) passes
without being graded; any failed check is evidence against the agent.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from client_agent.answers import figures_of
from client_agent.models import SubtaskSpec
from shared.a2a.models import AgentSkill, Artifact, Message, Part
from shared.workers import compute
from shared.workers.base import WorkRequest, WorkResult
from shared.workers.llm import OpenAIChatWorker

MAX_TEXT_CHARS = 100_000
OPTIMALITY_CHECK_MAX_ASSETS = 60
MIN_FIGURE = 10.0  # smaller numbers in an answer (a quarter, a count) are not checked against the document
DOCUMENT_SKILLS = frozenset({"financial-document-analysis"})
# how many of a numeric check's items only say the answer is well formed; more passed items recomputed it
NUMERIC_FORMAT_CHECKS = {"risk-assessment": 1, "portfolio-optimisation": 2, "similarity-search": 2}


@dataclass
class Verdict:
    passed: bool
    checks: list[str] = field(default_factory=list)
    reason: str = ""
    graded: bool = False  # a check that a wrong answer would fail passed

    def wire(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks, "reason": self.reason, "graded": self.graded}


class Rejected(Exception):
    pass


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejected(f"'{name}' is not a finite number")
    return float(value)


def _data(artifacts: list[Artifact]) -> dict[str, Any]:
    for artifact in artifacts:
        for part in artifact.parts:
            if part.kind == "data" and isinstance(part.data, dict):
                return part.data
    raise Rejected("no data part in the result")


def _text(artifacts: list[Artifact]) -> str:
    return "\n".join(p.text for a in artifacts for p in a.parts if p.kind == "text" and p.text).strip()


def check_value_at_risk(result: dict[str, Any], inputs: dict[str, Any], tolerance: float) -> list[str]:
    var, cvar = _finite(result.get("var"), "var"), _finite(result.get("cvar"), "cvar")
    if var < 0 or cvar < var:
        raise Rejected(f"expected 0 <= VaR <= CVaR, got VaR {var:.4g} and CVaR {cvar:.4g}")
    checks = ["0 <= VaR <= CVaR"]
    if "portfolio_value" not in inputs:
        return checks
    value = float(inputs["portfolio_value"])
    horizon = int(inputs.get("horizon_days", 1))
    confidence = float(inputs.get("confidence", 0.99))
    if "returns" in inputs:
        logs = np.log1p(np.asarray(inputs["returns"], dtype=float))
        mu, sigma = float(logs.mean()), float(logs.std(ddof=1))
    else:
        mu, sigma = float(inputs["mu"]), float(inputs["sigma"])
    expected = -value * math.expm1(mu * horizon + sigma * math.sqrt(horizon) * norm.ppf(1 - confidence))
    if expected > 0 and abs(var - expected) > tolerance * expected:
        raise Rejected(f"VaR {var:.4g} is more than {tolerance:.0%} from the closed form {expected:.4g}")
    return [*checks, f"VaR within {tolerance:.0%} of the normal closed form {expected:.4g}"]


def check_portfolio(result: dict[str, Any], inputs: dict[str, Any], tolerance: float) -> list[str]:
    weights = np.asarray(result.get("weights", []), dtype=float)
    mu = np.asarray(inputs.get("expected_returns", []), dtype=float)
    if weights.ndim != 1 or len(weights) != len(mu) or not np.all(np.isfinite(weights)):
        raise Rejected(f"expected {len(mu)} finite weights, got {len(weights)}")
    if abs(weights.sum() - 1.0) > 1e-4:
        raise Rejected(f"weights sum to {weights.sum():.6f}, not 1")
    long_only = bool(inputs.get("long_only", True))
    if long_only and weights.min() < -1e-6:
        raise Rejected("a negative weight in a long-only portfolio")
    checks = ["weights sum to 1", "bounds respected"]
    if len(mu) > OPTIMALITY_CHECK_MAX_ASSETS:
        return checks
    reference = compute.optimise_portfolio(inputs, threading.Event())
    gamma = float(inputs.get("risk_aversion", 3.0))
    sigma = np.asarray(inputs["covariance"], dtype=float)

    def utility(w: np.ndarray) -> float:
        return float(mu @ w - gamma / 2 * w @ sigma @ w)

    best = utility(np.asarray(reference["weights"]))
    if utility(weights) < best - tolerance * 0.01 * max(abs(best), 1e-6) - 1e-7:
        raise Rejected(f"utility {utility(weights):.6g} falls short of the optimum {best:.6g}")
    return [*checks, "utility matches the client's own optimum"]


def check_similarity(result: dict[str, Any], inputs: dict[str, Any], tolerance: float) -> list[str]:
    indices, scores = result.get("indices"), result.get("scores")
    corpus = np.asarray(inputs.get("corpus", []), dtype=float)
    query = np.asarray(inputs.get("query", []), dtype=float)
    if not isinstance(indices, list) or not isinstance(scores, list) or len(indices) != len(scores):
        raise Rejected("'indices' and 'scores' must be lists of one length")
    if any(not isinstance(i, int) or not 0 <= i < len(corpus) for i in indices) or len(set(indices)) != len(indices):
        raise Rejected("indices out of range or repeated")
    if scores != sorted(scores, reverse=True):
        raise Rejected("scores are not in descending order")
    checks = ["indices valid", "scores descending"]
    if len(indices) and corpus.ndim == 2 and query.size == corpus.shape[1]:
        picked = corpus[indices]
        actual = picked @ query / np.maximum(np.linalg.norm(picked, axis=1) * np.linalg.norm(query), 1e-12)
        if not np.allclose(actual, scores, atol=1e-6):
            raise Rejected("the scores are not the cosine similarities of the returned vectors")
        checks.append("scores recomputed")
    return checks


def check_figures_in_document(answer: str, document: str) -> list[str]:
    """Every figure the answer states (ignoring small counts such as a quarter's number) occurs in the document."""
    known = figures_of(document)
    known += [n / 1000 for n in known]  # millions said as billions
    for figure in figures_of(answer):
        if abs(figure) < MIN_FIGURE or any(math.isclose(abs(figure), abs(k), rel_tol=0.005) for k in known):
            continue
        raise Rejected(f"the answer states {figure:g}, which is not in the document")
    return ["every figure stated is in the document"]


NUMERIC_CHECKS = {
    "risk-assessment": check_value_at_risk,
    "portfolio-optimisation": check_portfolio,
    "similarity-search": check_similarity,
}


class Verifier:
    def __init__(self, judge: OpenAIChatWorker | None = None) -> None:
        self.judge = judge

    async def verify(self, spec: SubtaskSpec, skill: str, artifacts: list[Artifact]) -> Verdict:
        try:
            if not artifacts:
                raise Rejected("no artifacts delivered")
            if skill in NUMERIC_CHECKS and spec.verification.kind in ("auto", "numeric", "schema"):
                result = _data(artifacts)
                check = NUMERIC_CHECKS[skill]
                inputs = spec.input_data or {}
                if spec.verification.kind == "schema":
                    inputs = {k: v for k, v in inputs.items() if k not in ("portfolio_value", "covariance", "corpus")}
                checks = check(result, inputs, spec.verification.tolerance)
                return Verdict(True, checks, graded=len(checks) > NUMERIC_FORMAT_CHECKS[skill])
            return await self._verify_text(spec, skill, artifacts)
        except Rejected as rejection:
            return Verdict(False, reason=str(rejection))
        except (ValueError, TypeError, KeyError) as error:
            return Verdict(False, reason=f"the result does not fit the task's input: {error}")

    async def _verify_text(self, spec: SubtaskSpec, skill: str, artifacts: list[Artifact]) -> Verdict:
        text = _text(artifacts)
        if spec.output_format == "json" and not any(p.kind == "data" for a in artifacts for p in a.parts):
            raise Rejected("expected a JSON (data) result")
        if spec.output_format != "json" and len(re.findall(r"\w+", text)) == 0:
            raise Rejected("the answer is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise Rejected("the answer is too long")
        checks = ["non-empty answer"]
        if spec.verification.labels:
            found = {label for label in spec.verification.labels if re.search(rf"\b{re.escape(label)}\b", text, re.I)}
            if len(found) != 1:
                raise Rejected(f"expected exactly one of {spec.verification.labels}, found {sorted(found) or 'none'}")
            checks.append(f"one label: {found.pop()}")
        if skill in DOCUMENT_SKILLS and spec.input_text:
            checks += check_figures_in_document(text, spec.input_text)
        if spec.verification.kind == "judge":
            checks.append(await self._judge(spec, text))
            return Verdict(True, checks, graded=True)
        return Verdict(True, checks)

    async def _judge(self, spec: SubtaskSpec, answer: str) -> str:
        if self.judge is None:
            raise Rejected("an LLM judge was asked for, but none is configured")
        skill = AgentSkill(id="judge", name="Answer judge", description="Decides whether an answer fits a task.")
        prompt = (
            f"Task: {spec.description}\nAnswer: {answer[:4000]}\n"
            "Does the answer address the task? Reply with one word: yes or no."
        )
        result = await self.judge.run(WorkRequest("judge", skill, [Message(role="user", parts=[Part.of_text(prompt)])]))
        assert isinstance(result, WorkResult)
        verdict = _text(result.artifacts).lower()
        if not re.match(r"\W*yes\b", verdict):
            raise Rejected(f"the LLM judge said: {verdict[:80]}")
        return "LLM judge: yes"
