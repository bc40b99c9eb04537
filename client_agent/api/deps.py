"""What every router needs: the service behind the app, and the bounds of positions in lists and streams."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from client_agent.models import ErrorBody
from client_agent.service import ClientService

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 404, 409, 422, 429, 502)}
MAX_POSITION = 2**53  # offsets and event numbers: far beyond any table, well inside every database's integers


async def service(request: Request) -> ClientService:
    """Async, so that FastAPI resolves it on the event loop rather than in a worker thread."""
    client: ClientService = request.app.state.service
    return client


Client = Annotated[ClientService, Depends(service)]  # the service, as a route parameter
