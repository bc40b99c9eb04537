"""Discovery: the registry of contractors (persisted), safe card fetching, periodic refresh, dead-contractor
removal, and the skill index the candidates of every subtask come from."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import ValidationError

from client_agent.storage import Store
from shared.attestation import proven_skills
from shared.card_signing import CardTrustError, key_to_pin
from shared.net_policy import AddressRefused, check_url
from shared.protocol import AgentCard
from shared.secure_channel import ChannelOffer, channel_offer
from shared.skills import SkillIndex, SkillProfile, skill_profiles

log = logging.getLogger(__name__)

MAX_CARD_BYTES = 256 * 1024
MAX_REDIRECTS = 3
CARD_PATHS = (".well-known/agent-card.json", ".well-known/agent.json")


class CardError(Exception):
    """The card could not be fetched, is not a valid Agent Card, or cannot be trusted; the message says why."""


class _NoCardHere(Exception):
    """Nothing at this location (try the next well-known path)."""


@dataclass(frozen=True)
class FetchPolicy:
    """How cards are fetched: http(s) only, bounded size, timeouts, bounded redirects, and (for a public
    deployment) no private, loopback or link-local addresses, checked at every hop."""

    allow_private: bool = False
    max_bytes: int = MAX_CARD_BYTES
    timeout_s: float = 5.0
    max_redirects: int = MAX_REDIRECTS


def contractor_id(card_url: str) -> str:
    return hashlib.sha256(card_url.encode()).hexdigest()[:16]


def card_locations(card_url: str) -> list[str]:
    """A card URL, or a base URL whose well-known paths hold the card."""
    if card_url.endswith(".json"):
        return [card_url]
    base = card_url if card_url.endswith("/") else card_url + "/"
    return [base + path for path in CARD_PATHS]


async def check_address(url: str, policy: FetchPolicy) -> None:
    """Raises CardError for a URL that is not http(s), or (unless allowed) resolves to a non-public address."""
    try:
        await check_url(url, policy.allow_private, policy.timeout_s)
    except AddressRefused as refused:
        raise CardError(f"{refused} (refused; allow private contractors for a local market)") from None


async def _get_bounded(http: httpx.AsyncClient, url: str, policy: FetchPolicy) -> bytes:
    """GET with redirects followed by hand (each hop checked), at most `max_bytes` read."""
    for _ in range(policy.max_redirects + 1):
        await check_address(url, policy)
        async with http.stream("GET", url, timeout=policy.timeout_s, follow_redirects=False) as response:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if response.status_code != 200:
                raise _NoCardHere(f"{url}: HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > policy.max_bytes:
                    raise CardError(f"{url}: card larger than {policy.max_bytes} bytes")
            return bytes(body)
    raise CardError(f"{url}: more than {policy.max_redirects} redirects (a redirect loop?)")


async def fetch_card(
    http: httpx.AsyncClient, card_url: str, policy: FetchPolicy | None = None
) -> tuple[AgentCard, dict[str, Any]]:
    """Fetch and validate a card: the parsed card and the JSON as served (what its signatures cover)."""
    policy = policy or FetchPolicy()
    problems = []
    for url in card_locations(card_url):
        try:
            raw = json.loads(await _get_bounded(http, url, policy))
            card = AgentCard.model_validate(raw)
        except _NoCardHere as missing:
            problems.append(str(missing))
            continue
        except httpx.HTTPError as error:
            problems.append(f"{url}: {type(error).__name__}")
            continue
        except ValueError as error:
            detail = error.errors()[0]["msg"] if isinstance(error, ValidationError) else "not JSON"
            raise CardError(f"{url}: not a valid agent card: {detail}") from None
        await check_address(card.url, policy)  # where work would be sent obeys the same rule
        return card, raw
    raise CardError("; ".join(problems) or "no card found")


@dataclass
class Contractor:
    id: str
    card_url: str
    card: AgentCard
    status: str
    failures: int
    signing_key: str | None = None  # the pinned card-signing key (None: the card is unsigned)
    proven_skills: frozenset[str] = frozenset()  # skills with a valid attestation proof

    @property
    def channel(self) -> ChannelOffer | None:
        return channel_offer(self.card.capabilities.extensions)

    @property
    def requires_auth(self) -> bool:
        return bool(self.card.security)


@dataclass
class Registry:
    """`trusted_attestors`: thumbprints of attestor keys whose skill certificates count; when there are any, a
    skill without a valid proof weighs `unproven_weight` in the ontology match (1 otherwise)."""

    store: Store
    index: SkillIndex
    http: httpx.AsyncClient
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    trusted_attestors: frozenset[str] = frozenset()
    unproven_weight: float = 0.5
    dead_after_failures: int = 3
    _active: dict[str, Contractor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stored in self.store.contractors():
            self._load(stored)
        self.index.add([p for c in self._active.values() for p in self._profiles(c)])

    def _load(self, stored: dict[str, Any]) -> Contractor:
        card = AgentCard.model_validate(stored["card"])
        contractor = Contractor(
            stored["id"],
            stored["card_url"],
            card,
            stored["status"],
            stored["failures"],
            stored["signing_key"],
            self._proven(card, stored["signing_key"]),
        )
        if contractor.status == "active":
            self._active[contractor.id] = contractor
        else:
            self._active.pop(contractor.id, None)
        return contractor

    def _proven(self, card: AgentCard, signing_key: str | None) -> frozenset[str]:
        certificate = card.coalesce.skill_certificate if card.coalesce else None
        return frozenset(proven_skills(certificate, set(self.trusted_attestors), signing_key))

    def _profiles(self, contractor: Contractor) -> list[SkillProfile]:
        if not self.trusted_attestors:
            return skill_profiles(contractor.id, contractor.card)
        weights = {
            s.id: 1.0 if s.id in contractor.proven_skills else self.unproven_weight for s in contractor.card.skills
        }
        return skill_profiles(contractor.id, contractor.card, weights)

    async def _fetch_trusted(self, card_url: str, pinned: str | None) -> tuple[AgentCard, dict[str, Any], str | None]:
        card, raw = await fetch_card(self.http, card_url, self.policy)
        try:
            return card, raw, key_to_pin(raw, pinned)
        except CardTrustError as error:
            raise CardError(f"{card_url}: untrusted card: {error}") from None

    async def register(self, card_url: str) -> tuple[Contractor, bool]:
        ident = contractor_id(card_url)
        stored = self.store.contractor(ident)
        card, raw, signing_key = await self._fetch_trusted(card_url, stored["signing_key"] if stored else None)
        created = self.store.upsert_contractor(ident, card_url, card.name, raw, signing_key)
        contractor = self._load(self.store.contractor(ident) or {})
        self.index.add(self._profiles(contractor))
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

    def _take_out(self, ident: str, status: str, why: str) -> None:
        if ident in self._active:
            log.warning("contractor %s %s (%s): out of the market", ident, status, why)
            self._active.pop(ident, None)
            self.index.remove(ident)

    async def refresh(self) -> None:
        """Fetch every registered card again. A contractor unreachable `dead_after_failures` times in a row is
        taken out of matching (status `unreachable`) until a later refresh reaches it again; one whose card no
        longer verifies against its pinned key is taken out at once (status `untrusted`), its pin kept."""
        for stored in self.store.contractors():
            ident = stored["id"]
            try:
                card, raw, signing_key = await self._fetch_trusted(stored["card_url"], stored["signing_key"])
            except CardError as error:
                untrusted = "untrusted card" in str(error)
                failures = stored["failures"] + 1
                status = "untrusted" if untrusted else "unreachable" if failures >= self.dead_after_failures else None
                self.store.set_contractor_status(ident, status or stored["status"], failures)
                if status is not None:
                    self._take_out(ident, status, str(error))
                continue
            self.store.upsert_contractor(ident, stored["card_url"], card.name, raw, signing_key)
            contractor = self._load(self.store.contractor(ident) or {})
            self.index.add(self._profiles(contractor))

    async def refresh_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("registry refresh failed")
