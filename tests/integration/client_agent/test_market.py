"""The market as the client sees it, against a real contractor: decisions that want a quote while one is on its way
share its answer (one request), and the next decision asks again (a quote is never kept)."""

from __future__ import annotations

import asyncio
import re

import httpx

from client_agent.market import Market
from client_agent.registry import Registry
from client_agent.storage import Store
from shared.a2a.cards import FetchPolicy
from shared.economics.skills import CachedEmbedder, SkillIndex


def quotes_answered(contractor_url: str) -> float:
    metrics = httpx.get(contractor_url + "metrics", timeout=10).text
    found = re.findall(r'_http_requests_total\{method="GET",route="/v1/quote",status="200"\} (\S+)', metrics)
    return float(found[0]) if found else 0.0


def test_quotes_on_their_way_are_shared_and_never_kept(tmp_path, embedder, cpu_contractor: str):
    async def decide() -> tuple[list, list]:
        async with httpx.AsyncClient(timeout=10) as http:
            store = Store(f"sqlite:///{tmp_path}/client.db")
            registry = Registry(store, SkillIndex(CachedEmbedder(embedder)), http, FetchPolicy(allow_private=True))
            contractor, _ = await registry.register(cpu_contractor)
            market = Market(registry, http, {}, quote_timeout_s=5)
            together = await asyncio.gather(*(market.quote(contractor) for _ in range(8)))
            return together, [await market.quote(contractor)]

    together, later = asyncio.run(decide())
    assert len({q[0] for q in together if q}) == 1 and all(together)  # one answer for all eight
    assert later[0] is not None
    assert quotes_answered(cpu_contractor) == 2.0  # one for the eight at once, one for the decision after them
