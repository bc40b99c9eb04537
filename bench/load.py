"""Load: 1 000 tasks submitted at once to the client, hiring two echo contractors; each service in its own process
on 127.0.0.1. Reports what ended how, throughput, latency from submission to the end, and the client's memory.

    python bench/load.py [--tasks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading

import httpx
import psutil
from client_throughput import SUBTASK
from processes import echo_contractor, start, stop

from coalesce.loadgen import load
from shared.workers.local_model import free_port


def sample_memory(pid: int, samples: list[float], done: threading.Event) -> None:
    process = psutil.Process(pid)
    while not done.wait(0.25):
        samples.append(process.memory_info().rss / 2**20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        ports = [free_port() for _ in range(3)]
        contractors = [echo_contractor(port, 64) for port in ports[:2]]
        client_url = f"http://127.0.0.1:{ports[2]}/"
        bench = __file__.replace("load.py", "client_throughput.py")
        client = start(
            [sys.executable, bench, "--serve", str(ports[2]), f"sqlite:///{scratch}/load.db"], client_url + "health"
        )
        try:
            for port in ports[:2]:
                card_url = f"http://127.0.0.1:{port}/"
                registered = httpx.post(client_url + "v1/contractors", json={"card_url": card_url}, timeout=30)
                assert registered.status_code == 201, registered.text
            samples: list[float] = [psutil.Process(client.pid).memory_info().rss / 2**20]
            done = threading.Event()
            threading.Thread(target=sample_memory, args=(client.pid, samples, done), daemon=True).start()
            body = {"description": "bench", "subtasks": [SUBTASK], "budget_usd": 1.0}
            report = asyncio.run(load(client_url, [body] * args.tasks))
            done.set()
            after = psutil.Process(client.pid).memory_info().rss / 2**20
        finally:
            stop(client, *contractors)
    latencies = sorted(report.latencies_s)
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else latencies[-1]
    print(f"\nload: {args.tasks} tasks at once, one echo subtask each, two echo contractors, 127.0.0.1\n")
    print("| tasks | completed | failed | lost | 5xx | refused | retries | wall s | tasks/s | p50 s | p99 s "
          "| client RSS MiB before / peak / after |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {args.tasks} | {report.statuses['completed']} | {report.statuses['failed']} | {report.lost} "
        f"| {report.http_5xx} | {report.refused} | {report.retries} | {report.wall_s:.1f} "
        f"| {report.submitted / report.wall_s:.1f} | {statistics.median(latencies):.2f} | {p99:.2f} "
        f"| {samples[0]:.0f} / {max(samples):.0f} / {after:.0f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
