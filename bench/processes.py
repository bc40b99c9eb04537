"""The services a benchmark measures, each started in its own process on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def start(command: list[str], ready_url: str, timeout_s: float = 90.0) -> subprocess.Popen[bytes]:
    """Start `command` and wait until `ready_url` answers 200."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def echo_contractor(port: int, capacity: int) -> subprocess.Popen[bytes]:
    """A contractor whose every skill is the echo worker, with room for `capacity` tasks; its own keys and task
    database (two of them are two agents: an agent is who its signing key says)."""
    state = Path(tempfile.gettempdir()) / f"coalesce-bench-echo-{port}"
    command = [sys.executable, "-m", "coalesce.cli", "contractor", "serve", "--card", "agent_cards/edge_computing.json",
               "--worker", "echo", "--port", str(port), "--max-concurrent", str(capacity), "--max-queued",
               str(capacity), "--key-dir", str(state / "keys"), "--db", f"sqlite:///{state}/tasks.db"]  # fmt: skip
    return start(command, f"http://127.0.0.1:{port}/health")


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
        process.wait(timeout=20)
