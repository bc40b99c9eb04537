"""`/v1/contractors`: register any A2A agent by its card URL, list the registry, remove one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from client_agent.api.deps import ERRORS, Client
from client_agent.errors import Invalid, NotFound
from client_agent.models import ContractorRegistration
from client_agent.registry import Contractor
from shared.a2a.cards import CardError, hiring_endpoint
from shared.a2a.models import AgentCard

router = APIRouter(prefix="/v1/contractors", responses=ERRORS)


def view(
    ident: str, name: str, card_url: str, card: AgentCard, price_usd: float | None, **extra: Any
) -> dict[str, Any]:
    endpoint = hiring_endpoint(card)
    return {
        "id": ident,
        "name": name,
        "card_url": card_url,
        "url": endpoint.url,
        "a2a_version": endpoint.dialect.value,
        "skills": [s.id for s in card.skills],
        "price_usd": price_usd if card.coalesce is None else None,
        **extra,
    }


def contractor_view(contractor: Contractor) -> dict[str, Any]:
    return view(contractor.id, contractor.card.name, contractor.card_url, contractor.card, contractor.price_usd)


@router.post("", status_code=201)
async def register(body: ContractorRegistration, client: Client) -> JSONResponse:
    """Register the agent whose Agent Card (any A2A generation, signed or not) is at `card_url`; an agent whose
    card publishes no price needs `price_usd`, its operator's price per task."""
    try:
        contractor, created = await client.register(body.card_url, body.price_usd)
    except CardError as error:
        raise Invalid(f"cannot register {body.card_url}: {error}") from None
    return JSONResponse(contractor_view(contractor), status_code=201 if created else 200)


@router.get("")
async def contractors(client: Client) -> dict[str, Any]:
    return {
        "contractors": [
            view(
                c["id"],
                c["name"],
                c["card_url"],
                AgentCard.model_validate(c["card"]),
                c["price_usd"],
                status=c["status"],
            )
            for c in client.registry.all()
        ]
    }


@router.delete("/{contractor_id}", status_code=204)
async def remove(contractor_id: str, client: Client) -> None:
    if not client.registry.remove(contractor_id):
        raise NotFound(f"contractor {contractor_id!r} not found")
