"""The client API's contract and its edges: errors, cancel, input-required through the client, the planner's
fallback, registry refresh and dead contractors, and state that survives a restart."""

from __future__ import annotations

import time

import httpx
import pytest

from client_agent.models import TaskSubmission
from client_agent.planner import CatalogueSkill, Planner
from shared.runtime.http import MAX_BODY_BYTES
from shared.runtime.serving import ServerThread, bind_socket
from tests.conftest import PORTFOLIO, RISK, StartContractor, card_named, subtask, wait_until


def wait_for(client, task_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.http.get(f"/v1/tasks/{task_id}").json()
        if task["status"] in statuses:
            return task
        time.sleep(0.05)
    raise AssertionError(f"task never reached {statuses}: {task['status']}")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/v1/tasks/nope", None, 404),
        ("get", "/v1/tasks/nope/events", None, 404),
        ("post", "/v1/tasks/nope/cancel", None, 404),
        ("post", "/v1/tasks/nope/input", {"text": "x"}, 404),
        ("delete", "/v1/contractors/nope", None, 404),
        ("post", "/v1/tasks", {}, 422),
        ("post", "/v1/tasks", {"description": ""}, 422),
        ("post", "/v1/tasks", {"description": "x", "budget_usd": -1}, 422),
        ("post", "/v1/tasks", {"description": "x", "subtasks": []}, 422),
        ("post", "/v1/tasks", {"description": "x", "subtasks": [{"skill": "risk-assessment"}]}, 422),
        ("post", "/v1/tasks", {"description": "x", "sensitivity": "top-secret"}, 422),
        ("post", "/v1/tasks", {"description": "x", "surprise": 1}, 422),
        ("post", "/v1/tasks", {"description": "x", "strategy": "coin-flip"}, 422),
        ("post", "/v1/contractors", {"card_url": "ftp://example/card.json"}, 422),
        ("post", "/v1/contractors", {}, 422),
        ("get", "/v1/ledger?limit=0", None, 422),
    ],
)
def test_bad_requests_get_clear_4xx(make_client, method, path, body, status):
    client = make_client()
    response = client.http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_the_direct_routes_refuse_as_the_rest_of_the_api_does(make_client):
    """Submitting and following a task skip FastAPI (`tasks.serve_directly`); their refusals must not differ."""
    client = make_client()
    missing = client.http.post("/v1/tasks", json={})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "description"]
    not_json = client.http.post("/v1/tasks", content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["error"] == "invalid request"
    too_big = client.http.post("/v1/tasks", content=b" " * (MAX_BODY_BYTES + 1))
    assert too_big.status_code == 413 and "larger than" in too_big.json()["error"]
    too_big = client.http.post("/v1/contractors", content=b" " * (MAX_BODY_BYTES + 1))  # a route through FastAPI
    assert too_big.status_code == 413 and "larger than" in too_big.json()["error"]
    before = client.http.get("/v1/tasks/nope/events", params={"after": -1})
    assert before.status_code == 422 and before.json()["detail"][0]["loc"] == ["query", "after"]
    assert client.http.get("/v1/tasks").json() == {"tasks": []}  # the path's other method, through FastAPI
    assert client.http.put("/v1/tasks").status_code == 405
    submitted = client.http.post(
        "/v1/tasks", json={"description": "x", "subtasks": [subtask("risk-assessment", "assess", input_data=RISK)]}
    )
    assert submitted.status_code == 202 and submitted.json()["status"] == "submitted"
    metrics = client.http.get("/metrics").text
    assert 'route="/v1/tasks/{task_id}/events",status="422"' in metrics  # metered by its template
    assert 'method="POST",route="/v1/tasks",status="202"' in metrics


def test_registering_an_unreachable_or_invalid_card_is_422(make_client, start_contractor: StartContractor):
    client = make_client()
    from shared.workers.local_model import free_port

    dead = client.http.post("/v1/contractors", json={"card_url": f"http://127.0.0.1:{free_port()}/"})
    assert dead.status_code == 422 and "cannot register" in dead.json()["error"]
    not_a_card = client.http.post("/v1/contractors", json={"card_url": client.url + "health"})
    assert not_a_card.status_code == 422


def test_cancel_stops_the_contractor_and_refunds(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    client = make_client(own_skills=set())
    client.register(cpu)
    slow = {**RISK, "simulations": 5_000_000, "horizon_days": 60}
    task_id = client.http.post(
        "/v1/tasks",
        json={
            "description": "risk",
            "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=slow)],
        },
    ).json()["id"]
    deadline = time.monotonic() + 30
    while client.http.get(f"/v1/tasks/{task_id}").json()["subtasks"][0].get("a2aTaskId") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    response = client.http.post(f"/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200, client.http.get(f"/v1/tasks/{task_id}").text
    assert response.json()["status"] == "canceled"
    task = client.http.get(f"/v1/tasks/{task_id}").json()
    remote_id = task["subtasks"][0]["a2aTaskId"]
    remote = httpx.post(cpu, json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": remote_id}})
    assert remote.json()["result"]["status"]["state"] == "canceled"
    balances = client.http.get("/v1/ledger").json()["balances"]
    assert balances["escrow"] == pytest.approx(0.0, abs=1e-9) and balances["client"] == pytest.approx(0.0, abs=1e-9)
    assert client.http.post(f"/v1/tasks/{task_id}/cancel").status_code == 409


def test_input_required_is_relayed_to_the_user_and_back(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    client = make_client(own_skills=set())
    client.register(cpu)
    task_id = client.http.post(
        "/v1/tasks",
        json={
            "description": "risk",
            "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data={"confidence": 0.95})],
        },
    ).json()["id"]
    waiting = wait_for(client, task_id, ("input-required",))
    [sub] = waiting["subtasks"]
    assert "portfolio_value" in sub["inputRequired"]
    assert client.http.post(f"/v1/tasks/{task_id}/input", json={}).status_code == 422
    assert client.http.post(f"/v1/tasks/{task_id}/input", json={"subtask_id": "other", "text": "x"}).status_code == 409
    answer = client.http.post(
        f"/v1/tasks/{task_id}/input", json={"data": {"portfolio_value": 1000.0, "mu": 0.0, "sigma": 0.01}}
    )
    assert answer.status_code == 202 and answer.json()["subtask"] == sub["id"]
    done = wait_for(client, task_id, ("completed", "failed"))
    assert done["status"] == "completed"
    assert done["subtasks"][0]["artifacts"][0]["parts"][0]["data"]["confidence"] == 0.95


def test_planner_falls_back_to_skill_matching(embedder):
    catalogue = [
        CatalogueSkill("risk-assessment", "Risk assessment (value at risk)", "Monte Carlo value at risk."),
        CatalogueSkill("sentiment-analysis", "Sentiment analysis", "Classifies the sentiment of news."),
        CatalogueSkill("portfolio-optimisation", "Portfolio optimisation", "Mean-variance weights."),
    ]
    submission = TaskSubmission(
        description="Estimate the value at risk of my portfolio. Then tell me whether this news is positive or "
        "negative: 'Profits fall'.",
        data={**RISK, **PORTFOLIO, "unrelated": 1},
    )
    import asyncio

    plan = asyncio.run(Planner(embedder).plan(submission, catalogue))
    assert plan.source == "fallback"
    assert [s.skill for s in plan.subtasks] == ["risk-assessment", "sentiment-analysis"]
    assert plan.subtasks[0].input_data == RISK  # the risk skill takes its keys only
    assert plan.subtasks[1].input_data is None
    assert plan.subtasks[1].verification.labels == ["positive", "negative", "neutral"]


def test_a_task_without_subtasks_is_planned_and_run(make_client, start_contractor: StartContractor):
    client = make_client()
    client.register(start_contractor(card_named("cpu_optimised")))
    task_id = client.http.post(
        "/v1/tasks", json={"description": "Find the mean-variance optimal portfolio weights.", "data": PORTFOLIO}
    ).json()["id"]
    task = wait_for(client, task_id, ("completed", "failed"))
    assert [s["skill"] for s in task["subtasks"]] == ["portfolio-optimisation"]
    assert task["status"] == "completed"
    kinds = [e["kind"] for e in client.events(task_id)]
    assert kinds[:2] == ["submitted", "decomposition"]


def test_dead_contractors_leave_the_market_and_come_back(make_client):
    from contractor_agent.app import create_app
    from contractor_agent.build import worker_kinds
    from shared.workers.factory import build_workers

    client = make_client(refresh_interval_s=0.1)
    card = card_named("quantum_optimisation")
    sock = bind_socket()
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"

    def serve(sock):
        return ServerThread(create_app(card, build_workers(worker_kinds(card)), base_url=url), sock).start()

    server = serve(sock)
    registered = client.register(url)
    server.stop()

    def status() -> str:
        listed = {c["id"]: c for c in client.http.get("/v1/contractors").json()["contractors"]}
        return listed[registered["id"]]["status"]

    wait_until(lambda: status() == "unreachable")
    assert client.service.registry.get(registered["id"]) is None
    assert client.http.get("/v1/market").json()["contractors"] == []
    server = serve(bind_socket(port=port))  # back on the same address
    wait_until(lambda: status() == "active")
    assert [c["id"] for c in client.http.get("/v1/market").json()["contractors"]] == [registered["id"]]
    server.stop()


def test_state_survives_a_restart(make_client, start_contractor: StartContractor, tmp_path):
    cpu = start_contractor(card_named("cpu_optimised"))
    db = f"sqlite:///{tmp_path}/restart.db"
    first = make_client(own_skills=set(), db=db)
    contractor = first.register(cpu)
    task = first.run(
        {"description": "opt", "subtasks": [subtask("portfolio-optimisation", "optimise", input_data=PORTFOLIO)]}
    )
    ledger = first.http.get("/v1/ledger").json()
    reliability = {c["id"]: c["reliability"] for c in first.http.get("/v1/market").json()["contractors"]}
    first.__exit__()
    second = make_client(own_skills=set(), db=db)
    assert second.http.get(f"/v1/tasks/{task['id']}").json() == task
    assert second.http.get("/v1/ledger").json() == ledger
    assert [c["id"] for c in second.http.get("/v1/contractors").json()["contractors"]] == [contractor["id"]]
    market = {c["id"]: c for c in second.http.get("/v1/market").json()["contractors"]}
    assert market[contractor["id"]]["reliability"] == pytest.approx(reliability[contractor["id"]], abs=1e-6)
    assert market[contractor["id"]]["hires"] == 1
