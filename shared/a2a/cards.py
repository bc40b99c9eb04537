"""Card resolution: fetch an Agent Card safely (http(s) only, bounded size and time, redirects followed by hand,
every hop's address checked by `shared.security.net_policy`) and validate it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import ValidationError

from shared.a2a.dialects import Dialect
from shared.a2a.models import AgentCard
from shared.security.net_policy import (
    AddressRefused,
    CheckedTransport,
    Resolver,
    check_url,
    checked_transport,
    system_resolve,
)

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
    resolve: Resolver = system_resolve  # how names are looked up for the early check

    def transport(self) -> CheckedTransport:
        """An httpx transport that connects only to the addresses it checked itself (see `net_policy`)."""
        return checked_transport(self.allow_private, self.timeout_s, self.resolve)


def card_locations(card_url: str) -> list[str]:
    """A card URL, or a base URL whose well-known paths hold the card."""
    if card_url.endswith(".json"):
        return [card_url]
    base = card_url if card_url.endswith("/") else card_url + "/"
    return [base + path for path in CARD_PATHS]


@dataclass(frozen=True)
class Endpoint:
    """Where and in which wire generation an agent is hired: its JSON-RPC interface."""

    url: str
    dialect: Dialect


def _is_jsonrpc(binding: str) -> bool:
    return binding.upper().replace("-", "") == "JSONRPC"


def hiring_endpoint(card: AgentCard) -> Endpoint:
    """The newest JSON-RPC generation the card declares: a v1.0 interface, else a v0.3 one (`supportedInterfaces`,
    or v0.3's `url` / `additionalInterfaces`), else the legacy generation at `url` (a card that names no
    protocol version). Raises CardError for a card with no JSON-RPC interface (HTTP+JSON and gRPC are not spoken)."""
    for prefix, dialect in (("1.", Dialect.V1_0), ("0.3", Dialect.V0_3)):
        for interface in card.supported_interfaces:
            if _is_jsonrpc(interface.protocol_binding) and interface.protocol_version.startswith(prefix):
                return Endpoint(interface.url, dialect)
    v0_3 = (card.protocol_version or "").startswith("0.3")
    if not _is_jsonrpc(card.preferred_transport) or (card.supported_interfaces and not v0_3):
        others = [i.url for i in card.additional_interfaces if _is_jsonrpc(i.transport)]
        if not others:
            raise CardError("the card declares no JSON-RPC interface (COALESCE hires over JSON-RPC only)")
        return Endpoint(others[0], Dialect.V0_3 if v0_3 else Dialect.LEGACY)
    return Endpoint(card.url, Dialect.V0_3 if v0_3 else Dialect.LEGACY)


async def check_address(url: str, policy: FetchPolicy) -> None:
    """Raises CardError for a URL that is not http(s), or (unless allowed) resolves to a non-public address."""
    try:
        await check_url(url, policy.allow_private, policy.timeout_s, policy.resolve)
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


def _first_problem(error: ValidationError) -> str:
    """Where the card is wrong and how, e.g. `skills: List should have at least 1 item`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


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
            problems.append(f"{url}: {type(error).__name__}: {error}")
            continue
        except ValueError as error:
            detail = _first_problem(error) if isinstance(error, ValidationError) else "not JSON"
            raise CardError(f"{url}: not a valid agent card: {detail}") from None
        await check_address(hiring_endpoint(card).url, policy)  # where work would be sent obeys the same rule
        return card, raw
    raise CardError("; ".join(problems) or "no card found")
