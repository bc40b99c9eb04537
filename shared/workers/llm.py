"""Language-model workers: chat completions through the `openai` SDK (OpenAI, vLLM, llama.cpp, Ollama) and the
`anthropic` SDK, with answers constrained to a label set where the client asks for one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from shared.a2a.models import AgentSkill
from shared.workers.base import Usage, WorkerError, WorkRequest, WorkResult, text_artifact


def _chat_turns(request: WorkRequest) -> list[tuple[str, str]]:
    """The conversation as (role, text) turns, data parts rendered as JSON text."""
    turns = []
    for message in request.messages:
        pieces = [p.text or "" for p in message.parts if p.kind == "text"]
        pieces += [json.dumps(p.data) for p in message.parts if p.kind == "data"]
        text = "\n".join(piece for piece in pieces if piece)
        if text:
            turns.append(("user" if message.role == "user" else "assistant", text))
    if not turns or turns[-1][0] != "user":
        raise WorkerError("the task has no text to work on")
    return turns


def _system_prompt(skill: AgentSkill) -> str:
    return f"You are a contractor agent providing the skill '{skill.name}': {skill.description} Answer concisely."


def answer_labels(request: WorkRequest) -> list[str] | None:
    """The labels the answer must be one of, when the client says so (message metadata
    `{"coalesce": {"answerOneOf": [...]}}`): a classification."""
    for message in reversed(request.messages):
        block = (message.metadata or {}).get("coalesce") if message.role == "user" else None
        labels = block.get("answerOneOf") if isinstance(block, dict) else None
        if isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
            return labels[:50]
    return None


def label_response_format(labels: list[str], style: str) -> dict[str, Any] | None:
    """Constrained decoding to one of `labels`: OpenAI's (and vLLM's) `json_schema`, or llama.cpp's
    `json_object` with a schema; None for a server that has neither."""
    schema = {"type": "object", "properties": {"answer": {"enum": labels}}, "required": ["answer"]}
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "label", "schema": schema, "strict": True}}
    if style == "llama.cpp":
        return {"type": "json_object", "schema": schema}
    return None


def chosen_label(text: str, labels: list[str]) -> str:
    """The label of a constrained answer (`{"answer": label}`), or the text as it came."""
    try:
        answer = json.loads(text).get("answer")
    except (ValueError, AttributeError):
        return text
    return answer if answer in labels else text


@dataclass
class LLMSettings:
    """How to reach a language model: an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama) or Anthropic."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    max_tokens: int = 256
    temperature: float = 0.2
    timeout_s: float = 120.0
    schema_style: str = "json_schema"  # how the server takes a JSON schema: json_schema, llama.cpp or none


class HostedModelWorker:
    """What the SDK workers share: one SDK client per worker, built from the settings, closed with the worker."""

    def __init__(self, settings: LLMSettings, client_class: Any) -> None:
        self.settings = settings
        self._client = client_class(
            base_url=settings.base_url,
            api_key=settings.api_key or "not-needed",
            timeout=settings.timeout_s,
            max_retries=1,
        )

    async def close(self) -> None:
        await self._client.close()


class OpenAIChatWorker(HostedModelWorker):
    """Chat completions through the `openai` SDK; streams, so that a cancelled task stops the generation."""

    name = "llm"

    def __init__(self, settings: LLMSettings) -> None:
        from openai import AsyncOpenAI

        super().__init__(settings, AsyncOpenAI)

    async def run(self, request: WorkRequest) -> WorkResult:
        from openai import OpenAIError

        messages: list[dict[str, str]] = [{"role": "system", "content": _system_prompt(request.skill)}]
        messages += [{"role": role, "content": text} for role, text in _chat_turns(request)]
        labels = answer_labels(request)
        response_format = label_response_format(labels, self.settings.schema_style) if labels else None
        extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
        started = time.perf_counter()
        pieces: list[str] = []
        usage = Usage()
        try:
            stream = await self._client.chat.completions.create(
                model=self.settings.model,
                messages=messages,
                max_tokens=self.settings.max_tokens,
                temperature=self.settings.temperature,
                stream=True,
                stream_options={"include_usage": True},
                **extra,
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage.input_tokens = chunk.usage.prompt_tokens
                        usage.output_tokens = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        if choice.delta.content:
                            pieces.append(choice.delta.content)
                            if chunk.usage is None:
                                usage.output_tokens += 1  # one streamed chunk is one token
        except OpenAIError as error:
            raise WorkerError(f"LLM call failed: {error}") from error
        usage.compute_seconds = time.perf_counter() - started
        if usage.input_tokens == 0:
            # the server sent no usage with the stream (llama.cpp): estimate the prompt, ~4 characters a token
            usage.input_tokens = sum(len(m["content"]) for m in messages) // 4 + 1
            usage.estimated = True
        text = "".join(pieces).strip()
        if not text:
            raise WorkerError("the LLM returned an empty answer")
        if labels and response_format:
            text = chosen_label(text, labels)
        return WorkResult(artifacts=[text_artifact("answer", text)], usage=usage, summary="answered")


class AnthropicWorker(HostedModelWorker):
    """Messages through the `anthropic` SDK."""

    name = "anthropic"

    def __init__(self, settings: LLMSettings) -> None:
        from anthropic import AsyncAnthropic

        super().__init__(settings, AsyncAnthropic)

    async def run(self, request: WorkRequest) -> WorkResult:
        from anthropic import AnthropicError

        started = time.perf_counter()
        labels = answer_labels(request)
        system = _system_prompt(request.skill) + (
            f" Answer with exactly one of: {', '.join(labels)}." if labels else ""
        )
        try:
            response = await self._client.messages.create(
                model=self.settings.model,
                max_tokens=self.settings.max_tokens,
                system=system,
                messages=[{"role": role, "content": text} for role, text in _chat_turns(request)],
            )
        except AnthropicError as error:
            raise WorkerError(f"Anthropic call failed: {error}") from error
        text = "".join(block.text for block in response.content if block.type == "text").strip()
        if not text:
            raise WorkerError("the model returned an empty answer")
        usage = Usage(
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            compute_seconds=time.perf_counter() - started,
        )
        return WorkResult(artifacts=[text_artifact("answer", text)], usage=usage, summary="answered")
