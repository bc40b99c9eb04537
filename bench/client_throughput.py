"""Client throughput and the latency the client adds over hiring a contractor directly.

Starts an echo contractor (`coalesce contractor serve --worker echo`) and a client service (no local workers, so
every subtask is hired; SQLite file; the real embedding model), each in its own process on 127.0.0.1. Then:
- direct: `tasks/send` to the contractor, one after another, then `--concurrency` at once;
- through the client: `POST /v1/tasks` (one subtask) and its event stream until the task completes, the same way.

    python bench/client_throughput.py [--tasks 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid

import httpx
from processes import echo_contractor, start, stop

SUBTASK = {
    "skill": "sentiment-analysis",
    "description": "sentiment of: a positive surprise",
    "required_skills": ["skill:sentiment-analysis"],
    "value_usd": 1.0,
}


def serve_client(port: int, db: str) -> None:
    """The client process: no local workers (everything is hired); served as `coalesce client serve` serves it."""
    from client_agent.api import create_app
    from client_agent.service import ClientConfig, ClientService
    from client_agent.storage import Store
    from shared.economics.skills import CachedEmbedder, SentenceTransformerEmbedder
    from shared.runtime.serving import bind_socket, serve_forever, uvicorn_server

    service = ClientService(
        Store(db),
        CachedEmbedder(SentenceTransformerEmbedder()),
        {},
        ClientConfig(strategy="ucb1", allow_private_contractors=True),  # otherwise as shipped: 32 tasks at a time
    )
    serve_forever(uvicorn_server(create_app(service)), bind_socket("127.0.0.1", port))


async def direct(http: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tasks/send",
        "params": {
            "id": uuid.uuid4().hex,
            "message": {"role": "user", "parts": [{"type": "text", "text": "positive"}]},
        },
    }
    reply = (await http.post(url, json=body)).json()
    assert reply["result"]["status"]["state"] == "completed", reply
    return time.perf_counter() - started


async def through_client(http: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    response = await http.post(url + "v1/tasks", json={"description": "bench", "subtasks": [SUBTASK]})
    task_id = response.json()["id"]
    async with http.stream("GET", f"{url}v1/tasks/{task_id}/events") as stream:
        async for _ in stream.aiter_lines():
            pass  # the stream ends when the task does
    elapsed = time.perf_counter() - started
    status = (await http.get(f"{url}v1/tasks/{task_id}")).json()["status"]
    assert status == "completed", status
    return elapsed


async def measure(call, count: int, concurrency: int) -> tuple[list[float], float]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> float:
        async with gate:
            return await call()

    started = time.perf_counter()
    times = await asyncio.gather(*(one() for _ in range(count)))
    return list(times), time.perf_counter() - started


def row(name: str, concurrency: int, times: list[float], wall: float) -> str:
    p50 = statistics.median(times) * 1000
    p99 = statistics.quantiles(times, n=100)[98] * 1000 if len(times) >= 100 else max(times) * 1000
    return f"| {name} | {concurrency} | {len(times) / wall:.1f} | {p50:.1f} | {p99:.1f} |"


async def run(contractor: str, client: str, tasks: int, concurrency: int) -> list[str]:
    rows = []
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency * 2 + 4)) as http:
        await through_client(http, client)  # warm-up: first embedding of the requirement
        for level in (1, concurrency):
            count = tasks if level > 1 else max(20, tasks // 5)
            times, wall = await measure(lambda: direct(http, contractor), count, level)
            rows.append(row("contractor directly (tasks/send)", level, times, wall))
            times, wall = await measure(lambda: through_client(http, client), count, level)
            rows.append(row("through the client (submit, stream to the end)", level, times, wall))
    return rows


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve_client(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    from shared.workers.local_model import free_port

    with tempfile.TemporaryDirectory() as scratch:
        contractor_port, client_port = free_port(), free_port()
        contractor_url, client_url = f"http://127.0.0.1:{contractor_port}/", f"http://127.0.0.1:{client_port}/"
        contractor = echo_contractor(contractor_port, 64)
        client = start(
            [sys.executable, __file__, "--serve", str(client_port), f"sqlite:///{scratch}/bench.db"],
            client_url + "health",
        )
        try:
            registered = httpx.post(client_url + "v1/contractors", json={"card_url": contractor_url}, timeout=30)
            assert registered.status_code == 201, registered.text
            rows = asyncio.run(run(contractor_url, client_url, args.tasks, args.concurrency))
        finally:
            stop(client, contractor)
    print(f"\nclient benchmark: echo contractor, one subtask per task, {args.tasks} tasks, 127.0.0.1\n")
    print("| path | concurrency | tasks/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    direct_p50 = float(re.findall(r"\| ([\d.]+) \|", rows[0])[1])
    client_p50 = float(re.findall(r"\| ([\d.]+) \|", rows[1])[1])
    print(f"\nadded latency of the client at concurrency 1: {client_p50 - direct_p50:.1f} ms per task (p50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
