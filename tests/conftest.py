"""Shared fixtures: real servers on 127.0.0.1 with free ports, the real embedded local model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig as SdkClientConfig
from a2a.client import ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.helpers.proto_helpers import new_task, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import a2a_pb2 as sdk
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from google.protobuf.struct_pb2 import Struct, Value
from hypothesis import settings
from starlette.applications import Starlette

from client_agent.api import create_app as create_client_app
from client_agent.build import local_workers
from client_agent.gold import GoldItem
from client_agent.service import ClientConfig, ClientService
from client_agent.storage import Store
from contractor_agent.admission import Limits
from contractor_agent.app import create_app
from contractor_agent.build import load_card, worker_kinds
from contractor_agent.identity import Identity
from shared.a2a.models import AgentCard
from shared.economics.skills import CachedEmbedder
from shared.runtime.serving import ServerThread, bind_socket
from shared.runtime.serving import public_url as address_of
from shared.security.auth import ApiKeys
from shared.workers.base import Worker
from shared.workers.factory import build_workers, embedded_llm_settings
from shared.workers.llm import LLMSettings
from shared.workers.local_model import LocalLLMServer, free_port

# Property tests explore the same examples on every run: a CI failure is reproducible, never a coin toss.
settings.register_profile("coalesce", derandomize=True, deadline=None)
settings.load_profile("coalesce")

ROOT = Path(__file__).resolve().parent.parent  # the repository
CARDS = ROOT / "agent_cards"
CARD_NAMES = sorted(p.stem for p in CARDS.glob("*.json"))


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LLMSettings]:
    """The embedded model behind llama.cpp's OpenAI-compatible server, once per test session."""
    with LocalLLMServer() as server:
        yield embedded_llm_settings(server, max_tokens=48, temperature=0.0)


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
        public_url: str | None = None,
        **kwargs: Any,
    ) -> str:
        """The URL it listens on; its card advertises `public_url` when given (a proxy in front of it)."""
        if workers is None:
            workers = build_workers(worker_kinds(card), openai_settings=llm)
        sock = bind_socket("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        app = create_app(card, workers, base_url=public_url or url, limits=limits, **kwargs)
        servers.append(ServerThread(app, sock).start())
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
        self.raw: list[bytes] = []  # the bodies as sent (what a signature covers)
        self.fail_first = fail_first
        self.attempts = 0
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                return Response(status_code=503)
            self.raw.append(await request.body())
            self.received.append((dict(request.headers), json.loads(self.raw[-1])))
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
    from shared.economics.skills import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


RISK = {"portfolio_value": 1_000_000, "mu": 0.0002, "sigma": 0.012, "horizon_days": 10, "confidence": 0.99}
PORTFOLIO = {
    "expected_returns": [0.06, 0.09, 0.12],
    "covariance": [[0.04, 0.006, 0.002], [0.006, 0.09, 0.01], [0.002, 0.01, 0.16]],
}


class Client:
    """A running client service and an HTTP client for it."""

    def __init__(
        self, service: ClientService, api_keys: ApiKeys | None = None, results_dir: Path | None = None
    ) -> None:
        self.service = service
        sock = bind_socket()
        self.server = ServerThread(create_client_app(service, api_keys, results_dir, address_of(sock)), sock)
        self.url = ""

    def __enter__(self) -> Client:
        self.server.start()
        self.url = self.server.url
        self.http = httpx.Client(base_url=self.url, timeout=60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()
        self.server.stop()

    def register(self, contractor_url: str) -> dict:
        response = self.http.post("/v1/contractors", json={"card_url": contractor_url})
        assert response.status_code == 201, response.text
        return response.json()

    def run(self, body: dict, timeout: float = 180) -> dict:
        response = self.http.post("/v1/tasks", json=body)
        assert response.status_code == 202, response.text
        task_id = response.json()["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.http.get(f"/v1/tasks/{task_id}").json()
            if task["status"] in ("completed", "failed", "canceled"):
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} did not finish: {task}")

    def events(self, task_id: str) -> list[dict]:
        events = []
        with self.http.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
        return events


@pytest.fixture
def make_client(tmp_path, embedder, local_llm) -> Iterator:
    clients: list[Client] = []

    def make(
        own_skills: set[str] | None = None,
        strategy: str = "ucb1",
        db: str | None = None,
        api_keys: ApiKeys | None = None,
        results_dir: Path | None = None,
        gold: list[GoldItem] | None = None,
        workers: dict[str, Worker] | None = None,
        **config: Any,
    ) -> Client:
        """`workers`: the client's own workers (default: all it has, or those of `own_skills`); `gold`: items for
        probes (default: none, so that no test pays for probes it does not ask for)."""
        if workers is None:
            workers = local_workers(local_llm)
        if own_skills is not None:
            workers = {skill: w for skill, w in workers.items() if skill in own_skills}
        settings = ClientConfig(
            **{"strategy": strategy, "hire_timeout_s": 60, "allow_private_contractors": True, **config}
        )
        service = ClientService(
            Store(db or f"sqlite:///{tmp_path}/client.db"), CachedEmbedder(embedder), workers, settings, gold=gold
        )
        client = Client(service, api_keys, results_dir).__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__()


def subtask(skill: str, description: str, **extra) -> dict:
    return {"skill": skill, "description": description, "required_skills": [f"skill:{skill}"], **extra}


def spawn(*args: str, llm: LLMSettings | None = None) -> tuple[subprocess.Popen[str], str]:
    """Run `coalesce ARGS` in its own process, as a user would; returns it and the URL it printed first."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if llm is not None:
        env.update(COALESCE_LLM_BASE_URL=llm.base_url or "", COALESCE_LLM_MODEL=llm.model)
    process = subprocess.Popen(
        [sys.executable, "-m", "coalesce.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    if match is None:
        process.kill()
        raise AssertionError(f"no URL in {line!r}")
    return process, match.group(1)


def _postgres_binaries() -> Path | None:
    """Debian's PostgreSQL server programs, when the package is installed."""
    initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    return Path(initdb).resolve().parent if initdb else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server of our own on 127.0.0.1 (a fresh cluster in a temporary folder, trust auth),
    started with Debian's binaries; as the `postgres` user when the tests run as root (initdb refuses root)."""
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's package)")
    root = Path(tempfile.mkdtemp(prefix="coalesce-postgres-"))  # outside pytest's root-only folders
    data, sockets, port = root / "data", root / "run", free_port()
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, str(binaries / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-o", options, "-l", str(root / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Callable[[str], str]:
    """database(name) -> an SQLAlchemy URL of a new, empty database: an SQLite file, or one on PostgreSQL."""

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path}/{name}.db"
        server = request.getfixturevalue("postgres_server")
        database = f"{name}_{uuid.uuid4().hex[:12]}"
        import psycopg

        with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        return f"{server}/{database}"

    return make


class CardHost:
    """A web server whose card the test swaps: forged cards, rotations."""

    def __init__(self) -> None:
        self.card: dict[str, Any] | bytes = {}
        self.hits = 0
        app = FastAPI()

        @app.get("/.well-known/agent-card.json")
        async def card() -> Response:
            self.hits += 1
            body = self.card if isinstance(self.card, bytes) else json.dumps(self.card).encode()
            return Response(body, media_type="application/json")

        @app.get("/loop/.well-known/agent-card.json")
        async def loop() -> RedirectResponse:
            return RedirectResponse("/loop/.well-known/agent-card.json")

        self.server = ServerThread(app, bind_socket())

    def publish(self, *keys: Ed25519PrivateKey, e2e: X25519PrivateKey | None = None) -> dict[str, Any]:
        self.card = Identity(signing_keys=list(keys), e2e_key=e2e).publish(card_named("cpu_optimised"), self.url)
        return self.card

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def card_host():
    host = CardHost()
    with host.server:
        yield host


# ---------------------------------------------------------------- the official a2a-sdk, as a client


def data_request(data: dict[str, Any], skill: str, task_id: str = "", context_id: str = "") -> sdk.SendMessageRequest:
    value = Value()
    value.struct_value.update(data)
    metadata = Struct()
    metadata.update({"skill": skill})
    message = sdk.Message(
        message_id=uuid.uuid4().hex,
        role=sdk.Role.ROLE_USER,
        parts=[sdk.Part(data=value)],
        task_id=task_id,
        context_id=context_id,
    )
    return sdk.SendMessageRequest(message=message, metadata=metadata)


async def risk_input_round_trip(client: Any) -> tuple[Any, list[Any]]:
    """A value-at-risk task sent without the portfolio through an a2a-sdk client: (its input-required status
    update, checked; the events after the figures are sent on the same task)."""
    first = [e async for e in client.send_message(data_request({"confidence": 0.95}, "risk-assessment"))]
    waiting = first[-1].status_update
    assert waiting.status.state == sdk.TaskState.TASK_STATE_INPUT_REQUIRED
    figures = {"portfolio_value": 1000.0, "mu": 0.0, "sigma": 0.01}
    follow_up = data_request(figures, "risk-assessment", task_id=waiting.task_id, context_id=waiting.context_id)
    second = [e async for e in client.send_message(follow_up)]
    assert second[-1].status_update.status.state == sdk.TaskState.TASK_STATE_COMPLETED
    return waiting, second


class SdkClient:
    """An a2a-sdk client pinned to one protocol version of the card at `url`."""

    def __init__(
        self, url: str, version: str, streaming: bool = True, polling: bool = False, token: str | None = None
    ) -> None:
        self.url, self.version, self.streaming, self.polling = url, version, streaming, polling
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def __aenter__(self):
        self.http = httpx.AsyncClient(timeout=60, headers=self.headers)
        card = parse_agent_card((await self.http.get(self.url + ".well-known/agent-card.json")).json())
        kept = [i for i in card.supported_interfaces if i.protocol_version == self.version]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(kept)
        config = SdkClientConfig(streaming=self.streaming, polling=self.polling, httpx_client=self.http)
        self.client = ClientFactory(config).create(card)
        return self.client

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.close()
        await self.http.aclose()


# ---------------------------------------------------------------- the official a2a-sdk, as an agent


POSITIVE = ("soar", "record", "beat", "strong")
LABELS = ["positive", "negative", "neutral"]


def label_of(text: str) -> str:
    """The SDK agent's work: a word-list sentiment label (right on the headlines below)."""
    return "positive" if any(word in text.lower() for word in POSITIVE) else "negative"


class SentimentExecutor(AgentExecutor):
    """Answers with a task (submitted, working, an artifact, completed) or, `direct`, with one agent message."""

    def __init__(self, direct: bool) -> None:
        self.direct = direct

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = " ".join(p.text for p in context.message.parts if p.text)
        if self.direct:
            await event_queue.enqueue_event(new_text_message(label_of(text), context_id=context.context_id))
            return
        submitted = new_task(context.task_id, context.context_id, sdk.TaskState.TASK_STATE_SUBMITTED)
        await event_queue.enqueue_event(submitted)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        await updater.add_artifact([sdk.Part(text=label_of(text))], name="label")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


class SdkAgent:
    """A sentiment agent on the official a2a-sdk's server stack (JSON-RPC with v0.3 compat), under uvicorn. Its
    card declares `versions` (one JSON-RPC interface each) and whether it streams."""

    def __init__(self, versions: tuple[str, ...] = ("1.0",), streaming: bool = True, direct: bool = False) -> None:
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.card = sdk.AgentCard(
            name="SDK sentiment",
            description="classifies the sentiment of a headline",
            version="1.0.0",
            supported_interfaces=[
                sdk.AgentInterface(url=self.url, protocol_binding="JSONRPC", protocol_version=v) for v in versions
            ],
            capabilities=sdk.AgentCapabilities(streaming=streaming),
            default_input_modes=["text/plain"],
            default_output_modes=["text/plain"],
            skills=[
                sdk.AgentSkill(
                    id="sentiment-analysis",
                    name="Sentiment analysis",
                    description="Classify the sentiment of a text as positive, negative or neutral",
                    tags=["sentiment", "classification", "nlp"],
                )
            ],
        )
        handler = DefaultRequestHandlerV2(
            agent_executor=SentimentExecutor(direct), task_store=InMemoryTaskStore(), agent_card=self.card
        )
        routes = create_agent_card_routes(self.card) + create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True)
        self.server = ServerThread(Starlette(routes=routes), self.sock)  # type: ignore[arg-type]


@pytest.fixture
def sdk_agent() -> Iterator[Any]:
    agents: list[SdkAgent] = []

    def start(**options: Any) -> SdkAgent:
        agent = SdkAgent(**options)
        agent.server.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.server.stop()
