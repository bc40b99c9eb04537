"""The market's view: `/v1/market` (contractors, quotes, track record), `/v1/ledger`, `/v1/stats` and
`/v1/events` (every task's events, live)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse

from client_agent.api.deps import ERRORS, MAX_POSITION, Client
from client_agent.stats import market_stats

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/market")
async def market(client: Client) -> dict[str, Any]:
    return {"strategy": client.config.strategy, "contractors": await client.market_view()}


@router.get("/ledger")
async def ledger(
    client: Client,
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_POSITION),
) -> dict[str, Any]:
    return client.ledger.view(limit, offset)


@router.get("/stats")
async def stats(client: Client) -> dict[str, Any]:
    return market_stats(client.store, client.ledger)


@router.get("/events")
async def market_events(client: Client) -> EventSourceResponse:
    """Every task's events as they happen (live only; the dashboard's feed)."""
    stream = client.events.stream_market()

    async def framed() -> AsyncIterator[dict[str, str]]:
        async for event in stream:
            yield {"event": event["kind"], "data": json.dumps(event)}

    return EventSourceResponse(framed(), ping=15, send_timeout=30)
