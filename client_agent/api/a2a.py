"""The exchange's A2A face (`client_agent.agent`), mounted at `/a2a/`: the contractor's A2A server over the
`ExchangeWorker`, its tasks in the client's database, its callers told apart by the client's API keys. The card is
served at the service's own well-known paths (and at `/a2a/`'s) with the market's skills as they are when it is
read; a message may name one of them (metadata `skill`) to skip decomposition."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from client_agent.agent import ExchangeWorker, exchange_card
from client_agent.service import ClientService
from contractor_agent.app import CARD_PATHS, create_app
from contractor_agent.identity import Identity
from contractor_agent.store import SqlTaskStore
from contractor_agent.tasks import TaskManager
from shared.a2a.models import AgentCard
from shared.security.auth import ApiKeys

MOUNT = "/a2a"


class ExchangeFace:
    """The A2A app and the live card it serves."""

    def __init__(self, service: ClientService, public_url: str, api_keys: ApiKeys) -> None:
        self.service = service
        self.url = public_url.rstrip("/") + MOUNT + "/"
        self.worker = ExchangeWorker(service)
        self.identity = Identity(api_keys=api_keys)
        card = exchange_card(service)
        store = SqlTaskStore(service.store.engine.url.render_as_string(hide_password=False))
        self.app = create_app(
            card, self._workers(card), base_url=self.url, identity=self.identity, store=store, allow_private_push=False
        )

    def _workers(self, card: AgentCard) -> dict[str, Any]:
        return {skill.id: self.worker for skill in card.skills}

    def card(self) -> AgentCard:
        """The card as the market is now; the A2A server takes the same skills."""
        card = exchange_card(self.service)
        manager: TaskManager | None = getattr(self.app.state, "manager", None)
        if manager is not None and [s.id for s in manager.card.skills] != [s.id for s in card.skills]:
            manager.card, manager.workers = card, self._workers(card)
        return card

    async def served_card(self) -> JSONResponse:
        return JSONResponse(self.identity.publish(self.card(), self.url))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].removeprefix(MOUNT) in CARD_PATHS:
            await (await self.served_card())(scope, receive, send)
            return
        if scope["type"] == "http":
            self.card()  # a message may name a skill the market gained since the last one
        await self.app(scope, receive, send)

    def lifespan(self) -> AbstractAsyncContextManager[Any]:
        """The A2A server's own start and stop (a mounted app's lifespan is not run by its parent)."""
        return self.app.router.lifespan_context(self.app)


def mount(app: FastAPI, service: ClientService, public_url: str, api_keys: ApiKeys) -> ExchangeFace:
    face = ExchangeFace(service, public_url, api_keys)
    for path in CARD_PATHS:
        app.add_api_route(path, face.served_card, methods=["GET"], include_in_schema=False)
    app.mount(MOUNT, face)
    return face
