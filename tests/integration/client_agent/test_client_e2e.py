"""End to end: a real client service and real contractor services on loopback, real A2A, real money in a
real SQLite ledger."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from shared.workers.llm import LLMSettings
from tests.conftest import CARDS, PORTFOLIO, RISK, StartContractor, card_named, rpc, spawn, subtask


def test_client_hires_contractors_verifies_and_pays(
    make_client, start_contractor: StartContractor, local_llm: LLMSettings
):
    cpu = start_contractor(card_named("cpu_optimised"))
    gpu = start_contractor(card_named("gpu_specialist"), llm=local_llm)
    client = make_client(own_skills={"sentiment-analysis", "llm"})  # it cannot do numbers itself
    registered = [client.register(cpu), client.register(gpu)]
    assert {r["name"] for r in registered} == {"CPU Optimised", "GPU Specialist"}
    assert client.http.post("/v1/contractors", json={"card_url": cpu}).status_code == 200  # refresh, not a copy

    task = client.run(
        {
            "description": "Assess the risk and the allocation of the fund, and the tone of today's headline.",
            "subtasks": [
                subtask("risk-assessment", "Monte Carlo value at risk of the portfolio", input_data=RISK),
                subtask("portfolio-optimisation", "Mean-variance portfolio optimisation", input_data=PORTFOLIO),
                subtask(
                    "sentiment-analysis",
                    "Classify the sentiment of: 'Shares soar on record profits'",
                    verification={"kind": "auto"},
                ),
            ],
            "budget_usd": 1.0,
            "idempotency_key": "fund-review-1",
        }
    )
    risk, portfolio, sentiment = task["subtasks"]
    cpu_id = registered[0]["id"]
    metrics = httpx.get(cpu + "metrics", timeout=10).text
    posts = re.findall(
        r'coalesce_contractor_http_requests_total\{method="POST",route="/",status="200"\} (\S+)', metrics
    )
    assert posts == ["2.0"]  # one request a hire: the stream brought the artifacts and the bill (no reading back)
    for hired in (risk, portfolio):
        assert hired["status"] == "completed", json.dumps({k: hired[k] for k in ("decision", "attempts")})[:2500]
        assert hired["decision"]["action"] == "outsource" and hired["decision"]["contractor"] == cpu_id
        assert hired["decision"]["strategy"] == "ucb1"
        assert hired["verification"]["passed"] is True
        assert hired["cost"]["actualUsd"] > 0
        remote = rpc(cpu, "tasks/get", {"id": hired["a2aTaskId"]})["result"]  # the A2A task on the contractor
        assert remote["status"]["state"] == "completed"
        assert remote["metadata"]["coalesce"]["costUsd"] == pytest.approx(hired["cost"]["actualUsd"], abs=1e-6)
    assert "closed form" in " ".join(risk["verification"]["checks"])
    assert sentiment["status"] in ("completed", "failed")  # the local model may miss the label: then it fails
    assert sentiment["decision"] is not None

    ledger = client.http.get("/v1/ledger").json()
    balances = ledger["balances"]
    assert sum(balances.values()) == pytest.approx(0.0, abs=1e-9)
    assert balances["escrow"] == pytest.approx(0.0, abs=1e-9)
    paid = risk["cost"]["actualUsd"] + portfolio["cost"]["actualUsd"]
    assert balances[f"contractor:{cpu_id}"] == pytest.approx(paid, abs=1e-6)
    assert balances["client"] == pytest.approx(-paid - balances.get(f"contractor:{registered[1]['id']}", 0.0), abs=1e-6)
    kinds = [e["kind"] for e in ledger["entries"]]
    assert kinds.count("reserve") >= 4 and kinds.count("release") >= 4  # two postings each

    market = {c["id"]: c for c in client.http.get("/v1/market").json()["contractors"]}
    assert market[cpu_id]["hires"] == 2 and market[cpu_id]["reliability"] > 0.5

    events = [e["kind"] for e in client.events(task["id"])]
    for kind in ("submitted", "decomposition", "decision", "dispatch", "contractor", "verification", "settlement"):
        assert kind in events
    assert events[-1] == task["status"]

    again = client.http.post("/v1/tasks", json={"description": "anything", "idempotency_key": "fund-review-1"})
    assert again.status_code == 202 and again.json()["id"] == task["id"]


def test_local_work_when_it_is_cheaper(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    client = make_client()
    client.register(cpu)
    task = client.run(
        {
            "description": "optimise",
            "subtasks": [
                subtask(
                    "portfolio-optimisation",
                    "Mean-variance portfolio optimisation",
                    input_data=PORTFOLIO,
                    value_usd=0.1,
                )
            ],
        }
    )
    [only] = task["subtasks"]
    decision = only["decision"]
    assert decision["action"] == "local", json.dumps(decision)  # cents to a contractor, micro-cents here
    assert decision["estimatedLocalCostUsd"] < decision["candidates"][0]["cost"]  # under the same (optimistic) estimate
    assert only["status"] == "completed" and only["where"] == "local"
    assert client.http.get("/v1/ledger").json()["entries"] == []


@pytest.fixture
def contractor_process(local_llm: LLMSettings) -> Iterator:
    processes: list[subprocess.Popen] = []

    def start(card: str) -> tuple[str, subprocess.Popen]:
        process, url = spawn("contractor", "serve", "--card", str(CARDS / f"{card}.json"), "--port", "0", llm=local_llm)
        processes.append(process)
        return url, process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def test_a_contractor_that_dies_mid_task_is_replaced_and_not_paid(make_client, contractor_process):
    first_url, first = contractor_process("cpu_optimised")
    second_url, second = contractor_process("cloud_services")
    client = make_client(own_skills=set())
    ids = {client.register(first_url)["id"]: first, client.register(second_url)["id"]: second}
    slow_risk = {**RISK, "simulations": 5_000_000, "horizon_days": 30}
    response = client.http.post(
        "/v1/tasks",
        json={
            "description": "risk",
            "subtasks": [
                subtask("risk-assessment", "Monte Carlo value at risk of the portfolio", input_data=slow_risk)
            ],
        },
    )
    task_id = response.json()["id"]
    killed = None
    with client.http.stream("GET", f"/v1/tasks/{task_id}/events") as events:
        for line in events.iter_lines():
            if line.startswith("data:") and killed is None:
                event = json.loads(line[5:])
                if event["kind"] == "contractor" and event["data"].get("state") == "working":
                    killed = client.http.get(f"/v1/tasks/{task_id}").json()["subtasks"][0]["decision"]["contractor"]
                    ids[killed].kill()  # kill -9, mid-task
    task = client.http.get(f"/v1/tasks/{task_id}").json()
    assert killed is not None
    [only] = task["subtasks"]
    assert task["status"] == "completed", only
    assert len(only["attempts"]) == 2, json.dumps(only["attempts"])
    first_attempt, second_attempt = only["attempts"]
    assert first_attempt["where"] == killed and not first_attempt["ok"] and first_attempt["costUsd"] == 0
    assert second_attempt["where"] != killed and second_attempt["ok"]
    balances = client.http.get("/v1/ledger").json()["balances"]
    assert balances.get(f"contractor:{killed}", 0.0) == 0.0
    assert balances["escrow"] == pytest.approx(0.0, abs=1e-9)
    assert balances[f"contractor:{second_attempt['where']}"] > 0
    market = {c["id"]: c for c in client.http.get("/v1/market").json()["contractors"]}
    survivor = market[second_attempt["where"]]
    assert survivor["reliability"] > 0.5  # its answer passed a check a wrong one would fail
