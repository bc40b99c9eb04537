"""Client throughput and the latency the client adds over hiring a contractor directly.

Starts an echo contractor (`coalesce contractor serve --worker echo`) and a client service (no local workers, so
every subtask is hired; SQLite file; the real embedding model), each in its own process on 127.0.0.1. Then:
- direct: `tasks/send` to the contractor, one after another, then `--concurrency` at once;
- through the client: `POST /v1/tasks` (one subtask) and its event stream until the task completes, the same way;
and the CPU time each process spent per task (less noisy than rates on a shared machine).

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
import psutil
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


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def row(name: str, concurrency: int, times: list[float], wall: float, cpu_ms: list[float | None]) -> str:
    """`cpu_ms`: the client's and the contractor's CPU time per task (None: not involved)."""
    p50 = statistics.median(times) * 1000
    p99 = statistics.quantiles(times, n=100)[98] * 1000 if len(times) >= 100 else max(times) * 1000
    cpu = " | ".join("-" if ms is None else f"{ms:.2f}" for ms in cpu_ms)
    return f"| {name} | {concurrency} | {len(times) / wall:.1f} | {p50:.1f} | {p99:.1f} | {cpu} |"


async def run(
    contractor: str, client: str, tasks: int, concurrency: int, processes: tuple[psutil.Process, psutil.Process]
) -> list[str]:
    """`processes`: the client's and the contractor's, whose CPU time each row reports per task."""
    rows = []
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency * 2 + 4)) as http:
        await through_client(http, client)  # warm-up: first embedding of the requirement
        for level in (1, concurrency):
            count = tasks
            for name, call, involved in (
                ("contractor directly (tasks/send)", lambda: direct(http, contractor), (False, True)),
                ("through the client (submit, stream to the end)", lambda: through_client(http, client), (True, True)),
            ):
                before = [cpu_s(p) for p in processes]
                times, wall = await measure(call, count, level)
                cpu_ms = [
                    (cpu_s(p) - b) * 1000 / count if used else None
                    for p, b, used in zip(processes, before, involved, strict=True)
                ]
                rows.append(row(name, level, times, wall, cpu_ms))
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
            processes = (psutil.Process(client.pid), psutil.Process(contractor.pid))
            rows = asyncio.run(run(contractor_url, client_url, args.tasks, args.concurrency, processes))
        finally:
            stop(client, contractor)
    print(f"\nclient benchmark: echo contractor, one subtask per task, {args.tasks} tasks, 127.0.0.1\n")
    print("| path | concurrency | tasks/s | p50 ms | p99 ms | client CPU ms/task | contractor CPU ms/task |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    direct_p50 = float(re.findall(r"\| ([\d.]+) \|", rows[0])[1])
    client_p50 = float(re.findall(r"\| ([\d.]+) \|", rows[1])[1])
    print(f"\nadded latency of the client at concurrency 1: {client_p50 - direct_p50:.1f} ms per task (p50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
