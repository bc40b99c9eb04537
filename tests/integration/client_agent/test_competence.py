"""Competence, not format: real contractors on loopback answer valid labels, one of them at random; the client finds
out from gold probes and agreement, sends it less work, trusts its own worker when it is as good and cheaper,
prices its probes within their cap and learns from feedback."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from client_agent.gold import load_items
from coalesce.datagen import HEADLINES, generate, gold_bank
from shared.a2a.models import AgentCard, Artifact, Part
from shared.workers.base import StatelessWorker, WorkRequest, WorkResult
from tests.conftest import StartContractor, card_named

SKILL = "sentiment-analysis"
LABELS = ["positive", "negative", "neutral"]
SLOTS = re.compile(r"\\\{(co|n|m|k|month|city)\\\}")


class KnowsTheTemplates(StatelessWorker):
    """A competent sentiment worker for these headlines: it recognises the template a headline was written from
    (it knows the generator's wording, so it is right on every generated headline)."""

    name = "competent"

    def __init__(self) -> None:
        self.patterns = [
            (re.compile(SLOTS.sub(".+", re.escape(t[0].upper() + t[1:])) + "$"), label)
            for label, templates in HEADLINES.items()
            for t in templates
        ]

    async def run(self, request: WorkRequest) -> WorkResult:
        headline = request.text().rsplit(": ", 1)[-1].strip()
        label = next((label for pattern, label in self.patterns if pattern.match(headline)), "neutral")
        return WorkResult(artifacts=[Artifact(name="label", parts=[Part.of_text(label)])])


class Guesses(StatelessWorker):
    """Answers a valid label at random: always well formed, right a third of the time."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    async def run(self, request: WorkRequest) -> WorkResult:
        label = LABELS[int(self.rng.integers(3))]
        return WorkResult(artifacts=[Artifact(name="label", parts=[Part.of_text(label)])])


def sentiment_card(name: str, base_usd: float) -> AgentCard:
    """The budget provider's card with one skill, sentiment, at `base_usd` a task."""
    card = card_named("budget_provider")
    params = dict(card.capabilities.extensions[0].params or {})
    params["price"] = {"baseUsd": base_usd, "surgeAlpha": 0.0}
    params["workers"] = {SKILL: "llm"}
    extension = card.capabilities.extensions[0].model_copy(update={"params": params})
    capabilities = card.capabilities.model_copy(update={"extensions": [extension]})
    skills = [s for s in card.skills if s.id == SKILL]
    return card.model_copy(update={"name": name, "capabilities": capabilities, "skills": skills})


def headline_task(item: dict[str, Any], value_usd: float = 1.0) -> dict[str, Any]:
    return {"description": "Tone of a headline", "subtasks": [{**item["subtask"], "value_usd": value_usd}]}


def gold() -> list:
    return [i for i in load_items(gold_bank(per_skill=40)) if i.skill == SKILL]


def test_a_contractor_answering_random_labels_is_found_out(start_contractor: StartContractor, make_client):
    competent = start_contractor(sentiment_card("Careful Analyst", 0.002), workers={SKILL: KnowsTheTemplates()})
    guesser = start_contractor(sentiment_card("Quick Guesser", 0.002), workers={SKILL: Guesses(seed=1)})
    client = make_client(own_skills=set(), strategy="thompson", gold=gold())
    careful_id, guesser_id = client.register(competent)["id"], client.register(guesser)["id"]
    items = generate(SKILL, 30, seed=77)  # unseen headlines: not the gold bank's
    done_by, right = [], 0
    for item in items:
        task = client.run(headline_task(item))
        (sub,) = task["subtasks"]
        assert task["status"] == "completed", sub
        done_by.append(sub["where"])
        right += item["truth"] in " ".join(p.get("text", "") for a in sub["artifacts"] for p in a["parts"])
    assert done_by.count(guesser_id) < len(items) / 4, done_by  # found out: under a quarter of the work
    assert done_by.count(careful_id) == len(items) - done_by.count(guesser_id)
    market = client.http.get("/v1/market").json()
    quality = {c["id"]: c["competence"][0] for c in market["contractors"]}
    assert quality[careful_id]["quality"] > quality[guesser_id]["quality"] + 0.3, quality
    assert quality[guesser_id]["evidence"].get("probe", 0) + quality[guesser_id]["evidence"].get("agreement", 0) > 0
    stats = client.http.get("/v1/stats").json()
    spend = stats["spend"]
    assert spend["probes"] > 0 and spend["probeUsd"] > 0  # probes are paid for like work ...
    cap = 0.25 * (spend["workUsd"] + spend["probeUsd"] + spend["agreementUsd"]) + 0.05
    assert spend["probeUsd"] <= cap  # ... and stay within their budget
    assert right >= 0.75 * len(items)


def test_the_clients_own_worker_is_chosen_when_it_is_as_good_and_cheaper(
    start_contractor: StartContractor, make_client
):
    # as good as the client's own worker, at 30 % of what an answer is worth: the client's costs next to nothing
    contractor = start_contractor(sentiment_card("Careful Analyst", 0.15), workers={SKILL: KnowsTheTemplates()})
    client = make_client(strategy="thompson", gold=gold(), workers={SKILL: KnowsTheTemplates()})
    contractor_id = client.register(contractor)["id"]
    items = generate(SKILL, 20, seed=78)
    done_by = [client.run(headline_task(item, value_usd=0.5))["subtasks"][0]["where"] for item in items]
    assert done_by.count("local") >= 15, " ".join(w[:5] for w in done_by)
    local = client.http.get("/v1/market").json()["local"]
    (own,) = [c for c in local["competence"] if c["skill"] == SKILL]
    assert own["quality"] > 0.7 and own["observations"] > 0  # probed like any agent
    assert contractor_id


def test_feedback_moves_the_estimate_and_bad_feedback_is_refused(start_contractor: StartContractor, make_client):
    guesser = start_contractor(sentiment_card("Quick Guesser", 0.002), workers={SKILL: Guesses(seed=2)})
    client = make_client(own_skills=set(), strategy="thompson")
    guesser_id = client.register(guesser)["id"]
    task = client.run(headline_task(generate(SKILL, 1, seed=79)[0]))
    (sub,) = task["subtasks"]

    def estimate() -> float:
        contractors = client.http.get("/v1/market").json()["contractors"]
        return next(c for c in contractors if c["id"] == guesser_id)["competence"][0]["quality"]

    before = estimate()
    response = client.http.post(f"/v1/tasks/{task['id']}/feedback", json={"correct": False, "note": "wrong tone"})
    assert response.status_code == 200, response.text
    assert response.json()["agent"] == guesser_id and response.json()["evidence"] == {"feedback": 1}
    assert estimate() < before - 0.2
    shown = client.http.get(f"/v1/tasks/{task['id']}").json()["subtasks"][0]
    assert shown["feedback"]["grade"] == 0.0 and shown["signals"][-1]["kind"] == "feedback"
    again = client.http.post(f"/v1/tasks/{task['id']}/feedback", json={"grade": 1.0})
    assert again.status_code == 409 and "already" in again.json()["error"]
    for body, status in (
        ({"grade": 1.5}, 422),
        ({"correct": True, "grade": 1.0}, 422),
        ({}, 422),
        ({"grade": 0.5, "subtask_id": "nope"}, 404),
    ):
        refused = client.http.post(f"/v1/tasks/{task['id']}/feedback", json=body)
        assert refused.status_code == status and refused.json()["error"], (body, refused.text)
    assert client.http.post("/v1/tasks/unknown/feedback", json={"grade": 0.5}).status_code == 404
    assert sub["where"] == guesser_id


def test_gold_items_are_added_through_the_api_and_bad_ones_refused(make_client):
    client = make_client(own_skills=set())
    good = gold_bank(per_skill=2)[:2]
    added = client.http.post("/v1/gold", json={"items": good})
    assert added.status_code == 201 and added.json()["total"] == 2
    assert client.http.get("/v1/gold").json()["bySkill"] == {SKILL: 2}
    broken = {**good[0], "expect": {}}
    refused = client.http.post("/v1/gold", json={"items": [broken]})
    assert refused.status_code == 422 and "expectation" in refused.text
    assert client.http.post("/v1/gold", json={"items": []}).status_code == 422
    assert client.http.get("/v1/gold").json()["total"] == 2


@pytest.mark.parametrize("headline", [t for templates in HEADLINES.values() for t in templates][:3])
def test_the_competent_worker_knows_its_templates(headline: str):
    worker = KnowsTheTemplates()
    text = SLOTS.sub("x", re.escape(headline)).replace("\\", "")
    assert any(pattern.match(text[0].upper() + text[1:]) for pattern, _ in worker.patterns)
