"""Contractor throughput and SSE time to first event, ours beside the official a2a-sdk server, in one run.

The servers do the same trivial work (echo the message back as an artifact), each in its own process under
uvicorn on 127.0.0.1: the a2a-sdk with its in-memory task store and with its SQL task store on an SQLite file;
ours with its tasks on an SQLite file, durable (group commit, synchronous=FULL) before any answer; and a bare ASGI
app that answers without doing anything, the ceiling. The load comes from wrk (Debian package `wrk`) with the same
connections and duration.

    python bench/contractor_throughput.py [--connections 16] [--seconds 10] [--streams 200]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from processes import echo_contractor, start, stop

from shared.workers.local_model import free_port

WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["A2A-Version"] = "1.0"
local counter = 0
local method = os.getenv("BENCH_METHOD")
request = function()
  counter = counter + 1
  local id = string.format("%d-%d-%d", os.time(), math.random(1, 1e9), counter)
  local body
  if method == "tasks/send" then
    body = '{"jsonrpc":"2.0","id":1,"method":"tasks/send","params":{"id":"' .. id ..
      '","message":{"role":"user","parts":[{"type":"text","text":"hello"}]}}}'
  else
    body = '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"' .. id ..
      '","role":"ROLE_USER","parts":[{"text":"hello"}]}}}'
  end
  return wrk.format(nil, nil, nil, body)
end
local errors = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, "COMPLETED") and not string.find(body, '"completed"') then
    errors = errors + 1
  end
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH_ERRORS %d\n", errors))
end
"""


def run_wrk(url: str, method: str, connections: int, seconds: int, script: Path) -> tuple[float, float, int]:
    """requests/s, p50 latency ms, error count (non-200 or a task that did not complete)."""
    result = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env={"BENCH_METHOD": method, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))
    p50_value, p50_unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", result.stdout).groups()
    p50 = float(p50_value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50_unit]
    errors = int(re.search(r"BENCH_ERRORS (\d+)", result.stdout).group(1))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)) else 0
    return rps, p50, errors


def time_to_first_event(url: str, count: int) -> list[float]:
    """Seconds from sending SendStreamingMessage to the first SSE data line, `count` times in a row."""
    times = []
    with httpx.Client(timeout=30, headers={"A2A-Version": "1.0"}) as client:
        for _ in range(count):
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendStreamingMessage",
                "params": {
                    "message": {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hello"}]}
                },
            }
            started = time.perf_counter()
            with client.stream("POST", url, json=body) as response:
                first = None
                for line in response.iter_lines():  # read to the end: the server must close the stream
                    if first is None and line.startswith("data:"):
                        first = time.perf_counter() - started
                        json.loads(line[5:])
                times.append(first)
    return times


def sdk_server(port: int, sqlite_path: Path | None = None) -> subprocess.Popen[bytes]:
    store = [str(sqlite_path)] if sqlite_path else []
    command = [sys.executable, "bench/a2a_sdk_echo_server.py", str(port), *store]
    return start(command, f"http://127.0.0.1:{port}/.well-known/agent-card.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("this benchmark needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    ports = {name: free_port() for name in ("ours", "sdk", "sdk-sqlite", "bare")}
    state = Path(tempfile.mkdtemp(prefix="coalesce-bench-sdk-"))
    servers = {
        "ours": echo_contractor(ports["ours"], args.connections * 4),
        "sdk": sdk_server(ports["sdk"]),
        "sdk-sqlite": sdk_server(ports["sdk-sqlite"], state / "tasks.db"),
        "bare": start([sys.executable, "bench/bare_asgi.py", str(ports["bare"])], f"http://127.0.0.1:{ports['bare']}/"),
    }
    runs = (
        ("a2a-sdk 1.3, in memory", "sdk", "SendMessage"),
        ("a2a-sdk 1.3, SQLite", "sdk-sqlite", "SendMessage"),
        ("COALESCE, SQLite", "ours", "SendMessage"),
        ("COALESCE, SQLite", "ours", "tasks/send"),
        ("bare ASGI (the ceiling)", "bare", "SendMessage"),
    )
    rows = []
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(WRK_SCRIPT)
            script.flush()
            lua = Path(script.name)
            for name, server, method in runs:
                url = f"http://127.0.0.1:{ports[server]}/"
                run_wrk(url, method, args.connections, 2, lua)  # warm-up
                rps, p50, errors = run_wrk(url, method, args.connections, args.seconds, lua)
                streams = method == "SendMessage" and server != "bare"
                ttfe = time_to_first_event(url, args.streams) if streams else []
                rows.append((name, method, rps, p50, errors, ttfe))
    finally:
        stop(*servers.values())
    base_rps, sql_rps = rows[0][2], rows[1][2]
    base_ttfe = statistics.median(rows[0][5])
    print(
        f"\ncontractor benchmark: echo work, wrk -t1 -c{args.connections} -d{args.seconds}s, "
        f"{args.streams} sequential streams, 127.0.0.1\n"
    )
    print(
        "| server | method | requests/s | x a2a-sdk in memory | x a2a-sdk SQLite | p50 ms | errors "
        "| SSE first event p50 ms | p95 ms | x a2a-sdk |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, method, rps, p50, errors, ttfe in rows:
        if ttfe:
            t50, t95 = statistics.median(ttfe) * 1000, statistics.quantiles(ttfe, n=20)[18] * 1000
            stream = f"{t50:.2f} | {t95:.2f} | {t50 / 1000 / base_ttfe:.2f}"
        else:
            stream = "- | - | -"
        ratios = f"{rps / base_rps:.2f} | {rps / sql_rps:.2f}"
        print(f"| {name} | {method} | {rps:.0f} | {ratios} | {p50:.2f} | {errors} | {stream} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
