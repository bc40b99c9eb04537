"""The exchange as an A2A agent: any A2A client gets work done through the market with no COALESCE-specific code.

The A2A server is the contractor's (`contractor_agent.app.create_app`: the three wire generations on one JSON-RPC
endpoint, SSE, cancel, push, tenants by API key, tasks kept in the client's database) over one worker,
`ExchangeWorker`, that runs each A2A task as an exchange task: decomposed, decided, hired out or done locally,
verified and paid. Its events come back as status updates while it works, a subtask's input-required becomes the
A2A task's (the caller's answer goes back to the subtask), and the delivered subtasks come back as artifacts."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pydantic import ValidationError

from client_agent.errors import ClientError
from client_agent.models import InputAnswer, SubtaskSpec, TaskSubmission
from client_agent.service import ClientService
from client_agent.state import TERMINAL, EventKind, Status
from shared.a2a.models import AgentCapabilities, AgentCard, AgentSkill, Artifact, Part
from shared.workers.base import NeedsInput, StatelessWorker, WorkerError, WorkRequest, WorkResult

DELEGATE = AgentSkill(
    id="delegate",
    name="Delegate a task",
    description="Any task, in words (and data): decomposed into subtasks, each done by the exchange's own worker or "
    "hired out to the agent with the best expected cost and quality, checked, and paid",
    tags=["delegate", "decompose", "market"],
    examples=["Assess the risk of this portfolio and the tone of today's headline"],
)
OPTIONS = "coalesce"  # message metadata key for the exchange's options: budget_usd, deadline_s, sensitivity, strategy


def exchange_card(service: ClientService) -> AgentCard:
    """The exchange's card: `delegate` (any task) and every skill the market and the exchange's own worker offer
    (as of when it starts); a message may name one of them in its metadata (`skill`) to skip decomposition."""
    skills = [DELEGATE] + [
        AgentSkill(id=s.id, name=s.name, description=s.description or s.name, tags=["market"])
        for s in service.catalogue() + service.local_catalogue()
        if s.id != DELEGATE.id
    ]
    return AgentCard(
        name="COALESCE exchange",
        description="A labour exchange for agents: tasks are decomposed and each subtask is done locally or hired "
        "out over A2A, decided by expected cost and skill-based competence, verified before payment.",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=skills,
        url="http://exchange.invalid/",  # replaced by the address actually served
    )


def _news(event: dict[str, Any]) -> str:
    """One exchange event in a line, for a status update."""
    data = event["data"]
    kind = event["kind"]
    if kind == EventKind.DECISION:
        who = data.get("contractor") if data.get("action") == "outsource" else "the exchange's own worker"
        return f"subtask {data.get('subtask')}: {who} ({data.get('strategy')}: {data.get('reason', '')})"[:500]
    if kind == EventKind.SETTLEMENT:
        return f"subtask {data.get('subtask')}: {data.get('kind')} {data.get('paidUsd', '')}".strip()
    details = ", ".join(f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float) and k != "subtask")
    return f"{kind}" + (f" (subtask {data['subtask']})" if "subtask" in data else "") + (f": {details}"[:400])


class ExchangeWorker(StatelessWorker):
    """One A2A task = one exchange task (idempotency key `a2a:<task id>`, so a retried send finds its task)."""

    name = "exchange"

    def __init__(self, service: ClientService) -> None:
        self.service = service

    async def run(self, request: WorkRequest) -> WorkResult | NeedsInput:
        key = f"a2a:{request.task_id}"
        existing = self.service.store.task_by_key(key)
        try:
            if existing is None:
                task_id, _, _ = self.service.submit(self._submission(request, key))
                after = 0
            else:  # the caller answers the input a subtask asked for
                task_id = existing["id"]
                after = self.service.events.last_seq  # what follows the answer
                self.service.answer(task_id, _answer(request))
        except ClientError as error:
            raise WorkerError(error.message) from None
        try:
            return await self._follow(task_id, after, request)
        except asyncio.CancelledError:
            with contextlib.suppress(ClientError):
                await asyncio.shield(self.service.cancel(task_id))
            raise

    @staticmethod
    def _submission(request: WorkRequest, key: str) -> TaskSubmission:
        first = next(m for m in request.messages if m.role == "user")
        options = (first.metadata or {}).get(OPTIONS)
        text, data = request.text(), request.data() or None
        skill = None if request.skill.id == DELEGATE.id else request.skill.id
        try:
            subtasks = None
            if skill is not None:  # the caller named the skill: one subtask, no decomposition
                spec = SubtaskSpec(
                    description=(text or skill)[:4000], skill=skill, required_skills=[f"skill:{skill}"], input_data=data
                )
                subtasks = [spec]
            return TaskSubmission(
                description=(text or "(data only)")[:20_000],
                subtasks=subtasks,
                data=data,
                idempotency_key=key,
                **(options if isinstance(options, dict) else {}),
            )
        except (ValidationError, TypeError) as error:
            raise WorkerError(f"cannot run this task on the exchange: {error}"[:1000]) from None

    async def _follow(self, task_id: str, after: int, request: WorkRequest) -> WorkResult | NeedsInput:
        async for event in self.service.events.stream(task_id, after, lambda: self.service.is_done(task_id)):
            request.progress(_news(event))
            if event["kind"] == EventKind.INPUT_REQUIRED:
                return NeedsInput(str(event["data"].get("prompt") or "more input needed"))
            if event["kind"] in TERMINAL:
                break
        return _result(self.service.task(task_id))


def _answer(request: WorkRequest) -> InputAnswer:
    last = request.messages[-1]
    return InputAnswer(text=last.text() or None, data=last.data() or None)


def _result(stored: dict[str, Any]) -> WorkResult:
    """The delivered subtasks as artifacts (each under its skill), and the exchange's account of the task as a data
    artifact `coalesce` (its id, per subtask the decision, the cost and the check)."""
    account = []
    artifacts = []
    for sub in stored["subtasks"]:
        state = sub["state"] or {}
        for raw in state.get("artifacts") or []:
            artifacts.append(Artifact.model_validate({**raw, "name": sub["spec"].get("skill") or raw.get("name")}))
        decision = state.get("decision") or {}
        account.append(
            {
                "subtask": sub["id"],
                "status": sub["status"],
                "skill": sub["spec"].get("skill"),
                "action": decision.get("action"),
                "contractor": decision.get("contractor"),
                "costUsd": (state.get("cost") or {}).get("actualUsd"),
                "verified": (state.get("verification") or {}).get("passed"),
                "reason": state.get("reason"),
            }
        )
    if stored["status"] != Status.COMPLETED:
        failed = [a for a in account if a["status"] != Status.COMPLETED]
        why = "; ".join(f"{a['skill']}: {a['reason']}" for a in failed) or stored["status"]
        raise WorkerError(f"the exchange could not do this task ({why})"[:2000])
    summary = {"taskId": stored["id"], "subtasks": account}
    artifacts.append(Artifact(name="coalesce", parts=[Part.of_data(summary)]))
    return WorkResult(artifacts=artifacts, summary=f"done: {len(account)} subtask(s)")
