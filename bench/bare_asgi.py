"""The ceiling of the contractor benchmark: a bare ASGI app under the same uvicorn that answers every POST with a
fixed JSON-RPC result (no parsing, no task, no storage): what this machine serves when the server does nothing.

Run: python bench/bare_asgi.py PORT
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{"task":{"id":"t","status":{"state":"TASK_STATE_COMPLETED"}}}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the body, as a server must
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
