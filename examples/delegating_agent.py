"""An agent loop that delegates its subtasks through the COALESCE exchange (`coalesce.client`).

The agent has a goal (a fund review), plans its own subtasks, and hands each to the exchange, which decides whether
its own worker does it or a contractor is hired over A2A, checks the answer and pays. The agent follows each task's
events, answers the input a contractor asks for from its own data, uses the answers, and grades what it got back.

Run a market (`coalesce market up`, or a client and contractors), then:

    python examples/delegating_agent.py --exchange http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
from typing import Any

from client_agent.models import Feedback, InputAnswer, SubtaskSpec, TaskSubmission
from coalesce.client import Exchange, Task

FUND = {"portfolio_value": 1_000_000.0, "mu": 0.0004, "sigma": 0.012}
ASSETS = {
    "expected_returns": [0.07, 0.10, 0.13],
    "covariance": [[0.04, 0.006, 0.002], [0.006, 0.09, 0.01], [0.002, 0.01, 0.16]],
}


def plan() -> list[SubtaskSpec]:
    """The agent's own decomposition of its goal. The risk step leaves out the fund's figures on purpose: the
    contractor asks for them (input-required) and the agent answers from its books."""
    return [
        SubtaskSpec(
            description="Monte Carlo value at risk of the fund at 95 % over one day",
            skill="risk-assessment",
            required_skills=["skill:risk-assessment"],
            input_data={"confidence": 0.95, "simulations": 20_000},
        ),
        SubtaskSpec(
            description="Mean-variance optimal weights of the three assets",
            skill="portfolio-optimisation",
            required_skills=["skill:portfolio-optimisation"],
            input_data=ASSETS,
        ),
    ]


def delegate(exchange: Exchange, spec: SubtaskSpec) -> Task:
    """One subtask through the exchange, its input-required answered from the agent's own data."""
    accepted = exchange.submit(TaskSubmission(description=spec.description, subtasks=[spec], budget_usd=0.5))
    for event in exchange.events(accepted.id):
        if event.kind == "decision":
            print(f"  exchange: {event.data.get('action')} ({event.data.get('reason', '')[:100]})")
        if event.kind == "input-required":
            print(f"  asked: {str(event.data.get('prompt'))[:100]}")
            exchange.answer(accepted.id, InputAnswer(data=FUND))
    return exchange.wait(accepted.id)


def result_of(task: Task) -> dict[str, Any]:
    parts = [p for a in task.subtasks[0].artifacts for p in a.get("parts", [])]
    return next((p["data"] for p in parts if isinstance(p.get("data"), dict)), {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange", default="http://127.0.0.1:8000/", help="the client service's URL")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    with Exchange(args.exchange, api_key=args.api_key) as exchange:
        for spec in plan():
            print(f"{spec.description}")
            task = delegate(exchange, spec)
            sub = task.subtasks[0]
            print(f"  {task.status} by {sub.where}, paid ${sub.cost.get('actualUsd', 0):.6f}")
            if task.status != "completed":
                return 1
            answer = result_of(task)
            if "var" in answer:
                print(f"  value at risk: ${answer['var']:,.0f}")
                sensible = 0 < answer["var"] < FUND["portfolio_value"]
            else:
                print(f"  weights: {[round(w, 3) for w in answer.get('weights', [])]}")
                sensible = abs(sum(answer.get("weights", [])) - 1.0) < 1e-6
            exchange.feedback(task.id, Feedback(correct=sensible, note="the agent's own sanity check"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
