"""The market's view: `/v1/market` (contractors, quotes, track record), `/v1/ledger`, `/v1/stats` and
`/v1/events` (every task's events, live)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse

from client_agent.api.deps import ERRORS, MAX_POSITION, Client
from client_agent.errors import Invalid
from client_agent.gold import GoldItems
from client_agent.stats import market_stats

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/market")
async def market(client: Client) -> dict[str, Any]:
    """Every agent (the client's own worker as `local`) with its quote, load and, per skill, its competence: the
    quality estimate, its 90 % interval and the evidence behind it (probes, checks, agreement, feedback)."""
    return {
        "strategy": client.config.strategy,
        "local": client.decider.local_view(),
        "contractors": await client.market_view(),
        "gold": client.gold.counts(),
        "spend": client.quality.spend.wire(),
    }


@router.get("/gold")
async def gold(client: Client) -> dict[str, Any]:
    """The gold bank: known-answer items per skill that probes draw from."""
    return {"bySkill": client.gold.counts(), "total": client.gold.size()}


@router.post("/gold", status_code=201)
async def add_gold(body: GoldItems, client: Client) -> dict[str, Any]:
    """Add known-answer items (an item id already in the bank is replaced)."""
    try:
        return client.add_gold(body.items)
    except ValueError as error:
        raise Invalid(str(error)) from None


@router.get("/ledger")
async def ledger(
    client: Client,
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_POSITION),
) -> dict[str, Any]:
    return client.ledger.view(limit, offset)


@router.get("/stats")
async def stats(client: Client) -> dict[str, Any]:
    return market_stats(client.store, client.ledger, client.quality.spend)


@router.get("/events")
async def market_events(client: Client) -> EventSourceResponse:
    """Every task's events as they happen (live only; the dashboard's feed)."""
    stream = client.events.stream_market()

    async def framed() -> AsyncIterator[dict[str, str]]:
        async for event in stream:
            yield {"event": event["kind"], "data": json.dumps(event)}

    return EventSourceResponse(framed(), ping=15, send_timeout=30)
