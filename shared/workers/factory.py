"""Which worker serves which kind of work: one worker per skill, built from worker kinds."""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.workers.base import EchoWorker, Worker
from shared.workers.compute import COMPUTE_FUNCTIONS, ComputeWorker
from shared.workers.extraction import DocumentExtractorWorker
from shared.workers.lexicon import LexiconSentimentWorker
from shared.workers.llm import AnthropicWorker, LLMSettings, OpenAIChatWorker
from shared.workers.local_model import LocalLLMServer
from shared.workers.tiers import FewShotCompletionWorker, VotingWorker, sloppy_settings

CHAT_KINDS = frozenset({"llm", "llm-vote3", "llm-sloppy"})  # on the OpenAI-compatible chat endpoint
COMPLETION_KINDS = frozenset({"few-shot"})  # on a base model's completion endpoint
LLM_KINDS = CHAT_KINDS | COMPLETION_KINDS | {"anthropic"}
PREMIUM_TEMPERATURE = 0.7  # the premium tier's samples differ, so that their vote means something


def embedded_llm_settings(server: LocalLLMServer, **overrides: Any) -> LLMSettings:
    """The embedded llama.cpp server's settings (it takes a JSON schema in `response_format.schema`)."""
    return LLMSettings(model=server.model, base_url=server.base_url, schema_style="llama.cpp", **overrides)


def _chat_worker(kind: str, settings: LLMSettings | None) -> Worker:
    if settings is None:
        raise ValueError("a skill needs an LLM, but no OpenAI-compatible endpoint is configured")
    if kind == "llm-vote3":
        return VotingWorker(OpenAIChatWorker(dataclasses.replace(settings, temperature=PREMIUM_TEMPERATURE)), k=3)
    if kind == "llm-sloppy":
        return OpenAIChatWorker(sloppy_settings(settings))
    return OpenAIChatWorker(settings)


def build_workers(
    kinds: dict[str, str],
    openai_settings: LLMSettings | None = None,
    anthropic_settings: LLMSettings | None = None,
    completion_settings: LLMSettings | None = None,
) -> dict[str, Worker]:
    """One worker per skill. LLM workers of the same kind share one client."""
    shared: dict[str, Worker] = {}

    def make(kind: str) -> Worker:
        if kind in shared:
            return shared[kind]
        worker: Worker
        if kind == "echo":
            worker = EchoWorker()
        elif kind == "lexicon":
            worker = LexiconSentimentWorker()
        elif kind == "extractor":
            worker = DocumentExtractorWorker()
        elif kind in COMPUTE_FUNCTIONS:
            worker = ComputeWorker(kind, COMPUTE_FUNCTIONS[kind])
        elif kind in CHAT_KINDS:
            worker = _chat_worker(kind, openai_settings)
        elif kind == "few-shot":
            if completion_settings is None:
                raise ValueError("a skill needs a base model, but no completion endpoint is configured")
            worker = FewShotCompletionWorker(completion_settings)
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
