"""`coalesce.client`: a typed Python client of the exchange's REST API, synchronous (`Exchange`) and asynchronous
(`AsyncExchange`): submit, wait, stream events, answer input, cancel, feedback, the market, register.

    with Exchange("http://127.0.0.1:8000") as exchange:
        task = exchange.wait(exchange.submit(TaskSubmission(description="...", budget_usd=1.0)).id)

Requests are the service's own pydantic models (`client_agent.models`); replies are parsed into the models below
(unknown fields kept). Every call has a timeout; an error reply raises `ExchangeError` with the status and the
service's message. Both clients share one description of each call (`_Call`): only the transport differs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from client_agent.models import ContractorRegistration, Feedback, InputAnswer, TaskSubmission

T = TypeVar("T")
FINAL = frozenset({"completed", "failed", "canceled"})
POLL_S = 0.1  # how often `wait` looks
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)  # an event stream is pinged every 15 s


class ExchangeError(Exception):
    """The exchange refused a call: `status` (HTTP) and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Subtask(Reply):
    id: str
    status: str
    skill: str | None = None
    description: str = ""
    decision: dict[str, Any] | None = None
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    verification: dict[str, Any] | None = None
    cost: dict[str, Any] = Field(default_factory=dict)
    input_required: str | None = Field(default=None, alias="inputRequired")
    where: str | None = None  # who did it: a contractor's id, or `local`
    reason: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)

    def text(self) -> str:
        """The delivered answer's text parts, joined."""
        return "\n".join(p["text"] for a in self.artifacts for p in a.get("parts", []) if p.get("text"))


class Task(Reply):
    id: str
    status: str
    description: str = ""
    subtasks: list[Subtask] = Field(default_factory=list)
    cost: dict[str, Any] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in FINAL


class Accepted(Reply):
    id: str
    status: str


class Contractor(Reply):
    id: str
    name: str
    url: str
    card_url: str
    a2a_version: str
    skills: list[str]
    price_usd: float | None = None
    status: str | None = None


class Event(Reply):
    seq: int
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)
    at: float = 0.0


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One call of the API: what to send and how to read the reply."""

    method: str
    path: str
    parse: Callable[[Any], T]
    body: BaseModel | None = None

    def request(self) -> dict[str, Any]:
        body = self.body.model_dump(mode="json", exclude_none=True) if self.body is not None else None
        return {"method": self.method, "url": self.path, "json": body}

    def read(self, response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise ExchangeError(response.status_code, _message(response))
        return self.parse(response.json() if response.content else None)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:500]


def _submit(task: TaskSubmission) -> _Call[Accepted]:
    return _Call("POST", "/v1/tasks", Accepted.model_validate, task)


def _get(task_id: str) -> _Call[Task]:
    return _Call("GET", f"/v1/tasks/{task_id}", Task.model_validate)


def _answer(task_id: str, answer: InputAnswer) -> _Call[str]:
    return _Call("POST", f"/v1/tasks/{task_id}/input", lambda reply: str(reply["subtask"]), answer)


def _cancel(task_id: str) -> _Call[str]:
    return _Call("POST", f"/v1/tasks/{task_id}/cancel", lambda reply: str(reply["status"]))


def _feedback(task_id: str, feedback: Feedback) -> _Call[dict[str, Any]]:
    return _Call("POST", f"/v1/tasks/{task_id}/feedback", dict, feedback)


def _read(path: str) -> _Call[dict[str, Any]]:
    return _Call("GET", path, dict)


def _register(registration: ContractorRegistration) -> _Call[Contractor]:
    return _Call("POST", "/v1/contractors", Contractor.model_validate, registration)


def _contractors() -> _Call[list[Contractor]]:
    return _Call("GET", "/v1/contractors", lambda reply: [Contractor.model_validate(c) for c in reply["contractors"]])


def _events_path(task_id: str, after: int) -> str:
    return f"/v1/tasks/{task_id}/events?after={after}"


def _event(line: str) -> Event | None:
    return Event.model_validate(json.loads(line[5:])) if line.startswith("data:") else None


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class Exchange:
    """The exchange at `url`, synchronously. `api_key`: when the service takes keys."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout_s, headers=_headers(api_key))

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _do(self, call: _Call[T]) -> T:
        return call.read(self.http.request(**call.request()))

    def submit(self, task: TaskSubmission) -> Accepted:
        return self._do(_submit(task))

    def get(self, task_id: str) -> Task:
        return self._do(_get(task_id))

    def events(self, task_id: str, after: int = 0) -> Iterator[Event]:
        """The task's events from position `after` until its final one (SSE)."""
        with self.http.stream("GET", _events_path(task_id, after), timeout=STREAM_TIMEOUT) as response:
            if response.status_code >= 400:
                response.read()
                raise ExchangeError(response.status_code, _message(response))
            for line in response.iter_lines():
                if (event := _event(line)) is not None:
                    yield event

    def wait(self, task_id: str, timeout_s: float = 600.0) -> Task:
        """The task once it is completed, failed or canceled (TimeoutError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while not (task := self.get(task_id)).done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} not done within {timeout_s:g} s")
            time.sleep(POLL_S)
        return task

    def answer(self, task_id: str, answer: InputAnswer) -> str:
        """Answer a subtask's input-required; returns the subtask's id."""
        return self._do(_answer(task_id, answer))

    def cancel(self, task_id: str) -> str:
        return self._do(_cancel(task_id))

    def feedback(self, task_id: str, feedback: Feedback) -> dict[str, Any]:
        return self._do(_feedback(task_id, feedback))

    def market(self) -> dict[str, Any]:
        """Every agent with its quote, load and competence per skill (`GET /v1/market`)."""
        return self._do(_read("/v1/market"))

    def stats(self) -> dict[str, Any]:
        """The running account: spend, quality, value lost (`GET /v1/stats`)."""
        return self._do(_read("/v1/stats"))

    def ledger(self) -> dict[str, Any]:
        return self._do(_read("/v1/ledger"))

    def register(self, registration: ContractorRegistration) -> Contractor:
        return self._do(_register(registration))

    def contractors(self) -> list[Contractor]:
        return self._do(_contractors())


class AsyncExchange:
    """The exchange at `url`, asynchronously (the same calls as `Exchange`)."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=timeout_s, headers=_headers(api_key))

    async def __aenter__(self) -> AsyncExchange:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def _do(self, call: _Call[T]) -> T:
        return call.read(await self.http.request(**call.request()))

    async def submit(self, task: TaskSubmission) -> Accepted:
        return await self._do(_submit(task))

    async def get(self, task_id: str) -> Task:
        return await self._do(_get(task_id))

    async def events(self, task_id: str, after: int = 0) -> AsyncIterator[Event]:
        """The task's events from position `after` until its final one (SSE)."""
        async with self.http.stream("GET", _events_path(task_id, after), timeout=STREAM_TIMEOUT) as response:
            if response.status_code >= 400:
                await response.aread()
                raise ExchangeError(response.status_code, _message(response))
            async for line in response.aiter_lines():
                if (event := _event(line)) is not None:
                    yield event

    async def wait(self, task_id: str, timeout_s: float = 600.0) -> Task:
        """The task once it is completed, failed or canceled (TimeoutError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while not (task := await self.get(task_id)).done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} not done within {timeout_s:g} s")
            await asyncio.sleep(POLL_S)
        return task

    async def answer(self, task_id: str, answer: InputAnswer) -> str:
        """Answer a subtask's input-required; returns the subtask's id."""
        return await self._do(_answer(task_id, answer))

    async def cancel(self, task_id: str) -> str:
        return await self._do(_cancel(task_id))

    async def feedback(self, task_id: str, feedback: Feedback) -> dict[str, Any]:
        return await self._do(_feedback(task_id, feedback))

    async def market(self) -> dict[str, Any]:
        return await self._do(_read("/v1/market"))

    async def stats(self) -> dict[str, Any]:
        return await self._do(_read("/v1/stats"))

    async def ledger(self) -> dict[str, Any]:
        return await self._do(_read("/v1/ledger"))

    async def register(self, registration: ContractorRegistration) -> Contractor:
        return await self._do(_register(registration))

    async def contractors(self) -> list[Contractor]:
        return await self._do(_contractors())
