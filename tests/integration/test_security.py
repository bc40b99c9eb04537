"""Secure exchange: the end-to-end channel, signed cards, skill certificates, API keys and safe card fetching.
Every attack is refused with its own error and changes nothing: no task, no payment, no pin moved."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rdatatype
import dns.rrset
import httpcore
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from client_agent.registry import Registry
from client_agent.storage import Store
from coalesce.attest import attest, write_certificate
from contractor_agent.identity import CertificateFile, Identity
from contractor_agent.store import SqlTaskStore
from shared.a2a.cards import CardError, FetchPolicy, fetch_card
from shared.a2a.models import AgentCard, Artifact, Message, Part
from shared.economics.reputation import Competence, ReputationBook
from shared.economics.skills import CachedEmbedder, SkillIndex, SkillRequirement
from shared.runtime.serving import ServerThread, bind_socket
from shared.security.attestation import AttestedSkill, certified_skills, issue_certificate
from shared.security.auth import ApiKeys
from shared.security.card_signing import CardTrustError, key_to_pin, verify_card
from shared.security.channel import (
    CHANNEL_TOKEN_HEADER,
    Channel,
    ChannelError,
    ChannelKeys,
    ChannelOffer,
    KeyAgreements,
    ReplayGuard,
    channel_offer,
    key_id,
)
from shared.security.keys import b64url, public_jwk, thumbprint
from shared.security.net_policy import CheckedBackend, CheckedTransport, nameserver_resolver
from tests.conftest import CARDS, RISK, CardHost, StartContractor, card_named, rpc, subtask, wait_until

E2E_REFUSED = -32051
TASK_NOT_FOUND = -32001


def flip(ciphertext: str) -> str:
    """One base64 character of the ciphertext changed."""
    return ciphertext[:20] + ("A" if ciphertext[20] != "A" else "B") + ciphertext[21:]


def new_identity(**extra: Any) -> Identity:
    return Identity(signing_keys=[Ed25519PrivateKey.generate()], e2e_key=X25519PrivateKey.generate(), **extra)


def kid_of(key: Ed25519PrivateKey) -> str:
    return thumbprint(public_jwk(key.public_key()))


def served_card(url: str) -> dict[str, Any]:
    return httpx.get(url + ".well-known/agent-card.json", timeout=10).json()


def offer_of(url: str) -> ChannelOffer:
    offer = channel_offer(AgentCard.model_validate(served_card(url)).capabilities.extensions)
    assert offer is not None
    return offer


def sealed_send(url: str, task_id: str, channel: Channel, data: dict[str, Any] | None = None, envelope=None) -> dict:
    part = Part.of_data({"coalesceE2e": envelope}) if envelope is not None else None
    message = channel.seal_message(Message(role="user", parts=[Part.of_data(data or {})])) if part is None else None
    wire = message.wire() if message else {"role": "user", "messageId": "m", "parts": [part.wire()]}
    params = {"id": task_id, "message": wire, "metadata": {"skill": "risk-assessment"}}
    return rpc(url, "tasks/send", params, **{CHANNEL_TOKEN_HEADER: channel.owner_token})


def task_count(url: str) -> int:
    """Every task the contractor keeps, whoever created it (its operator's view)."""
    return httpx.get(url + "health", timeout=10).json()["load"]["tasksKept"]


@pytest.fixture
def secure_cpu(start_contractor: StartContractor) -> tuple[str, Identity]:
    identity = new_identity()
    return start_contractor(card_named("cpu_optimised"), identity=identity), identity


# ---------------------------------------------------------------- the channel


def test_channel_refuses_tampering_replay_reordering_truncation_and_the_wrong_key():
    server_key = X25519PrivateKey.generate()
    offer = ChannelOffer(server_key.public_key(), key_id(server_key.public_key()), True)
    guard, agreements = ReplayGuard(), KeyAgreements(server_key)
    client = Channel.open_to(offer, "task-1")
    first = client.seal({"parts": [Part.of_text("secret").wire()]})
    shell = Message(role="user", parts=[Part.of_text("envelope")])
    tampered = {**first, "ct": flip(first["ct"])}
    with pytest.raises(ChannelError) as refused:
        Channel.accept(agreements, tampered, guard, shell)
    assert refused.value.reason == "tampered"
    with pytest.raises(ChannelError) as refused:
        Channel.accept(KeyAgreements(X25519PrivateKey.generate()), first, guard, shell)
    assert refused.value.reason == "wrong-key"
    with pytest.raises(ChannelError) as refused:
        Channel.accept(agreements, {**first, "seq": 0, "channel": "task-2"}, guard, shell)  # moved to another task
    assert refused.value.reason == "tampered"

    server, opened = Channel.accept(agreements, first, guard, shell)
    assert opened.parts[0].text == "secret"
    with pytest.raises(ChannelError) as refused:
        Channel.accept(agreements, first, guard, shell)  # the same first message again
    assert refused.value.reason == "replay"

    second, third = client.seal({"parts": []}), client.seal({"parts": []})
    with pytest.raises(ChannelError) as refused:
        server.open(third)
    assert refused.value.reason == "reordered"
    server.open(second)
    with pytest.raises(ChannelError) as refused:
        server.open(second)
    assert refused.value.reason == "replay"
    with pytest.raises(ChannelError) as refused:
        server.open({**third, "ct": third["ct"][:8]})
    assert refused.value.reason == "truncated"
    server.open(third)  # the refusals above consumed nothing
    fourth = client.seal({"parts": []})
    for ct in ("!" * 24, fourth["ct"][:8] + "\n" + fourth["ct"][8:], fourth["ct"] + "=", 12):
        with pytest.raises(ChannelError) as refused:
            server.open({**fourth, "ct": ct})
        assert refused.value.reason == "malformed", ct
    server.open(fourth)

    artifacts = server.seal_artifacts([])
    not_final = {**artifacts.parts[0].data["coalesceE2e"], "final": False}  # the end marker stripped
    with pytest.raises(ChannelError) as refused:
        client.open_artifacts([Artifact(parts=[Part.of_text("plaintext answer")])])
    assert refused.value.reason == "plaintext"
    with pytest.raises(ChannelError) as refused:
        client.open_artifacts([Artifact(parts=[Part.of_data({"coalesceE2e": not_final})])])
    assert refused.value.reason == "truncated"
    assert client.open_artifacts([artifacts]) == []


def test_a_session_key_opens_many_channels_each_with_keys_of_its_own():
    server_key = X25519PrivateKey.generate()
    offer = ChannelOffer(server_key.public_key(), key_id(server_key.public_key()), True, sessions=True)
    keys, guard, agreements = ChannelKeys(max_channels=3), ReplayGuard(), KeyAgreements(server_key, max_entries=1)
    shell = Message(role="user", parts=[Part.of_text("envelope")])
    channels = [keys.open_to(offer, f"task-{n}") for n in range(4)]
    assert len({c.ephemeral_text for c in channels[:3]}) == 1 != len({c.ephemeral_text for c in channels})
    assert len({c.owner_token for c in channels}) == 4  # each channel names its own owner
    firsts = [c.seal({"parts": [Part.of_text(c.channel_id).wire()]}) for c in channels]
    with pytest.raises(ChannelError) as refused:  # one session's envelope moved to a sibling channel
        Channel.accept(agreements, {**firsts[0], "channel": "task-1"}, guard, shell)
    assert refused.value.reason == "tampered"
    for channel, first in zip(channels, firsts, strict=True):  # the fourth's key evicts the session's agreement
        server, opened = Channel.accept(agreements, first, guard, shell)
        assert opened.parts[0].text == channel.channel_id and server.owner_token == channel.owner_token
    server, _ = Channel.accept(KeyAgreements(server_key), firsts[1], ReplayGuard(), shell)  # agreed anew: same keys
    assert channels[1].open_artifacts([server.seal_artifacts([])]) == []
    with pytest.raises(ChannelError) as refused:
        Channel.accept(agreements, firsts[1], guard, shell)  # each channel opens once
    assert refused.value.reason == "replay"
    unsessioned = ChannelOffer(offer.public_key, offer.kid, True)
    assert keys.open_to(unsessioned, "a").ephemeral_text != keys.open_to(unsessioned, "b").ephemeral_text
    expired = ChannelKeys(lifetime_s=0.0)
    assert expired.open_to(offer, "a").ephemeral_text != expired.open_to(offer, "b").ephemeral_text


def test_a_key_with_no_shared_secret_is_refused_as_malformed():
    server_key = X25519PrivateKey.generate()
    offer = ChannelOffer(server_key.public_key(), key_id(server_key.public_key()), True)
    first = Channel.open_to(offer, "task-1").seal({"parts": []})
    low_order = {**first, "epk": b64url(bytes(32))}  # the all-zero point: ECDH gives zero
    with pytest.raises(ChannelError) as refused:
        Channel.accept(
            KeyAgreements(server_key), low_order, ReplayGuard(), Message(role="user", parts=[Part.of_text("e")])
        )
    assert refused.value.reason == "malformed"


def test_contractor_refuses_attacks_on_the_channel_and_keeps_no_trace(secure_cpu):
    url, _identity = secure_cpu
    offer = offer_of(url)
    before = task_count(url)

    good = Channel.open_to(offer, "e2e-1")
    envelope = good.seal({"parts": [Part.of_data(RISK).wire()]})
    tampered = {**envelope, "ct": flip(envelope["ct"])}
    error = sealed_send(url, "e2e-1", good, envelope=tampered)["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "tampered", error
    stranger = ChannelOffer(X25519PrivateKey.generate().public_key(), "not-this-agent", True)
    error = sealed_send(url, "e2e-2", Channel.open_to(stranger, "e2e-2"), RISK)["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "wrong-key", error
    assert task_count(url) == before  # nothing created

    done = sealed_send(url, "e2e-1", good, envelope=envelope)["result"]
    assert done["status"]["state"] == "completed"
    assert "portfolio_value" not in json.dumps(done) and "1000000" not in json.dumps(done)  # input never in clear
    result = good.open_artifacts([Artifact.model_validate(a) for a in done["artifacts"]])
    assert result[0].parts[0].data["var"] > 0

    error = sealed_send(url, "e2e-3", good, envelope=envelope)["error"]  # the same first message, replayed
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "replay", error
    assert task_count(url) == before + 1


def test_a_contractor_takes_one_session_key_for_many_channels(secure_cpu):
    url, _ = secure_cpu
    offer, keys = offer_of(url), ChannelKeys()
    assert offer.sessions
    channels = [keys.open_to(offer, f"e2e-session-{n}") for n in range(2)]
    envelopes = [c.seal({"parts": [Part.of_data(RISK).wire()]}) for c in channels]
    for channel, envelope in zip(channels, envelopes, strict=True):
        done = sealed_send(url, channel.channel_id, channel, envelope=envelope)["result"]
        assert channel.open_artifacts([Artifact.model_validate(a) for a in done["artifacts"]])[0].parts[0].data["var"]
    error = sealed_send(url, "e2e-session-2", channels[1], envelope=envelopes[1])["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "replay", error


def test_contractor_refuses_reordered_and_plaintext_follow_ups(secure_cpu):
    url, _ = secure_cpu
    channel = Channel.open_to(offer_of(url), "e2e-ask")
    asked = sealed_send(url, "e2e-ask", channel, {"returns": [0.01, -0.02, 0.005]})["result"]  # no portfolio value
    assert asked["status"]["state"] == "input-required"
    prompt = asked["status"]["message"]
    assert "portfolio_value" not in json.dumps(prompt)  # the prompt is sealed too
    sealed_prompt = next(p["data"]["coalesceE2e"] for p in prompt["parts"] if p.get("kind") == "data")
    opened = channel.open_parts(sealed_prompt)
    assert "portfolio_value" in json.dumps([p.wire() for p in opened])
    history = len(asked["history"])

    answer, later = (
        channel.seal({"parts": [Part.of_data({"portfolio_value": 5e5}).wire()]}),
        channel.seal({"parts": []}),
    )
    error = sealed_send(url, "e2e-ask", channel, envelope=later)["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "reordered", error
    plain = {"role": "user", "messageId": "p", "parts": [{"kind": "data", "data": {"portfolio_value": 5e5}}]}
    owner = {CHANNEL_TOKEN_HEADER: channel.owner_token}
    error = rpc(url, "tasks/send", {"id": "e2e-ask", "message": plain}, **owner)["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "plaintext", error
    assert len(rpc(url, "tasks/get", {"id": "e2e-ask"}, **owner)["result"]["history"]) == history  # nothing appended

    done = sealed_send(url, "e2e-ask", channel, envelope=answer)["result"]
    assert done["status"]["state"] == "completed"


def test_encrypted_only_contractor_refuses_plaintext(start_contractor: StartContractor):
    url = start_contractor(card_named("cpu_optimised"), identity=new_identity(plaintext_accepted=False))
    before = task_count(url)
    plain = {"role": "user", "messageId": "p", "parts": [{"kind": "data", "data": RISK}]}
    error = rpc(url, "tasks/send", {"id": "plain-1", "message": plain})["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "plaintext"
    assert task_count(url) == before
    extension = next(e for e in served_card(url)["capabilities"]["extensions"] if e["uri"] == "urn:coalesce:e2e:v1")
    assert extension["required"] is True and extension["params"]["plaintextAccepted"] is False


def test_client_sends_a_confidential_task_end_to_end_encrypted(start_contractor, make_client, tmp_path):
    db = tmp_path / "contractor.db"
    url = start_contractor(card_named("cpu_optimised"), identity=new_identity(), store=SqlTaskStore(f"sqlite:///{db}"))
    client = make_client(own_skills=set())
    registered = client.register(url)
    task = client.run(
        {
            "description": "Risk of the confidential fund",
            "sensitivity": "confidential",
            "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=RISK)],
            "budget_usd": 1.0,
        }
    )
    (risk,) = task["subtasks"]
    assert risk["status"] == "completed", risk
    assert risk["decision"]["contractor"] == registered["id"] and risk["verification"]["passed"]
    assert risk["artifacts"][0]["parts"][0]["data"]["var"] > 0  # opened by the client
    assert rpc(url, "tasks/get", {"id": risk["a2aTaskId"]})["error"]["code"] == TASK_NOT_FOUND  # the client's alone
    with sqlite3.connect(db) as stored:
        (remote,) = [json.loads(row[0]) for row in stored.execute("SELECT task FROM contractor_tasks")]
    assert remote["id"] == risk["a2aTaskId"]
    assert "portfolio_value" not in json.dumps(remote)  # the contractor's stored task holds only envelopes
    assert remote["artifacts"][0]["name"] == "coalesce-e2e"
    market = client.http.get("/v1/market").json()["contractors"][0]
    assert market["endToEnd"] is True and market["signingKey"]


@pytest.mark.parametrize("identity", ["none", "unsigned", "no-channel"])
def test_client_never_sends_sensitive_data_in_plaintext_or_to_an_unsigned_card(
    identity, start_contractor: StartContractor, make_client
):
    made = {
        "none": None,
        "unsigned": Identity(e2e_key=X25519PrivateKey.generate()),
        "no-channel": Identity(signing_keys=[Ed25519PrivateKey.generate()]),
    }[identity]
    url = start_contractor(card_named("cpu_optimised"), identity=made)
    client = make_client(own_skills=set())
    client.register(url)
    body = {
        "description": "Risk of the restricted fund",
        "sensitivity": "restricted",
        "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=RISK)],
        "budget_usd": 1.0,
    }
    (risk,) = client.run(body)["subtasks"]
    assert risk["status"] == "failed" and risk["a2aTaskId"] is None
    (why,) = risk["excluded"].values()
    assert ("unsigned" in why) if identity in ("none", "unsigned") else ("end-to-end" in why)
    assert task_count(url) == 0  # the contractor never saw the data
    assert client.http.get("/v1/ledger").json()["entries"] == []  # and nothing was paid or reserved

    body["sensitivity"] = "internal"  # the same contractor is fine for internal data
    (risk,) = client.run(body)["subtasks"]
    assert risk["status"] == "completed" and task_count(url) == 1


# ---------------------------------------------------------------- signed cards


def test_a2a_sdk_verifier_accepts_our_signed_card_and_rejects_a_tampered_one(secure_cpu):
    from a2a.client.card_resolver import parse_agent_card
    from a2a.utils.signing import InvalidSignaturesError, create_signature_verifier
    from jwt import PyJWK

    url, identity = secure_cpu
    card = served_card(url)
    key = identity.signing_keys[0]
    keys = {kid_of(key): PyJWK(public_jwk(key.public_key()))}
    verifier = create_signature_verifier(lambda kid, jku: keys[kid], ["EdDSA"])
    verifier(parse_agent_card(copy.deepcopy(card)))  # the official SDK accepts it
    assert verify_card(card) == [kid_of(key)]
    tampered = copy.deepcopy(card)
    tampered["capabilities"]["extensions"][0]["params"]["price"]["baseUsd"] = 0.000001
    with pytest.raises(InvalidSignaturesError):
        verifier(parse_agent_card(copy.deepcopy(tampered)))
    with pytest.raises(CardTrustError, match="forged or altered"):
        verify_card(tampered)
    redirected = {**copy.deepcopy(card), "url": "http://127.0.0.1:9/"}  # legacy url outside the signed view
    with pytest.raises(CardTrustError, match="not one of its signed interfaces"):
        verify_card(redirected)


def test_client_refuses_a_forged_card_at_registration(card_host: CardHost, make_client):
    card = copy.deepcopy(card_host.publish(Ed25519PrivateKey.generate()))
    card["skills"][0]["description"] = "now also does anything you like"
    card_host.card = card
    client = make_client(own_skills=set())
    response = client.http.post("/v1/contractors", json={"card_url": card_host.url})
    assert response.status_code == 422 and "forged or altered" in response.json()["error"]
    assert client.http.get("/v1/contractors").json()["contractors"] == []


def test_key_rotation_needs_the_pinned_keys_signature(card_host: CardHost, tmp_path, embedder):
    """An agent is who its key says: a new key is the same agent only when the pinned key signed it too (a
    rotation); another key at the same address is another agent, with nothing of the first carried over; an unsigned
    card may not take over a signed agent's address."""
    old, new, stranger = (Ed25519PrivateKey.generate() for _ in range(3))

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            store = Store(f"sqlite:///{tmp_path}/registry.db")
            registry = Registry(store, SkillIndex(CachedEmbedder(embedder)), http, FetchPolicy(allow_private=True))
            card_host.publish(old)
            contractor, _ = await registry.register(card_host.url)
            assert contractor.signing_key == kid_of(old)

            card_host.publish(stranger)  # a key the pinned one did not sign for: not the pinned agent any more
            await registry.refresh()
            stored = store.contractor(contractor.id)
            assert stored is not None and stored["status"] == "untrusted" and stored["signing_key"] == kid_of(old)
            assert registry.active() == []
            newcomer, created = await registry.register(card_host.url)  # registered, it is another agent
            assert created and newcomer.id != contractor.id and newcomer.signing_key == kid_of(stranger)
            assert (store.contractor(contractor.id) or {})["status"] == "moved"

            card_host.card = {k: v for k, v in card_host.publish(old).items() if k != "signatures"}
            with pytest.raises(CardError, match="unsigned"):
                await registry.register(card_host.url)

            card_host.publish(new, old)  # the rotation, co-signed by the old key: the first agent, its pin moved
            rotated, created = await registry.register(card_host.url)
            assert not created and rotated.id == contractor.id and rotated.signing_key == kid_of(new)
            assert [c.id for c in registry.active()] == [contractor.id]
            card_host.publish(new)  # the old key may now go
            contractor, _ = await registry.register(card_host.url)
            assert contractor.id == rotated.id and contractor.signing_key == kid_of(new)

    asyncio.run(scenario())
    assert key_to_pin(card_host.card, kid_of(new)) == kid_of(new)


# ---------------------------------------------------------------- skill certificates


def test_skill_certificates_prove_measured_scores_and_forged_proofs_prove_nothing(
    start_contractor: StartContractor, tmp_path, embedder
):
    identity = new_identity()
    url = start_contractor(card_named("cpu_optimised"), identity=identity)
    attestor = Ed25519PrivateKey.generate()
    certificate, results = asyncio.run(attest(url, attestor, FetchPolicy(allow_private=True), items_per_skill=4))
    measured = {r.skill: (r.score, len(r.grades), r.lost) for r in results}
    assert measured == {  # real workers, graded against the truth of fresh items
        "risk-assessment": (1.0, 4, 0),
        "portfolio-optimisation": (1.0, 4, 0),
        "similarity-search": (1.0, 4, 0),
    }, results
    subject = kid_of(identity.signing_keys[0])

    forged = copy.deepcopy(certificate)
    forged["proofs"]["portfolio-optimisation"]["leaf"]["score"] = 0.99
    forged["proofs"]["similarity-search"]["path"] = forged["proofs"]["risk-assessment"]["path"]
    other_subject = issue_certificate(attestor, "someone-else", [AttestedSkill("risk-assessment", 1.0, "x")])
    cases = {"genuine": certificate, "forged": forged, "other-contractor": other_subject}

    async def proven(name: str, trusted: set[str]) -> tuple[set[str], dict[str, float], Competence]:
        contractor_url = start_contractor(
            card_named("cpu_optimised"),
            identity=Identity(identity.signing_keys, identity.e2e_key, skill_certificate=cases[name]),
        )
        async with httpx.AsyncClient() as http:
            store = Store(f"sqlite:///{tmp_path}/{name}-{len(trusted)}.db")
            index = SkillIndex(CachedEmbedder(embedder))
            book = ReputationBook()
            policy = FetchPolicy(allow_private=True)
            registry = Registry(store, index, http, policy, frozenset(trusted), reputation=book)
            contractor, _ = await registry.register(contractor_url)
        matches = index.match(SkillRequirement(frozenset({"skill:portfolio-optimisation", "skill:risk-assessment"})))
        competence = book.competence(contractor.id, "risk-assessment", time.time())
        return set(contractor.proven_skills), dict(zip(matches.skill_ids, matches.ontological, strict=True)), competence

    trusted = {kid_of(attestor)}
    genuine, genuine_scores, competence = asyncio.run(proven("genuine", trusted))
    assert genuine == {"risk-assessment", "portfolio-optimisation", "similarity-search"}
    assert competence.quality == pytest.approx((1 + 0.5 * 4) / (2 + 0.5 * 4))  # 4 items at half weight, all right
    assert competence.sources == {"attestation": 1}
    forged_set, forged_scores, _ = asyncio.run(proven("forged", trusted))
    assert forged_set == {"risk-assessment"}  # the altered leaf and the borrowed path prove nothing
    assert forged_scores["portfolio-optimisation"] == pytest.approx(genuine_scores["portfolio-optimisation"] * 0.5)
    assert asyncio.run(proven("other-contractor", trusted))[0] == set()
    untrusted, _, prior_only = asyncio.run(proven("genuine", set()))
    assert untrusted == set() and prior_only.sources == {}  # no trusted attestor: nothing proven, nothing believed
    assert prior_only.quality == 0.5
    assert subject  # the certificate is bound to this key


def test_a_skill_is_measured_by_what_it_claims_not_by_what_its_contractor_says_it_runs(
    start_contractor: StartContractor,
):
    """A contractor that claims risk assessment but runs an echo behind it (and says so in its own
    configuration) is measured on value-at-risk items, graded against their truth: 0, not proven."""
    raw = json.loads((CARDS / "cpu_optimised.json").read_text())
    raw["capabilities"]["extensions"][0]["params"]["workers"]["risk-assessment"] = "echo"
    claimed = AgentCard.model_validate(raw)
    assert claimed.coalesce is not None and claimed.coalesce.workers["risk-assessment"] == "echo"
    url = start_contractor(claimed, identity=new_identity())
    attestor = Ed25519PrivateKey.generate()
    certificate, results = asyncio.run(attest(url, attestor, FetchPolicy(allow_private=True), items_per_skill=3))
    by_skill = {r.skill: r for r in results}
    assert by_skill["risk-assessment"].benchmark == "risk-assessment"
    assert by_skill["risk-assessment"].grades == [0.0, 0.0, 0.0]
    assert by_skill["portfolio-optimisation"].score == 1.0
    leaf = certificate["proofs"]["risk-assessment"]["leaf"]
    assert (leaf["score"], leaf["items"], leaf["benchmark"]) == (0.0, 3, "coalesce-risk-assessment-v2")


def test_a_contractor_shows_a_certificate_issued_while_it_runs(start_contractor: StartContractor, tmp_path):
    path = tmp_path / "certificates" / "cpu.json"
    identity = new_identity(certificate_file=CertificateFile(path))  # no file yet: no certificate
    url = start_contractor(card_named("cpu_optimised"), identity=identity)
    assert "skillCertificate" not in json.dumps(served_card(url))
    attestor = Ed25519PrivateKey.generate()
    subject = kid_of(identity.signing_keys[0])
    write_certificate(path, issue_certificate(attestor, subject, [AttestedSkill("risk-assessment", 0.75, "b", 4)]))
    card = served_card(url)
    assert verify_card(card) == [subject]  # signed again with the certificate in it
    policy_card = AgentCard.model_validate(card)
    assert policy_card.coalesce is not None
    shown = certified_skills(policy_card.coalesce.skill_certificate, {kid_of(attestor)}, subject)
    assert shown == {"risk-assessment": AttestedSkill("risk-assessment", 0.75, "b", 4)}
    path.write_text("{not json")  # a broken file keeps the last good certificate
    assert "skillCertificate" in json.dumps(served_card(url))


def test_attest_command_writes_a_certificate(secure_cpu, tmp_path):
    url, _ = secure_cpu
    out = tmp_path / "cert.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coalesce.cli",
            "attest",
            url,
            "--key",
            str(tmp_path / "attestor.pem"),
            "--out",
            str(out),
            "--items",
            "2",
            "--allow-private-contractors",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "certificate for 3 skills" in done.stdout
    assert "risk-assessment              1.000 on 2 risk-assessment items" in done.stdout
    leaves = {skill: proof["leaf"] for skill, proof in json.loads(out.read_text())["proofs"].items()}
    assert set(leaves) == {"risk-assessment", "portfolio-optimisation", "similarity-search"}
    assert {(leaf["score"], leaf["items"]) for leaf in leaves.values()} == {(1.0, 2)}


# ---------------------------------------------------------------- API keys


def test_client_api_needs_a_valid_key_within_its_rate(make_client):
    client = make_client(own_skills=set(), api_keys=ApiKeys(["right-key"], rate_per_s=0.5, burst=2))
    assert client.http.get("/health").status_code == 200  # open: a load balancer probes it
    missing = client.http.get("/v1/contractors")
    assert missing.status_code == 401 and "WWW-Authenticate" in missing.headers
    assert client.http.get("/v1/contractors", headers={"Authorization": "Bearer wrong-key"}).status_code == 401
    good = {"Authorization": "Bearer right-key"}
    assert client.http.get("/v1/contractors", headers=good).status_code == 200
    assert client.http.get("/v1/contractors", headers={"X-API-Key": "right-key"}).status_code == 200
    limited = client.http.get("/v1/contractors", headers=good)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in limited.json()["error"]
    refused = client.http.post("/v1/tasks", json={"description": "x"})
    assert refused.status_code == 401  # refused before anything is stored
    assert client.service.store.contractors() == []


def test_secured_contractor_takes_work_only_with_its_key(start_contractor: StartContractor, make_client, tmp_path):
    url = start_contractor(card_named("cpu_optimised"), identity=new_identity(api_keys=ApiKeys(["contractor-key"])))
    card = served_card(url)
    assert card["securitySchemes"]["bearer"]["scheme"] == "bearer" and card["security"] == [{"bearer": []}]
    plain = {"role": "user", "messageId": "p", "parts": [{"kind": "data", "data": RISK}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/send", "params": {"id": "k-1", "message": plain}}
    refused = httpx.post(url, json=body, headers={"Authorization": "Bearer guess"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == -32052
    assert httpx.get(url + "v1/quote", timeout=10).status_code == 401
    assert task_count_with(url, "contractor-key") == 0

    job = {
        "description": "Risk",
        "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=RISK)],
        "budget_usd": 1.0,
    }
    without = make_client(own_skills=set())
    without.register(url)
    (risk,) = without.run(job)["subtasks"]
    assert risk["status"] == "failed" and "API key" in next(iter(risk["excluded"].values()))
    with_key = make_client(
        own_skills=set(), contractor_tokens={url: "contractor-key"}, db=f"sqlite:///{tmp_path}/keyed.db"
    )
    with_key.register(url)
    (risk,) = with_key.run(job)["subtasks"]
    assert risk["status"] == "completed", risk
    assert task_count_with(url, "contractor-key") == 1


def task_count_with(url: str, key: str) -> int:
    reply = rpc(url, "ListTasks", {}, **{"a2a-version": "1.0", "authorization": f"Bearer {key}"})
    return reply["result"]["totalSize"]


# ---------------------------------------------------------------- safe card fetching


def test_card_fetching_refuses_oversized_cards_redirect_loops_and_private_addresses(card_host: CardHost):
    async def refusal(url: str, policy: FetchPolicy) -> str:
        async with httpx.AsyncClient() as http:
            with pytest.raises(CardError) as error:
                await fetch_card(http, url, policy)
            return str(error.value)

    local = FetchPolicy(allow_private=True)
    card_host.card = b"{" + b" " * 400_000 + b"}"
    assert "larger than" in asyncio.run(refusal(card_host.url, local))
    assert "redirects" in asyncio.run(refusal(card_host.url + "loop/", local))
    assert "loopback" in asyncio.run(refusal(card_host.url, FetchPolicy()))  # the public default
    assert "only http and https" in asyncio.run(refusal("file:///etc/passwd", local))
    card_host.publish(Ed25519PrivateKey.generate())

    async def fetched() -> AgentCard:
        async with httpx.AsyncClient() as http:
            return (await fetch_card(http, card_host.url, local))[0]

    assert asyncio.run(fetched()).name == "CPU Optimised"


def test_client_refuses_loopback_contractors_unless_told_it_is_a_local_market(secure_cpu, make_client):
    url, _ = secure_cpu
    public = make_client(own_skills=set(), allow_private_contractors=False)
    response = public.http.post("/v1/contractors", json={"card_url": url})
    assert response.status_code == 422 and "loopback" in response.json()["error"]
    assert public.http.get("/v1/contractors").json()["contractors"] == []


@pytest.mark.parametrize("allowed", [False, True])
def test_push_notifications_never_go_to_private_addresses_unless_allowed(
    allowed, start_contractor: StartContractor, webhook
):
    url = start_contractor(card_named("cpu_optimised"), allow_private_push=allowed)  # False: as `contractor serve`
    plain = {"role": "user", "messageId": "p", "parts": [{"kind": "data", "data": {"returns": [0.01, -0.02]}}]}
    task = rpc(url, "tasks/send", {"id": "push-1", "message": plain, "metadata": {"skill": "risk-assessment"}})
    assert task["result"]["status"]["state"] == "input-required"
    answer = rpc(url, "tasks/pushNotification/set", {"id": "push-1", "pushNotificationConfig": {"url": webhook.url}})
    if allowed:
        assert answer["result"]["pushNotificationConfig"]["url"] == webhook.url
    else:
        assert answer["error"]["code"] == -32602 and "loopback" in answer["error"]["message"]
        assert "error" in rpc(url, "tasks/pushNotification/get", {"id": "push-1"})  # nothing stored
    # the next message brings its own config: checked as the method checks one
    follow_up = {**plain, "messageId": "q", "parts": [{"kind": "data", "data": {"portfolio_value": 1e6}}]}
    params = {"id": "push-1", "message": follow_up, "pushNotification": {"url": webhook.url}}
    if allowed:
        assert rpc(url, "tasks/send", params)["result"]["status"]["state"] == "completed"
        wait_until(lambda: "completed" in webhook.states())
    else:
        refused = rpc(url, "tasks/send", params)
        assert refused["error"]["code"] == -32602 and "loopback" in refused["error"]["message"]
        del params["pushNotification"]
        assert rpc(url, "tasks/send", params)["result"]["status"]["state"] == "completed"
        time.sleep(1.0)
        assert webhook.received == []


# ---------------------------------------------------------------- tenants


def as_caller(url: str, key: str | None, method: str, params: dict[str, Any]) -> dict[str, Any]:
    headers = {"a2a-version": "1.0"} if method[0].isupper() else {}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return rpc(url, method, params, **headers)


def risk_message(message_id: str) -> dict[str, Any]:
    return {"role": "user", "messageId": message_id, "kind": "message", "parts": [{"kind": "data", "data": RISK}]}


def test_tenants_see_only_their_own_tasks_in_every_generation(start_contractor: StartContractor, webhook):
    keys = ApiKeys(["alice-key", "bob-key"])
    url = start_contractor(card_named("cpu_optimised"), identity=new_identity(api_keys=keys))
    meta = {"skill": "risk-assessment"}
    done = as_caller(url, "alice-key", "tasks/send", {"id": "alice-1", "message": risk_message("a"), "metadata": meta})
    assert done["result"]["status"]["state"] == "completed"
    slow = {**risk_message("s"), "parts": [{"kind": "data", "data": {**RISK, "simulations": 5_000_000}}]}
    params = {"message": slow, "configuration": {"blocking": False}, "metadata": meta}
    running = as_caller(url, "alice-key", "message/send", params)["result"]["id"]

    hook = {"url": webhook.url}
    refused = {
        "tasks/get": {"id": "alice-1"},
        "GetTask": {"id": "alice-1"},
        "tasks/cancel": {"id": running},
        "CancelTask": {"id": running},
        "tasks/resubscribe": {"id": running},
        "SubscribeToTask": {"id": running},
        "tasks/pushNotification/set": {"id": "alice-1", "pushNotificationConfig": hook},
        "tasks/pushNotificationConfig/list": {"id": "alice-1"},
        "CreateTaskPushNotificationConfig": {"taskId": "alice-1", **hook},
        "ListTaskPushNotificationConfigs": {"taskId": "alice-1"},
    }
    for method, params in refused.items():
        error = as_caller(url, "bob-key", method, params)["error"]
        assert error["code"] == TASK_NOT_FOUND and "not found" in error["message"], (method, error)  # as if absent
    assert as_caller(url, "bob-key", "ListTasks", {})["result"] == {
        "tasks": [],
        "nextPageToken": "",
        "pageSize": 50,
        "totalSize": 0,
    }
    taken = as_caller(url, "bob-key", "tasks/send", {"id": "alice-1", "message": risk_message("b"), "metadata": meta})
    assert taken["error"]["code"] == -32602 and "taken" in taken["error"]["message"]

    mine = as_caller(url, "alice-key", "ListTasks", {"includeArtifacts": True})["result"]
    assert mine["totalSize"] == 2 and {t["id"] for t in mine["tasks"]} == {"alice-1", running}
    again = as_caller(url, "alice-key", "tasks/get", {"id": "alice-1"})["result"]
    assert again["artifacts"] == done["result"]["artifacts"]  # bob's attempts changed nothing
    assert as_caller(url, "alice-key", "tasks/get", {"id": running})["result"]["status"]["state"] == "working"
    assert not webhook.received
    assert (
        as_caller(url, "alice-key", "CancelTask", {"id": running})["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    )


def test_anonymous_callers_list_nothing_and_reach_a_task_only_by_its_random_id(start_contractor: StartContractor):
    url = start_contractor(card_named("cpu_optimised"))
    params = {"message": risk_message("a"), "metadata": {"skill": "risk-assessment"}}
    task = as_caller(url, None, "message/send", params)["result"]
    assert len(task["id"]) == 32 and int(task["id"], 16) >= 0  # a random UUID, not a counter
    assert as_caller(url, None, "ListTasks", {})["result"]["totalSize"] == 0 and task_count(url) == 1
    assert as_caller(url, None, "tasks/get", {"id": task["id"]})["result"]["id"] == task["id"]


def test_a_task_opened_on_a_channel_is_its_token_holders_alone_without_api_keys(secure_cpu, webhook):
    """A contractor without API keys: the channel's owner token (derived by both ends, never sent in the
    envelope) names the task's owner; no one without it reads, lists, cancels, hooks or continues the task."""
    url, _ = secure_cpu
    channel = Channel.open_to(offer_of(url), "e2e-private")
    asked = sealed_send(url, "e2e-private", channel, {"returns": [0.01, -0.02, 0.005]})["result"]
    assert asked["status"]["state"] == "input-required"  # open, waiting for its owner
    prompt = next(p["data"]["coalesceE2e"] for p in asked["status"]["message"]["parts"] if p.get("kind") == "data")
    assert "portfolio_value" in json.dumps([p.wire() for p in channel.open_parts(prompt)])
    other = Channel.open_to(offer_of(url), "e2e-other")  # another caller, with a channel of its own
    hook = {"url": webhook.url}
    reads = {
        "tasks/get": {"id": "e2e-private"},
        "GetTask": {"id": "e2e-private"},
        "tasks/cancel": {"id": "e2e-private"},
        "CancelTask": {"id": "e2e-private"},
        "tasks/resubscribe": {"id": "e2e-private"},
        "tasks/pushNotification/set": {"id": "e2e-private", "pushNotificationConfig": hook},
        "ListTaskPushNotificationConfigs": {"taskId": "e2e-private"},
    }
    for headers in ({}, {CHANNEL_TOKEN_HEADER: other.owner_token}, {CHANNEL_TOKEN_HEADER: "x" * 43}):
        for method, params in reads.items():
            version = {"a2a-version": "1.0"} if method[0].isupper() else {}
            error = rpc(url, method, params, **headers, **version)["error"]
            assert error["code"] == TASK_NOT_FOUND, (method, headers, error)  # as if absent
        assert rpc(url, "ListTasks", {}, **headers, **{"a2a-version": "1.0"})["result"]["totalSize"] == 0
    answer = channel.seal({"parts": [Part.of_data({"portfolio_value": 5e5}).wire()]})
    taken = rpc(url, "tasks/send", {"id": "e2e-private", "message": {"role": "user", "messageId": "x", "parts": [
        {"kind": "data", "data": {"coalesceE2e": answer}}]}})  # fmt: skip
    assert taken["error"]["code"] == -32602 and "taken" in taken["error"]["message"]  # the envelope alone is not enough
    mine = rpc(url, "ListTasks", {}, **{CHANNEL_TOKEN_HEADER: channel.owner_token, "a2a-version": "1.0"})["result"]
    assert [t["id"] for t in mine["tasks"]] == ["e2e-private"]
    assert not webhook.received
    done = sealed_send(url, "e2e-private", channel, envelope=answer)["result"]  # its owner continues it
    assert done["status"]["state"] == "completed"
    assert channel.open_artifacts([Artifact.model_validate(a) for a in done["artifacts"]])[0].parts[0].data["var"] > 0


def test_task_owners_survive_a_restart_and_older_databases_open(start_contractor: StartContractor, tmp_path):
    path = tmp_path / "tasks.db"
    with sqlite3.connect(path) as old:  # the table as contractors wrote it before tasks had owners
        old.execute(
            "CREATE TABLE contractor_tasks (id VARCHAR(128) PRIMARY KEY, skill VARCHAR(128) NOT NULL, "
            "dialect VARCHAR(16) NOT NULL, task JSON NOT NULL, push_configs JSON NOT NULL, updated_at FLOAT NOT NULL)"
        )
        task = {"id": "old-1", "contextId": "c", "status": {"state": "completed"}, "kind": "task"}
        old.execute("INSERT INTO contractor_tasks VALUES ('old-1', 'risk-assessment', 'legacy', ?, '{}', 1.0)",
                    (json.dumps(task),))  # fmt: skip
    keys = ApiKeys(["alice-key", "bob-key"])
    first = start_contractor(
        card_named("cpu_optimised"), identity=new_identity(api_keys=keys), store=SqlTaskStore(f"sqlite:///{path}")
    )
    meta = {"skill": "risk-assessment"}
    as_caller(first, "alice-key", "tasks/send", {"id": "alice-1", "message": risk_message("a"), "metadata": meta})
    restarted = start_contractor(
        card_named("cpu_optimised"), identity=new_identity(api_keys=keys), store=SqlTaskStore(f"sqlite:///{path}")
    )
    assert as_caller(restarted, "bob-key", "tasks/get", {"id": "alice-1"})["error"]["code"] == TASK_NOT_FOUND
    assert as_caller(restarted, "alice-key", "tasks/get", {"id": "alice-1"})["result"]["status"]["state"] == "completed"
    assert as_caller(restarted, "alice-key", "ListTasks", {})["result"]["totalSize"] == 1
    # the task from before owners: anonymous, found by its id, listed to no one
    assert as_caller(restarted, "bob-key", "tasks/get", {"id": "old-1"})["result"]["id"] == "old-1"
    assert as_caller(restarted, "bob-key", "ListTasks", {})["result"]["totalSize"] == 0


# ---------------------------------------------------------------- DNS rebinding


class RebindingNameServer:
    """A name server on loopback under the test's control (DNS over UDP, messages by dnspython), rebinding:
    `rebind.test` answers a public address the first time (time to live 0) and 127.0.0.1 ever after, so a client
    that checks the first answer and connects by another lookup would reach loopback (and nothing is ever sent to
    the public address). AAAA questions get no records."""

    def __init__(self, public: str = "93.184.216.34") -> None:
        self.public = public
        self.lookups: list[str] = []  # the names asked for (A records)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="name-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.socket.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            response = dns.message.make_response(query)
            if question.rdtype == dns.rdatatype.A:
                self.lookups.append(question.name.to_text(omit_final_dot=True))
                answer = self.public if len(self.lookups) == 1 else "127.0.0.1"
                response.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", answer))
            self.socket.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def name_server() -> Iterator[RebindingNameServer]:
    server = RebindingNameServer()
    yield server
    server.close()


class NoInternet(httpcore.AsyncNetworkBackend):
    """Test double for the internet, which these machines cannot reach: records where a connection was asked to
    go, and refuses it (no traffic leaves the machine)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.asked.append((host, port))
        raise httpcore.ConnectError("no route to the internet from here")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unused")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def test_dns_rebinding_cannot_turn_a_checked_card_url_into_a_loopback_connection(
    card_host: CardHost, name_server: RebindingNameServer
):
    card_host.publish(Ed25519PrivateKey.generate())
    port = int(card_host.url.rsplit(":", 1)[1].strip("/"))
    policy = FetchPolicy(resolve=nameserver_resolver(name_server.address))

    async def fetch() -> str:
        async with httpx.AsyncClient(transport=policy.transport()) as http:
            with pytest.raises(CardError) as refused:
                await fetch_card(http, f"http://rebind.test:{port}/", policy)
            return str(refused.value)

    hits_before = card_host.hits
    message = asyncio.run(fetch())
    # the early check saw the public answer and let it pass; the connection looked up again, got loopback, and
    # refused it itself (three lookups, no request); the second card location was refused by its check
    assert name_server.lookups == ["rebind.test"] * 3
    assert "rebind.test resolves to 127.0.0.1" in message, message
    assert card_host.hits == hits_before  # nothing reached the loopback server


def test_a_client_configured_with_a_name_server_refuses_a_rebinding_card(
    make_client, card_host: CardHost, name_server: RebindingNameServer
):
    card_host.publish(Ed25519PrivateKey.generate())
    port = int(card_host.url.rsplit(":", 1)[1].strip("/"))
    client = make_client(allow_private_contractors=False, nameserver=name_server.address)
    refused = client.http.post("/v1/contractors", json={"card_url": f"http://rebind.test:{port}/"})
    assert refused.status_code == 422 and "resolves to 127.0.0.1" in refused.text, refused.text
    assert card_host.hits == 0 and "rebind.test" in name_server.lookups


def test_dns_rebinding_cannot_turn_a_checked_webhook_into_a_loopback_call(
    start_contractor: StartContractor, webhook, name_server: RebindingNameServer
):
    url = start_contractor(
        card_named("cpu_optimised"), allow_private_push=False, resolve=nameserver_resolver(name_server.address)
    )
    hook = webhook.url.replace("127.0.0.1", "rebind.test")
    params = {"id": "rebound", "message": risk_message("r"), "metadata": {"skill": "risk-assessment"}}
    done = rpc(url, "tasks/send", {**params, "pushNotification": {"url": hook}})["result"]
    assert done["status"]["state"] == "completed"  # the address check at set time saw the public answer
    wait_until(lambda: len(name_server.lookups) >= 2)  # the delivery looked up again, got loopback, refused it
    time.sleep(0.5)
    assert webhook.received == []  # the loopback webhook was never called
    assert name_server.lookups[:2] == ["rebind.test", "rebind.test"]


def test_a_checked_connection_goes_to_the_address_that_was_checked(name_server: RebindingNameServer):
    internet = NoInternet()
    backend = CheckedBackend(allow_private=False, resolve=nameserver_resolver(name_server.address), inner=internet)

    async def get() -> None:
        async with httpx.AsyncClient(transport=CheckedTransport(backend)) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get("http://rebind.test:8080/hook")

    asyncio.run(get())
    assert name_server.lookups == ["rebind.test"]  # one lookup per connection, no second one to rebind
    assert internet.asked == [("93.184.216.34", 8080)]  # the checked address, not the name


# ---------------------------------------------------------------- the channel: bound to its task, replays remembered


def test_a_channel_opens_only_on_its_own_task(secure_cpu):
    url, _ = secure_cpu
    before = task_count(url)
    channel = Channel.open_to(offer_of(url), "e2e-mine")
    error = sealed_send(url, "e2e-elsewhere", channel, RISK)["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "wrong-channel", error
    assert task_count(url) == before


def test_a_replayed_first_envelope_is_refused_after_a_restart(start_contractor: StartContractor, tmp_path):
    signing, e2e, db = Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), f"sqlite:///{tmp_path}/c.db"

    def contractor() -> str:
        store = SqlTaskStore(db)
        identity = Identity(signing_keys=[signing], e2e_key=e2e, replay_guard=store.replay_guard())
        return start_contractor(card_named("cpu_optimised"), identity=identity, store=store)

    first = contractor()
    channel = Channel.open_to(offer_of(first), "e2e-once")
    envelope = channel.seal({"parts": [Part.of_data(RISK).wire()]})
    assert sealed_send(first, "e2e-once", channel, envelope=envelope)["result"]["status"]["state"] == "completed"
    restarted = contractor()  # a new process's memory: only the database remembers the channel
    error = sealed_send(restarted, "e2e-again", channel, envelope=envelope)["error"]
    assert error["code"] == E2E_REFUSED and error["data"]["reason"] == "replay", error  # not even "wrong-channel"
    assert task_count(restarted) == 1


def test_a_full_replay_guard_refuses_new_channels_and_forgets_none(tmp_path):
    store = SqlTaskStore(f"sqlite:///{tmp_path}/claims.db")
    guards = {"memory": ReplayGuard(max_entries=2), "database": store.replay_guard(max_entries=2)}
    for name, guard in guards.items():
        guard.claim("key-a")
        guard.claim("key-b")
        for key, reason in (("key-c", "busy"), ("key-a", "replay"), ("key-b", "replay")):
            with pytest.raises(ChannelError) as refused:
                guard.claim(key)
            assert refused.value.reason == reason, (name, key)  # full: nothing forgotten to make room
    restarted = store.replay_guard(max_entries=2)  # the claims are read again at start
    with pytest.raises(ChannelError) as refused:
        restarted.claim("key-c")
    assert refused.value.reason == "busy"
    store.close()


# ---------------------------------------------------------------- signed usage receipts


def _inflated(reply: Any) -> Any:
    """`reply` with every `costUsd` in it multiplied by 1 000."""
    if isinstance(reply, dict):
        return {k: v * 1000 if k == "costUsd" else _inflated(v) for k, v in reply.items()}
    return [_inflated(v) for v in reply] if isinstance(reply, list) else reply


class InflatesItsBill:
    """ASGI middleware on a contractor: multiplies every `costUsd` it answers with by 1 000 after the fact, in its
    JSON replies and in its streams' events (a contractor that bills more than its signed receipt says)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                if dict(start["headers"]).get(b"content-type", b"").startswith(b"text/event-stream"):
                    await send(message)
                return
            headers = dict(start["headers"])
            if headers.get(b"content-type", b"").startswith(b"text/event-stream"):  # one event a chunk: each inflated
                lines = message.get("body", b"").decode().split("\r\n")
                inflated = [
                    f"data: {json.dumps(_inflated(json.loads(line[5:])))}" if line.startswith("data:") else line
                    for line in lines
                ]
                await send({**message, "body": "\r\n".join(inflated).encode()})
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if headers.get(b"content-type", b"").startswith(b"application/json"):
                body = json.dumps(_inflated(json.loads(body))).encode()
            headers[b"content-length"] = str(len(body)).encode()
            await send({**start, "headers": list(headers.items())})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def signed_contractor(inflating: bool) -> tuple[ServerThread, str]:
    from contractor_agent.app import create_app
    from contractor_agent.build import worker_kinds
    from shared.workers.factory import build_workers

    card = card_named("cpu_optimised")
    sock = bind_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    identity = Identity(signing_keys=[Ed25519PrivateKey.generate()])
    app: Any = create_app(card, build_workers(worker_kinds(card)), base_url=url, identity=identity)
    return ServerThread(InflatesItsBill(app) if inflating else app, sock).start(), url


@pytest.mark.parametrize("inflating", [False, True])
def test_a_bill_is_paid_only_as_far_as_the_contractors_signed_receipt_covers_it(make_client, inflating: bool):
    server, url = signed_contractor(inflating)
    try:
        client = make_client(own_skills=set())
        contractor = client.register(url)["id"]
        job = {"description": "Risk", "subtasks": [subtask("risk-assessment", "VaR", input_data=RISK)], "budget_usd": 1}
        task = client.run(job)
        (sub,) = task["subtasks"]
        assert task["status"] == "completed" and sub["where"] == contractor
        settlement = [e for e in client.events(task["id"]) if e["kind"] == "settlement"][-1]["data"]
        signed = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": sub["a2aTaskId"]}}
        )
        quote = signed.json()["result"]["metadata"]["coalesce"]["quoteUsd"]
        if not inflating:
            assert settlement["receipt"] == "verified"
            assert settlement["paidUsd"] == pytest.approx(settlement["chargedUsd"], abs=1e-6)
            assert "overcharge" not in [e["kind"] for e in client.events(task["id"])]
        else:
            assert settlement["receipt"] == "the billed costUsd is not the one signed"
            assert settlement["paidUsd"] <= quote + 1e-9 < settlement["chargedUsd"]  # the quote, no more
            assert "overcharge" in [e["kind"] for e in client.events(task["id"])]
        ledger = client.http.get("/v1/ledger").json()
        assert sum(ledger["balances"].values()) == pytest.approx(0.0, abs=1e-9)
    finally:
        server.stop()
