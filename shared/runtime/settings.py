"""Settings from the environment: the one place that reads it. Every `COALESCE_*` variable is read here."""

from __future__ import annotations

import os

from shared.workers.llm import LLMSettings


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
