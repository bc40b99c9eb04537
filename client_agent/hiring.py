"""Hiring a contractor for one attempt at a subtask: escrow reserved, the work sent over A2A (streamed where the
card says it can, sealed on the end-to-end channel where the contractor offers one), the contractor's events
relayed, its input-required answered by the user, the result verified, and the escrow released or refunded."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
from pydantic import ValidationError

from client_agent.ledger import Ledger
from client_agent.market import Market
from client_agent.models import SubtaskSpec
from client_agent.progress import Progress
from client_agent.registry import Contractor
from client_agent.state import EventKind, Outcome, SubtaskRun
from client_agent.verification import Verifier
from shared.a2a.client import A2AClient, Reply, as_task
from shared.a2a.dialects import Dialect
from shared.a2a.models import (
    A2AError,
    Artifact,
    ErrorCode,
    Message,
    Part,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatusUpdateEvent,
    new_id,
)
from shared.economics.cost_model import ChargeCheck, CostCalibrator, Metered, check_charge
from shared.runtime.observability import A2A_TASK_ID
from shared.security.channel import CHANNEL_TOKEN_HEADER, Channel, ChannelError, ChannelKeys, envelope_of
from shared.security.receipts import ReceiptRejected, verify_receipt

log = logging.getLogger(__name__)

HIRE_ERRORS = (A2AError, ChannelError, httpx.HTTPError, TimeoutError, ValidationError, ValueError)


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


def _reveal(channel: Channel | None, prompt: Message | None) -> Message | None:
    """A contractor's prompt as it meant it: opened, when the task runs on an end-to-end channel."""
    if channel is None or prompt is None:
        return prompt
    envelope = envelope_of(prompt.parts)
    if envelope is None:
        raise ChannelError("plaintext", "the contractor asked for input outside the end-to-end channel")
    return prompt.model_copy(update={"parts": channel.open_parts(envelope)})


def _number(value: Any) -> float:
    """A non-negative finite number from a contractor's billing fields; 0 for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)


def receipt_problem(contractor: Contractor, task_id: str, billing: dict[str, Any]) -> str | None:
    """Why the contractor's signed usage receipt does not cover its bill, or None when it does or when none is
    expected (an unsigned card, or no price list)."""
    if contractor.signing_key is None or contractor.price_list is None:
        return None
    key = contractor.pinned_public_key
    if key is None:
        return "the pinned key is not on the card"
    try:
        verify_receipt(billing.get("receipt"), task_id, billing, contractor.price_list, key, contractor.signing_key)
    except ReceiptRejected as rejected:
        return str(rejected)
    return None


def _busy_seconds(error: Exception) -> float | None:
    """A contractor at capacity says when to come back; anything else is not 'busy'."""
    if not isinstance(error, A2AError) or error.code != ErrorCode.OVER_CAPACITY:
        return None
    retry_after = (error.data or {}).get("retryAfterSeconds", 1.0) if isinstance(error.data, dict) else 1.0
    return min(max(float(retry_after), 0.1), 10.0) if isinstance(retry_after, int | float) else None


class Hirer:
    def __init__(
        self,
        market: Market,
        ledger: Ledger,
        verifier: Verifier,
        calibrator: CostCalibrator,
        progress: Progress,
        reserve_factor: float,
        hire_timeout_s: float,
    ) -> None:
        self.market = market
        self.ledger = ledger
        self.verifier = verifier
        self.calibrator = calibrator
        self.progress = progress
        self.reserve_factor = reserve_factor
        self.hire_timeout_s = hire_timeout_s
        self.channel_keys = ChannelKeys()  # shared with twins: one session per contractor

    def with_progress(self, progress: Progress) -> Hirer:
        """The same hirer, recording progress elsewhere (a probe's)."""
        twin = copy.copy(self)
        twin.progress = progress
        return twin

    def client(
        self, contractor: Contractor, timeout_s: float | None = None, channel_token: str | None = None
    ) -> A2AClient:
        """An A2A client for `contractor`: with its API key, and with the channel's owner token when the hire runs on
        an end-to-end channel (which makes the task the client's alone on a contractor without API keys)."""
        headers = self.market.auth_headers(contractor)
        if channel_token is not None:
            headers[CHANNEL_TOKEN_HEADER] = channel_token
        return A2AClient(
            contractor.endpoint, self.market.http, timeout_s=timeout_s or self.hire_timeout_s, headers=headers
        )

    async def hire(
        self,
        run: SubtaskRun,
        attempt: int,
        contractor: Contractor,
        skill: str | None,
        price_usd: float,
        budget: float,
        raw_price_usd: float,
    ) -> Outcome:
        """One hire at the (calibrated) `price_usd`; `raw_price_usd` is the uncalibrated quote plus expected usage,
        what calibration (10) compares the charge with."""
        reserve = min(price_usd * self.reserve_factor, budget)
        self.ledger.reserve(run.id, attempt, contractor.id, reserve)
        remote_id = new_id()  # the id of the message that opens the task (legacy: the task's own id)
        self.progress.publish(
            run,
            EventKind.DISPATCH,
            attempt=attempt,
            contractor=contractor.id,
            a2aMessageId=remote_id,
            reservedUsd=round(reserve, 6),
        )
        channel = self.channel_keys.open_to(contractor.channel, remote_id) if contractor.channel else None
        run.state.a2a_task_id = None  # saved once the task is named: by the client (legacy), else by its first event
        run.state.a2a_channel_token = channel.owner_token if channel else None  # saved with it
        if contractor.endpoint.dialect is Dialect.LEGACY:
            self._named(run, remote_id)
        log.info("hiring %s (%s) for subtask %s", contractor.card.name, contractor.id, run.id)
        started = time.perf_counter()
        client = self.client(contractor, channel_token=run.state.a2a_channel_token)
        try:
            async with asyncio.timeout(self.hire_timeout_s):
                artifacts, billing = await self._converse(run, client, contractor, channel, remote_id, skill)
        except asyncio.CancelledError:
            await abandon(client, run.state.a2a_task_id)
            self.ledger.refund(run.id, attempt, reserve, "the client canceled the task")
            raise
        except HIRE_ERRORS as error:
            reason = f"{type(error).__name__}: {error}"[:300] if str(error) else type(error).__name__
            if isinstance(error, TimeoutError):
                reason = f"no result within {self.hire_timeout_s:g} s"
                await abandon(client, run.state.a2a_task_id)
            self._refund(run, attempt, reserve, reason)
            return Outcome(
                False, contractor.id, reason, seconds=time.perf_counter() - started, busy_s=_busy_seconds(error)
            )
        seconds = time.perf_counter() - started
        verdict = await self.verifier.verify(run.spec, skill or "", artifacts)
        self.progress.publish(run, EventKind.VERIFICATION, contractor=contractor.id, **verdict.wire())
        if not verdict.passed:
            reason = f"verification failed: {verdict.reason}"
            self._refund(run, attempt, reserve, reason, verdict.reason)
            return Outcome(False, contractor.id, reason, artifacts, verdict, seconds=seconds)
        charged = _number(billing.get("costUsd"))
        check = self._check_charge(contractor, billing, charged, seconds, run)
        receipt = receipt_problem(contractor, run.state.a2a_task_id or remote_id, billing)
        if receipt is not None:  # an unsigned or altered bill: nothing beyond the quote is owed
            quote = min(_number(billing.get("quoteUsd")), check.allowed_usd)
            check = ChargeCheck(quote, charged, (*check.notes, f"receipt refused: {receipt}"))
        # the price list is the contract: a charge within it stands (above a reservation estimated too low as well,
        # which is the client's error, not the contractor's); one above it is paid what the list allows
        payable = charged if not check.over else check.allowed_usd
        paid = self.ledger.release(run.id, attempt, contractor.id, reserve, payable, beyond_reservation=True)
        self.calibrator.observe(contractor.id, raw_price_usd, paid)
        self.progress.publish(
            run,
            EventKind.SETTLEMENT,
            kind="release",
            contractor=contractor.id,
            paidUsd=round(paid, 6),
            chargedUsd=round(charged, 6),
            allowedUsd=round(check.allowed_usd, 6),
            receipt="not expected" if contractor.signing_key is None else receipt or "verified",
        )
        overcharge = None
        if check.over:
            overcharge = f"charged {charged:.6f}, the price list allows {check.allowed_usd:.6f}"
            overcharge += "".join(f"; {note}" for note in check.notes) + f"; paid {paid:.6f}"
            log.warning("contractor %s over-charged: %s", contractor.id, overcharge)
            self.progress.publish(run, EventKind.OVERCHARGE, contractor=contractor.id, detail=overcharge)
        return Outcome(True, contractor.id, "verified", artifacts, verdict, paid, seconds, overcharge=overcharge)

    def _check_charge(
        self, contractor: Contractor, billing: dict[str, Any], charged: float, seconds: float, run: SubtaskRun
    ) -> ChargeCheck:
        """The charge against the card's price list and what the client itself measured of the hire."""
        profile = contractor.card.coalesce
        claimed = billing.get("usage")
        usage: dict[str, Any] = claimed if isinstance(claimed, dict) else {}
        if profile is None:  # no price list: what was quoted is all it may charge
            return ChargeCheck(_number(billing.get("quoteUsd")), charged, ("no price list on the card",))
        sent = len(run.spec.description) + len(run.spec.input_text or "") + len(json.dumps(run.spec.input_data or {}))
        return check_charge(
            profile.price,
            profile.max_concurrent_tasks,
            profile.max_queued_tasks,
            _number(billing.get("quoteUsd")),
            charged,
            int(_number(usage.get("inputTokens"))),
            int(_number(usage.get("outputTokens"))),
            _number(usage.get("computeSeconds")),
            Metered(seconds=seconds, input_chars=sent),
        )

    def _refund(self, run: SubtaskRun, attempt: int, reserve: float, reason: str, shown: str | None = None) -> None:
        self.ledger.refund(run.id, attempt, reserve, reason)
        self.progress.publish(run, EventKind.SETTLEMENT, kind="refund", reason=shown or reason)

    async def _converse(
        self,
        run: SubtaskRun,
        client: A2AClient,
        contractor: Contractor,
        channel: Channel | None,
        remote_id: str,
        skill: str | None,
    ) -> tuple[list[Artifact], dict[str, Any]]:
        """Stream the work (or send it, to a contractor without streaming), relaying the contractor's events and
        answering its input-required from the client's user; returns the artifacts and the contractor's billing
        (its quote, its charge and the usage it claims; for an agent priced by its operator, that price)."""
        card_skill = contractor.card.skill(skill or "")
        modes = (card_skill.input_modes if card_skill else None) or contractor.card.default_input_modes
        message = work_message(run.spec, modes).model_copy(update={"message_id": remote_id})
        streaming = contractor.card.capabilities.streaming
        task_ids: dict[str, Any] = {}  # the task id and context id, once the contractor named them
        answered = False
        while True:
            if channel is not None:
                message = channel.seal_message(message)
            reply, whole = await self._exchange(
                run, client, message.model_copy(update=task_ids), skill, streaming, channel
            )
            if isinstance(reply, Message):  # a direct answer: the work is done and there is no task to ask for
                task = as_task(reply)
                break
            task_ids = {"task_id": reply.id, "context_id": reply.context_id or None}
            state = reply.status.state
            if state is TaskState.COMPLETED:  # after an input round, a stream may not repeat the earlier artifacts
                task = reply if whole and not answered else await client.get(reply.id)
                break
            if state is not TaskState.INPUT_REQUIRED:
                task = await client.get(reply.id)
                why = task.status.message.text() if task.status.message else state.value
                raise A2AError(
                    ErrorCode.INVALID_AGENT_RESPONSE, f"the contractor's task ended {state.value}: {why}"[:300]
                )
            message = await self.progress.wait_for_input(run)
            answered = True
        billing = task.metadata.get("coalesce")
        billing = billing if isinstance(billing, dict) else {}
        self.market.remember(contractor, billing.get("nextQuote"))
        if contractor.operator_price_usd is not None:  # an agent that bills nothing: its operator's price
            billing = {"quoteUsd": contractor.operator_price_usd, "costUsd": contractor.operator_price_usd}
        return (channel.open_artifacts(task.artifacts) if channel else task.artifacts), billing

    async def _exchange(
        self,
        run: SubtaskRun,
        client: A2AClient,
        message: Message,
        skill: str | None,
        streaming: bool,
        channel: Channel | None,
    ) -> tuple[Task | Message, bool]:
        """One message to the contractor: the task as its events left it, or a direct answer; and whether that task
        is whole (its artifacts and its bill all came with it: no need to ask for the task again). A stream's task is
        whole when its final event carries the contractor's bill and no artifact came in chunks."""
        metadata = {"coalesce": {"clientTaskId": run.task_id}}
        events = client.stream(message, skill, metadata) if streaming else _one(client.send(message, skill, metadata))
        task: Task | None = None
        whole = partial = False  # partial: an artifact came in chunks, or before the task
        async for event in events:
            if isinstance(event, Message):
                return event, True
            if isinstance(event, TaskArtifactUpdateEvent):
                self.progress.publish(run, EventKind.CONTRACTOR, artifact=event.artifact.name)
                partial = partial or bool(event.append) or task is None
                if task is not None:
                    task.artifacts.append(event.artifact)
                continue
            if isinstance(event, TaskStatusUpdateEvent):
                bill = (event.metadata or {}).get("coalesce")
                whole = isinstance(bill, dict) and not partial  # the bill comes with the final state
                context_id = event.context_id or (task.context_id if task else "")
                artifacts = task.artifacts if task else []
                event = Task(
                    id=event.task_id,
                    context_id=context_id,
                    status=event.status,
                    artifacts=artifacts,
                    metadata={"coalesce": bill} if isinstance(bill, dict) else {},
                )
            else:
                whole = True  # the task itself, as the contractor keeps it
            task = event
            self._named(run, task.id)
            self.progress.publish(run, EventKind.CONTRACTOR, state=task.status.state.value)
            if task.status.state is TaskState.INPUT_REQUIRED:
                self.progress.ask(run, _reveal(channel, task.status.message))
        if task is None:
            raise A2AError(ErrorCode.INVALID_AGENT_RESPONSE, "the contractor's stream ended without a task")
        return task, whole

    def _named(self, run: SubtaskRun, task_id: str) -> None:
        """The contractor's task of this hire is `task_id`: kept (to cancel it, even after a restart) and logged."""
        if run.state.a2a_task_id != task_id:
            run.state.a2a_task_id = task_id
            A2A_TASK_ID.set(task_id)
            self.progress.save(run)

    async def abandon_remote(self, contractor_id: str, remote_id: str | None, channel_token: str | None) -> None:
        """Best effort, after a restart: tell the contractor of an unsettled hire to stop (with the owner token of
        its channel, where it ran on one)."""
        contractor = self.market.registry.get(contractor_id)
        if contractor is not None and remote_id:
            await abandon(self.client(contractor, timeout_s=5, channel_token=channel_token), remote_id)


async def _one(reply: Awaitable[Reply]) -> AsyncIterator[Reply]:
    """A send's reply as a stream of one event."""
    yield await reply


async def abandon(client: A2AClient, remote_id: str | None) -> None:
    """Best effort: tell the contractor to stop (the client no longer waits for it)."""
    if remote_id is None:
        return
    with contextlib.suppress(A2AError, httpx.HTTPError, TimeoutError, ValidationError, asyncio.CancelledError):
        await asyncio.shield(asyncio.wait_for(client.cancel(remote_id), timeout=5))
