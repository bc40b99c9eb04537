"""`coalesce contractor serve` as a user runs it: a real process, a free port, a clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx

from tests.conftest import CARDS, rpc


def test_contractor_serve_binds_a_free_port_and_stops_cleanly_on_sigterm():
    command = [
        sys.executable,
        "-m",
        "coalesce.cli",
        "contractor",
        "serve",
        "--card",
        str(CARDS / "cpu_optimised.json"),
        "--port",
        "0",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, line
        url = match.group(1)
        card = httpx.get(url + ".well-known/agent.json", timeout=10).json()
        assert card["url"] == url and card["name"] == "CPU Optimised"
        params = {
            "id": "cli-1",
            "message": {
                "role": "user",
                "parts": [
                    {
                        "type": "data",
                        "data": {"expected_returns": [0.1, 0.05], "covariance": [[0.02, 0], [0, 0.01]]},
                    }
                ],
            },
            "metadata": {"skill": "portfolio-optimisation"},
        }
        assert rpc(url, "tasks/send", params)["result"]["status"]["state"] == "completed"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_contractor_serve_reports_a_bad_card_clearly(tmp_path):
    bad = tmp_path / "card.json"
    bad.write_text('{"name": "x"}')
    result = subprocess.run(
        [sys.executable, "-m", "coalesce.cli", "contractor", "serve", "--card", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a valid agent card" in result.stderr
