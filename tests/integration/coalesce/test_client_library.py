"""`coalesce.client` against a real client service and real contractors on loopback: the same calls, synchronous and
asynchronous; errors as ExchangeError with the service's message; and the example agent loop, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from client_agent.models import ContractorRegistration, Feedback, InputAnswer, TaskSubmission
from client_agent.models import SubtaskSpec as Spec
from coalesce.client import AsyncExchange, Exchange, ExchangeError
from tests.conftest import PORTFOLIO, StartContractor, card_named, subtask

ROOT = Path(__file__).resolve().parents[3]


def risk_task(data: dict) -> TaskSubmission:
    spec = Spec.model_validate(subtask("risk-assessment", "Monte Carlo value at risk", input_data=data))
    return TaskSubmission(description="risk", subtasks=[spec], budget_usd=1.0)


def test_the_sync_client_does_a_task_with_input_and_feedback(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    service = make_client(own_skills=set())
    with Exchange(service.url) as exchange:
        registered = exchange.register(ContractorRegistration(card_url=cpu))
        assert registered.name == "CPU Optimised" and registered.a2a_version == "1.0"
        assert [c.id for c in exchange.contractors()] == [registered.id]
        accepted = exchange.submit(risk_task({"confidence": 0.95}))
        kinds = []
        for event in exchange.events(accepted.id):
            kinds.append(event.kind)
            if event.kind == "input-required":
                break
        assert "decision" in kinds
        waiting = exchange.get(accepted.id)
        assert waiting.status == "input-required" and "portfolio_value" in (waiting.subtasks[0].input_required or "")
        exchange.answer(accepted.id, InputAnswer(data={"portfolio_value": 1000.0, "mu": 0.0, "sigma": 0.01}))
        done = exchange.wait(accepted.id, timeout_s=120)
        assert done.status == "completed" and done.subtasks[0].where == registered.id
        graded = exchange.feedback(accepted.id, Feedback(correct=True))
        assert graded["agent"] == registered.id and graded["grade"] == 1.0
        market = exchange.market()
        assert [c["id"] for c in market["contractors"]] == [registered.id]
        with pytest.raises(ExchangeError) as missing:
            exchange.get("no-such-task")
        assert missing.value.status == 404 and "not found" in missing.value.message
        with pytest.raises(ExchangeError) as finished:
            exchange.cancel(accepted.id)
        assert finished.value.status == 409


async def test_the_async_client_does_the_same(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    service = make_client(own_skills=set())
    async with AsyncExchange(service.url) as exchange:
        await exchange.register(ContractorRegistration(card_url=cpu))
        spec = Spec.model_validate(subtask("portfolio-optimisation", "optimise", input_data=PORTFOLIO))
        accepted = await exchange.submit(TaskSubmission(description="optimise", subtasks=[spec]))
        kinds = [event.kind async for event in exchange.events(accepted.id)]
        assert kinds[0] == "submitted" and kinds[-1] == "completed"
        done = await exchange.wait(accepted.id, timeout_s=60)
        weights = done.subtasks[0].artifacts[0]["parts"][0]["data"]["weights"]
        assert sum(weights) == pytest.approx(1.0)
        assert (await exchange.stats())["subtasks"] == 1
        with pytest.raises(ExchangeError) as refused:
            await exchange.register(ContractorRegistration(card_url=service.url + "health"))
        assert refused.value.status == 422


def test_the_example_agent_delegates_its_subtasks_through_the_exchange(make_client, start_contractor: StartContractor):
    cpu = start_contractor(card_named("cpu_optimised"))
    service = make_client(own_skills=set())
    service.register(cpu)
    example = ROOT / "examples" / "delegating_agent.py"
    done = subprocess.run(
        [sys.executable, str(example), "--exchange", service.url], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "value at risk" in done.stdout and "weights" in done.stdout
    assert service.http.get("/v1/stats").json()["subtasks"] == 2
