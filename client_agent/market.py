"""The market as the client sees it: the registry's active contractors, their live quotes and load, the keys
the client holds for them, and which of them may take a subtask of a given sensitivity."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import httpx

from client_agent.registry import Contractor, Registry
from shared.a2a.cards import CardError

log = logging.getLogger(__name__)

SENSITIVE = frozenset({"confidential", "restricted"})  # never in plaintext, only to signed cards
Quote = tuple[float, dict[str, Any]]  # (price in USD, load)


class Market:
    def __init__(
        self,
        registry: Registry,
        http: httpx.AsyncClient,
        contractor_tokens: dict[str, str],
        quote_timeout_s: float,
        quote_reuse_s: float = 0.0,
    ) -> None:
        """`quote_reuse_s`: how long a quote that came with a hire's final event stands in for a live one."""
        self.registry = registry
        self.http = http
        self.contractor_tokens = contractor_tokens
        self.quote_timeout_s = quote_timeout_s
        self.quote_reuse_s = quote_reuse_s
        self._asking: dict[tuple[str, float], asyncio.Future[Quote | None]] = {}  # quotes on their way
        self._given: dict[str, tuple[float, Quote]] = {}  # by contractor: the quote its last hire ended with, and when

    def auth_headers(self, contractor: Contractor) -> dict[str, str]:
        token = self.contractor_tokens.get(contractor.card_url)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def refusal(self, contractor: Contractor, sensitivity: str) -> str | None:
        """Why this contractor may not get a subtask of this sensitivity, or None."""
        if contractor.requires_auth and contractor.card_url not in self.contractor_tokens:
            return "it requires an API key the client does not have"
        if sensitivity in SENSITIVE and contractor.signing_key is None:
            return f"its card is unsigned; {sensitivity} data goes to signed cards only"
        if sensitivity in SENSITIVE and contractor.channel is None:
            return f"it offers no end-to-end channel; {sensitivity} data never travels in plaintext"
        return None

    async def quote(self, contractor: Contractor, complexity: float = 1.0) -> Quote | None:
        """The contractor's live price (eq. 7, its `/v1/quote`) and load; None when it does not answer. An agent
        priced by its operator is quoted that price, its load unknown. Decisions that want a contractor's quote
        while one is on its way share its answer (asked after they began, it is as live as theirs would be)."""
        if contractor.operator_price_usd is not None:
            return contractor.operator_price_usd, {}
        given = self._given.get(contractor.id) if complexity == 1.0 else None
        if given is not None and time.monotonic() - given[0] < self.quote_reuse_s:
            return given[1]
        key = (contractor.id, complexity)
        asking = self._asking.get(key)
        if asking is None:
            asking = self._asking[key] = asyncio.ensure_future(self._ask(contractor, complexity))
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(asking)  # one decision canceled does not cancel the others' quote

    def remember(self, contractor: Contractor, quote: Any) -> None:
        """Keep the quote a contractor's hire ended with (its `nextQuote`: what `/v1/quote` would have answered then,
        for one more task of complexity 1), to decide the next hire without asking; anything else is ignored."""
        if not isinstance(quote, dict) or not isinstance(quote.get("load"), dict):
            return
        price = quote.get("priceUsd")
        if isinstance(price, int | float) and not isinstance(price, bool) and math.isfinite(price) and price >= 0:
            self._given[contractor.id] = (time.monotonic(), (float(price), quote["load"]))

    async def _ask(self, contractor: Contractor, complexity: float) -> Quote | None:
        try:
            response = await self.http.get(
                contractor.endpoint.url.rstrip("/") + "/v1/quote",
                params={"complexity": complexity},
                timeout=self.quote_timeout_s,
                headers=self.auth_headers(contractor),
            )
            body = response.json()
            return float(body["priceUsd"]), body.get("load") or {}
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def quotes(self, contractors: list[Contractor]) -> list[Quote | None]:
        return list(await asyncio.gather(*(self.quote(c) for c in contractors)))

    async def register_at_start(self, card_urls: list[str], tries: int = 60, pause_s: float = 2.0) -> None:
        """Register the contractors named at start, retrying while they boot."""
        pending = list(card_urls)
        for _ in range(tries):
            for card_url in list(pending):
                try:
                    await self.registry.register(card_url)
                    pending.remove(card_url)
                except CardError as error:
                    log.info("contractor %s not ready: %s", card_url, error)
            if not pending:
                return
            await asyncio.sleep(pause_s)
        for card_url in pending:
            log.warning("contractor %s never answered; not registered", card_url)


def load_share(load: dict[str, Any]) -> float:
    """How full a contractor is, in [0, 1], from the load its quote reports."""
    capacity = (load.get("maxConcurrent") or 0) + (load.get("maxQueued") or 0)
    return min(1.0, ((load.get("running") or 0) + (load.get("queued") or 0)) / capacity) if capacity else 0.25
