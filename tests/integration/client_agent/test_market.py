"""The market as the client sees it, against a real contractor: decisions that want a quote while one is on its way
share its answer (one request), and the next decision asks again (an asked quote is never kept); a hire ends with
the contractor's next quote, which stands for a live one for `quote_reuse_s`."""

from __future__ import annotations

import asyncio
import re

import httpx

from client_agent.market import Market
from client_agent.registry import Registry
from client_agent.storage import Store
from shared.a2a.cards import FetchPolicy
from shared.economics.skills import CachedEmbedder, SkillIndex
from tests.conftest import RISK, sse_events, subtask


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


def test_a_quote_a_hire_ended_with_stands_for_a_live_one_for_a_while(tmp_path, embedder, cpu_contractor: str):
    async def decide() -> list:
        async with httpx.AsyncClient(timeout=10) as http:
            store = Store(f"sqlite:///{tmp_path}/client.db")
            registry = Registry(store, SkillIndex(CachedEmbedder(embedder)), http, FetchPolicy(allow_private=True))
            contractor, _ = await registry.register(cpu_contractor)
            market = Market(registry, http, {}, quote_timeout_s=5, quote_reuse_s=0.3)
            market.remember(contractor, {"priceUsd": 0.125, "load": {"running": 3}})
            kept = [await market.quote(contractor), await market.quote(contractor, complexity=2.0)]
            await asyncio.sleep(0.35)
            market.remember(contractor, {"priceUsd": float("nan"), "load": {}})  # not a quote: ignored
            market.remember(contractor, {"priceUsd": -1, "load": {}})
            return [*kept, await market.quote(contractor)]

    before = quotes_answered(cpu_contractor)
    remembered, other_complexity, aged = asyncio.run(decide())
    assert remembered == (0.125, {"running": 3})
    assert other_complexity is not None and aged is not None and aged[0] != 0.125
    assert quotes_answered(cpu_contractor) - before == 2  # the other complexity, and the one after 0.3 s


def test_a_contractor_ends_a_streamed_task_with_its_next_quote(cpu_contractor: str):
    message = {"role": "user", "parts": [{"type": "data", "data": RISK}]}
    events = sse_events(cpu_contractor, "tasks/sendSubscribe", {"id": "next-quote", "message": message})
    final = events[-1]["result"]
    assert final["final"] and final["status"]["state"] == "completed"
    next_quote = final["metadata"]["coalesce"]["nextQuote"]
    idle = httpx.get(cpu_contractor + "v1/quote", timeout=10).json()
    assert next_quote["load"]["running"] == 0  # the task that ended gave up its place
    assert next_quote == idle  # what asking would have answered, with nothing running


def test_the_client_decides_its_next_hire_on_the_quote_the_last_one_ended_with(
    tmp_path, make_client, cpu_contractor: str
):
    def run_three(**config) -> float:
        client = make_client(own_skills=set(), db=f"sqlite:///{tmp_path}/{len(config)}.db", **config)
        client.register(cpu_contractor)
        before = quotes_answered(cpu_contractor)
        for _ in range(3):
            body = {"description": "Risk", "subtasks": [subtask("risk-assessment", "value at risk", input_data=RISK)]}
            assert client.run(body)["status"] == "completed"
        return quotes_answered(cpu_contractor) - before

    assert run_three() == 1  # asked for the first hire only
    assert run_three(quote_reuse_s=0) == 3
