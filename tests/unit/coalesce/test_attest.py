"""The attestor's choices: which items measure a skill, that they are fresh, and when a certificate is kept."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent.gold import Expectation, grade
from coalesce.attest import fresh_items, still_valid, suite_for, write_certificate
from coalesce.datagen import HEADLINES, in_family
from shared.a2a.models import AgentSkill, Artifact, Part
from shared.security.attestation import AttestedSkill, issue_certificate
from shared.workers.compute import similarity_search


def skill(skill_id: str, *tags: str) -> AgentSkill:
    return AgentSkill(id=skill_id, name=skill_id, description="a skill", tags=list(tags))


def test_a_skill_is_measured_by_the_task_type_its_id_or_a_tag_names():
    assert suite_for(skill("risk-assessment")) == "risk-assessment"
    assert suite_for(skill("headline-mood", "finance", "sentiment-analysis")) == "sentiment-analysis"
    assert suite_for(skill("poetry", "creative")) is None


def test_every_attestation_draws_new_items_from_the_held_out_templates():
    first, second = fresh_items("sentiment-analysis", 12), fresh_items("sentiment-analysis", 12)
    assert [i["name"] for i in first] != [i["name"] for i in second]
    gold_templates = {t.split("{")[0] for label in HEADLINES for t in in_family(HEADLINES[label], "gold")}
    evaluation = {t.split("{")[0] for label in HEADLINES for t in in_family(HEADLINES[label], "evaluation")}
    assert evaluation - gold_templates  # the families differ (the probes' family is never drawn)
    assert all(i["subtask"]["skill"] == "sentiment-analysis" for i in first)


def test_similarity_items_know_the_nearest_vectors():
    for item in fresh_items("similarity-search", 5):
        answer = similarity_search(item["subtask"]["input_data"], threading.Event())
        artifacts = [Artifact(parts=[Part.of_data(answer)])]
        assert grade(Expectation.model_validate(item["expect"]), artifacts) == 1.0
        wrong = {**answer, "indices": list(reversed(answer["indices"]))}
        assert grade(Expectation.model_validate(item["expect"]), [Artifact(parts=[Part.of_data(wrong)])]) == 0.0


def test_a_certificate_is_kept_while_it_is_this_attestors_for_this_key_and_not_about_to_expire(tmp_path: Path):
    attestor, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "certificates" / "agent.json"
    assert not still_valid(path, attestor, "key-1")  # none yet
    write_certificate(path, issue_certificate(attestor, "key-1", [AttestedSkill("risk-assessment", 1.0, "b", 8)]))
    assert still_valid(path, attestor, "key-1")
    assert not still_valid(path, attestor, "key-2")  # the contractor's key changed
    assert not still_valid(path, other, "key-1")  # another attestor's
    assert not still_valid(path, attestor, "key-1", days_left=31)  # expires within the margin
    path.write_text(json.dumps({"statement": "x.y.z"}))
    assert not still_valid(path, attestor, "key-1")
    assert not list(path.parent.glob("*.partial"))
