"""Shared fixtures: real servers on 127.0.0.1 with free ports, the real embedded local model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from contractor_agent.app import create_app
from contractor_agent.config import build_workers, load_card, worker_kinds
from contractor_agent.task_manager import Limits
from contractor_agent.workers import LLMSettings, Worker
from shared.local_llm import LocalLLMServer
from shared.protocol import AgentCard
from shared.serving import ServerThread, bind_socket

CARDS = Path(__file__).resolve().parent.parent / "agent_cards"
CARD_NAMES = sorted(p.stem for p in CARDS.glob("*.json"))


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LLMSettings]:
    """The embedded model behind llama.cpp's OpenAI-compatible server, once per test session."""
    with LocalLLMServer() as server:
        yield LLMSettings(model=server.model, base_url=server.base_url, max_tokens=48, temperature=0.0)


def card_named(name: str) -> AgentCard:
    return load_card(CARDS / f"{name}.json")


StartContractor = Callable[..., str]


@pytest.fixture
def start_contractor() -> Iterator[StartContractor]:
    """start_contractor(card, workers=None, **create_app_kwargs) -> base URL of a running contractor."""
    servers: list[ServerThread] = []

    def start(
        card: AgentCard,
        workers: dict[str, Worker] | None = None,
        llm: LLMSettings | None = None,
        limits: Limits | None = None,
        **kwargs: Any,
    ) -> str:
        if workers is None:
            workers = build_workers(worker_kinds(card), openai_settings=llm)
        sock = bind_socket("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        server = ServerThread(create_app(card, workers, base_url=url, limits=limits, **kwargs), sock).start()
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def cpu_contractor(start_contractor: StartContractor) -> str:
    """The market's CPU contractor: real Monte Carlo, portfolio and similarity workers."""
    return start_contractor(card_named("cpu_optimised"))


def rpc(url: str, method: str, params: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    response = httpx.post(url, json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def sse_events(url: str, method: str, params: dict[str, Any], timeout: float = 60) -> list[dict[str, Any]]:
    """All JSON-RPC responses of one SSE stream, which the server must close by itself."""
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    events = []
    with httpx.stream("POST", url, json=body, timeout=timeout) as response:
        assert response.headers["content-type"].startswith("text/event-stream"), response.read()
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def data_message(data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A legacy / v0.3 user message carrying one data part."""
    return {
        "role": "user",
        "parts": [{"type": "data", "kind": "data", "data": data}],
        "messageId": "m-1",
        **extra,
    }


def text_message(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "parts": [{"type": "text", "kind": "text", "text": text}],
        "messageId": "m-1",
        **extra,
    }


class Webhook:
    """A real HTTP receiver for push notifications; `fail_first` answers 503 that many times first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail_first = fail_first
        self.attempts = 0
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                return Response(status_code=503)
            self.received.append((dict(request.headers), await request.json()))
            return Response(status_code=204)

        sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        self.server = ServerThread(app, sock)

    def states(self, key: str = "state") -> list[str]:
        out = []
        for _, body in self.received:
            task = body.get("task", body)
            out.append(task["status"][key])
        return out


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    with hook.server:
        yield hook


@pytest.fixture
def flaky_webhook() -> Iterator[Webhook]:
    hook = Webhook(fail_first=2)
    with hook.server:
        yield hook


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def embedder():
    """The real sentence-embedding model (all-MiniLM-L6-v2 from its PyPI package), once per session."""
    from shared.skills import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()
