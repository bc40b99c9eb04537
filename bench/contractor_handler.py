"""Where a contractor's request time goes without HTTP: its JSON-RPC handler driven directly, in one process.

`SendMessage` with echo work through `RpcHandler.handle` (what the HTTP endpoint calls), `--concurrency` requests
at a time on one event loop (uvloop, as uvicorn runs it), with the tasks kept in memory and with the SQLite task
store (group commit, synchronous=FULL: each answer waits for its task's commit). The difference from
`bench/contractor_throughput.py`'s requests/s is what the HTTP stack costs.

    python bench/contractor_handler.py [--requests 4000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import uvloop
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contractor_agent.admission import Limits
from contractor_agent.build import load_card
from contractor_agent.identity import Identity
from contractor_agent.metrics import ContractorMetrics
from contractor_agent.rpc import RpcHandler
from contractor_agent.store import SqlTaskStore, TaskStore
from contractor_agent.tasks import TaskManager
from shared.workers.base import EchoWorker

CARD = Path(__file__).resolve().parent.parent / "agent_cards" / "edge_computing.json"


def send_body() -> bytes:
    message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hello"}]}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}).encode()


async def handled_per_second(store: TaskStore | None, requests: int, concurrency: int) -> float:
    card = load_card(CARD)
    identity = Identity(signing_keys=[Ed25519PrivateKey.generate()])  # receipts signed, as in the HTTP benchmark
    limits = Limits(max_concurrent=64, max_queued=64)
    workers = {skill.id: EchoWorker() for skill in card.skills}
    manager = TaskManager(card, workers, limits, None, identity, ContractorMetrics(), store)
    handler = RpcHandler(manager)

    async def one() -> None:
        reply = await handler.handle(send_body(), "1.0", None)
        assert isinstance(reply, dict) and reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED", reply

    async def client(count: int) -> None:
        for _ in range(count):
            await one()

    await client(200)  # warm-up
    per_client = requests // concurrency
    started = time.perf_counter()
    await asyncio.gather(*(client(per_client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await manager.close()
    return per_client * concurrency / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print("| tasks kept | handled/s | µs per request |")
    print("| --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as scratch:
        for label, store in (
            ("in memory", None),
            ("SQLite (group commit, synchronous=FULL)", SqlTaskStore(f"sqlite:///{scratch}/tasks.db")),
        ):
            rate = uvloop.run(handled_per_second(store, args.requests, args.concurrency))
            if store is not None:
                store.close()
            print(f"| {label} | {rate:,.0f} | {1e6 / rate:.0f} |")


if __name__ == "__main__":
    main()
