"""The client agent: decomposition, discovery, the decision per subtask, dispatch over A2A, verification,
settlement and reputation. A plain asyncio object; `client_agent.app` is its HTTP shell."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from pydantic import ValidationError

from client_agent.ledger import Ledger
from client_agent.metrics import ClientMetrics
from client_agent.models import TERMINAL, InputAnswer, SubtaskSpec, TaskSubmission
from client_agent.planner import CatalogueSkill, Planner
from client_agent.registry import MAX_REDIRECTS, CardError, Contractor, FetchPolicy, Registry
from client_agent.storage import Store
from client_agent.verification import Verdict, Verifier
from contractor_agent.workers import ComputeWorker, NeedsInput, Worker, WorkerError, WorkRequest
from shared.a2a_client import A2AClient
from shared.cost_model import (
    CostCalibrator,
    HardwareProfile,
    Link,
    Offer,
    QueuedTask,
    TaskProfile,
    internal_cost,
)
from shared.decision import (
    CandidateOffer,
    Decision,
    DecisionConfig,
    DecisionEngine,
    LocalOption,
    MarketSignals,
    Problem,
    WeightLearner,
    make_strategy,
)
from shared.observability import A2A_TASK_ID, TASK_ID
from shared.protocol import (
    A2AError,
    AgentSkill,
    Artifact,
    ErrorCode,
    Message,
    Part,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatusUpdateEvent,
    new_id,
)
from shared.reputation import SENSITIVITY_WEIGHT, ReputationBook, security_risk
from shared.secure_channel import Channel, ChannelError, envelope_of
from shared.skills import Embedder, SkillIndex, SkillRequirement

log = logging.getLogger(__name__)

LOCAL = "local"
MAX_BUSY_RETRIES = 20  # a contractor at capacity is waited for (its retryAfterSeconds) this many times a subtask
SENSITIVE = frozenset({"confidential", "restricted"})  # never in plaintext, only to signed cards
LLM_PARAMETERS = 135e6  # the embedded model's size, for the local FLOP estimate


class ServiceError(Exception):
    """A request the service refuses: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ClientConfig:
    strategy: str = "thompson"
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    hardware: HardwareProfile = field(
        default_factory=lambda: HardwareProfile(
            peak_flops=1e11, memory_bytes=24e9, tdp_watts=65.0, hw_cost_per_hour=0.10, utilisation=0.3
        )
    )
    default_value_usd: float = 1.0  # what a subtask is worth when the submission does not say
    reserve_factor: float = 2.0  # escrow = quote × this (usage is charged on top of the quote)
    verification_usd: float = 0.0005  # what checking one result costs the client
    breach_probability: float = 0.01  # P_breach of an unknown contractor, per path
    own_code_prior_successes: float = 98.0  # the client's compute workers start trusted (Beta(99, 1)); LLMs do not
    max_attempts: int = 3
    hire_timeout_s: float = 120.0
    local_timeout_s: float = 300.0
    input_timeout_s: float = 600.0
    quote_timeout_s: float = 2.0
    max_running_tasks: int = 32
    max_pending_tasks: int = 1000
    max_subscribers: int = 256
    refresh_interval_s: float = 60.0
    seed: int = 0
    # security (issue 6): see README "Secure exchange"
    allow_private_contractors: bool = False  # True for a local market: cards on loopback / private networks
    trusted_attestors: frozenset[str] = frozenset()  # thumbprints of attestor keys whose certificates count
    unproven_skill_weight: float = 0.5
    contractor_tokens: dict[str, str] = field(default_factory=dict)  # contractor card URL -> its API key


@dataclass
class Outcome:
    ok: bool
    where: str  # local, or a contractor id
    reason: str = ""
    artifacts: list[Artifact] = field(default_factory=list)
    verdict: Verdict | None = None
    cost_usd: float = 0.0
    seconds: float = 0.0
    busy_s: float | None = None  # the contractor was at capacity: try again after this many seconds


class EventBus:
    """Task events: appended to the store, and offered to live subscribers through bounded queues."""

    def __init__(self, store: Store, max_subscribers: int) -> None:
        self.store = store
        self.max_subscribers = max_subscribers
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._market: set[asyncio.Queue[dict[str, Any]]] = set()  # readers of every task's events (the dashboard)

    def publish(self, task_id: str, kind: str, data: dict[str, Any]) -> None:
        seq = self.store.append_event(task_id, kind, data)
        event = {"seq": seq, "kind": kind, "data": data, "at": time.time()}
        for queue in list(self._subscribers.get(task_id, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers[task_id].discard(queue)  # a reader this slow reconnects with Last-Event-ID
        for queue in list(self._market):
            try:
                queue.put_nowait({**event, "task": task_id})
            except asyncio.QueueFull:
                self._market.discard(queue)  # a reader this slow reloads the page

    def stream_market(self) -> AsyncIterator[dict[str, Any]]:
        """Every task's events from now on (live only), until the reader goes away or falls behind; refused (429)
        at once when there are too many readers."""
        if len(self._market) >= self.max_subscribers:
            raise ServiceError(429, "too many readers of the market's events")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1024)
        self._market.add(queue)
        return self._market_events(queue)

    async def _market_events(self, queue: asyncio.Queue[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        try:
            while queue in self._market or not queue.empty():
                try:
                    yield await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
        finally:
            self._market.discard(queue)

    async def stream(self, task_id: str, after: int, done: Any) -> AsyncIterator[dict[str, Any]]:
        """Stored events after `after`, then live ones, until the task's final event (or `done()` says the task
        ended before this reader came)."""
        subscribers = self._subscribers.setdefault(task_id, set())
        if len(subscribers) >= self.max_subscribers:
            raise ServiceError(429, "too many readers of this task's events")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1024)
        subscribers.add(queue)
        try:
            last = after
            for stored in self.store.events(task_id, after):
                last = stored["seq"]
                yield {"seq": stored["seq"], "kind": stored["kind"], "data": stored["data"], "at": stored["at"]}
                if stored["kind"] in TERMINAL:
                    return
            while not done() or not queue.empty():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                if event["seq"] > last:
                    last = event["seq"]
                    yield event
                    if event["kind"] in TERMINAL:
                        return
        finally:
            subscribers.discard(queue)
            if not subscribers:
                self._subscribers.pop(task_id, None)


@dataclass
class SubtaskRun:
    id: str
    task_id: str
    spec: SubtaskSpec
    state: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    answers: asyncio.Queue[InputAnswer] = field(default_factory=lambda: asyncio.Queue(8))
    first_attempt: int = 1  # after a restart, attempts go on from where the ledger left them
    prior: dict[str, Any] = field(default_factory=dict)  # the state a restart found


def estimate_task_profile(spec: SubtaskSpec, value_usd: float, deadline_s: float | None) -> TaskProfile:
    """A rough FLOP count per skill, for the local cost estimate (calibrated later by measured costs)."""
    data = spec.input_data or {}
    text = (spec.input_text or "") + spec.description
    if spec.resources.flops:
        flops = spec.resources.flops
    elif spec.skill == "risk-assessment":
        flops = 20.0 * float(data.get("simulations", 100_000)) * float(data.get("horizon_days", 1))
    elif spec.skill == "portfolio-optimisation":
        flops = 2000.0 * len(data.get("expected_returns", [0])) ** 3 + 1e6
    elif spec.skill == "similarity-search":
        corpus = data.get("corpus") or [[0.0]]
        flops = 4.0 * len(corpus) * len(corpus[0]) + 1e5
    else:  # an LLM: 2 FLOPs per parameter per token, prompt and answer
        flops = 2.0 * LLM_PARAMETERS * (len(text) / 4 + 256)
    return TaskProfile(
        flops=flops,
        value_usd=value_usd,
        deadline_s=deadline_s,
        input_bytes=len(text) + 8 * sum(len(str(v)) for v in data.values()),
        output_bytes=4096,
    )


def work_message(spec: SubtaskSpec, input_modes: list[str] | None = None) -> Message:
    """The subtask as an A2A message: its instruction as text and its data as a data part. A skill that takes
    no text (a compute service) gets the data alone, the instruction in the message metadata."""
    instruction = spec.description + (f"\n\n{spec.input_text}" if spec.input_text else "")
    takes_text = input_modes is None or any(m in ("text/plain", "text/*", "*/*") for m in input_modes)
    parts = [Part.of_text(instruction)] if takes_text or not spec.input_data else []
    if spec.input_data:
        parts.append(Part.of_data(spec.input_data))
    metadata: dict[str, Any] = {} if takes_text else {"instruction": instruction[:4000]}
    if spec.verification.labels:  # a classification: the worker may constrain its answer to these
        metadata["coalesce"] = {"answerOneOf": spec.verification.labels}
    return Message(role="user", parts=parts, metadata=metadata or None)


def answer_message(answer: InputAnswer) -> Message:
    parts = ([Part.of_text(answer.text)] if answer.text else []) + ([Part.of_data(answer.data)] if answer.data else [])
    return Message(role="user", parts=parts or [Part.of_text("")])


class ClientService:
    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        local_workers: dict[str, Worker],
        config: ClientConfig | None = None,
        planner_llm: Any = None,
        judge: Any = None,
        initial_contractors: list[str] | None = None,
    ) -> None:
        self.initial_contractors = list(initial_contractors or [])
        self.config = config or ClientConfig()
        self.store = store
        self.http = httpx.AsyncClient(
            timeout=self.config.hire_timeout_s, limits=httpx.Limits(max_connections=200), max_redirects=MAX_REDIRECTS
        )
        self.registry = Registry(
            store,
            SkillIndex(embedder),
            self.http,
            FetchPolicy(allow_private=self.config.allow_private_contractors),
            self.config.trusted_attestors,
            self.config.unproven_skill_weight,
        )
        self.planner = Planner(embedder, planner_llm)
        self.verifier = Verifier(judge)
        self.local_workers = local_workers
        self.metrics = ClientMetrics()
        self.ledger = Ledger(store, observe=lambda kind, amount: self.metrics.money_usd.labels(kind).inc(amount))
        self.events = EventBus(store, self.config.max_subscribers)
        self.calibrator = CostCalibrator(self.config.decision.calibration_lambda)
        self.reputation = ReputationBook()
        self.learner = WeightLearner(self.config.decision.learning_rate)
        self.hires: dict[str, int] = {}
        self.good_hires: dict[str, int] = {}
        self._engines: dict[str, DecisionEngine] = {}
        self._load_learned_state()
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._subtasks: dict[str, dict[str, SubtaskRun]] = {}
        self._running = asyncio.Semaphore(self.config.max_running_tasks)
        self._local_queue: dict[str, QueuedTask] = {}
        self._refresher: asyncio.Task[None] | None = None
        make_strategy(self.config.strategy)  # an unknown strategy fails at start, not on the first task

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._recover()
        self._refresher = asyncio.create_task(self._keep_registry())

    async def _recover(self) -> None:
        """Tasks a crash or kill left unfinished: refund every hire that never settled (exactly once: the ledger
        refuses a second settlement), ask the contractor to stop, and run what is left of the task again."""
        for task_id in self.store.unfinished_tasks():
            stored = self.task(task_id)
            submission = TaskSubmission.model_validate(stored["request"])
            runs: dict[str, SubtaskRun] = {}
            earlier_ok = True
            for sub in stored["subtasks"]:
                if sub["status"] in ("completed", "failed"):
                    earlier_ok = earlier_ok and sub["status"] == "completed"
                    continue
                state = sub["state"] or {}
                await self._abandon_stored(state)
                refunded = self.ledger.refund_open(sub["id"], "the client restarted before this hire settled")
                hired = (state.get("decision") or {}).get("contractor") or "?"
                for attempt, amount in refunded:
                    interrupted = Outcome(False, hired, "interrupted by a client restart; escrow refunded")
                    state.setdefault("attempts", []).append(self._attempt_record(attempt, interrupted))
                    self.events.publish(task_id, "settlement", {"subtask": sub["id"], "kind": "refund", "usd": amount})
                spec = SubtaskSpec.model_validate(sub["spec"])
                first = self.store.last_attempt(sub["id"]) + 1
                runs[sub["id"]] = SubtaskRun(sub["id"], task_id, spec, first_attempt=first, prior=state)
            self.events.publish(task_id, "recovered", {"resumed": list(runs), "earlierOk": earlier_ok})
            log.warning("task %s: resumed after a restart (%d subtasks left)", task_id, len(runs))
            resumed = runs if stored["subtasks"] else None  # no subtasks stored: decompose again
            self._runners[task_id] = asyncio.create_task(
                self._run_task(task_id, submission, resumed, earlier_ok), name=f"client-{task_id}"
            )

    async def _abandon_stored(self, state: dict[str, Any]) -> None:
        """Best effort, after a restart: tell the contractor of an unsettled hire to stop."""
        contractor = self.registry.get((state.get("decision") or {}).get("contractor") or "")
        if contractor is not None and state.get("a2aTaskId"):
            client = A2AClient(contractor.card.url, self.http, timeout_s=5, headers=self._auth_headers(contractor))
            await self._abandon(client, state["a2aTaskId"])

    async def _keep_registry(self) -> None:
        """Register the contractors named at start (retrying while they boot), then refresh periodically."""
        pending = list(self.initial_contractors)
        for _ in range(60):
            for card_url in list(pending):
                try:
                    await self.registry.register(card_url)
                    pending.remove(card_url)
                except CardError as error:
                    log.info("contractor %s not ready: %s", card_url, error)
            if not pending:
                break
            await asyncio.sleep(2.0)
        for card_url in pending:
            log.warning("contractor %s never answered; not registered", card_url)
        await self.registry.refresh_forever(self.config.refresh_interval_s)

    async def close(self) -> None:
        tasks = [t for t in [self._refresher, *self._runners.values()] if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._save_learned_state()
        await self.http.aclose()
        for worker in {id(w): w for w in self.local_workers.values()}.values():
            if hasattr(worker, "close"):
                await worker.close()

    def _load_learned_state(self) -> None:
        state = self.store.load_state("decision") or {}
        self.reputation.restore(state.get("reputation", {}))
        self.hires.update(state.get("hires", {}))
        self.good_hires.update(state.get("goodHires", {}))
        self.calibrator.factors.update(state.get("calibration", {}))
        if "weights" in state:
            self.learner.weights[:] = state["weights"]

    def _save_learned_state(self) -> None:
        self.store.save_state(
            "decision",
            {
                "reputation": self.reputation.snapshot(),
                "hires": self.hires,
                "goodHires": self.good_hires,
                "calibration": self.calibrator.factors,
                "weights": self.learner.weights.tolist(),
            },
        )

    def engine(self, strategy: str | None) -> DecisionEngine:
        """One engine per strategy, all sharing the track record, the learned weights and the calibration."""
        name = strategy or self.config.strategy
        if name not in self._engines:
            engine = DecisionEngine(make_strategy(name), self.config.decision, self.config.seed, self.reputation)
            engine.learner, engine.hires, engine.good_hires = self.learner, self.hires, self.good_hires
            self._engines[name] = engine
        return self._engines[name]

    # ------------------------------------------------------------ contractors

    async def register(self, card_url: str) -> tuple[Contractor, bool]:
        return await self.registry.register(card_url)

    def catalogue(self) -> list[CatalogueSkill]:
        seen: dict[str, CatalogueSkill] = {}
        for contractor in self.registry.active():
            for skill in contractor.card.skills:
                seen.setdefault(skill.id, CatalogueSkill(skill.id, skill.name, skill.description))
        return list(seen.values())

    async def market(self) -> list[dict[str, Any]]:
        contractors = self.registry.active()
        quotes = await asyncio.gather(*(self._quote(c, 1.0) for c in contractors))
        now = time.time()
        return [
            {
                "id": c.id,
                "name": c.card.name,
                "url": c.card.url,
                "skills": [s.id for s in c.card.skills],
                "basePriceUsd": c.card.coalesce.price.base_usd if c.card.coalesce else None,
                "quoteUsd": quote[0] if quote else None,
                "load": quote[1] if quote else None,
                "reliability": round(self.reputation.reliability(c.id, None, now), 6),
                "signingKey": c.signing_key,
                "endToEnd": c.channel is not None,
                "provenSkills": sorted(c.proven_skills),
                "hires": self.hires.get(c.id, 0),
                "goodHires": self.good_hires.get(c.id, 0),
            }
            for c, quote in zip(contractors, quotes, strict=True)
        ]

    async def _quote(self, contractor: Contractor, complexity: float) -> tuple[float, dict[str, Any]] | None:
        """The contractor's live price (eq. 7, its `/v1/quote`) and load; None when it does not answer."""
        try:
            response = await self.http.get(
                contractor.card.url.rstrip("/") + "/v1/quote",
                params={"complexity": complexity},
                timeout=self.config.quote_timeout_s,
                headers=self._auth_headers(contractor),
            )
            body = response.json()
            return float(body["priceUsd"]), body.get("load") or {}
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    def _auth_headers(self, contractor: Contractor) -> dict[str, str]:
        token = self.config.contractor_tokens.get(contractor.card_url)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _refusal(self, contractor: Contractor, sensitivity: str) -> str | None:
        """Why this contractor may not get this subtask, or None."""
        if contractor.requires_auth and contractor.card_url not in self.config.contractor_tokens:
            return "it requires an API key the client does not have"
        if sensitivity in SENSITIVE and contractor.signing_key is None:
            return f"its card is unsigned; {sensitivity} data goes to signed cards only"
        if sensitivity in SENSITIVE and contractor.channel is None:
            return f"it offers no end-to-end channel; {sensitivity} data never travels in plaintext"
        return None

    # ------------------------------------------------------------ tasks

    def submit(self, submission: TaskSubmission) -> tuple[str, str, bool]:
        """(task id, status, created). A repeated idempotency key returns the first task."""
        if submission.idempotency_key:
            existing = self.store.task_by_key(submission.idempotency_key)
            if existing:
                return existing["id"], existing["status"], False
        if submission.strategy is not None:
            try:
                make_strategy(submission.strategy)
            except ValueError as error:
                raise ServiceError(422, str(error)) from None
        active = sum(not t.done() for t in self._runners.values())
        if active >= self.config.max_pending_tasks:
            raise ServiceError(429, f"{active} tasks in progress; try again later")
        task_id = new_id()
        try:
            self.store.create_task(task_id, submission.model_dump(mode="json"), submission.idempotency_key)
        except Exception as error:  # a concurrent submit with the same key won the insert
            if submission.idempotency_key and (existing := self.store.task_by_key(submission.idempotency_key)):
                return existing["id"], existing["status"], False
            raise ServiceError(409, f"could not create the task: {type(error).__name__}") from None
        self.events.publish(task_id, "submitted", {"description": submission.description[:500]})
        self._runners[task_id] = asyncio.create_task(self._run_task(task_id, submission), name=f"client-{task_id}")
        return task_id, "submitted", True

    def task(self, task_id: str) -> dict[str, Any]:
        stored = self.store.task(task_id)
        if stored is None:
            raise ServiceError(404, f"task {task_id!r} not found")
        return stored

    def is_done(self, task_id: str) -> bool:
        runner = self._runners.get(task_id)
        if runner is not None:
            return runner.done()
        stored = self.store.task(task_id)
        return stored is None or stored["status"] in TERMINAL

    async def cancel(self, task_id: str) -> str:
        stored = self.task(task_id)
        if stored["status"] in TERMINAL:
            raise ServiceError(409, f"task {task_id!r} is {stored['status']} and cannot be canceled")
        runner = self._runners.get(task_id)
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return self.task(task_id)["status"]

    def answer(self, task_id: str, answer: InputAnswer) -> str:
        self.task(task_id)
        waiting = [run for run in self._subtasks.get(task_id, {}).values() if run.status == "input-required"]
        if answer.subtask_id is not None:
            waiting = [run for run in waiting if run.id == answer.subtask_id]
        if not waiting:
            raise ServiceError(
                409,
                "no subtask of this task is waiting for input"
                + (f" with id {answer.subtask_id!r}" if answer.subtask_id else ""),
            )
        if len(waiting) > 1:
            raise ServiceError(422, "several subtasks wait for input: say which with subtask_id")
        try:
            waiting[0].answers.put_nowait(answer)
        except asyncio.QueueFull:
            raise ServiceError(429, "answers are already queued for this subtask") from None
        return waiting[0].id

    # ------------------------------------------------------------ the pipeline

    async def _decompose(self, task_id: str, submission: TaskSubmission) -> dict[str, SubtaskRun]:
        plan = await self.planner.plan(submission, self.catalogue() + self._local_catalogue())
        specs = {new_id(): spec for spec in plan.subtasks}
        self.store.add_subtasks(task_id, [(sid, spec.model_dump(mode="json")) for sid, spec in specs.items()])
        self.events.publish(
            task_id,
            "decomposition",
            {
                "source": plan.source,
                "note": plan.note,
                "subtasks": [
                    {"id": sid, "skill": s.skill, "description": s.description[:300]} for sid, s in specs.items()
                ],
            },
        )
        return {sid: SubtaskRun(sid, task_id, spec) for sid, spec in specs.items()}

    async def _run_task(
        self,
        task_id: str,
        submission: TaskSubmission,
        resumed: dict[str, SubtaskRun] | None = None,
        earlier_ok: bool = True,
    ) -> None:
        """Decompose (unless `resumed` gives the subtasks left after a restart) and run the subtasks."""
        status = "failed"
        try:
            async with self._running:
                self.store.set_task(task_id, status="working")
                runs = resumed if resumed is not None else await self._decompose(task_id, submission)
                self._subtasks[task_id] = runs
                outcomes = await asyncio.gather(*(self._run_subtask(run, submission) for run in runs.values()))
                status = "completed" if earlier_ok and all(o.ok for o in outcomes) else "failed"
        except asyncio.CancelledError:
            status = "canceled"
            raise
        except Exception as error:
            log.exception("task %s failed", task_id)
            self.events.publish(task_id, "error", {"message": f"{type(error).__name__}: {error}"[:500]})
        finally:
            self._finish(task_id, status)

    def _finish(self, task_id: str, status: str) -> None:
        runs = self._subtasks.pop(task_id, {})
        result = {sid: {"status": run.status, "where": run.state.get("where")} for sid, run in runs.items()}
        self.store.set_task(task_id, status=status, result=result)
        self.metrics.tasks.labels(status).inc()
        log.info("task %s %s", task_id, status)
        self.events.publish(task_id, status, {"subtasks": result})
        self._save_learned_state()

    def _local_catalogue(self) -> list[CatalogueSkill]:
        known = {s.id for s in self.catalogue()}
        return [
            CatalogueSkill(skill, skill.replace("-", " "), skill.replace("-", " "))
            for skill in self.local_workers
            if skill not in known
        ]

    def _save(self, run: SubtaskRun, status: str | None = None) -> None:
        if status is not None:
            run.status = status
        self.store.set_subtask(run.id, run.status, run.state)

    async def _run_subtask(self, run: SubtaskRun, submission: TaskSubmission) -> Outcome:
        TASK_ID.set(run.task_id)
        spec = run.spec
        value = spec.value_usd if spec.value_usd is not None else self._subtask_value(submission)
        run.state = {
            "attempts": list(run.prior.get("attempts", [])),
            "cost": run.prior.get("cost") or {"estimated_usd": None, "actual_usd": 0.0},
        }
        tried: set[str] = set()
        budget = min(x for x in (spec.max_budget_usd, submission.budget_usd, math.inf) if x is not None)
        outcome = Outcome(False, LOCAL, "not attempted")
        attempt, failures, busy = run.first_attempt - 1, 0, 0
        try:
            while failures < self.config.max_attempts:
                attempt += 1
                decision, problem, offers = await self._decide(run, submission, value, tried, budget)
                record = decision.record()
                run.state["decision"] = record
                if run.state["cost"]["estimated_usd"] is None:
                    run.state["cost"]["estimated_usd"] = round(
                        decision.expected_external_cost
                        if decision.action == "outsource"
                        else float(problem.expected_local_cost[0]),
                        6,
                    )
                self._save(run, "working")
                self.events.publish(run.task_id, "decision", {"subtask": run.id, "attempt": attempt, **record})
                if decision.action == "local":
                    if not self.local_workers.get(spec.skill or "llm"):
                        if run.state.pop("unanswered", 0) and busy < MAX_BUSY_RETRIES:  # contractors too busy to quote
                            busy, attempt = busy + 1, attempt - 1
                            await asyncio.sleep(1.0)
                            continue
                        outcome = Outcome(False, LOCAL, "no contractor and no local worker for this skill")
                        break
                    outcome = await self._run_local(run, attempt, problem)
                else:
                    contractor = self.registry.get(decision.contractor or "")
                    offer = offers[decision.contractor or ""]
                    outcome = await self._hire(run, attempt, contractor, decision, offer, budget)
                    busy += outcome.busy_s is not None
                    if outcome.busy_s is not None and busy <= MAX_BUSY_RETRIES:  # full, not unreliable: wait, retry
                        self._note_attempt(run, attempt, outcome)
                        await asyncio.sleep(outcome.busy_s)
                        continue
                    tried.add(decision.contractor or "")
                    self.engine(submission.strategy).observe(decision, outcome.ok, outcome.cost_usd, time.time())
                    budget -= outcome.cost_usd
                self._note_attempt(run, attempt, outcome)
                self._measure(decision, outcome)
                failures += not outcome.ok
                if outcome.ok or decision.action == "local":
                    break
        except asyncio.CancelledError:
            self._save(run, "canceled")
            raise
        run.state.update(
            {
                "where": outcome.where,
                "reason": outcome.reason,
                "verification": outcome.verdict.wire() if outcome.verdict else None,
                "artifacts": [a.wire() for a in outcome.artifacts],
            }
        )
        self._save(run, "completed" if outcome.ok else "failed")
        self.events.publish(
            run.task_id,
            "subtask",
            {"subtask": run.id, "status": run.status, "where": outcome.where, "reason": outcome.reason},
        )
        return outcome

    @staticmethod
    def _attempt_record(attempt: int, outcome: Outcome) -> dict[str, Any]:
        return {
            "attempt": attempt,
            "where": outcome.where,
            "ok": outcome.ok,
            "reason": outcome.reason,
            "costUsd": round(outcome.cost_usd, 6),
            "seconds": round(outcome.seconds, 3),
        }

    def _note_attempt(self, run: SubtaskRun, attempt: int, outcome: Outcome) -> None:
        run.state["attempts"].append(self._attempt_record(attempt, outcome))
        run.state["cost"]["actual_usd"] = round(run.state["cost"]["actual_usd"] + outcome.cost_usd, 6)

    def _measure(self, decision: Decision, outcome: Outcome) -> None:
        outcome_label = "ok" if outcome.ok else "failed"
        self.metrics.decisions.labels(decision.strategy, decision.action, outcome_label).inc()
        where = LOCAL if outcome.where == LOCAL else "contractor"
        self.metrics.subtask_seconds.labels(where).observe(outcome.seconds)
        log.info("subtask %s: %s, %s (%s)", decision.skill, decision.action, outcome_label, outcome.reason[:200])

    def _subtask_value(self, submission: TaskSubmission) -> float:
        count = len(submission.subtasks) if submission.subtasks else 1
        return submission.budget_usd / count if submission.budget_usd else self.config.default_value_usd

    # ------------------------------------------------------------ deciding

    async def _decide(
        self, run: SubtaskRun, submission: TaskSubmission, value: float, tried: set[str], budget: float
    ) -> tuple[Decision, Problem, dict[str, Offer]]:
        spec = run.spec
        now = time.time()
        profile = estimate_task_profile(spec, value, submission.deadline_s)
        local = self._local_option(spec, profile, now)
        terms = set(spec.required_skills) | ({f"skill:{spec.skill}"} if spec.skill else set())
        named = next((c for c in self.catalogue() if c.id == spec.skill), None)
        text = f"{named.name}. {spec.description}" if named else spec.description  # in the market's words
        requirement = SkillRequirement(frozenset(terms), text[:1000])
        performance = [self.reputation.reliability(c, s, now) for c, s in self.registry.index.rows()]
        matches = self.registry.index.match(requirement, np.array(performance))
        compatibility = matches.compatibility
        rows = [r for r in matches.best_per_contractor() if matches.contractor_ids[r] not in tried]
        if spec.skill:
            rows = [r for r in rows if matches.skill_ids[r] == spec.skill]
        sensitivity = spec.privacy or submission.sensitivity
        run.state.pop("unanswered", None)
        eligible = []
        for r in rows:
            contractor = self.registry.get(matches.contractor_ids[r])
            refusal = self._refusal(contractor, sensitivity) if contractor else "it left the market"
            if refusal is not None:
                run.state.setdefault("excluded", {})[matches.contractor_ids[r]] = refusal
            elif contractor is not None:
                eligible.append((r, contractor))
        quotes = await asyncio.gather(*(self._quote(c, 1.0) for _, c in eligible))
        candidate_offers, offers, loads = [], {}, []
        for (r, contractor), quote in zip(eligible, quotes, strict=True):
            if quote is None:  # not answering: not a candidate this time
                run.state["unanswered"] = run.state.get("unanswered", 0) + 1
                continue
            offer = self._offer(contractor, quote[0], profile, sensitivity)
            if offer.price_usd * self.config.reserve_factor > budget:
                continue
            offers[contractor.id] = offer
            loads.append(self._load_share(quote[1]))
            candidate_offers.append(CandidateOffer(contractor.id, matches.skill_ids[r], float(compatibility[r]), offer))
        engine = self.engine(submission.strategy)
        recent = sum(self.hires.values())
        failure_rate = 1 - sum(self.good_hires.values()) / recent if recent else 0.25
        signals = MarketSignals(
            market_pressure=sum(loads) / len(loads) if loads else 0.25,
            failure_rate=failure_rate,
            task_urgency=1.0 if (submission.deadline_s or math.inf) <= 60 else 0.5 if submission.deadline_s else 0.25,
            risk_level=SENSITIVITY_WEIGHT[sensitivity],
        )
        problem = Problem(
            value_usd=value,
            value_at_stake=value,
            local=local,
            candidates=engine.candidates(candidate_offers, profile, now),
            signals=signals,
            deadline_s=submission.deadline_s,
            urgency=signals.task_urgency,
        )
        return engine.decide(problem), problem, offers

    @staticmethod
    def _load_share(load: dict[str, Any]) -> float:
        capacity = (load.get("maxConcurrent") or 0) + (load.get("maxQueued") or 0)
        return min(1.0, ((load.get("running") or 0) + (load.get("queued") or 0)) / capacity) if capacity else 0.25

    def _offer(self, contractor: Contractor, quote: float, profile: TaskProfile, sensitivity: str) -> Offer:
        card = contractor.card
        profile_block = card.coalesce
        price = profile_block.price if profile_block else None
        usage = 0.0
        if price is not None:  # the expected usage charge on top of the quote
            tokens = profile.flops / (2.0 * LLM_PARAMETERS)
            usage = tokens / 2000.0 * (price.per_1k_input_tokens_usd + price.per_1k_output_tokens_usd)
        latency = profile_block.typical_latency_s if profile_block else 30.0
        channel = "e2e" if contractor.channel else "tls" if card.url.startswith("https") else "plaintext"
        return Offer(
            price_usd=self.calibrator.estimate(f"{card.url}", quote + usage),
            latency_s=latency,
            p_security=security_risk([self.config.breach_probability] * 2, sensitivity, channel),
            verification_usd=self.config.verification_usd,
            link=Link(bandwidth_bytes_per_s=12.5e6),
        )

    def _local_option(self, spec: SubtaskSpec, profile: TaskProfile, now: float) -> LocalOption:
        skill = spec.skill or "llm"
        available = skill in self.local_workers
        cost = internal_cost(profile, self.config.hardware, self._local_queue.values())
        key = f"local:{skill}"
        a, b = self.reputation.posterior(LOCAL, skill, now)
        if isinstance(self.local_workers.get(skill), ComputeWorker):  # our own deterministic code
            a += self.config.own_code_prior_successes
        return LocalOption(
            cost_usd=self.calibrator.estimate(key, cost.total),
            latency_s=cost.exec_seconds * self.calibrator.factors.get(key, 1.0),
            p_failure=b / (a + b),
            available=available,
        )

    # ------------------------------------------------------------ doing the work

    async def _hire(
        self,
        run: SubtaskRun,
        attempt: int,
        contractor: Contractor | None,
        decision: Decision,
        offer: Offer,
        budget: float,
    ) -> Outcome:
        if contractor is None:
            return Outcome(False, decision.contractor or "?", "the contractor left the market")
        reserve = min(offer.price_usd * self.config.reserve_factor, budget)
        self.ledger.reserve(run.id, attempt, contractor.id, reserve)
        remote_id = new_id()
        self.events.publish(
            run.task_id,
            "dispatch",
            {
                "subtask": run.id,
                "attempt": attempt,
                "contractor": contractor.id,
                "a2aTaskId": remote_id,
                "reservedUsd": round(reserve, 6),
            },
        )
        run.state["a2aTaskId"] = remote_id
        A2A_TASK_ID.set(remote_id)
        log.info("hiring %s (%s) for subtask %s", contractor.card.name, contractor.id, run.id)
        self._save(run)
        started = time.perf_counter()
        client = A2AClient(
            contractor.card.url,
            self.http,
            timeout_s=self.config.hire_timeout_s,
            headers=self._auth_headers(contractor),
        )
        try:
            async with asyncio.timeout(self.config.hire_timeout_s):
                artifacts, charged = await self._converse(run, client, contractor, remote_id, decision.skill)
        except asyncio.CancelledError:
            await self._abandon(client, remote_id)
            self.ledger.refund(run.id, attempt, reserve, "the client canceled the task")
            raise
        except (A2AError, ChannelError, httpx.HTTPError, TimeoutError, ValidationError, ValueError) as error:
            reason = f"{type(error).__name__}: {error}"[:300] if str(error) else type(error).__name__
            if isinstance(error, TimeoutError):
                reason = f"no result within {self.config.hire_timeout_s:g} s"
                await self._abandon(client, remote_id)
            self.ledger.refund(run.id, attempt, reserve, reason)
            self.events.publish(run.task_id, "settlement", {"subtask": run.id, "kind": "refund", "reason": reason})
            busy = isinstance(error, A2AError) and error.code == ErrorCode.OVER_CAPACITY
            retry_after = (error.data or {}).get("retryAfterSeconds", 1.0) if busy else None  # type: ignore[union-attr]
            busy_s = min(max(float(retry_after), 0.1), 10.0) if isinstance(retry_after, int | float) else None
            return Outcome(False, contractor.id, reason, seconds=time.perf_counter() - started, busy_s=busy_s)
        seconds = time.perf_counter() - started
        verdict = await self.verifier.verify(run.spec, decision.skill or "", artifacts)
        self.events.publish(
            run.task_id, "verification", {"subtask": run.id, "contractor": contractor.id, **verdict.wire()}
        )
        if not verdict.passed:
            self.ledger.refund(run.id, attempt, reserve, f"verification failed: {verdict.reason}")
            self.events.publish(
                run.task_id, "settlement", {"subtask": run.id, "kind": "refund", "reason": verdict.reason}
            )
            return Outcome(
                False, contractor.id, f"verification failed: {verdict.reason}", artifacts, verdict, seconds=seconds
            )
        paid = self.ledger.release(run.id, attempt, contractor.id, reserve, charged)
        self.calibrator.observe(contractor.card.url, offer.price_usd, charged)
        self.events.publish(
            run.task_id,
            "settlement",
            {
                "subtask": run.id,
                "kind": "release",
                "contractor": contractor.id,
                "paidUsd": round(paid, 6),
                "chargedUsd": round(charged, 6),
            },
        )
        if charged > reserve + 1e-9:
            return Outcome(
                False,
                contractor.id,
                f"over-charged {charged:.6f} against {reserve:.6f} reserved",
                artifacts,
                verdict,
                paid,
                seconds,
            )
        return Outcome(True, contractor.id, "verified", artifacts, verdict, paid, seconds)

    async def _converse(
        self, run: SubtaskRun, client: A2AClient, contractor: Contractor, remote_id: str, skill: str | None
    ) -> tuple[list[Artifact], float]:
        """Stream the work (or send it, to a contractor without streaming), relaying the contractor's events and
        answering its input-required from the client's user; returns the artifacts and what it charged."""
        card_skill = contractor.card.skill(skill or "")
        modes = (card_skill.input_modes if card_skill else None) or contractor.card.default_input_modes
        message = work_message(run.spec, modes)
        offer = contractor.channel
        channel = Channel.open_to(offer, remote_id) if offer else None
        streaming = contractor.card.capabilities.streaming
        while True:
            if channel is not None:
                message = channel.seal_message(message)
            state = await self._exchange(run, client, remote_id, message, skill, streaming, channel)
            if state is TaskState.COMPLETED:
                break
            if state is not TaskState.INPUT_REQUIRED:
                task = await client.get(remote_id)
                why = task.status.message.text() if task.status.message else state.value
                raise A2AError(
                    ErrorCode.INVALID_AGENT_RESPONSE, f"the contractor's task ended {state.value}: {why}"[:300]
                )
            message = await self._wait_for_input(run)
        task = await client.get(remote_id)
        charged = float(task.metadata.get("coalesce", {}).get("costUsd", 0.0))
        return (channel.open_artifacts(task.artifacts) if channel else task.artifacts), charged

    async def _exchange(
        self,
        run: SubtaskRun,
        client: A2AClient,
        remote_id: str,
        message: Message,
        skill: str | None,
        streaming: bool,
        channel: Channel | None,
    ) -> TaskState:
        if not streaming:
            task = await client.send(remote_id, message, skill, {"coalesce": {"clientTaskId": run.task_id}})
            self.events.publish(run.task_id, "contractor", {"subtask": run.id, "state": task.status.state.value})
            if task.status.state is TaskState.INPUT_REQUIRED:
                self._ask(run, self._reveal(channel, task.status.message))
            return task.status.state
        state = TaskState.UNKNOWN
        async for event in client.stream(remote_id, message, skill, {"coalesce": {"clientTaskId": run.task_id}}):
            if isinstance(event, TaskArtifactUpdateEvent):
                self.events.publish(run.task_id, "contractor", {"subtask": run.id, "artifact": event.artifact.name})
                continue
            assert isinstance(event, TaskStatusUpdateEvent)
            state = event.status.state
            self.events.publish(run.task_id, "contractor", {"subtask": run.id, "state": state.value})
            if state is TaskState.INPUT_REQUIRED:
                self._ask(run, self._reveal(channel, event.status.message))
        return state

    @staticmethod
    def _reveal(channel: Channel | None, prompt: Message | None) -> Message | None:
        """A contractor's prompt as it meant it: opened, when the task runs on an end-to-end channel."""
        if channel is None or prompt is None:
            return prompt
        envelope = envelope_of(prompt.parts)
        if envelope is None:
            raise ChannelError("plaintext", "the contractor asked for input outside the end-to-end channel")
        return prompt.model_copy(update={"parts": channel.open_parts(envelope)})

    def _ask(self, run: SubtaskRun, prompt: Message | None) -> None:
        run.state["inputRequired"] = prompt.text() if prompt else "more input needed"
        self._save(run, "input-required")
        self.store.set_task(run.task_id, status="input-required")
        self.events.publish(run.task_id, "input-required", {"subtask": run.id, "prompt": run.state["inputRequired"]})

    async def _wait_for_input(self, run: SubtaskRun) -> Message:
        try:
            answer = await asyncio.wait_for(run.answers.get(), timeout=self.config.input_timeout_s)
        except TimeoutError:
            raise TimeoutError("no answer to input-required") from None
        run.state.pop("inputRequired", None)
        self._save(run, "working")
        self.store.set_task(run.task_id, status="working")
        self.events.publish(run.task_id, "input", {"subtask": run.id})
        return answer_message(answer)

    async def _abandon(self, client: A2AClient, remote_id: str) -> None:
        """Best effort: tell the contractor to stop (the client no longer waits for it)."""
        with contextlib.suppress(A2AError, httpx.HTTPError, TimeoutError, ValidationError, asyncio.CancelledError):
            await asyncio.shield(asyncio.wait_for(client.cancel(remote_id), timeout=5))

    async def _run_local(self, run: SubtaskRun, attempt: int, problem: Problem) -> Outcome:
        skill = run.spec.skill or "llm"
        worker = self.local_workers[skill]
        key = f"local:{skill}"
        self.events.publish(run.task_id, "local", {"subtask": run.id, "attempt": attempt, "skill": skill})
        messages = [work_message(run.spec)]
        started = time.perf_counter()
        self._local_queue[run.id] = QueuedTask(problem.value_usd, max(problem.local.latency_s, 1e-3))
        try:
            while True:
                own_skill = AgentSkill(id=skill, name=skill.replace("-", " "), description=f"the client's own {skill}")
                request = WorkRequest(run.id, own_skill, messages)
                result = await asyncio.wait_for(worker.run(request), timeout=self.config.local_timeout_s)
                if not isinstance(result, NeedsInput):
                    break
                self._ask(run, Message(role="agent", parts=[Part.of_text(result.prompt)]))
                messages = [
                    *messages,
                    Message(role="agent", parts=[Part.of_text(result.prompt)]),
                    await self._wait_for_input(run),
                ]
        except (WorkerError, TimeoutError) as error:
            self.reputation.record(LOCAL, skill, False, time.time())
            return Outcome(False, LOCAL, f"local work failed: {error}", seconds=time.perf_counter() - started)
        finally:
            self._local_queue.pop(run.id, None)
        seconds = time.perf_counter() - started
        usage = result.usage
        self.metrics.worker_usage(worker.name, usage.input_tokens, usage.output_tokens, usage.compute_seconds)
        measured = TaskProfile(flops=seconds * self.config.hardware.peak_flops * self.config.hardware.utilisation)
        actual = internal_cost(measured, self.config.hardware).total
        self.calibrator.observe(key, problem.local.cost_usd / max(self.calibrator.factors.get(key, 1.0), 1e-9), actual)
        verdict = await self.verifier.verify(run.spec, skill, result.artifacts)
        self.events.publish(run.task_id, "verification", {"subtask": run.id, "contractor": LOCAL, **verdict.wire()})
        self.reputation.record(LOCAL, skill, verdict.passed, time.time())
        return Outcome(
            verdict.passed,
            LOCAL,
            "verified" if verdict.passed else f"verification failed: {verdict.reason}",
            result.artifacts,
            verdict,
            actual,
            seconds,
        )
