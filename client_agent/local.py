"""The client's own work: a subtask run on its own workers (the same `Worker` interface contractors use), its
input-required relayed to the user, its cost measured on the client's hardware profile and its result verified
like any contractor's."""

from __future__ import annotations

import asyncio
import copy
import time

from client_agent.hiring import work_message
from client_agent.metrics import ClientMetrics
from client_agent.progress import Progress
from client_agent.state import LOCAL, EventKind, Outcome, SubtaskRun
from client_agent.verification import Verifier
from shared.a2a.models import AgentSkill, Message, Part
from shared.economics.cost_model import CostCalibrator, HardwareProfile, QueuedTask, TaskProfile, internal_cost
from shared.economics.decision.problem import Problem
from shared.workers.base import NeedsInput, Worker, WorkerError, WorkRequest


class LocalWork:
    def __init__(
        self,
        workers: dict[str, Worker],
        hardware: HardwareProfile,
        calibrator: CostCalibrator,
        verifier: Verifier,
        progress: Progress,
        metrics: ClientMetrics,
        timeout_s: float,
    ) -> None:
        self.workers = workers
        self.hardware = hardware
        self.calibrator = calibrator
        self.verifier = verifier
        self.progress = progress
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.queue: dict[str, QueuedTask] = {}  # what the client's machine is busy with (eq. 5's queue)

    def with_progress(self, progress: Progress) -> LocalWork:
        """The same local work, recording progress elsewhere (a probe's)."""
        twin = copy.copy(self)
        twin.progress = progress
        return twin

    def can_do(self, skill: str) -> bool:
        return skill in self.workers

    async def run(self, run: SubtaskRun, attempt: int, problem: Problem) -> Outcome:
        skill = run.spec.skill or "llm"
        worker = self.workers[skill]
        key = f"local:{skill}"
        self.progress.publish(run, EventKind.LOCAL, attempt=attempt, skill=skill)
        messages = [work_message(run.spec)]
        own_skill = AgentSkill(id=skill, name=skill.replace("-", " "), description=f"the client's own {skill}")
        started = time.perf_counter()
        self.queue[run.id] = QueuedTask(problem.value_usd, max(problem.local.latency_s, 1e-3))
        try:
            while True:
                request = WorkRequest(run.id, own_skill, messages)
                result = await asyncio.wait_for(worker.run(request), timeout=self.timeout_s)
                if not isinstance(result, NeedsInput):
                    break
                prompt = Message(role="agent", parts=[Part.of_text(result.prompt)])
                self.progress.ask(run, prompt)
                messages = [*messages, prompt, await self.progress.wait_for_input(run)]
        except (WorkerError, TimeoutError) as error:
            return Outcome(False, LOCAL, f"local work failed: {error}", seconds=time.perf_counter() - started)
        finally:
            self.queue.pop(run.id, None)
        seconds = time.perf_counter() - started
        usage = result.usage
        self.metrics.worker_usage(worker.name, usage.input_tokens, usage.output_tokens, usage.compute_seconds)
        measured = TaskProfile(flops=seconds * self.hardware.peak_flops * self.hardware.utilisation)
        actual = internal_cost(measured, self.hardware).total
        raw = problem.local.cost_usd / max(self.calibrator.factors.get(key, 1.0), 1e-9)  # the uncalibrated estimate
        self.calibrator.observe(key, raw, actual)
        verdict = await self.verifier.verify(run.spec, skill, result.artifacts)
        self.progress.publish(run, EventKind.VERIFICATION, contractor=LOCAL, **verdict.wire())
        reason = "verified" if verdict.passed else f"verification failed: {verdict.reason}"
        return Outcome(verdict.passed, LOCAL, reason, result.artifacts, verdict, actual, seconds)
