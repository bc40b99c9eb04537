"""The task runner: a task decomposed into subtasks, each decided, done locally or hired out, verified and
settled, attempt after attempt (up to `max_attempts` failures, waiting for contractors at capacity); and the
recovery of tasks a crash left unfinished."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from client_agent.deciding import Decider
from client_agent.hiring import Hirer
from client_agent.ledger import Ledger
from client_agent.local import LocalWork
from client_agent.metrics import ClientMetrics
from client_agent.models import SubtaskSpec, TaskSubmission
from client_agent.planner import CatalogueSkill, Planner
from client_agent.probing import PROBE_PREFIX, Prober
from client_agent.progress import Progress
from client_agent.quality import Quality
from client_agent.redundancy import Answer, Redundancy
from client_agent.state import LOCAL, EventKind, Outcome, Status, SubtaskRun, SubtaskState
from client_agent.storage import Store
from shared.a2a.models import new_id
from shared.economics.decision.problem import Decision
from shared.runtime.observability import TASK_ID

log = logging.getLogger(__name__)

MAX_BUSY_RETRIES = 20  # a contractor at capacity is waited for (its retryAfterSeconds) this many times a subtask


@dataclass(frozen=True)
class RunnerConfig:
    max_attempts: int
    max_running_tasks: int
    default_value_usd: float


class TaskRunner:
    def __init__(
        self,
        config: RunnerConfig,
        store: Store,
        progress: Progress,
        planner: Planner,
        decider: Decider,
        hirer: Hirer,
        local: LocalWork,
        ledger: Ledger,
        metrics: ClientMetrics,
        catalogue: Callable[[], list[CatalogueSkill]],
        quality: Quality,
        prober: Prober,
        redundancy: Redundancy,
    ) -> None:
        self.config = config
        self.store = store
        self.progress = progress
        self.events = progress.events
        self.planner = planner
        self.decider = decider
        self.hirer = hirer
        self.local = local
        self.ledger = ledger
        self.metrics = metrics
        self.catalogue = catalogue
        self.quality = quality
        self.prober = prober
        self.redundancy = redundancy
        self.runners: dict[str, asyncio.Task[None]] = {}
        self.subtasks: dict[str, dict[str, SubtaskRun]] = {}
        self._running = asyncio.Semaphore(config.max_running_tasks)

    def start(self, task_id: str, submission: TaskSubmission) -> None:
        self._spawn(task_id, self._run_task(task_id, submission))

    def _spawn(self, task_id: str, work: object) -> None:
        runner: asyncio.Task[None] = asyncio.create_task(work, name=f"client-{task_id}")  # type: ignore[arg-type]
        self.runners[task_id] = runner
        runner.add_done_callback(lambda _: self._forget(task_id, runner))

    def _forget(self, task_id: str, runner: asyncio.Task[None]) -> None:
        """A finished task's runner is let go (its status is in the store): memory stays bounded."""
        if self.runners.get(task_id) is runner:
            del self.runners[task_id]

    def active(self) -> int:
        return len(self.runners)

    def waiting_for_input(self, task_id: str) -> list[SubtaskRun]:
        return [run for run in self.subtasks.get(task_id, {}).values() if run.status is Status.INPUT_REQUIRED]

    async def close(self) -> None:
        tasks = [t for t in self.runners.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.prober.close()

    # ------------------------------------------------------------ recovery

    async def recover(self) -> None:
        """Tasks a crash or kill left unfinished: refund every hire that never settled (exactly once: the ledger
        refuses a second settlement), ask the contractor to stop, and run what is left of the task again."""
        for probe in self.store.reserved_subtasks(PROBE_PREFIX):  # probes cut short: their escrow comes back
            self.ledger.refund_open(probe, "the client restarted before this probe settled")
        for task_id in self.store.unfinished_tasks():
            stored = self.store.task(task_id)
            if stored is None:
                continue
            submission = TaskSubmission.model_validate(stored["request"])
            runs: dict[str, SubtaskRun] = {}
            earlier_ok = True
            for sub in stored["subtasks"]:
                if sub["status"] in (Status.COMPLETED, Status.FAILED):
                    earlier_ok = earlier_ok and sub["status"] == Status.COMPLETED
                    continue
                runs[sub["id"]] = await self._resume_subtask(task_id, sub)
            self.events.publish(task_id, EventKind.RECOVERED, {"resumed": list(runs), "earlierOk": earlier_ok})
            log.warning("task %s: resumed after a restart (%d subtasks left)", task_id, len(runs))
            resumed = runs if stored["subtasks"] else None  # no subtasks stored: decompose again
            self._spawn(task_id, self._run_task(task_id, submission, resumed, earlier_ok))

    async def _resume_subtask(self, task_id: str, sub: dict[str, object]) -> SubtaskRun:
        state = SubtaskState.model_validate(sub["state"] or {})
        hired = (state.decision or {}).get("contractor") or "?"
        await self.hirer.abandon_remote(hired, state.a2a_task_id, state.a2a_channel_token)
        run = SubtaskRun(str(sub["id"]), task_id, SubtaskSpec.model_validate(sub["spec"]), state)
        for attempt, amount in self.ledger.refund_open(run.id, "the client restarted before this hire settled"):
            interrupted = Outcome(False, hired, "interrupted by a client restart; escrow refunded")
            state.attempts.append(interrupted.record(attempt))
            self.progress.publish(run, EventKind.SETTLEMENT, kind="refund", usd=amount)
        run.first_attempt = self.store.last_attempt(run.id) + 1
        return run

    # ------------------------------------------------------------ the pipeline

    async def _decompose(self, task_id: str, submission: TaskSubmission) -> dict[str, SubtaskRun]:
        plan = await self.planner.plan(submission, self.catalogue())
        specs = {new_id(): spec for spec in plan.subtasks}
        self.store.add_subtasks(task_id, [(sid, spec.model_dump(mode="json")) for sid, spec in specs.items()])
        self.events.publish(
            task_id,
            EventKind.DECOMPOSITION,
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
        status = Status.FAILED
        try:
            async with self._running:
                self.store.set_task(task_id, status=Status.WORKING.value)
                runs = resumed if resumed is not None else await self._decompose(task_id, submission)
                self.subtasks[task_id] = runs
                outcomes = await asyncio.gather(*(self._run_subtask(run, submission) for run in runs.values()))
                status = Status.COMPLETED if earlier_ok and all(o.ok for o in outcomes) else Status.FAILED
        except asyncio.CancelledError:
            status = Status.CANCELED
            raise
        except Exception as error:
            log.exception("task %s failed", task_id)
            self.events.publish(task_id, EventKind.ERROR, {"message": f"{type(error).__name__}: {error}"[:500]})
        finally:
            self._finish(task_id, status)

    def _finish(self, task_id: str, status: Status) -> None:
        runs = self.subtasks.pop(task_id, {})
        result = {sid: {"status": run.status.value, "where": run.state.where} for sid, run in runs.items()}
        self.store.set_task(task_id, status=status.value, result=result)
        self.metrics.tasks.labels(status.value).inc()
        log.info("task %s %s", task_id, status.value)
        self.events.publish(task_id, EventKind(status.value), {"subtasks": result})
        self.decider.save_soon()

    async def _run_subtask(self, run: SubtaskRun, submission: TaskSubmission) -> Outcome:
        TASK_ID.set(run.task_id)
        spec = run.spec
        value = spec.value_usd if spec.value_usd is not None else self._subtask_value(submission)
        run.state = SubtaskState(attempts=run.state.attempts, cost=run.state.cost, value_usd=value)  # resumed: kept
        tried: set[str] = set()
        budget = min(x for x in (spec.max_budget_usd, submission.budget_usd, math.inf) if x is not None)
        outcome = Outcome(False, LOCAL, "not attempted")
        attempt, failures, busy = run.first_attempt - 1, 0, 0
        catalogue = self.catalogue()
        try:
            while failures < self.config.max_attempts:
                attempt += 1
                deliberation = await self.decider.decide(run, submission, value, tried, budget, catalogue)
                decision, problem = deliberation.decision, deliberation.problem
                self._record_decision(run, attempt, decision, float(problem.expected_local_cost[0]))
                if attempt == run.first_attempt:
                    self.prober.maybe(run, deliberation)
                if decision.action == "local":
                    if not self.local.can_do(spec.skill or "llm"):
                        if deliberation.unanswered and busy < MAX_BUSY_RETRIES:  # contractors too busy to quote
                            busy, attempt = busy + 1, attempt - 1
                            await asyncio.sleep(1.0)
                            continue
                        outcome = Outcome(False, LOCAL, "no contractor and no local worker for this skill")
                        break
                    outcome = await self.local.run(run, attempt, problem)
                else:
                    hired = decision.contractor or ""
                    contractor = self.decider.market.registry.get(hired)
                    if contractor is None:
                        outcome = Outcome(False, hired or "?", "the contractor left the market")
                    else:
                        offer, raw = deliberation.offers[hired].price_usd, deliberation.raw_prices[hired]
                        outcome = await self.hirer.hire(run, attempt, contractor, decision.skill, offer, budget, raw)
                    busy += outcome.busy_s is not None
                    if outcome.busy_s is not None and busy <= MAX_BUSY_RETRIES:  # full, not unreliable: wait, retry
                        self.progress.note_attempt(run, attempt, outcome)
                        await asyncio.sleep(outcome.busy_s)
                        continue
                    tried.add(hired)
                    self.decider.observe(submission.strategy, decision, outcome.ok, outcome.cost_usd)
                    budget -= outcome.cost_usd
                self._learn(run, outcome)
                self.progress.note_attempt(run, attempt, outcome)
                self._measure(decision, outcome)
                failures += not outcome.ok
                if outcome.ok and (others := self.redundancy.others(run, outcome.where, deliberation)):
                    first = Answer(outcome.where, outcome)
                    outcome = await self.redundancy.gather(run, attempt, first, others, deliberation, budget)
                if outcome.ok or decision.action == "local":
                    break
        except asyncio.CancelledError:
            self.progress.save(run, Status.CANCELED)
            raise
        state = run.state
        state.where, state.reason = outcome.where, outcome.reason
        state.verification = outcome.verdict.wire() if outcome.verdict else None
        state.artifacts = [a.wire() for a in outcome.artifacts]
        self.progress.save(run, Status.COMPLETED if outcome.ok else Status.FAILED)
        self.progress.publish(
            run, EventKind.SUBTASK, status=run.status.value, where=outcome.where, reason=outcome.reason
        )
        return outcome

    def _learn(self, run: SubtaskRun, outcome: Outcome) -> None:
        """What one attempt says of the agent's competence (see `client_agent.quality`), and what it cost."""
        self.quality.spend.work_usd += outcome.cost_usd
        if outcome.where != LOCAL and self.decider.market.registry.get(outcome.where) is None:
            return  # the contractor left the market: nothing to learn of anyone
        self.quality.learn(run, outcome)

    def _record_decision(self, run: SubtaskRun, attempt: int, decision: Decision, local_cost: float) -> None:
        record = decision.record()
        agent = decision.contractor if decision.action == "outsource" else LOCAL
        if agent is not None:
            competence = self.quality.competence(agent, run.spec.skill or "llm")
            record["quality"] = {"agent": agent, **competence.wire()}
            run.state.quality = record["quality"]
        hired = self.decider.market.registry.get(decision.contractor or "") if decision.action == "outsource" else None
        if hired is not None:  # how the work will travel: the A2A generation and the channel
            record["a2aVersion"], record["channel"] = hired.endpoint.dialect.value, hired.channel_kind
        run.state.decision = record
        if run.state.cost.estimated_usd is None:
            estimate = decision.expected_external_cost if decision.action == "outsource" else local_cost
            run.state.cost.estimated_usd = round(float(estimate or 0.0), 6)
        self.progress.save(run, Status.WORKING)
        self.progress.publish(run, EventKind.DECISION, attempt=attempt, **record)

    def _measure(self, decision: Decision, outcome: Outcome) -> None:
        outcome_label = "ok" if outcome.ok else "failed"
        self.metrics.decisions.labels(decision.strategy, decision.action, outcome_label).inc()
        where = LOCAL if outcome.where == LOCAL else "contractor"
        self.metrics.subtask_seconds.labels(where).observe(outcome.seconds)
        log.info("subtask %s: %s, %s (%s)", decision.skill, decision.action, outcome_label, outcome.reason[:200])

    def _subtask_value(self, submission: TaskSubmission) -> float:
        count = len(submission.subtasks) if submission.subtasks else 1
        return submission.budget_usd / count if submission.budget_usd else self.config.default_value_usd
