"""`coalesce demo`: local contractors on the embedded defaults, and real tasks hired from them over A2A.

Starts the embedded local model (or the OpenAI-compatible endpoint in COALESCE_LLM_BASE_URL), two of the
market's contractors (GPU specialist: LLM work; CPU optimised: Monte Carlo risk and portfolio optimisation),
sends one task of each of the paper's four types with `tasks/sendSubscribe`, and prints what each cost.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from contractor_agent.app import create_app
from contractor_agent.config import build_workers, load_card, openai_settings_from_env, worker_kinds
from contractor_agent.workers import LLMSettings
from shared.a2a_client import A2AClient
from shared.local_llm import LocalLLMServer
from shared.protocol import Message, Part, TaskArtifactUpdateEvent, new_id
from shared.serving import ServerThread, bind_socket, public_url

CARDS = Path(__file__).resolve().parent.parent / "agent_cards"


def demo_tasks() -> list[tuple[str, str, Message]]:
    """(contractor, skill, message) for the paper's four task types, on data made here with a fixed seed."""
    rng = np.random.default_rng(2025)
    returns = rng.normal(0.0004, 0.011, size=250).round(5).tolist()
    assets = rng.normal(0.07, 0.03, size=4)
    factors = rng.normal(size=(4, 4)) * 0.1
    covariance = (factors @ factors.T + np.eye(4) * 0.01).round(6).tolist()
    text = (
        "Q3 report: revenue rose 12% to $4.1bn, operating margin fell from 18% to 15% on higher input costs, "
        "and the company cut its full-year guidance. Summarise the key figures and the main risk in two sentences."
    )
    return [
        ("gpu_specialist", "financial-document-analysis", Message(role="user", parts=[Part.of_text(text)])),
        (
            "gpu_specialist",
            "sentiment-analysis",
            Message(
                role="user",
                parts=[
                    Part.of_text(
                        "Classify the sentiment (positive, negative or neutral): "
                        "'Shares plunge 30% after profit warning.'"
                    )
                ],
            ),
        ),
        (
            "cpu_optimised",
            "risk-assessment",
            Message(
                role="user",
                parts=[
                    Part.of_data(
                        {
                            "portfolio_value": 1_000_000,
                            "returns": returns,
                            "confidence": 0.99,
                            "horizon_days": 10,
                        }
                    )
                ],
            ),
        ),
        (
            "cpu_optimised",
            "portfolio-optimisation",
            Message(
                role="user",
                parts=[
                    Part.of_data(
                        {
                            "expected_returns": assets.round(4).tolist(),
                            "covariance": covariance,
                            "risk_aversion": 3,
                        }
                    )
                ],
            ),
        ),
    ]


def _summary(artifact_data: Any, text: str | None) -> str:
    if text:
        return " ".join(text.split())[:90]
    if isinstance(artifact_data, dict) and "var" in artifact_data:
        return f"VaR99 10d ${artifact_data['var']:,.0f}, CVaR ${artifact_data['cvar']:,.0f}"
    if isinstance(artifact_data, dict) and "weights" in artifact_data:
        weights = ", ".join(f"{w:.2f}" for w in artifact_data["weights"])
        return f"weights [{weights}], vol {artifact_data['volatility']:.3f}"
    return str(artifact_data)[:90]


async def hire(url: str, skill: str, message: Message) -> dict[str, Any]:
    started = time.perf_counter()
    states, text, data = [], None, None
    async with A2AClient(url, timeout_s=180) as client:
        async for event in client.stream(new_id(), message, skill=skill):
            if isinstance(event, TaskArtifactUpdateEvent):
                part = event.artifact.parts[0]
                text, data = part.text, part.data
            else:
                states.append(event.status.state.value)
                if event.status.message is not None and event.final and data is None:
                    text = text or event.status.message.text()
        task = await client.get(event.task_id)
    cost = task.metadata.get("coalesce", {})
    return {
        "skill": skill,
        "states": " > ".join(states),
        "seconds": time.perf_counter() - started,
        "quote": cost.get("quoteUsd", 0.0),
        "cost": cost.get("costUsd", 0.0),
        "result": _summary(data, text),
        "ok": states[-1] == "completed",
    }


def start_contractor(stack: ExitStack, name: str, llm: LLMSettings) -> str:
    card = load_card(CARDS / f"{name}.json")
    workers = build_workers(worker_kinds(card), openai_settings=llm)
    sock = bind_socket("127.0.0.1", 0)
    url = public_url(sock)
    stack.enter_context(ServerThread(create_app(card, workers, base_url=url), sock))
    print(f"  contractor {card.name:<16} {url}", flush=True)
    return url


def main() -> int:
    with ExitStack() as stack:
        llm = openai_settings_from_env()
        if llm is None:
            print(
                "starting the embedded local model (SmolLM2-135M-Instruct, llama.cpp, 127.0.0.1) ...",
                flush=True,
            )
            server = stack.enter_context(LocalLLMServer())
            llm = LLMSettings(model=server.model, base_url=server.base_url, max_tokens=96)
        urls = {name: start_contractor(stack, name, llm) for name in ("gpu_specialist", "cpu_optimised")}
        print("market ready: hiring one task of each of the paper's four types over A2A", flush=True)
        jobs = [hire(urls[name], skill, message) for name, skill, message in demo_tasks()]
        rows = asyncio.run(_gather(jobs))
    print(f"\n{'skill':<28} {'states':<34} {'time s':>7} {'quote $':>9} {'cost $':>9}  result")
    for row in rows:
        print(
            f"{row['skill']:<28} {row['states']:<34} {row['seconds']:>7.2f} {row['quote']:>9.5f} "
            f"{row['cost']:>9.5f}  {row['result']}"
        )
    total = sum(r["cost"] for r in rows)
    done = sum(r["ok"] for r in rows)
    print(f"\n{done} of {len(rows)} tasks completed; total paid ${total:.5f}")
    return 0 if done == len(rows) else 1


async def _gather(jobs: list) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*jobs))
