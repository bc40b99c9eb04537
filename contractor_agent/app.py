"""The contractor's HTTP shell: Agent Card, JSON-RPC endpoint (with SSE), health, quote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from contractor_agent.admission import Limits
from contractor_agent.identity import Identity
from contractor_agent.metrics import ContractorMetrics
from contractor_agent.push import PushNotifier
from contractor_agent.rpc import RpcHandler, StreamReply
from contractor_agent.store import TaskStore
from contractor_agent.tasks import TaskManager
from shared.a2a.models import AgentCard, ErrorCode, JSONRPCError, rpc_error
from shared.runtime import jsonio
from shared.runtime.http import MAX_BODY_BYTES, BodyTooLarge, ServiceApp, read_bounded
from shared.security.auth import AuthError
from shared.security.channel import token_caller
from shared.security.net_policy import Resolver, system_resolve
from shared.workers.base import Worker

CARD_PATHS = ("/.well-known/agent.json", "/.well-known/agent-card.json")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonio.dumps(body), status_code=status, media_type="application/json", headers=headers)


def create_app(
    card: AgentCard,
    workers: dict[str, Worker],
    *,
    base_url: str,
    limits: Limits | None = None,
    push_notifications: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
    identity: Identity | None = None,
    store: TaskStore | None = None,
    allow_private_push: bool = True,
    resolve: Resolver = system_resolve,
) -> FastAPI:
    """A contractor serving `card` from `base_url` (the address actually bound, never 0.0.0.0). `identity`: its
    keys (signed card, end-to-end channel), skill certificate and API keys; none of these without it. `store`: where
    tasks persist (in memory only without it). `allow_private_push`: webhooks on loopback and private networks
    (`coalesce contractor serve` refuses them unless told otherwise); `resolve`: how webhook names are looked up."""
    identity = identity or Identity()
    if card.coalesce is not None and limits is None:
        limits = Limits(max_concurrent=card.coalesce.max_concurrent_tasks, max_queued=card.coalesce.max_queued_tasks)
    card = card.model_copy(
        update={"capabilities": card.capabilities.model_copy(update={"push_notifications": push_notifications})}
    )
    served = {"certificate": identity.certificate()}
    served["card"] = identity.publish(card, base_url, served["certificate"])
    signing_key = identity.signing_keys[0] if identity.signing_keys else None
    notifier = (
        PushNotifier(allow_private=allow_private_push, signing_key=signing_key, resolve=resolve)
        if push_notifications
        else None
    )
    metrics = ContractorMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.manager = TaskManager(card, workers, limits, notifier, identity, metrics, store)
        app.state.rpc = RpcHandler(app.state.manager)
        yield
        await app.state.manager.close()
        if store is not None:
            store.close()
        if notifier is not None:
            await notifier.close()

    app = ServiceApp(
        metrics, title=f"COALESCE contractor: {card.name}", lifespan=lifespan, docs_url=None, redoc_url=None
    )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def agent_card() -> JSONResponse:
        certificate = identity.certificate()
        if certificate is not served["certificate"]:  # a new certificate: the card signed again
            served.update(certificate=certificate, card=identity.publish(card, base_url, certificate))
        return JSONResponse(served["card"])

    for path in CARD_PATHS:
        app.add_api_route(path, agent_card, methods=["GET"], include_in_schema=False)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "name": card.name, "load": request.app.state.manager.load()}

    @app.get("/v1/quote")
    async def quote(request: Request, complexity: float = Query(default=1.0, gt=0, le=100)) -> dict[str, Any]:
        try:
            identity.api_keys.check_request(request.headers)
        except AuthError as error:
            raise HTTPException(error.status, error.message, error.headers()) from None
        manager: TaskManager = request.app.state.manager
        return {"priceUsd": manager.quote(complexity), "load": manager.load()}

    async def json_rpc(request: Request) -> Response:
        try:  # who is asking: its API key, else the owner token of the channel it opened (see the tasks' owners)
            caller = identity.api_keys.check_request(request.headers) or token_caller(request.headers)
        except AuthError as error:
            refusal = JSONRPCError(code=ErrorCode.UNAUTHORIZED, message=error.message)
            return _json(rpc_error(None, refusal), status=error.status, headers=error.headers())
        try:
            body = await read_bounded(request, max_body_bytes)
        except BodyTooLarge as error:
            too_large = JSONRPCError(code=ErrorCode.INVALID_REQUEST, message=str(error))
            return _json(rpc_error(None, too_large), status=413)
        reply = await request.app.state.rpc.handle(body, request.headers.get("a2a-version"), caller)
        if isinstance(reply, StreamReply):
            return EventSourceResponse(_sse(reply), ping=15, send_timeout=30)
        return _json(reply)

    app.direct_route("/", json_rpc, methods=("POST",))  # ahead of the middleware stack: the hot path
    return app


async def _sse(reply: StreamReply) -> AsyncIterator[dict[str, str]]:
    async for event in reply.events:
        yield {"data": jsonio.dumps_text(event)}
