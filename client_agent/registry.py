"""Discovery: the registry of contractors (persisted), safe card fetching, periodic refresh, dead-contractor
removal, and the skill index the candidates of every subtask come from."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from client_agent.storage import Store
from shared.protocol import AgentCard
from shared.skills import SkillIndex, skill_profiles

log = logging.getLogger(__name__)

MAX_CARD_BYTES = 256 * 1024
MAX_REDIRECTS = 3
CARD_PATHS = (".well-known/agent-card.json", ".well-known/agent.json")


class CardError(Exception):
    """The card could not be fetched or is not a valid Agent Card; the message says why."""


def contractor_id(card_url: str) -> str:
    return hashlib.sha256(card_url.encode()).hexdigest()[:16]


def card_locations(card_url: str) -> list[str]:
    """A card URL, or a base URL whose well-known paths hold the card."""
    if card_url.endswith(".json"):
        return [card_url]
    base = card_url if card_url.endswith("/") else card_url + "/"
    return [base + path for path in CARD_PATHS]


async def fetch_card(http: httpx.AsyncClient, card_url: str, timeout_s: float = 5.0) -> AgentCard:
    """Fetch and validate a card: http(s) only, bounded size, a timeout, at most 3 redirects."""
    problems = []
    for url in card_locations(card_url):
        try:
            async with http.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
                if response.status_code != 200:
                    problems.append(f"{url}: HTTP {response.status_code}")
                    continue
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_CARD_BYTES:
                        raise CardError(f"{url}: card larger than {MAX_CARD_BYTES} bytes")
            return AgentCard.model_validate_json(bytes(body))
        except httpx.TooManyRedirects:
            raise CardError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
        except httpx.HTTPError as error:
            problems.append(f"{url}: {type(error).__name__}")
        except ValidationError as error:
            raise CardError(f"{url}: not a valid agent card: {error.errors()[0]['msg']}") from None
    raise CardError("; ".join(problems) or "no card found")


@dataclass
class Contractor:
    id: str
    card_url: str
    card: AgentCard
    status: str
    failures: int


class Registry:
    def __init__(self, store: Store, index: SkillIndex, http: httpx.AsyncClient, dead_after_failures: int = 3):
        self.store = store
        self.index = index
        self.http = http
        self.dead_after_failures = dead_after_failures
        self._active: dict[str, Contractor] = {}
        for stored in store.contractors():
            self._load(stored)
        self.index.add([p for c in self._active.values() for p in skill_profiles(c.id, c.card)])

    def _load(self, stored: dict[str, Any]) -> Contractor:
        contractor = Contractor(
            stored["id"],
            stored["card_url"],
            AgentCard.model_validate(stored["card"]),
            stored["status"],
            stored["failures"],
        )
        if contractor.status == "active":
            self._active[contractor.id] = contractor
        else:
            self._active.pop(contractor.id, None)
        return contractor

    async def register(self, card_url: str) -> tuple[Contractor, bool]:
        card = await fetch_card(self.http, card_url)
        ident = contractor_id(card_url)
        created = self.store.upsert_contractor(ident, card_url, card.name, card.wire())
        contractor = self._load(self.store.contractor(ident) or {})
        self.index.add(skill_profiles(ident, card))
        return contractor, created

    def remove(self, ident: str) -> bool:
        if self.store.contractor(ident) is None:
            return False
        self.store.set_contractor_status(ident, "removed")
        self._active.pop(ident, None)
        self.index.remove(ident)
        return True

    def active(self) -> list[Contractor]:
        return list(self._active.values())

    def get(self, ident: str) -> Contractor | None:
        return self._active.get(ident)

    def all(self) -> list[dict[str, Any]]:
        return self.store.contractors(include_removed=True)

    async def refresh(self) -> None:
        """Fetch every registered card again; a contractor unreachable `dead_after_failures` times in a row is
        taken out of matching (status `unreachable`) until a later refresh reaches it again."""
        for stored in self.store.contractors():
            try:
                card = await fetch_card(self.http, stored["card_url"])
            except CardError as error:
                failures = stored["failures"] + 1
                status = "unreachable" if failures >= self.dead_after_failures else stored["status"]
                self.store.set_contractor_status(stored["id"], status, failures)
                if status == "unreachable" and stored["id"] in self._active:
                    log.warning("contractor %s unreachable (%s): out of the market", stored["id"], error)
                    self._active.pop(stored["id"], None)
                    self.index.remove(stored["id"])
                continue
            self.store.upsert_contractor(stored["id"], stored["card_url"], card.name, card.wire())
            if stored["status"] != "active" or stored["id"] not in self._active:
                self._active[stored["id"]] = Contractor(stored["id"], stored["card_url"], card, "active", 0)
                self.index.add(skill_profiles(stored["id"], card))
            else:
                self._active[stored["id"]].card = card

    async def refresh_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("registry refresh failed")
