"""Direct routes: answered ahead of FastAPI's middleware stack, on a real server, metered like every other route."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.runtime.http import ServiceApp
from shared.runtime.observability import ServiceMetrics
from shared.runtime.serving import ServerThread, bind_socket


def served_count(metrics: ServiceMetrics, method: str, route: str, status: int) -> float:
    value = metrics.registry.get_sample_value(
        "test_http_requests_total", {"method": method, "route": route, "status": str(status)}
    )
    return value or 0.0


def test_a_direct_route_answers_refuses_other_methods_and_turns_a_crash_into_a_500():
    metrics = ServiceMetrics("test")
    app = ServiceApp(metrics)

    async def echo(request: Request) -> Response:
        body = await request.body()
        if body == b"crash":
            raise RuntimeError("boom")
        return JSONResponse({"got": body.decode(), "app": request.app is app})

    app.direct_route("/rpc", echo, methods=("POST",))

    @app.get("/through-fastapi")
    async def through() -> dict[str, bool]:
        return {"ok": True}

    sock = bind_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with ServerThread(app, sock), httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/rpc", content=b"hello").json() == {"got": "hello", "app": True}
        refused = http.get("/rpc")
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
        crashed = http.post("/rpc", content=b"crash")
        assert crashed.status_code == 500 and crashed.text == "Internal Server Error"
        assert http.get("/through-fastapi").json() == {"ok": True}
        assert http.get("/nowhere").status_code == 404
    assert served_count(metrics, "POST", "/rpc", 200) == 1
    assert served_count(metrics, "GET", "/rpc", 405) == 1
    assert served_count(metrics, "POST", "/rpc", 500) == 1
    assert served_count(metrics, "GET", "/through-fastapi", 200) == 1  # the middleware stack meters the rest


def test_a_direct_route_matches_below_where_its_app_is_mounted():
    inner = ServiceApp(ServiceMetrics("inner"))

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": True})

    inner.direct_route("/", hello, methods=("POST",))
    outer = FastAPI()
    outer.mount("/a2a", inner)
    sock = bind_socket()
    with ServerThread(outer, sock), httpx.Client(timeout=10) as http:
        answer = http.post(f"http://127.0.0.1:{sock.getsockname()[1]}/a2a/")
    assert answer.json() == {"hello": True}


def test_a_direct_route_with_parameters_and_fastapi_serving_its_other_methods():
    metrics = ServiceMetrics("test_template")
    app = ServiceApp(metrics)

    async def follow(request: Request) -> Response:
        return JSONResponse({"item": request.path_params["item_id"], "n": request.path_params["n"]})

    app.direct_route("/items/{item_id}/follow/{n:int}", follow, methods=("GET",))

    @app.delete("/items/{item_id}/follow/{n:int}")
    async def stop(item_id: str, n: int) -> dict[str, str]:
        return {"stopped": item_id}

    sock = bind_socket()
    with (
        ServerThread(app, sock),
        httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=10) as http,
    ):
        assert http.get("/items/a1/follow/7").json() == {"item": "a1", "n": 7}  # converted as its template says
        assert http.delete("/items/a1/follow/7").json() == {"stopped": "a1"}  # FastAPI serves the other method
        assert http.get("/items/a1/follow/x").status_code == 404  # `int` does not match: not this route
        assert http.get("/items/a/b/follow/7").status_code == 404  # a parameter is one path segment
        assert http.post("/items/a1/follow/7").status_code == 405
    sample = metrics.registry.get_sample_value(
        "test_template_http_requests_total",
        {"method": "GET", "route": "/items/{item_id}/follow/{n:int}", "status": "200"},
    )
    assert sample == 1
