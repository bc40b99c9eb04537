"""`coalesce attest`: measure a contractor's skills on fresh known-answer items over A2A and certify the scores.

Which benchmark a skill gets is the attestor's choice, made from the skill as the card declares it (its id, else
a tag naming one of `coalesce.datagen`'s task types), never from the contractor's own configuration. Every
attestation draws fresh items (a random seed) from the held-out family of templates (the client's gold probes come
from the other family), so no contractor has seen them; each answer is graded against the truth as the validation
grades it (`client_agent.gold.grade`) and the certificate states the mean grade and how many items it rests on.
A task that ends in failure or on a broken channel grades 0; an item the contractor did not take (a refusal, a
network error) is left out; a skill without a benchmark, or without any graded item, is left out of the
certificate, and the client counts it as unproven.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent.gold import Expectation, grade
from client_agent.hiring import work_message
from client_agent.models import SubtaskSpec
from coalesce.datagen import GENERATORS, Item, generate
from shared.a2a.cards import CardError, FetchPolicy, fetch_card, hiring_endpoint
from shared.a2a.client import A2AClient, as_task
from shared.a2a.models import A2AError, AgentCard, AgentSkill, TaskState
from shared.security.attestation import AttestationError, AttestedSkill, issue_certificate, verify_statement
from shared.security.card_signing import verify_card
from shared.security.channel import Channel, ChannelError, channel_offer
from shared.security.keys import public_jwk, thumbprint

ITEMS_PER_SKILL = 8
MAX_ITEMS_PER_SKILL = 200
BENCHMARK_VERSION = "v2"  # v1 certified a pass on one fixed public item as 1.0
ITEMS_IN_FLIGHT = 4  # items sent at once to one contractor


@dataclass
class SkillResult:
    """One skill as measured: the grades of the items that were graded (empty: none was, or no benchmark)."""

    skill: str
    benchmark: str | None
    grades: list[float]
    reason: str = ""
    lost: int = 0  # items that were not graded: not taken, or not delivered

    @property
    def score(self) -> float | None:
        return sum(self.grades) / len(self.grades) if self.grades else None

    def line(self) -> str:
        """One line for a person: the skill, its score and on how many items, or why it has none."""
        if self.score is None:
            return f"{self.skill:<28} not measured: {self.reason}"
        problems = f" ({self.reason})" if self.reason else ""
        return f"{self.skill:<28} {self.score:.3f} on {len(self.grades)} {self.benchmark} items{problems}"

    def attested(self) -> AttestedSkill | None:
        if self.benchmark is None or self.score is None:
            return None
        benchmark = f"coalesce-{self.benchmark}-{BENCHMARK_VERSION}"
        return AttestedSkill(self.skill, self.score, benchmark, len(self.grades))


def suite_for(skill: AgentSkill) -> str | None:
    """The task type that measures `skill`: the one its id names, else the first one a tag names."""
    return next((name for name in (skill.id, *skill.tags) if name in GENERATORS), None)


def fresh_items(suite: str, count: int) -> list[Item]:
    """`count` items of a task type no one has seen: a new random seed, the held-out family of templates."""
    return generate(suite, count, secrets.randbits(62), "evaluation")


class Attestor:
    """Sends items to one contractor over A2A (the end-to-end channel where its card offers one) and grades them."""

    def __init__(self, client: A2AClient, card: AgentCard, in_flight: int = ITEMS_IN_FLIGHT) -> None:
        self.client = client
        self.card = card
        self._slots = asyncio.Semaphore(in_flight)

    async def measure(self, skill: AgentSkill, items_per_skill: int) -> SkillResult:
        suite = suite_for(skill)
        if suite is None:
            return SkillResult(skill.id, None, [], "no benchmark for this skill")
        outcomes = await asyncio.gather(*(self._grade(skill, item) for item in fresh_items(suite, items_per_skill)))
        grades = [g for g, _ in outcomes if g is not None]
        problems = sorted({why for _, why in outcomes if why})
        return SkillResult(skill.id, suite, grades, "; ".join(problems)[:300], len(outcomes) - len(grades))

    async def _grade(self, skill: AgentSkill, item: Item) -> tuple[float | None, str]:
        """The item's grade and what went wrong (a grade of None: the item never reached the contractor)."""
        spec = SubtaskSpec.model_validate({**item["subtask"], "skill": skill.id})
        message = work_message(spec, skill.input_modes or self.card.default_input_modes)
        offer = channel_offer(self.card.capabilities.extensions)
        channel = Channel.open_to(offer, message.message_id) if offer else None
        async with self._slots:
            try:
                reply = await self.client.send(channel.seal_message(message) if channel else message, skill.id)
            except httpx.HTTPError as error:
                return None, f"{type(error).__name__}: {error}"
            except A2AError as error:  # not taken (busy, unauthorised ...): not graded; a skill that is never taken
                return None, f"refused: {error}"  # gets no certificate

        task = as_task(reply)
        if task.status.state is not TaskState.COMPLETED:
            return 0.0, f"a task ended {task.status.state.value}"
        try:
            artifacts = channel.open_artifacts(task.artifacts) if channel else task.artifacts
        except ChannelError as error:
            return 0.0, f"channel: {error}"
        return grade(Expectation.model_validate(item["expect"]), artifacts), ""


async def signed_card(http: httpx.AsyncClient, card_url: str, policy: FetchPolicy) -> tuple[AgentCard, str]:
    """The card at `card_url` and the id of the key that signs it. Raises ValueError for an unsigned card (a
    certificate binds the card's signing key)."""
    card, raw = await fetch_card(http, card_url, policy)
    kids = verify_card(raw)
    if not kids:
        raise ValueError(f"{card_url}: the card is unsigned; a certificate binds the card's signing key")
    return card, kids[0]


async def measure_card(
    http: httpx.AsyncClient,
    card: AgentCard,
    subject: str,
    attestor: Ed25519PrivateKey,
    items_per_skill: int = ITEMS_PER_SKILL,
    timeout_s: float = 120.0,
) -> tuple[dict[str, Any], list[SkillResult]]:
    """Every skill of `card` measured on fresh items; the certificate (for the key `subject`) states the score of
    each skill that was measured."""
    if not 1 <= items_per_skill <= MAX_ITEMS_PER_SKILL:
        raise ValueError(f"items per skill must be 1 to {MAX_ITEMS_PER_SKILL}, not {items_per_skill}")
    measuring = Attestor(A2AClient(hiring_endpoint(card), http, timeout_s=timeout_s), card)
    results = [await measuring.measure(skill, items_per_skill) for skill in card.skills]
    attested = [a for a in (r.attested() for r in results) if a is not None]
    return issue_certificate(attestor, subject, attested), results


async def attest(
    card_url: str,
    attestor: Ed25519PrivateKey,
    policy: FetchPolicy,
    items_per_skill: int = ITEMS_PER_SKILL,
    timeout_s: float = 120.0,
) -> tuple[dict[str, Any], list[SkillResult]]:
    """The contractor at `card_url` measured and certified (see `measure_card`)."""
    async with httpx.AsyncClient(timeout=timeout_s, transport=policy.transport()) as http:
        card, subject = await signed_card(http, card_url, policy)
        return await measure_card(http, card, subject, attestor, items_per_skill, timeout_s)


def attestor_id(attestor: Ed25519PrivateKey) -> str:
    """The key id (JWK thumbprint) a client trusts the attestor by."""
    return thumbprint(public_jwk(attestor.public_key()))


def still_valid(path: Path, attestor: Ed25519PrivateKey, subject: str, days_left: float = 1.0) -> bool:
    """Whether the certificate at `path` is this attestor's, for `subject`, valid for at least `days_left` more."""
    try:
        certificate = json.loads(path.read_text())
        statement = verify_statement(certificate, {attestor_id(attestor)}, subject)
    except (OSError, ValueError, AttestationError):
        return False
    return bool(statement["expiresAt"] - days_left * 86400 > time.time())


def write_certificate(path: Path, certificate: dict[str, Any]) -> None:
    """Written whole or not at all (a contractor may read the file while it is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(certificate, indent=2))
    partial.replace(path)


@dataclass(frozen=True)
class MarketAttestor:
    """The attestor of a local market: certifies every contractor whose certificate is missing, not its own,
    for another key or near its expiry, writes it where the contractor reads it (`out_dir/NAME.json`) and
    registers the contractor with the client again, which then reads the new card."""

    key: Ed25519PrivateKey
    out_dir: Path
    client_url: str
    policy: FetchPolicy
    items_per_skill: int = ITEMS_PER_SKILL
    timeout_s: float = 120.0

    async def run(self, contractors: dict[str, str], report: Callable[[str], None]) -> None:
        transport = self.policy.transport()
        async with httpx.AsyncClient(timeout=self.timeout_s, transport=transport) as http:
            await asyncio.gather(*(self._one(http, name, url, report) for name, url in contractors.items()))

    async def _one(self, http: httpx.AsyncClient, name: str, url: str, report: Callable[[str], None]) -> None:
        path = self.out_dir / f"{name}.json"
        try:
            card, subject = await signed_card(http, url, self.policy)
            if still_valid(path, self.key, subject):
                report(f"{name}: certificate still valid")
                return
            certificate, results = await measure_card(
                http, card, subject, self.key, self.items_per_skill, self.timeout_s
            )
            measured = "\n".join(f"  {r.line()}" for r in results)
            if any(r.lost for r in results):  # a contractor going away, a market stopping: try again next start
                report(f"{name}: not attested, items were lost:\n{measured}")
                return
            write_certificate(path, certificate)
            (await http.post(self.client_url + "v1/contractors", json={"card_url": url})).raise_for_status()
        except (httpx.HTTPError, CardError, ValueError) as error:
            report(f"{name}: not attested: {type(error).__name__}: {error}")
            return
        report(f"{name}: certified\n{measured}")
