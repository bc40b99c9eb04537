"""`/mcp`: the exchange's MCP server (`client_agent.mcp_server`) over Streamable HTTP, its tools calling the service
in-process, behind the service's API keys."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from client_agent.api.contractors import contractor_view
from client_agent.api.market import market as market_view
from client_agent.api.tasks import task_view
from client_agent.mcp_server import build_server
from client_agent.models import ContractorRegistration, TaskSubmission
from client_agent.service import ClientService
from shared.a2a.cards import CardError
from shared.security.auth import ApiKeys, AuthError

MCP_PATH = "/mcp"


class ServiceBackend:
    """The client service in the same process."""

    def __init__(self, service: ClientService) -> None:
        self.service = service

    async def submit(self, task: TaskSubmission) -> str:
        return self.service.submit(task)[0]

    async def task(self, task_id: str) -> dict[str, Any]:
        return task_view(self.service.task(task_id))

    async def market(self) -> dict[str, Any]:
        return await market_view(self.service)

    async def register(self, registration: ContractorRegistration) -> dict[str, Any]:
        try:
            contractor, _ = await self.service.register(registration.card_url, registration.price_usd)
        except CardError as error:
            raise ToolError(f"cannot register {registration.card_url}: {error}") from None
        return contractor_view(contractor)


class McpFace:
    """`/mcp` of the client service: the MCP server over Streamable HTTP, behind the service's API keys. Host and
    Origin are checked against DNS rebinding when the service is served on loopback (on a network, where it is
    reached by name, the API keys guard it)."""

    def __init__(self, service: ClientService, public_url: str, api_keys: ApiKeys) -> None:
        self.api_keys = api_keys
        host = urlsplit(public_url).hostname or ""
        loopback = host in ("127.0.0.1", "localhost", "::1")
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=loopback,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        server = build_server(ServiceBackend(service))
        self.app = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.api_keys.check_request(Headers(scope=scope))
        except AuthError as error:
            refusal = JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers())
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def lifespan(self) -> AbstractAsyncContextManager[Any]:
        """The MCP session manager's start and stop."""
        return self.app.router.lifespan_context(self.app)
