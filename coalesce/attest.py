"""`coalesce attest`: benchmark a contractor's skills over A2A and issue a skill certificate for those that pass.

Each skill runs one real task whose answer is checked as the client checks a hired result (numeric re-checks for
compute skills, a label for language skills). A skill without a benchmark here is left out of the certificate:
the client then counts it as unproven.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent.hiring import work_message
from client_agent.models import SubtaskSpec, VerificationSpec
from client_agent.verification import Verifier
from shared.a2a.cards import FetchPolicy, fetch_card, hiring_endpoint
from shared.a2a.client import A2AClient, as_task
from shared.a2a.models import A2AError, AgentCard, TaskState
from shared.security.attestation import AttestedSkill, issue_certificate
from shared.security.card_signing import verify_card
from shared.security.channel import Channel, ChannelError, channel_offer

SENTIMENT_LABELS = ["positive", "negative", "neutral"]


def benchmark(kind: str, seed: int = 7) -> SubtaskSpec | None:
    """The benchmark task for a worker kind (None: no benchmark for it)."""
    rng = np.random.default_rng(seed)
    if kind == "var":
        data: dict[str, Any] = {
            "portfolio_value": 1_000_000,
            "returns": rng.normal(0.0005, 0.01, 250).round(5).tolist(),
            "confidence": 0.99,
            "simulations": 20_000,
        }
        return SubtaskSpec(description="Value at risk of a portfolio", skill="risk-assessment", input_data=data)
    if kind == "portfolio":
        factors = rng.normal(size=(4, 4)) * 0.1
        data = {"expected_returns": [0.08, 0.05, 0.11, 0.03], "covariance": (factors @ factors.T + 0.01).tolist()}
        return SubtaskSpec(description="Mean-variance weights", skill="portfolio-optimisation", input_data=data)
    if kind == "similarity":
        corpus = rng.normal(size=(64, 16)).round(4).tolist()
        data = {"corpus": corpus, "query": corpus[5], "k": 3}
        return SubtaskSpec(description="Nearest neighbours", skill="similarity-search", input_data=data)
    if kind in ("llm", "anthropic", "echo"):
        return SubtaskSpec(
            description="Classify the sentiment of this sentence as positive, negative or neutral. "
            "Answer with one word.",
            input_text="Quarterly revenue beat expectations and the company raised its full-year guidance.",
            verification=VerificationSpec(kind="labels", labels=SENTIMENT_LABELS),
        )
    return None


@dataclass
class SkillResult:
    skill: str
    passed: bool
    reason: str


async def _run_benchmark(client: A2AClient, card: AgentCard, skill_id: str, spec: SubtaskSpec) -> SkillResult:
    skill = card.skill(skill_id)
    modes = (skill.input_modes if skill else None) or card.default_input_modes
    message = work_message(spec, modes)
    offer = channel_offer(card.capabilities.extensions)
    channel = Channel.open_to(offer, message.message_id) if offer else None
    try:
        task = as_task(await client.send(channel.seal_message(message) if channel else message, skill_id))
        if task.status.state is not TaskState.COMPLETED:
            return SkillResult(skill_id, False, f"the task ended {task.status.state.value}")
        artifacts = channel.open_artifacts(task.artifacts) if channel else task.artifacts
    except (A2AError, ChannelError, httpx.HTTPError) as error:
        return SkillResult(skill_id, False, f"{type(error).__name__}: {error}"[:200])
    verdict = await Verifier().verify(spec.model_copy(update={"skill": skill_id}), skill_id, artifacts)
    return SkillResult(skill_id, verdict.passed, verdict.reason)


async def attest(
    card_url: str, attestor: Ed25519PrivateKey, policy: FetchPolicy, timeout_s: float = 120.0
) -> tuple[dict[str, Any], list[SkillResult]]:
    """Benchmark every skill of the contractor at `card_url`; the certificate covers those that passed."""
    async with httpx.AsyncClient(timeout=timeout_s, transport=policy.transport()) as http:
        card, raw = await fetch_card(http, card_url, policy)
        kids = verify_card(raw)
        if not kids:
            raise ValueError(f"{card_url}: the card is unsigned; a certificate binds the card's signing key")
        kinds = card.coalesce.workers if card.coalesce else {}
        client = A2AClient(hiring_endpoint(card), http, timeout_s=timeout_s)
        results = []
        for skill in card.skills:
            spec = benchmark(kinds.get(skill.id, "llm"))
            if spec is None:
                results.append(SkillResult(skill.id, False, "no benchmark for this kind of skill"))
                continue
            results.append(await _run_benchmark(client, card, skill.id, spec))
    passed = [AttestedSkill(r.skill, 1.0, f"coalesce-{kinds.get(r.skill, 'llm')}-v1") for r in results if r.passed]
    return issue_certificate(attestor, kids[0], passed), results
