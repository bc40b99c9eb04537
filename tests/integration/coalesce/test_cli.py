"""`coalesce contractor serve` as a user runs it: a real process, a free port, a clean stop."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import CARDS, rpc, spawn


def test_contractor_serve_binds_a_free_port_and_stops_cleanly_on_sigterm(tmp_path):
    card_file = str(CARDS / "cpu_optimised.json")
    process, url = spawn(
        "contractor",
        "serve",
        "--card",
        card_file,
        "--port",
        "0",
        "--key-dir",
        str(tmp_path),
        "--db",
        f"sqlite:///{tmp_path}/tasks.db",
    )
    try:
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


def test_client_serve_registers_its_contractors_at_start(cpu_contractor: str, local_llm, tmp_path):
    process, url = spawn(
        "client",
        "serve",
        "--port",
        "0",
        "--db",
        f"sqlite:///{tmp_path}/c.db",
        "--contractor",
        cpu_contractor,
        "--allow-private-contractors",
        llm=local_llm,
    )
    try:
        deadline = time.monotonic() + 60
        contractors: list = []
        while not contractors:
            assert time.monotonic() < deadline
            with contextlib.suppress(httpx.HTTPError):
                contractors = httpx.get(url + "v1/contractors", timeout=5).json()["contractors"]
            time.sleep(0.2)
        assert [c["name"] for c in contractors] == ["CPU Optimised"]
        assert httpx.get(url + "docs", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
