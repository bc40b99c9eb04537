"""What every router needs: the service behind the app, the bounds of positions in lists and streams, and the one
place where refusals (domain errors, invalid requests, missing API keys) become HTTP answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from client_agent.errors import ClientError, Conflict, Invalid, NotFound, Overloaded
from client_agent.models import ErrorBody
from client_agent.service import ClientService
from shared.runtime.http import BodyTooLarge, Endpoint
from shared.security.auth import ApiKeys, AuthError

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 404, 409, 422, 429, 502)}
MAX_POSITION = 2**53  # offsets and event numbers: far beyond any table, well inside every database's integers
STATUS: dict[type[ClientError], int] = {NotFound: 404, Conflict: 409, Invalid: 422, Overloaded: 429}


async def service(request: Request) -> ClientService:
    """Async, so that FastAPI resolves it on the event loop rather than in a worker thread."""
    client: ClientService = request.app.state.service
    return client


Client = Annotated[ClientService, Depends(service)]  # the service, as a route parameter


def error_answer(message: str, status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def refused(error: ClientError) -> JSONResponse:
    return error_answer(error.message, next(code for kind, code in STATUS.items() if isinstance(error, kind)))


def invalid(errors: Iterable[Mapping[str, Any]], where: tuple[str, ...] = ()) -> JSONResponse:
    """422 for a request that does not validate; `where` (`body`, `query`) goes before each error's location."""
    detail = [{"loc": [*where, *e["loc"]], "msg": e["msg"]} for e in list(errors)[:20]]
    return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)


def guarded(keys: ApiKeys, answer: Callable[[Request], Awaitable[Response]]) -> Endpoint:
    """`answer` as a direct route's endpoint (see `shared.runtime.http`): the API key checked first, and every refusal
    answered as the app's exception handlers answer it. A `ValidationError` that `answer` lets out is the body's."""

    async def endpoint(request: Request) -> Response:
        try:
            keys.check_request(request.headers)
            return await answer(request)
        except AuthError as error:
            return error_answer(error.message, error.status, error.headers())
        except ClientError as error:
            return refused(error)
        except BodyTooLarge as error:
            return error_answer(str(error), 413)
        except ValidationError as error:
            return invalid(error.errors(include_url=False), ("body",))

    return endpoint
