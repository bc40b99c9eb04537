"""What both services share for operators: Prometheus metrics (one registry per app, so that several apps can live
in one process), HTTP request metrics, and structured JSON logs that carry the client's task id and the A2A task
id on every line, so that one subtask can be followed across services."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

TASK_ID: ContextVar[str | None] = ContextVar("coalesce_task_id", default=None)
A2A_TASK_ID: ContextVar[str | None] = ContextVar("coalesce_a2a_task_id", default=None)
# FastAPI's own OpenTelemetry hooks, off: the services export Prometheus metrics and JSON logs, and with them on,
# FastAPI asks OpenTelemetry for its providers on every request (a visible share of a contractor's request in a
# py-spy profile; see the README's "Dashboard and observability").
FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class ServiceMetrics:
    """The metrics every service has: HTTP requests and their latency, and the work of its workers."""

    def __init__(self, prefix: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(f"{prefix}_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram(
            f"{prefix}_http_request_seconds", "HTTP request latency", ["method", "route"], registry=r,
            buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.worker_tokens = Counter(
            f"{prefix}_worker_tokens", "LLM tokens used by workers", ["worker", "direction"], registry=r
        )
        self.worker_seconds = Counter(f"{prefix}_worker_seconds", "seconds of worker time", ["worker"], registry=r)

    def worker_usage(self, worker: str, input_tokens: int, output_tokens: int, seconds: float) -> None:
        self.worker_tokens.labels(worker, "input").inc(input_tokens)
        self.worker_tokens.labels(worker, "output").inc(output_tokens)
        self.worker_seconds.labels(worker).inc(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMeter:
    """Counts requests and observes their latency by method, route template (never the raw path: label values stay
    bounded) and status."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # the labelled children, looked up once

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[method, route, status] = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.request_seconds.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)

    async def around(
        self, app: ASGIApp, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable,
        route: Callable[[], str],
    ) -> None:  # fmt: skip
        """Run `app` on one HTTP request, then record it under `route()` (asked once the app has run) with the
        status it sent (500 when it sent none)."""
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            self.record(scope["method"], route(), status, time.perf_counter() - started)


class MetricsMiddleware:
    """ASGI middleware: every request through the app's stack, metered by its route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.meter = RequestMeter(metrics)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.meter.around(
            self.app, scope, receive, send, lambda: getattr(scope.get("route"), "path", None) or "unmatched"
        )


class _TaskIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.task_id = TASK_ID.get()
        record.a2a_task_id = A2A_TASK_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, taskId, a2aTaskId (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "taskId": getattr(record, "task_id", None),
            "a2aTaskId": getattr(record, "a2a_task_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_TaskIds())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(task_id)s %(a2a_task_id)s]: %(message)s")
        )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
