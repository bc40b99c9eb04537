"""Wall time of a whole simulator preset (the paper's Table I: 17 configurations × 20 runs × 6 strategies).

python bench/simulator_speed.py [--preset paper-table1] [--runs 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from simulator.experiments import expand, main, preset


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper-table1")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default=None, help="keep the results here (default: a temporary folder)")
    args = parser.parse_args()
    jobs = expand(preset(args.preset), args.runs)
    tasks_days = sum(j.days * j.clients for j in jobs)
    with tempfile.TemporaryDirectory() as scratch:
        result = main(args.preset, Path(args.out or scratch), args.runs, quiet=True)
    rows = result["rows"]
    tasks = sum(r["tasks"] for r in rows)
    print("\n| preset | runs | simulations (config × run) | strategy-runs | tasks decided | workers | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.preset} | {args.runs} | {len(jobs)} | {len(rows)} | {tasks:,} | {os.cpu_count()} | "
        f"{result['seconds']:.1f} |"
    )
    print(f"\n({tasks_days:,.0f} client-days simulated)")
    return 0


if __name__ == "__main__":
    sys.exit(run())
