"""Assembling a client service from settings: its own workers, the planner and judge LLM, the embedder."""

from __future__ import annotations

from collections.abc import Collection

from client_agent.gold import GoldItem
from client_agent.service import ClientConfig, ClientService
from client_agent.storage import Store
from shared.economics.skills import CachedEmbedder, Embedder, default_embedder
from shared.workers.base import Worker
from shared.workers.factory import build_workers
from shared.workers.llm import LLMSettings, OpenAIChatWorker

# What the client can do itself, and with which worker (the same workers contractors use). `llm` serves
# subtasks that name no skill.
OWN_SKILLS = {
    "financial-document-analysis": "llm",
    "sentiment-analysis": "llm",
    "llm": "llm",
    "risk-assessment": "var",
    "portfolio-optimisation": "portfolio",
    "similarity-search": "similarity",
}


def local_workers(llm: LLMSettings | None, skills: Collection[str] | None = None) -> dict[str, Worker]:
    """The client's own workers: `skills` of OWN_SKILLS (all by default); LLM skills only with an LLM."""
    unknown = set(skills or ()) - set(OWN_SKILLS)
    if unknown:
        raise ValueError(f"no local worker for {', '.join(sorted(unknown))}; known: {', '.join(OWN_SKILLS)}")
    kinds = {
        skill: kind
        for skill, kind in OWN_SKILLS.items()
        if (kind != "llm" or llm is not None) and (skills is None or skill in skills)
    }
    return build_workers(kinds, openai_settings=llm)


def build_service(
    db_url: str,
    llm: LLMSettings | None,
    config: ClientConfig | None = None,
    embedder: Embedder | None = None,
    contractors: list[str] | None = None,
    skills: Collection[str] | None = None,
    judge: LLMSettings | None = None,
    gold: list[GoldItem] | None = None,
) -> ClientService:
    """`skills`: what the client can do itself (all of OWN_SKILLS by default). `judge`: a model stronger than the
    workers it judges, or None (the client's own model plans, but does not judge). `gold`: items for probes."""
    workers = local_workers(llm, skills)
    language_model = workers.get("llm")
    assert language_model is None or isinstance(language_model, OpenAIChatWorker)
    return ClientService(
        Store(db_url),
        CachedEmbedder(embedder or default_embedder()),
        workers,
        config,
        planner_llm=language_model,
        judge=OpenAIChatWorker(judge) if judge is not None else None,
        initial_contractors=contractors or [],
        gold=gold,
    )
