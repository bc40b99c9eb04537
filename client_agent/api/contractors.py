"""`/v1/contractors`: register a contractor by its card URL, list the registry, remove one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from client_agent.api.deps import ERRORS, Client
from client_agent.errors import Invalid, NotFound
from client_agent.models import ContractorRegistration
from shared.a2a.cards import CardError

router = APIRouter(prefix="/v1/contractors", responses=ERRORS)


@router.post("", status_code=201)
async def register(body: ContractorRegistration, client: Client) -> JSONResponse:
    try:
        contractor, created = await client.register(body.card_url)
    except CardError as error:
        raise Invalid(f"cannot register {body.card_url}: {error}") from None
    view = {
        "id": contractor.id,
        "name": contractor.card.name,
        "url": contractor.card.url,
        "card_url": contractor.card_url,
        "skills": [s.id for s in contractor.card.skills],
    }
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("")
async def contractors(client: Client) -> dict[str, Any]:
    return {
        "contractors": [
            {
                "id": c["id"],
                "name": c["name"],
                "card_url": c["card_url"],
                "status": c["status"],
                "skills": [s["id"] for s in c["card"]["skills"]],
                "url": c["card"]["url"],
            }
            for c in client.registry.all()
        ]
    }


@router.delete("/{contractor_id}", status_code=204)
async def remove(contractor_id: str, client: Client) -> None:
    if not client.registry.remove(contractor_id):
        raise NotFound(f"contractor {contractor_id!r} not found")
