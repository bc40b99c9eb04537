"""Which worker serves which kind of work: one worker per skill, built from worker kinds."""

from __future__ import annotations

from typing import Any

from shared.workers.base import EchoWorker, Worker
from shared.workers.compute import COMPUTE_FUNCTIONS, ComputeWorker
from shared.workers.llm import AnthropicWorker, LLMSettings, OpenAIChatWorker
from shared.workers.local_model import LocalLLMServer

LLM_KINDS = frozenset({"llm", "anthropic"})


def embedded_llm_settings(server: LocalLLMServer, **overrides: Any) -> LLMSettings:
    """The embedded llama.cpp server's settings (it takes a JSON schema in `response_format.schema`)."""
    return LLMSettings(model=server.model, base_url=server.base_url, schema_style="llama.cpp", **overrides)


def build_workers(
    kinds: dict[str, str],
    openai_settings: LLMSettings | None = None,
    anthropic_settings: LLMSettings | None = None,
) -> dict[str, Worker]:
    """One worker per skill. LLM workers of the same kind share one client."""
    shared: dict[str, Worker] = {}

    def make(kind: str) -> Worker:
        if kind in shared:
            return shared[kind]
        worker: Worker
        if kind == "echo":
            worker = EchoWorker()
        elif kind in COMPUTE_FUNCTIONS:
            worker = ComputeWorker(kind, COMPUTE_FUNCTIONS[kind])
        elif kind == "llm":
            if openai_settings is None:
                raise ValueError("a skill needs an LLM, but no OpenAI-compatible endpoint is configured")
            worker = OpenAIChatWorker(openai_settings)
        elif kind == "anthropic":
            if anthropic_settings is None:
                raise ValueError(
                    "a skill needs Anthropic, but ANTHROPIC_API_KEY / COALESCE_ANTHROPIC_BASE_URL is unset"
                )
            worker = AnthropicWorker(anthropic_settings)
        else:
            raise ValueError(f"unknown worker kind {kind!r}")
        shared[kind] = worker
        return worker

    return {skill_id: make(kind) for skill_id, kind in kinds.items()}
