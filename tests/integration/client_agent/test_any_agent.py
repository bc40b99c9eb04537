"""Any A2A agent sells on the market: agents built on the official a2a-sdk (v1.0 cards, served with its v0.3 compat,
no COALESCE extension) are registered with their operator's price and hired by the client in the generation their
card declares, streamed or not, answering with a task or a direct message; their answers are graded; and an agent
is who its signing key says it is, wherever it is served."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent.registry import Registry
from client_agent.storage import Store
from contractor_agent.identity import Identity
from shared.a2a.cards import FetchPolicy
from shared.economics.skills import CachedEmbedder, SkillIndex
from tests.conftest import LABELS, CardHost, StartContractor, card_named, subtask

HEADLINES = [
    ("Shares soar on record profits", "positive"),
    ("Retailer cuts jobs as sales slump", "negative"),
    ("Chipmaker beats forecasts on strong demand", "positive"),
]


def sentiment_task(key: str) -> dict[str, Any]:
    return {
        "description": "The tone of today's headlines.",
        "subtasks": [
            subtask(
                "sentiment-analysis",
                f"Classify the sentiment of: '{headline}'",
                verification={"kind": "labels", "labels": LABELS},
            )
            for headline, _ in HEADLINES
        ],
        "budget_usd": 1.0,
        "idempotency_key": key,
    }


@pytest.mark.parametrize(
    ("versions", "streaming", "direct", "spoken"),
    [
        (("1.0",), True, False, "1.0"),
        (("1.0",), False, False, "1.0"),
        (("1.0",), True, True, "1.0"),
        (("0.3",), True, False, "0.3"),
        (("0.3",), False, True, "0.3"),
        (("0.3", "1.0"), True, False, "1.0"),
    ],
)
def test_an_a2a_sdk_agent_is_registered_hired_graded_and_paid_its_operators_price(
    sdk_agent, make_client, versions, streaming, direct, spoken
):
    agent = sdk_agent(versions=versions, streaming=streaming, direct=direct)
    client = make_client(own_skills=set())
    response = client.http.post("/v1/contractors", json={"card_url": agent.url, "price_usd": 0.002})
    assert response.status_code == 201, response.text
    registered = response.json()
    assert registered["a2a_version"] == spoken and registered["url"] == agent.url
    assert registered["price_usd"] == 0.002 and registered["skills"] == ["sentiment-analysis"]

    task = client.run(sentiment_task(f"sdk-{spoken}-{streaming}-{direct}"))
    assert task["status"] == "completed", task
    for sub, (_, label) in zip(task["subtasks"], HEADLINES, strict=True):
        assert sub["decision"]["action"] == "outsource" and sub["decision"]["contractor"] == registered["id"]
        assert sub["verification"]["passed"] is True
        answer = " ".join(p.get("text", "") for a in sub["artifacts"] for p in a["parts"])
        assert answer.strip() == label  # the agent's own answer, graded against the labels
        assert sub["cost"]["actualUsd"] == pytest.approx(0.002)
        assert sub["decision"]["channel"] == "plaintext"  # no end-to-end channel on a plain A2A agent
    balances = client.http.get("/v1/ledger").json()["balances"]
    paid = [v for account, v in balances.items() if registered["id"] in account]
    assert paid == [pytest.approx(3 * 0.002)]


def test_registration_says_what_is_wrong(sdk_agent, make_client, start_contractor: StartContractor):
    agent = sdk_agent()
    client = make_client(own_skills=set())
    no_price = client.http.post("/v1/contractors", json={"card_url": agent.url})
    assert no_price.status_code == 422 and "give price_usd" in no_price.json()["error"]
    ours = start_contractor(card_named("cpu_optimised"))
    double = client.http.post("/v1/contractors", json={"card_url": ours, "price_usd": 0.01})
    assert double.status_code == 422 and "its own price list" in double.json()["error"]
    negative = client.http.post("/v1/contractors", json={"card_url": agent.url, "price_usd": -1})
    assert negative.status_code == 422
    assert client.http.get("/v1/contractors").json()["contractors"] == []
    priced = client.http.post("/v1/contractors", json={"card_url": agent.url, "price_usd": 0.003})
    assert priced.status_code == 201
    again = client.http.post("/v1/contractors", json={"card_url": agent.url})  # the price given before holds
    assert again.status_code == 200 and again.json()["price_usd"] == 0.003


def test_a_card_without_a_json_rpc_interface_or_a_skill_is_refused_with_the_reason(make_client, card_host: CardHost):
    client = make_client(own_skills=set())
    grpc_only = {
        "name": "gRPC only",
        "description": "speaks gRPC",
        "version": "1",
        "supportedInterfaces": [{"url": "http://127.0.0.1:9/", "protocolBinding": "GRPC", "protocolVersion": "1.0"}],
        "skills": [{"id": "x", "name": "x", "description": "x"}],
    }
    card_host.card = grpc_only
    response = client.http.post("/v1/contractors", json={"card_url": card_host.url, "price_usd": 0.01})
    assert response.status_code == 422 and "no JSON-RPC interface" in response.json()["error"]
    card_host.card = {**grpc_only, "supportedInterfaces": []}
    response = client.http.post("/v1/contractors", json={"card_url": card_host.url, "price_usd": 0.01})
    assert response.status_code == 422 and "needs a 'url' or" in response.json()["error"]
    card_host.card = {**grpc_only, "url": "http://127.0.0.1:9/", "skills": []}
    response = client.http.post("/v1/contractors", json={"card_url": card_host.url, "price_usd": 0.01})
    assert response.status_code == 422 and "skills" in response.json()["error"]


def test_an_agent_is_who_its_key_says_wherever_it_is_served(start_contractor: StartContractor, tmp_path, embedder):
    """Three runs of the same signed contractor at three addresses leave one record, active at the last; another
    agent that gets an old address is a new contractor; an agent that stays unreachable leaves the market."""
    key = Ed25519PrivateKey.generate()
    card = card_named("cpu_optimised")

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            store = Store(f"sqlite:///{tmp_path}/registry.db")
            registry = Registry(store, SkillIndex(CachedEmbedder(embedder)), http, FetchPolicy(allow_private=True))
            urls = [start_contractor(card, identity=Identity(signing_keys=[key])) for _ in range(3)]
            found = [await registry.register(url) for url in urls]
            assert [created for _, created in found] == [True, False, False]
            assert len({contractor.id for contractor, _ in found}) == 1
            assert [c.card_url for c in registry.active()] == [urls[-1]]
            assert len(store.contractors()) == 1

            first = found[0][0]  # a registry from before: the same agent recorded again under another address
            store.upsert_contractor("by-address", "http://127.0.0.1:9/", "old", {}, first.signing_key)
            again, created = await registry.register(urls[-1])
            assert not created and again.id == first.id
            assert (store.contractor("by-address") or {})["status"] == "moved"

            stranger = start_contractor(card, identity=Identity(signing_keys=[Ed25519PrivateKey.generate()]))
            other, created = await registry.register(stranger)
            assert created and other.id != found[0][0].id
            assert len(registry.active()) == 2

    asyncio.run(scenario())


def test_a_registry_keyed_by_address_is_brought_up_to_date(tmp_path):
    """A registry written when the address was unique gets the operator's price column and loses the uniqueness."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE contractors (id VARCHAR(64) PRIMARY KEY, card_url TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
            " card JSON NOT NULL, status VARCHAR(16) NOT NULL, failures INTEGER NOT NULL, signing_key VARCHAR(64),"
            " registered_at FLOAT NOT NULL, refreshed_at FLOAT NOT NULL)"
        )
        db.execute("INSERT INTO contractors VALUES ('a', 'http://x/', 'X', '{}', 'active', 0, 'k1', 1.0, 1.0)")
    store = Store(f"sqlite:///{path}")
    assert store.contractor("a") == {**store.contractor("a"), "card_url": "http://x/", "price_usd": None}
    assert store.upsert_contractor("b", "http://x/", "Y", {}, "k2") is True  # the same address, another agent
    assert {c["id"] for c in store.contractors()} == {"a", "b"}


@pytest.mark.parametrize("streaming", [True, False])
def test_a_card_that_names_no_version_is_tried_in_the_legacy_generation_then_v0_3(
    sdk_agent, make_client, card_host: CardHost, streaming
):
    """A v0.2 card said no protocolVersion and its agent speaks `message/send`: `tasks/send` is refused as an unknown
    method, and the client speaks v0.3 to it instead."""
    agent = sdk_agent(versions=("0.3",), streaming=streaming)
    card_host.card = {
        "name": "v0.2 sentiment",
        "description": "an agent of the v0.2 days",
        "url": agent.url,
        "version": "0.2.0",
        "capabilities": {"streaming": streaming},
        "skills": [
            {"id": "sentiment-analysis", "name": "Sentiment", "description": "Classify the sentiment of a text"}
        ],
    }
    client = make_client(own_skills=set())
    response = client.http.post("/v1/contractors", json={"card_url": card_host.url, "price_usd": 0.001})
    assert response.status_code == 201 and response.json()["a2a_version"] == "legacy"
    task = client.run(sentiment_task(f"v0.2-{streaming}"))
    assert task["status"] == "completed", task
    assert [" ".join(p.get("text", "") for a in s["artifacts"] for p in a["parts"]) for s in task["subtasks"]] == [
        label for _, label in HEADLINES
    ]
