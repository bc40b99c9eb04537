"""The paper's four task types on the data sets shipped in `coalesce/data/`, and how answers are graded against
their ground truth (separately from the client's own verification, which cannot know the truth)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
SENTIMENT_LABELS = ["positive", "negative", "neutral"]
# what a delivered subtask is worth to the client: what it loses when a subtask is not delivered verified
VALUE_USD = {
    "financial-document-analysis": 0.50,
    "risk-assessment": 2.00,
    "portfolio-optimisation": 2.00,
    "sentiment-analysis": 0.20,
}
TASK_TYPES = tuple(VALUE_USD)


@cache
def dataset(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / f"{name}.json").read_text())["items"]


@dataclass(frozen=True)
class Case:
    """One subtask of a task type, with the ground truth to grade its answer."""

    kind: str
    name: str
    subtask: dict[str, Any]
    truth: Any


def _subtask(skill: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "skill": skill,
        "description": description,
        "required_skills": [f"skill:{skill}"],
        "value_usd": VALUE_USD[skill],
        **extra,
    }


def case(kind: str, index: int) -> Case:
    """The `index`-th case of a task type (cycling through its data set)."""
    if kind == "financial-document-analysis":
        item = dataset("documents")[index % len(dataset("documents"))]
        instruction = (
            "Read this quarterly report. State the revenue and the net income in millions of US dollars, and whether "
            "the outlook is positive, negative or neutral.\n\n"
        )
        description = "Financial document analysis of a quarterly report: revenue, net income and outlook"
        spec = _subtask(kind, description, input_text=instruction + item["text"])
        return Case(kind, item["company"], spec, item["truth"])
    if kind == "risk-assessment":
        item = dataset("risk")[index % len(dataset("risk"))]
        spec = _subtask(kind, "Monte Carlo value at risk and expected shortfall of the fund", input_data=item["input"])
        return Case(kind, item["name"], spec, item["truth"])
    if kind == "portfolio-optimisation":
        item = dataset("portfolio")[index % len(dataset("portfolio"))]
        spec = _subtask(kind, "Mean-variance optimal long-only weights of the book", input_data=item["input"])
        return Case(kind, item["name"], spec, {**item["truth"], "input": item["input"]})
    if kind == "sentiment-analysis":
        item = dataset("sentiment")[index % len(dataset("sentiment"))]
        description = (
            f"Classify the sentiment of this financial headline as positive, negative or neutral: {item['text']}"
        )
        verification = {"kind": "labels", "labels": SENTIMENT_LABELS}
        return Case(kind, item["text"][:40], _subtask(kind, description, verification=verification), item["label"])
    raise ValueError(f"unknown task type {kind!r}")


def task(index: int, kinds: tuple[str, ...] = TASK_TYPES) -> tuple[dict[str, Any], list[Case]]:
    """A submission with one subtask of each type, and its cases in subtask order."""
    cases = [case(kind, index) for kind in kinds]
    body = {
        "description": "Review a fund: its quarterly report, its risk, its allocation and today's headline.",
        "subtasks": [c.subtask for c in cases],
        "budget_usd": 20.0,
    }
    return body, cases


# ---------------------------------------------------------------- grading


def _text(artifacts: list[dict[str, Any]]) -> str:
    return " ".join(p.get("text") or "" for a in artifacts for p in a.get("parts", []) if p.get("kind") == "text")


def _data(artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    for artifact in artifacts:
        for part in artifact.get("parts", []):
            if isinstance(part.get("data"), dict):
                return part["data"]
    return {}


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def _labels_in(text: str) -> set[str]:
    words = set(re.findall(r"[a-z]+", text.lower()))
    return {label for label in SENTIMENT_LABELS if label in words}


def grade(kind: str, truth: Any, artifacts: list[dict[str, Any]]) -> float:
    """How right the delivered answer is against the ground truth, in [0, 1]."""
    if kind == "sentiment-analysis":
        return 1.0 if _labels_in(_text(artifacts)) == {truth} else 0.0
    if kind == "financial-document-analysis":
        text = _text(artifacts)
        numbers = _numbers(text)
        found = [  # a loss is right stated as a loss: compared by size
            any(math.isclose(n, abs(truth[k]), rel_tol=0.005) for n in numbers)
            for k in ("revenue_musd", "net_income_musd")
        ]
        return (sum(found) + (_labels_in(text) == {truth["outlook"]})) / 3
    if kind == "risk-assessment":
        var = _data(artifacts).get("var")
        return (
            1.0
            if isinstance(var, int | float) and abs(var - truth["var_parametric"]) <= 0.1 * truth["var_parametric"]
            else 0.0
        )
    if kind == "portfolio-optimisation":
        weights = np.asarray(_data(artifacts).get("weights") or [], dtype=float)
        mu = np.asarray(truth["input"]["expected_returns"])
        if weights.shape != mu.shape:
            return 0.0
        sigma = np.asarray(truth["input"]["covariance"])
        utility = float(mu @ weights - truth["input"]["risk_aversion"] / 2 * weights @ sigma @ weights)
        return 1.0 if utility >= truth["utility"] - 1e-3 * abs(truth["utility"]) - 1e-7 else 0.0
    raise ValueError(f"unknown task type {kind!r}")
