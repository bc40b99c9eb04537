"""Contractor identity across restarts: `coalesce market up` three times on one state directory (the contractors
come back on new free ports, with the keys they keep there); how many records the client holds each time, how many
are in its market view, and how many of those quote nothing (a dead address).

    python bench/market_restarts.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def market_up(state: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "coalesce.cli", "market", "up", "--quiet", "--state-dir", str(state)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 600
    assert process.stdout is not None
    for line in process.stdout:
        if found := re.search(r"market ready (\S+)", line):
            return process, found.group(1)
        if time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGINT)
    raise SystemExit("the market did not come up within 600 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(1, args.runs + 1):
            process, url = market_up(Path(scratch))
            try:
                records = httpx.get(url + "v1/contractors", timeout=30).json()["contractors"]
                market = httpx.get(url + "v1/market", timeout=60).json()["contractors"]
            finally:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(timeout=60)
            statuses = Counter(r["status"] for r in records)
            silent = sum(1 for c in market if not c["quoteUsd"])
            rows.append((run, len(records), dict(statuses), len(market), silent))
    print("\n| run | records | by status | in the market view | quoting nothing |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for run, records_n, statuses_n, market_n, silent in rows:
        print(f"| {run} | {records_n} | {statuses_n} | {market_n} | {silent} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
