"""The local market: `coalesce market up` as a user runs it (real processes, the embedded model, six contractors,
the client), a contractor joining at runtime, the demo set through it, and a shutdown that leaves nothing behind;
and the compose file describing the same services."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import yaml

from coalesce.demo import demo
from coalesce.market import CONTRACTOR_CARDS, market_services
from tests.conftest import CARDS, ROOT

LISTENING = {"--host", "--port", "--public-url", "--db", "--contractor"}  # where a service listens, and its peers


def without_listening(command: list[str]) -> tuple[str, ...]:
    kept, skip = [], False
    for arg in command:
        if skip:
            skip = False
        elif arg in LISTENING:
            skip = True
        else:
            kept.append(arg)
    return tuple(kept)


def test_compose_file_runs_the_services_market_up_runs():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    expected = {spec.name: spec.args for spec in market_services()}
    assert set(services) == set(expected)
    for name, args in expected.items():
        assert without_listening(services[name]["command"]) == args, name
    client = services["client"]["command"]
    peers = [urlsplit(client[i + 1]).hostname for i, arg in enumerate(client) if arg == "--contractor"]
    assert sorted(peers) == sorted(card.replace("_", "-") for card in CONTRACTOR_CARDS)
    if shutil.which("docker-compose"):  # Debian's docker-compose validates the file (CI installs it)
        checked = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"])
        assert checked.returncode == 0


def newcomer_card(path: Path) -> Path:
    """A new quant contractor, cheaper than the market's."""
    card = json.loads((CARDS / "cpu_optimised.json").read_text())
    card["name"] = "Newcomer Quant"
    params = card["capabilities"]["extensions"][0]["params"]
    params["price"] = {"baseUsd": 0.0000005, "perComputeSecondUsd": 0.00001, "surgeAlpha": 0.2}
    path.write_text(json.dumps(card))
    return path


def read_url(process: subprocess.Popen[str], pattern: str, timeout: float = 240) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    raise AssertionError(f"no {pattern!r} in {''.join(seen)[-3000:]}")


def port_free(url: str) -> bool:
    """A new server can listen on the port again (as servers do, with SO_REUSEADDR: TIME_WAIT is no obstacle)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", urlsplit(url).port or 0))
        except OSError:
            return False
    return True


def coalesce(*args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "coalesce.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def wait_for_certificates(client: str, wanted: int, timeout_s: float = 300) -> dict[str, dict]:
    """The certified skills of each contractor, once the market's attestor has certified `wanted` of them (it
    starts when the market is up and works beside the demo)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = httpx.get(client + "v1/market", timeout=30).json()["contractors"]
        certified = {row["name"]: row["certified"] for row in rows if row["certified"]}
        if len(certified) >= wanted or time.monotonic() > deadline:
            assert len(certified) >= wanted, sorted(certified)
            return certified
        time.sleep(2)


def test_market_up_runs_the_demo_set_takes_a_newcomer_and_stops_clean(tmp_path):
    state = tmp_path / "market"
    market = coalesce("market", "up", "--state-dir", str(state), "--refresh", "2")
    try:
        client = read_url(market, r"market ready (http://127\.0\.0\.1:\d+/)")
        tree = psutil.Process(market.pid).children(recursive=True)
        processes = [p for p in tree if "coalesce.cli" in " ".join(p.cmdline())]
        assert len(processes) == 12  # 2 models, 9 contractors, 1 client
        described = json.loads((state / "market.json").read_text())
        urls = [client, described["llm"], *described["contractors"].values()]

        newcomer = coalesce(
            "contractor", "serve", "--card", str(newcomer_card(tmp_path / "my_card.json")),
            "--key-dir", str(tmp_path / "newcomer-keys"),
        )  # fmt: skip
        try:
            newcomer_url = read_url(newcomer, r"at (http://127\.0\.0\.1:\d+/)")
            registered = subprocess.run(
                [sys.executable, "-m", "coalesce.cli", "market", "register", newcomer_url, "--state-dir", str(state)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert registered.returncode == 0, registered.stderr
            assert "Newcomer Quant" in registered.stdout

            lines: list[str] = []
            market_run, alone = demo(client, lines.append)
            report = "\n".join(lines)
            assert market_run.subtasks == alone.subtasks == 22, report
            numeric = [
                r for r in (*market_run.rows, *alone.rows) if r.kind in ("risk-assessment", "portfolio-optimisation")
            ]
            assert all(r.verified and r.grade == 1.0 for r in numeric), report  # numbers are checkable: always right
            assert all(r.action == "local" and r.where == "local" for r in alone.rows), report  # no one else, ever
            assert "saving against all-local, measured" in report and "per correct answer" in report
            with httpx.Client(base_url=client, timeout=30) as http:
                contractors = {c["id"]: c["name"] for c in http.get("/v1/contractors").json()["contractors"]}
                ledger = http.get("/v1/ledger").json()
                view = http.get("/v1/market").json()
            assert len(contractors) == 10
            newcomer_id = next(cid for cid, name in contractors.items() if name == "Newcomer Quant")
            listed = next(c for c in view["contractors"] if c["id"] == newcomer_id)  # considered, and known per skill
            assert {c["skill"] for c in listed["competence"]} >= {"risk-assessment", "portfolio-optimisation"}
            assert {c["skill"] for c in view["local"]["competence"]} >= {"risk-assessment", "sentiment-analysis"}
            assert sum(ledger["balances"].values()) == pytest.approx(0.0, abs=1e-9)
            assert ledger["balances"]["escrow"] == pytest.approx(0.0, abs=1e-9)
            certified = wait_for_certificates(client, len(CONTRACTOR_CARDS))
            quant = certified["CPU Optimised"]  # measured on fresh items: real workers get every one right
            assert {skill: m["score"] for skill, m in quant.items()} == dict.fromkeys(quant, 1.0)
            assert set(quant) == {"risk-assessment", "portfolio-optimisation", "similarity-search"}
            assert len(list((state / "certificates").glob("*.json"))) == len(CONTRACTOR_CARDS)
        finally:
            newcomer.send_signal(signal.SIGTERM)
            newcomer.wait(timeout=30)

        table_seen = read_url(market, r"(Newcomer Quant)", timeout=30)  # the live table shows the newcomer
        assert table_seen
        market.send_signal(signal.SIGINT)  # Ctrl-C
        market.communicate(timeout=60)  # read what it still prints, as a terminal would (a full pipe blocks it)
        time.sleep(0.5)
        assert [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert [url for url in urls if not port_free(url)] == []
        assert not (state / "market.json").exists()
    finally:
        if market.poll() is None:
            market.kill()
