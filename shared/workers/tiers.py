"""Tiers of the same model, each really cheaper or dearer, better or worse:

- `VotingWorker`: the premium tier. k samples of a worker (at a sampling temperature) and the answer most of them
  agree on; k times the compute, so k times the metered price.
- `FewShotCompletionWorker`: a base model with no chat template (Gemma 3 270M), asked by few-shot completion over
  `/v1/completions`: worked examples of the skill, then the task, cut at the first blank line.

The cheap, sloppy tier needs no class of its own: the chat worker with a short answer budget, a high temperature
and no constrained decoding (`sloppy_settings`).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from typing import Any

from shared.workers.base import Usage, Worker, WorkerError, WorkRequest, WorkResult, text_artifact
from shared.workers.llm import HostedModelWorker, LLMSettings, answer_labels

TOKENS = re.compile(r"-?\d[\d,]*(?:\.\d+)?|[a-z]+", re.I)


def _answer_text(result: WorkResult) -> str:
    return " ".join(p.text or "" for a in result.artifacts for p in a.parts if p.kind == "text").strip()


def consensus(answers: list[str], labels: list[str] | None) -> int:
    """The index of the answer the others agree with most: by label when the answer is a label, else by the
    overlap of the numbers and words the answers state (the medoid)."""
    if labels:
        named = [next((x for x in labels if re.search(rf"\b{re.escape(x)}\b", a, re.I)), None) for a in answers]
        counts = Counter(label for label in named if label is not None)
        if counts:
            winner = counts.most_common(1)[0][0]
            return named.index(winner)
    tokens = [set(TOKENS.findall(a.lower())) for a in answers]

    def agreement(i: int) -> float:
        return sum(len(tokens[i] & t) / max(len(tokens[i] | t), 1) for j, t in enumerate(tokens) if j != i)

    return max(range(len(answers)), key=agreement)


class VotingWorker:
    """k runs of `inner` and the consensus answer; usage summed (the price is k times one run's)."""

    def __init__(self, inner: Worker, k: int = 3) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        self.inner = inner
        self.k = k
        self.name = f"{inner.name}-vote{k}"

    async def run(self, request: WorkRequest) -> WorkResult:
        """The samples run one after another: on one model server they would queue anyway, and each one's
        metered time is then its own, not its wait for the others."""
        answered: list[WorkResult] = []
        errors: list[str] = []
        for _ in range(self.k):
            if request.cancelled.is_set():
                break
            try:
                result = await self.inner.run(request)
            except WorkerError as error:
                errors.append(str(error))
                continue
            if isinstance(result, WorkResult):
                answered.append(result)
        if not answered:
            raise WorkerError(f"none of the {self.k} samples answered: {errors[:1]}")
        usage = Usage(estimated=any(r.usage.estimated for r in answered))
        for r in answered:
            usage.input_tokens += r.usage.input_tokens
            usage.output_tokens += r.usage.output_tokens
            usage.compute_seconds += r.usage.compute_seconds
        best = answered[consensus([_answer_text(r) for r in answered], answer_labels(request))]
        return WorkResult(artifacts=best.artifacts, usage=usage, summary=f"the consensus of {len(answered)} samples")

    async def close(self) -> None:
        await self.inner.close()


def sloppy_settings(settings: LLMSettings) -> LLMSettings:
    """The cheap tier: a short answer budget, a high temperature, no constrained decoding."""
    return dataclasses.replace(settings, max_tokens=32, temperature=1.2, schema_style="none")


# Worked examples per skill, written for COALESCE (invented companies and figures).
FEW_SHOT: dict[str, list[tuple[str, str]]] = {
    "sentiment-analysis": [
        ("Quarzo Textiles posts a record profit and raises its payout", "positive"),
        ("Lindqvist Freight shares slide after it loses its largest customer", "negative"),
        ("Ostara Paper will hold its investor day in Vienna", "neutral"),
        ("Hollins Tools no longer expects a loss this year", "positive"),
    ],
    "financial-document-analysis": [
        (
            "Peregrine Dairy reported revenue of 412.5 million dollars for the quarter. Net income was 18.2 million "
            "dollars. Two years ago revenue had been 380 million dollars. The company expects demand to soften.",
            "Revenue: 412.5 million USD. Net income: 18.2 million USD. Outlook: negative.",
        ),
        (
            "Sales at Corvid Glass reached 1.1 billion dollars. The net loss was 7 million dollars. Management sees "
            "steady conditions ahead.",
            "Revenue: 1100 million USD. Net income: -7 million USD. Outlook: neutral.",
        ),
    ],
}
SUBJECT = {"sentiment-analysis": "Headline", "financial-document-analysis": "Report"}


def few_shot_prompt(skill: str, task_text: str) -> str:
    """Worked examples of the skill, then the task, ending where the answer starts."""
    subject = SUBJECT.get(skill, "Task")
    if skill == "sentiment-analysis":
        task_text = task_text.partition(":")[2].strip() or task_text
    elif skill == "financial-document-analysis":
        task_text = task_text.rsplit("\n\n", 1)[-1]
    shots = "".join(f"{subject}: {q}\nAnswer: {a}\n\n" for q, a in FEW_SHOT.get(skill, []))
    return f"{shots}{subject}: {task_text.strip()}\nAnswer:"


class FewShotCompletionWorker(HostedModelWorker):
    """A base model through an OpenAI-compatible `/v1/completions`, asked by few-shot completion."""

    name = "few-shot"

    def __init__(self, settings: LLMSettings) -> None:
        from openai import AsyncOpenAI

        super().__init__(settings, AsyncOpenAI)

    async def run(self, request: WorkRequest) -> WorkResult:
        from openai import OpenAIError

        prompt = few_shot_prompt(request.skill.id, request.text())
        started = time.perf_counter()
        try:
            response: Any = await self._client.completions.create(
                model=self.settings.model,
                prompt=prompt,
                max_tokens=self.settings.max_tokens,
                temperature=self.settings.temperature,
                stop=["\n\n", "\nHeadline:", "\nReport:", "\nTask:"],
            )
        except OpenAIError as error:
            raise WorkerError(f"LLM call failed: {error}") from error
        text = (response.choices[0].text if response.choices else "").strip()
        if not text:
            raise WorkerError("the model returned an empty answer")
        usage = Usage(compute_seconds=time.perf_counter() - started)
        if response.usage is not None:
            usage.input_tokens, usage.output_tokens = response.usage.prompt_tokens, response.usage.completion_tokens
        return WorkResult(artifacts=[text_artifact("answer", text)], usage=usage, summary="completed")
