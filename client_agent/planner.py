"""Decomposition: a task becomes subtasks with requirement specs.

An LLM planner (the configured LLM; the embedded local model by default) is asked for a JSON plan over the
market's skills; its plan is validated with pydantic. When the plan is not valid (a 135M-parameter model rarely
writes one), a deterministic fallback splits the description into sentences, gives each the most similar skill
by embedding, merges neighbours with the same skill, and hands each compute skill the submitted data it needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from client_agent.models import SubtaskSpec, TaskSubmission, VerificationSpec
from shared.a2a.models import AgentSkill, Message, Part
from shared.economics.skills import Embedder
from shared.workers.base import NeedsInput, WorkerError, WorkRequest
from shared.workers.llm import OpenAIChatWorker

MAX_PLANNED_SUBTASKS = 8

# Which submitted data keys each compute skill takes.
SKILL_INPUTS = {
    "risk-assessment": (
        "portfolio_value",
        "returns",
        "mu",
        "sigma",
        "confidence",
        "horizon_days",
        "simulations",
        "seed",
    ),
    "portfolio-optimisation": (
        "expected_returns",
        "covariance",
        "risk_aversion",
        "long_only",
        "max_weight",
        "risk_free_rate",
    ),
    "similarity-search": ("query", "corpus", "k"),
}
SENTIMENT_LABELS = ["positive", "negative", "neutral"]


@dataclass(frozen=True)
class CatalogueSkill:
    """A skill offered somewhere in the market (or by the client itself)."""

    id: str
    name: str
    description: str


@dataclass
class Plan:
    source: str  # explicit, llm or fallback
    subtasks: list[SubtaskSpec]
    note: str = ""


def default_verification(skill: str | None) -> VerificationSpec:
    return VerificationSpec(labels=SENTIMENT_LABELS) if skill == "sentiment-analysis" else VerificationSpec()


def with_inputs(spec: SubtaskSpec, data: dict[str, Any] | None) -> SubtaskSpec:
    """Give a compute subtask the submitted data it takes (when it brought none), and a skill's default checks
    (when the spec asks for none)."""
    if spec.verification == VerificationSpec():
        spec = spec.model_copy(update={"verification": default_verification(spec.skill)})
    if spec.input_data is not None or not data or spec.skill not in SKILL_INPUTS:
        return spec
    taken = {k: v for k, v in data.items() if k in SKILL_INPUTS[spec.skill]}
    return spec.model_copy(update={"input_data": taken or None})


class Planner:
    def __init__(self, embedder: Embedder, llm: OpenAIChatWorker | None = None) -> None:
        self.embedder = embedder
        self.llm = llm

    async def plan(self, submission: TaskSubmission, catalogue: list[CatalogueSkill]) -> Plan:
        if submission.subtasks:
            return Plan("explicit", [with_inputs(s, submission.data) for s in submission.subtasks])
        if not catalogue:
            return Plan("fallback", [SubtaskSpec(description=submission.description)], "no skills known")
        note = "no LLM configured"
        if self.llm is not None:
            try:
                specs = await self._llm_plan(submission, catalogue)
                return Plan("llm", [with_inputs(s, submission.data) for s in specs])
            except (ValueError, ValidationError, WorkerError) as error:
                note = f"LLM plan rejected: {str(error)[:300]}"
        return Plan("fallback", self.fallback(submission, catalogue), note)

    async def _llm_plan(self, submission: TaskSubmission, catalogue: list[CatalogueSkill]) -> list[SubtaskSpec]:
        assert self.llm is not None
        skills = "\n".join(f"- {s.id}: {s.description}" for s in catalogue)
        prompt = (
            "Split the task into subtasks. Answer with only a JSON array of objects with the keys "
            '"skill" (one of the skill ids below) and "description" (what that subtask must do).\n'
            f"Skills:\n{skills}\nTask: {submission.description}\nJSON:"
        )
        planner_skill = AgentSkill(id="plan", name="Task planner", description="Decomposes tasks into subtasks.")
        message = Message(role="user", parts=[Part.of_text(prompt)])
        result = await self.llm.run(WorkRequest("plan", planner_skill, [message]))
        if isinstance(result, NeedsInput):
            raise ValueError("the planner asked for input")
        text = "".join(p.text or "" for a in result.artifacts for p in a.parts)
        match = re.search(r"\[.*\]", text, re.S)
        if match is None:
            raise ValueError("no JSON array in the plan")
        raw = json.loads(match.group(0))
        known = {s.id for s in catalogue}
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PLANNED_SUBTASKS:
            raise ValueError(f"a plan needs 1 to {MAX_PLANNED_SUBTASKS} subtasks")
        specs = []
        for item in raw:
            if not isinstance(item, dict) or item.get("skill") not in known:
                raise ValueError(f"unknown skill in plan item {str(item)[:100]}")
            skill = item["skill"]
            specs.append(
                SubtaskSpec(
                    description=str(item.get("description") or submission.description)[:4000],
                    skill=skill,
                    verification=default_verification(skill),
                )
            )
        return specs

    def fallback(self, submission: TaskSubmission, catalogue: list[CatalogueSkill]) -> list[SubtaskSpec]:
        sentences = [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", submission.description) if s.strip()]
        sentences = sentences[:64] or [submission.description]
        skill_vectors = self.embedder.embed([f"{s.name}. {s.description}" for s in catalogue])
        sentence_vectors = self.embedder.embed(sentences)
        best = np.argmax(sentence_vectors @ skill_vectors.T, axis=1)
        groups: list[tuple[str, list[str]]] = []
        for sentence, index in zip(sentences, best, strict=True):
            skill = catalogue[int(index)].id
            if groups and groups[-1][0] == skill:
                groups[-1][1].append(sentence)
            else:
                groups.append((skill, [sentence]))
        merged: dict[str, list[str]] = {}
        for skill, parts in groups:
            merged.setdefault(skill, []).extend(parts)
        specs = [
            with_inputs(
                SubtaskSpec(description=" ".join(parts)[:4000], skill=skill, verification=default_verification(skill)),
                submission.data,
            )
            for skill, parts in list(merged.items())[:MAX_PLANNED_SUBTASKS]
        ]
        return specs
