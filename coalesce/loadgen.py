"""A load generator for the client's API: submit many tasks at once, wait until every one has ended, and count
what came back (used by `bench/load.py` and `tests/test_load.py`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

TERMINAL = ("completed", "failed", "canceled")


@dataclass
class LoadReport:
    submitted: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # final task statuses
    http_5xx: int = 0
    refused: int = 0  # 4xx on submit (a full queue answers 429)
    retries: int = 0  # requests sent again after the connection dropped (safe: GETs, submits with a key)
    # from the moment the load was submitted (every task at once) to the task's end: the waits to be accepted count
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def lost(self) -> int:
        """Accepted tasks that never reached a final status."""
        return self.submitted - sum(self.statuses.values())


async def load(
    client_url: str, bodies: list[dict[str, Any]], connections: int = 100, timeout_s: float = 600.0
) -> LoadReport:
    """Submit every body at once (over at most `connections` connections); wait for all to end."""
    report = LoadReport()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=client_url, timeout=60, limits=limits) as http:
        gate = asyncio.Semaphore(connections)  # requests wait here, not in httpx's pool (which scans its queue)

        async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            for attempt in range(3):
                try:
                    async with gate:
                        response = await http.request(method, path, **kwargs)
                    break
                except httpx.TransportError:  # a keep-alive connection the server closed as we reused it
                    if attempt == 2:
                        raise
                    report.retries += 1
            report.http_5xx += response.status_code >= 500
            return response

        started, submitted_at = time.perf_counter(), time.time()  # the client's clock: the same machine's
        keyed = [{"idempotency_key": f"load-{uuid.uuid4().hex}", **body} for body in bodies]  # safe to send again
        replies = await asyncio.gather(*(call("POST", "/v1/tasks", json=body) for body in keyed))
        ids = [r.json()["id"] for r in replies if r.status_code == 202]
        report.submitted, report.refused = len(ids), len(replies) - len(ids)
        pending, deadline = set(ids), time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            for offset in range(0, len(ids) + 500, 500):
                page = (await call("GET", "/v1/tasks", params={"limit": 500, "offset": offset})).json()["tasks"]
                pending -= {t["id"] for t in page if t["status"] in TERMINAL}
        report.wall_s = time.perf_counter() - started
        for task_id in ids:
            task = (await call("GET", f"/v1/tasks/{task_id}")).json()
            if task["status"] in TERMINAL:
                report.statuses[task["status"]] += 1
                report.latencies_s.append(task["updatedAt"] - submitted_at)
    return report
