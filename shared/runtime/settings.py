"""Settings from the environment: the one place that reads it. Every `COALESCE_*` variable is read here."""

from __future__ import annotations

import os
from pathlib import Path

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


def completion_settings_from_env() -> LLMSettings | None:
    """A base model's OpenAI-compatible completion endpoint (COALESCE_COMPLETION_BASE_URL and
    COALESCE_COMPLETION_MODEL) for few-shot workers; None means: use the embedded Gemma 3 270M."""
    base_url = os.environ.get("COALESCE_COMPLETION_BASE_URL")
    if not base_url:
        return None
    return LLMSettings(
        model=os.environ.get("COALESCE_COMPLETION_MODEL", "gemma3-270m"),
        base_url=base_url,
        api_key=os.environ.get("COALESCE_COMPLETION_API_KEY"),
        max_tokens=64,
        temperature=0.0,
    )


def anthropic_settings_from_env() -> LLMSettings | None:
    api_key = os.environ.get("ANTHROPIC_API_KEY")
    base_url = os.environ.get("COALESCE_ANTHROPIC_BASE_URL")
    if not api_key and not base_url:
        return None
    model = os.environ.get("COALESCE_ANTHROPIC_MODEL", "claude-3-5-haiku-latest")
    return LLMSettings(model=model, base_url=base_url, api_key=api_key)


def judge_settings_from_env() -> LLMSettings | None:
    """A judge model (COALESCE_JUDGE_BASE_URL / COALESCE_JUDGE_MODEL / COALESCE_JUDGE_API_KEY): configure one only
    when it is stronger than the workers it judges. None: no judge (the embedded model is never one)."""
    base_url = os.environ.get("COALESCE_JUDGE_BASE_URL")
    api_key = os.environ.get("COALESCE_JUDGE_API_KEY")
    model = os.environ.get("COALESCE_JUDGE_MODEL")
    if not model or not (base_url or api_key):
        return None
    return LLMSettings(model=model, base_url=base_url, api_key=api_key)


def api_keys_from_env() -> list[str]:
    """COALESCE_API_KEYS, comma-separated: a key on a command line shows in the process list, so the environment
    is the better place."""
    return [k.strip() for k in os.environ.get("COALESCE_API_KEYS", "").split(",") if k.strip()]


def contractor_tokens_from_env() -> dict[str, str]:
    """COALESCE_CONTRACTOR_TOKENS: `card-url=key` pairs, comma-separated: the keys of secured contractors."""
    pairs = [p.rsplit("=", 1) for p in os.environ.get("COALESCE_CONTRACTOR_TOKENS", "").split(",") if "=" in p]
    return {url.strip(): token.strip() for url, token in pairs}


def local_model_override() -> str | None:
    """COALESCE_LOCAL_MODEL: a GGUF file to serve instead of the embedded model."""
    return os.environ.get("COALESCE_LOCAL_MODEL") or None


def compute_backend() -> str:
    """COALESCE_COMPUTE_BACKEND: numpy, torch or auto (torch with CUDA when a GPU is present)."""
    return os.environ.get("COALESCE_COMPUTE_BACKEND", "auto")


def embeddings_onnx_dir() -> Path | None:
    """`COALESCE_EMBEDDINGS_ONNX`: a folder with the skill-matching model exported for ONNX Runtime (the lean
    images set it); unset: sentence-transformers on torch."""
    value = os.environ.get("COALESCE_EMBEDDINGS_ONNX")
    return Path(value) if value else None


def nameserver_from_env() -> str | None:
    """COALESCE_NAMESERVER (`host:port`): where the services look names up (cards, contractors, webhooks); None:
    the system's resolver."""
    return os.environ.get("COALESCE_NAMESERVER") or None
