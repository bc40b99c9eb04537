"""`coalesce demo`: a local market on the embedded defaults, and a real task through it.

Starts the embedded local model (or the OpenAI-compatible endpoint in COALESCE_LLM_BASE_URL), three of the
market's contractors (GPU specialist: LLM work; CPU optimised: Monte Carlo risk and portfolio optimisation;
edge: sentiment), and a client agent whose own machine can do text work but, in this demo, no numerics; registers
the contractors by their card URLs, submits one task made of the paper's four task types, follows its events,
and prints per subtask the decision, its reason, who did the work, estimated against actual cost, and the check.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from client_agent.app import create_app as create_client_app
from client_agent.build import build_service
from client_agent.service import ClientConfig
from contractor_agent.app import create_app
from contractor_agent.config import build_workers, load_card, openai_settings_from_env, worker_kinds
from contractor_agent.identity import Identity
from contractor_agent.workers import LLMSettings
from shared.local_llm import LocalLLMServer
from shared.serving import ServerThread, bind_socket, public_url

CARDS = Path(__file__).resolve().parent.parent / "agent_cards"
CONTRACTORS = ("gpu_specialist", "cpu_optimised", "edge_computing")


def demo_task() -> dict[str, Any]:
    """One task of the paper's four types, on data made here with a fixed seed."""
    rng = np.random.default_rng(2025)
    returns = rng.normal(0.0004, 0.011, size=250).round(5).tolist()
    factors = rng.normal(size=(4, 4)) * 0.1
    covariance = (factors @ factors.T + np.eye(4) * 0.01).round(6).tolist()
    report = (
        "Q3 report: revenue rose 12% to $4.1bn, operating margin fell from 18% to 15% on higher input costs, "
        "and the company cut its full-year guidance."
    )

    def subtask(skill: str, description: str, **extra: Any) -> dict[str, Any]:
        return {
            "skill": skill,
            "description": description,
            "required_skills": [f"skill:{skill}"],
            "value_usd": 0.05,
            **extra,
        }

    return {
        "description": "Review the fund: the quarterly report, the news, the risk and the allocation.",
        "subtasks": [
            subtask(
                "financial-document-analysis",
                "Financial document analysis: summarise the key figures and the main risk in two sentences.",
                input_text=report,
            ),
            subtask(
                "sentiment-analysis",
                "Sentiment analysis of financial news: is this headline positive, "
                "negative or neutral? 'Shares plunge 30% after profit warning.'",
            ),
            subtask(
                "risk-assessment",
                "Monte Carlo value at risk of the portfolio",
                input_data={"portfolio_value": 1_000_000, "returns": returns, "confidence": 0.99, "horizon_days": 10},
            ),
            subtask(
                "portfolio-optimisation",
                "Mean-variance portfolio optimisation",
                input_data={
                    "expected_returns": rng.normal(0.07, 0.03, size=4).round(4).tolist(),
                    "covariance": covariance,
                    "risk_aversion": 3,
                },
            ),
        ],
        "budget_usd": 1.0,
    }


def start_contractor(stack: ExitStack, name: str, llm: LLMSettings, key_dir: Path) -> str:
    card = load_card(CARDS / f"{name}.json")
    sock = bind_socket("127.0.0.1", 0)
    url = public_url(sock)
    workers = build_workers(worker_kinds(card), openai_settings=llm)
    app = create_app(card, workers, base_url=url, identity=Identity.from_key_dir(key_dir / name))
    stack.enter_context(ServerThread(app, sock))
    print(f"  contractor {card.name:<16} {url}", flush=True)
    return url


def result_summary(sub: dict[str, Any]) -> str:
    for artifact in sub.get("artifacts") or []:
        for part in artifact["parts"]:
            if part.get("text"):
                return " ".join(part["text"].split())[:70]
            data = part.get("data") or {}
            if "var" in data:
                return f"VaR99 10d ${data['var']:,.0f}, CVaR ${data['cvar']:,.0f}"
            if "weights" in data:
                return "weights [" + ", ".join(f"{w:.2f}" for w in data["weights"]) + "]"
    return sub.get("reason") or ""


def follow(http: httpx.Client, task_id: str) -> None:
    with http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=600) as events:
        for line in events.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            kind, data = event["kind"], event["data"]
            if kind == "decision":
                where = (data["contractor"] or "local")[:8]
                print(f"  decision  {data['subtask'][:8]} -> {data['action']} ({where}): {data['reason']}", flush=True)
            elif kind in ("verification", "settlement", "decomposition"):
                brief = {k: v for k, v in data.items() if k in ("passed", "reason", "kind", "paidUsd", "source")}
                print(f"  {kind:<9} {json.dumps(brief)[:110]}", flush=True)


def print_report(task: dict[str, Any], names: dict[str, str], seconds: float) -> None:
    print(f"\n{'subtask':<28} {'action':<9} {'done by':<16} {'est $':>9} {'actual $':>9} {'check':<6} result")
    for sub in task["subtasks"]:
        decision = sub["decision"] or {}
        where = sub["where"] or "-"
        names.setdefault(where, where)
        check = "ok" if (sub["verification"] or {}).get("passed") else "FAIL"
        print(
            f"{sub['skill']:<28} {decision.get('action', '-'):<9} {names[where]:<16} "
            f"{sub['cost']['estimated_usd'] or 0:>9.5f} {sub['cost']['actual_usd']:>9.5f} {check:<6} "
            f"{result_summary(sub)}"
        )
    print(
        f"\ntask {task['status']} in {seconds:.1f} s; estimated ${task['cost']['estimated_usd']:.5f}, "
        f"paid ${task['cost']['actual_usd']:.5f}"
    )


def main() -> int:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        llm = openai_settings_from_env()
        if llm is None:
            print("starting the embedded local model (SmolLM2-135M-Instruct, llama.cpp, 127.0.0.1) ...", flush=True)
            server = stack.enter_context(LocalLLMServer())
            llm = LLMSettings(model=server.model, base_url=server.base_url, max_tokens=96)
        urls = [start_contractor(stack, name, llm, Path(scratch)) for name in CONTRACTORS]
        print("loading the embedding model and starting the client agent ...", flush=True)
        service = build_service(
            f"sqlite:///{scratch}/client.db", llm, ClientConfig(strategy="thompson", allow_private_contractors=True)
        )
        service.local_workers = {
            k: w
            for k, w in service.local_workers.items()
            if k in ("financial-document-analysis", "sentiment-analysis", "llm")
        }
        client = stack.enter_context(ServerThread(create_client_app(service), bind_socket()))
        http = stack.enter_context(httpx.Client(base_url=client.url, timeout=60))
        for url in urls:
            http.post("/v1/contractors", json={"card_url": url}).raise_for_status()
        print(f"market ready: client agent at {client.url}", flush=True)
        started = time.perf_counter()
        task_id = http.post("/v1/tasks", json=demo_task()).json()["id"]
        follow(http, task_id)
        task = http.get(f"/v1/tasks/{task_id}").json()
        names = {c["id"]: c["name"] for c in http.get("/v1/contractors").json()["contractors"]}
        print_report(task, names, time.perf_counter() - started)
        ledger = http.get("/v1/ledger").json()["balances"]
        print("ledger balances: " + ", ".join(f"{k} {v:+.5f}" for k, v in sorted(ledger.items())))
    hired = [s for s in task["subtasks"] if s["where"] not in (None, "local")]
    return 0 if hired and all(s["status"] == "completed" for s in hired) else 1
