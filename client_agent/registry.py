"""Discovery: the registry of contractors (persisted), periodic refresh, dead-contractor removal, and the skill
index the candidates of every subtask come from. Cards are fetched by `shared.a2a.cards`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from client_agent.storage import Store
from shared.a2a.cards import CardError, Endpoint, FetchPolicy, fetch_card, hiring_endpoint
from shared.a2a.models import COALESCE_EXTENSION_URI, AgentCard
from shared.economics.reputation import ReputationBook
from shared.economics.skills import SkillIndex, SkillProfile, skill_profiles
from shared.security.attestation import AttestedSkill, certified_skills
from shared.security.card_signing import CardTrustError, key_to_pin, keys_of_signatures, pin_of, verify_card
from shared.security.channel import ChannelOffer, channel_offer
from shared.security.receipts import price_list_version

log = logging.getLogger(__name__)


def contractor_id(card_url: str, signing_key: str | None = None) -> str:
    """Who a contractor is: its signing key when its card is signed (wherever it is served), else its address."""
    identity = f"key:{signing_key}" if signing_key else card_url
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass
class Contractor:
    id: str
    card_url: str
    card: AgentCard
    status: str
    failures: int
    signing_key: str | None = None  # the pinned card-signing key (None: the card is unsigned)
    certified: dict[str, AttestedSkill] = field(default_factory=dict)  # skills a trusted attestor measured
    proven_skills: frozenset[str] = frozenset()  # those measured at or above the registry's `proven_score`
    price_usd: float | None = None  # the operator's price per task, for a card that publishes none

    @cached_property
    def endpoint(self) -> Endpoint:
        """Where, and in which A2A generation, it is hired."""
        return hiring_endpoint(self.card)

    @property
    def channel_kind(self) -> str:
        """How work travels to it: `e2e` (the end-to-end channel), `tls` (plain A2A over https) or `plaintext`."""
        return "e2e" if self.channel else "tls" if self.endpoint.url.startswith("https") else "plaintext"

    @property
    def operator_price_usd(self) -> float | None:
        """The price per task its operator registered, for an agent that publishes no price list (and bills
        nothing); None for a COALESCE contractor, whose card's price list and live quotes are the terms."""
        return self.price_usd if self.card.coalesce is None else None

    @property
    def channel(self) -> ChannelOffer | None:
        return channel_offer(self.card.capabilities.extensions)

    @cached_property
    def pinned_public_key(self) -> Ed25519PublicKey | None:
        """The public key of the pinned card-signing key (None: an unsigned card, or the key is not on it)."""
        if self.signing_key is None:
            return None
        return keys_of_signatures(self.card.signatures or []).get(self.signing_key)

    @cached_property
    def price_list(self) -> str | None:
        """The version of its card's price list (`price_list_version`), which its receipts must name."""
        return price_list_version(self.card.coalesce.price) if self.card.coalesce else None

    @property
    def requires_auth(self) -> bool:
        return bool(self.card.security)


@dataclass
class Registry:
    """`trusted_attestors`: thumbprints of attestor keys whose skill certificates count. When there are any, a
    skill not certified at `proven_score` or better weighs `unproven_weight` in the ontology match (1 otherwise),
    and every certified score goes into `reputation` as evidence of the agent's competence on that skill."""

    store: Store
    index: SkillIndex
    http: httpx.AsyncClient
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    trusted_attestors: frozenset[str] = frozenset()
    unproven_weight: float = 0.5
    proven_score: float = 0.5
    reputation: ReputationBook | None = None
    dead_after_failures: int = 3
    _active: dict[str, Contractor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stored in self.store.contractors():
            self._load(stored)
        self.index.add([p for c in self._active.values() for p in self._profiles(c)])

    def _load(self, stored: dict[str, Any]) -> Contractor:
        card = AgentCard.model_validate(stored["card"])
        certificate = card.coalesce.skill_certificate if card.coalesce else None
        certified = certified_skills(certificate, set(self.trusted_attestors), stored["signing_key"])
        contractor = Contractor(
            stored["id"],
            stored["card_url"],
            card,
            stored["status"],
            stored["failures"],
            stored["signing_key"],
            certified,
            frozenset(s for s, measured in certified.items() if measured.score >= self.proven_score),
            stored.get("price_usd"),
        )
        if self.reputation is not None:
            self.reputation.certify(contractor.id, {s: (m.score, m.items) for s, m in certified.items()})
        if contractor.status == "active":
            self._active[contractor.id] = contractor
        else:
            self._active.pop(contractor.id, None)
        return contractor

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

    async def register(self, card_url: str, price_usd: float | None = None) -> tuple[Contractor, bool]:
        """Register (or refresh) the agent whose card is at `card_url`. A signed card is identified by its key: an
        agent back at a new address keeps its record, reputation and competence, and one that now holds another's
        address takes it over (that record is `moved` until its agent registers again). An unsigned card is
        identified by its address and may not take over an address whose agent signs its cards. An agent whose
        card publishes no price (no COALESCE extension) needs `price_usd`, its operator's price per task (the first
        time: later registrations keep it unless they give another)."""
        card, raw = await fetch_card(self.http, card_url, self.policy)
        if card.coalesce is not None and price_usd is not None:
            raise CardError(f"{card_url}: the card publishes its own price list; price_usd is for agents without one")
        try:
            keys = verify_card(raw)
            records = self.store.contractors_pinned_to(keys) if keys else []
            known = records[0] if records else None
            holder = self.store.contractor_at(card_url)
            if not keys and holder is not None and holder["signing_key"]:
                pin_of(keys, holder["signing_key"])  # raises: an unsigned card where a signed one was
            signing_key = pin_of(keys, known["signing_key"] if known else None)
        except CardTrustError as error:
            raise CardError(f"{card_url}: untrusted card: {error}") from None
        ident = known["id"] if known else contractor_id(card_url, signing_key)
        if card.coalesce is None and price_usd is None:  # the price its operator gave before, if any
            price_usd = (self.store.contractor(ident) or {}).get("price_usd")
            if price_usd is None:
                raise CardError(
                    f"{card_url}: the card publishes no price (no {COALESCE_EXTENSION_URI} extension); "
                    "give price_usd, the operator's price per task"
                )
        if holder is not None and holder["id"] != ident:
            log.warning("contractor %s moved away from %s (another agent serves it now)", holder["id"], card_url)
            self._move(holder["id"], f"{card_url} now serves {card.name}")
        for twin in records[1:]:  # the same agent, recorded once per address before agents were keyed by key
            self._move(twin["id"], f"the same key as {ident}")
        created = self.store.upsert_contractor(ident, card_url, card.name, raw, signing_key, price_usd)
        contractor = self._load(self.store.contractor(ident) or {})
        self.index.add(self._profiles(contractor))
        return contractor, created

    def _move(self, ident: str, why: str) -> None:
        self.store.set_contractor_status(ident, "moved")
        self._take_out(ident, "moved", why)

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
            if stored["status"] == "moved":  # its address is another agent's now: it comes back by registering
                continue
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
            self.store.upsert_contractor(ident, stored["card_url"], card.name, raw, signing_key, stored["price_usd"])
            contractor = self._load(self.store.contractor(ident) or {})
            self.index.add(self._profiles(contractor))

    async def refresh_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("registry refresh failed")
