"""Which worker serves which skill, and how the LLM workers reach their models."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contractor_agent import compute
from contractor_agent.workers import (
    AnthropicWorker,
    ComputeWorker,
    EchoWorker,
    LLMSettings,
    OpenAIChatWorker,
    Worker,
)
from shared.local_llm import LocalLLMServer
from shared.protocol import AgentCard

LLM_KINDS = frozenset({"llm", "anthropic"})


def load_card(path: str | Path) -> AgentCard:
    """Read and validate a card file; a clear ValueError when it is not a valid card."""
    try:
        return AgentCard.model_validate(json.loads(Path(path).read_text()))
    except (OSError, ValueError, ValidationError) as error:
        raise ValueError(f"{path}: not a valid agent card: {error}") from error


def worker_kinds(card: AgentCard, override: str | None = None) -> dict[str, str]:
    """skill id -> worker kind: the card's COALESCE block says, `llm` by default, `override` for all."""
    assigned = card.coalesce.workers if card.coalesce else {}
    return {skill.id: override or assigned.get(skill.id, "llm") for skill in card.skills}


def openai_settings_from_env() -> LLMSettings | None:
    """An OpenAI-compatible endpoint from COALESCE_LLM_BASE_URL / COALESCE_LLM_MODEL (or OpenAI's cloud when
    only OPENAI_API_KEY is set); None means: use the embedded local model."""
    base_url = os.environ.get("COALESCE_LLM_BASE_URL")
    api_key = os.environ.get("COALESCE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if not base_url and not api_key:
        return None
    return LLMSettings(
        model=os.environ.get("COALESCE_LLM_MODEL", "gpt-4o-mini"),
        base_url=base_url,
        api_key=api_key,
        schema_style=os.environ.get("COALESCE_LLM_SCHEMA_STYLE", "json_schema"),
    )


def anthropic_settings_from_env() -> LLMSettings | None:
    api_key = os.environ.get("ANTHROPIC_API_KEY")
    base_url = os.environ.get("COALESCE_ANTHROPIC_BASE_URL")
    if not api_key and not base_url:
        return None
    model = os.environ.get("COALESCE_ANTHROPIC_MODEL", "claude-3-5-haiku-latest")
    return LLMSettings(model=model, base_url=base_url, api_key=api_key)


def embedded_llm_settings(server: LocalLLMServer, **overrides: Any) -> LLMSettings:
    """The embedded llama.cpp server's settings (it takes a JSON schema in `response_format.schema`)."""
    return LLMSettings(model=server.model, base_url=server.base_url, schema_style="llama.cpp", **overrides)


COMPUTE_FUNCTIONS: dict[str, Callable] = {
    "var": compute.value_at_risk,
    "portfolio": compute.optimise_portfolio,
    "similarity": compute.similarity_search,
}


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
