"""The local market as processes: the embedded models, the contractors of `agent_cards/` and the client, each
a `coalesce` command in its own process group (the same commands `docker-compose.yml` runs), stopped together.

`market_services` is the one list of what the market runs; `tests/test_market.py` checks the compose file
against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalesce.attest import ITEMS_PER_SKILL, MarketAttestor, attestor_id
from shared.a2a.cards import FetchPolicy
from shared.runtime.processes import die_with_parent
from shared.security.keys import load_or_create
from shared.workers.local_model import GEMMA_ALIAS, MODEL_ALIAS

CARDS_DIR = Path(__file__).resolve().parent.parent / "agent_cards"
CONTRACTOR_CARDS = (
    "finance_lexicon",  # specialists
    "document_extractor",
    "cpu_optimised",
    "quantum_optimisation",
    "gpu_specialist",  # generalists: SmolLM2, Gemma 3 270M, the premium vote and the sloppy tier
    "edge_computing",
    "gemma_fewshot",
    "cloud_services",
    "budget_provider",
)
STATE_FILE = "market.json"
ATTESTOR_KEY = "attestor-ed25519.pem"
URL_LINE = re.compile(r"at (http://[\w.\-]+:\d+/(?:v1)?)")


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the market: its name (as in the compose file) and its `coalesce` command, without where it
    listens (host, port, public URL) and without the contractors' addresses."""

    name: str
    args: tuple[str, ...]


def contractor_service_name(card: str) -> str:
    return card.replace("_", "-")


def market_services(cards_dir: str = "agent_cards", strategy: str = "thompson") -> list[ServiceSpec]:
    contractors = [
        ServiceSpec(contractor_service_name(card), ("contractor", "serve", "--card", f"{cards_dir}/{card}.json"))
        for card in CONTRACTOR_CARDS
    ]
    client = ServiceSpec(
        "client",
        (
            "client",
            "serve",
            "--strategy",
            strategy,
            "--allow-private-contractors",
        ),
    )
    models = [ServiceSpec("llm", ("llm", "serve")), ServiceSpec("llm-gemma", ("llm", "serve", "--model", GEMMA_ALIAS))]
    return [*models, *contractors, client]


@dataclass
class Process:
    name: str
    role: str  # llm, contractor or client
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""


@dataclass
class Market:
    """Start with `start()` (or `with Market(...) as market:`), stop with `stop()`: every process group gets
    SIGTERM, then SIGKILL after `grace_s`.

    With its client, the market has an attestor the client trusts (its key in `keys/`): once the market is up,
    it measures every contractor's skills on `items_per_skill` fresh items in the background (logs/attestor.log)
    and writes each certificate where the contractor reads it (`certificates/NAME.json`), kept for the next
    start while valid. `items_per_skill=0`: no attestor."""

    state_dir: Path
    cards_dir: Path = CARDS_DIR
    strategy: str = "thompson"
    extra_contractors: list[Path] = field(default_factory=list)
    with_client: bool = True  # False: the caller starts its own clients (the validation run)
    items_per_skill: int = ITEMS_PER_SKILL
    boot_timeout_s: float = 180.0
    grace_s: float = 10.0
    processes: list[Process] = field(default_factory=list)
    llm_env: dict[str, str] = field(default_factory=dict)
    attesting: threading.Thread | None = None

    def __enter__(self) -> Market:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def client_url(self) -> str:
        return next(p.url for p in self.processes if p.name == "client")

    def contractor_urls(self) -> dict[str, str]:
        return {p.name: p.url for p in self.processes if p.role == "contractor"}

    def spawn(self, name: str, role: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        """Run `coalesce ARGS` in a new process group, output to `logs/NAME.log`; wait for the URL it prints."""
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "coalesce.cli", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
                preexec_fn=die_with_parent,  # a market killed with -9 leaves no process behind
            )
        process = Process(name, role, popen, log)
        self.processes.append(process)
        deadline = time.monotonic() + self.boot_timeout_s
        while time.monotonic() < deadline:
            match = URL_LINE.search(log.read_text(errors="replace"))
            if match:
                process.url = match.group(1)
                return process
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited with {popen.returncode}; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{name} printed no URL within {self.boot_timeout_s:g} s; see {log}")

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        services = {s.name: s for s in market_services(str(self.cards_dir), self.strategy)}
        llm = self.spawn("llm", "llm", [*services["llm"].args, "--port", "0"])
        gemma = self.spawn("llm-gemma", "llm", [*services["llm-gemma"].args, "--port", "0"])
        self.llm_env = {
            "COALESCE_LLM_BASE_URL": llm.url,
            "COALESCE_LLM_MODEL": MODEL_ALIAS,
            "COALESCE_LLM_SCHEMA_STYLE": "llama.cpp",
            "COALESCE_COMPLETION_BASE_URL": gemma.url,
            "COALESCE_COMPLETION_MODEL": GEMMA_ALIAS,
        }
        for card in CONTRACTOR_CARDS:
            name = contractor_service_name(card)
            self.start_contractor(name, list(services[name].args))
        for path in self.extra_contractors:
            self.start_contractor(path.stem.replace("_", "-"), ["contractor", "serve", "--card", str(path)])
        if self.with_client:
            attestor = self.attestor_key() if self.items_per_skill else None
            trust = [trusting(attestor)] if attestor else []
            self.start_client([*services["client"].args, *trust], self.state_dir / "client.db")
            self.wait_ready()
            (self.state_dir / STATE_FILE).write_text(json.dumps(self.describe(), indent=2))
            if attestor:
                self.attest(attestor)

    def attestor_key(self) -> Ed25519PrivateKey:
        key = load_or_create(self.state_dir / "keys" / ATTESTOR_KEY, Ed25519PrivateKey)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def attest(self, key: Ed25519PrivateKey) -> None:
        """The market's attestor at work in the background (see the class)."""
        attestor = MarketAttestor(
            key, self.state_dir / "certificates", self.client_url, FetchPolicy(allow_private=True), self.items_per_skill
        )
        log = self.state_dir / "logs" / "attestor.log"

        def report(line: str) -> None:
            with log.open("a") as out:
                out.write(f"{time.strftime('%H:%M:%S')} {line}\n")

        work = attestor.run(self.contractor_urls(), report)
        self.attesting = threading.Thread(target=asyncio.run, args=(work,), name="attestor", daemon=True)
        self.attesting.start()

    def start_contractor(self, name: str, args: list[str]) -> Process:
        key_dir, db = self.state_dir / "keys" / name, f"sqlite:///{self.state_dir / name}.db"
        certificate = self.state_dir / "certificates" / f"{name}.json"
        where = ["--port", "0", "--key-dir", str(key_dir), "--db", db, "--skill-certificate", str(certificate)]
        return self.spawn(name, "contractor", [*args, *where], self.llm_env)

    def start_client(self, args: list[str], db: Path, name: str = "client") -> Process:
        contractors = [x for url in self.contractor_urls().values() for x in ("--contractor", url)]
        return self.spawn(name, "client", [*args, "--port", "0", "--db", f"sqlite:///{db}", *contractors], self.llm_env)

    def wait_ready(self, client: str | None = None) -> None:
        """Until the client has registered every contractor."""
        url, wanted = client or self.client_url, len(self.contractor_urls())
        deadline = time.monotonic() + self.boot_timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if len(httpx.get(url + "v1/contractors", timeout=5).json()["contractors"]) >= wanted:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"the client did not register {wanted} contractors within {self.boot_timeout_s:g} s")

    def describe(self) -> dict[str, Any]:
        return {
            "client": self.client_url,
            "llm": self.llm_env.get("COALESCE_LLM_BASE_URL"),
            "contractors": self.contractor_urls(),
            "pids": {p.name: p.popen.pid for p in self.processes},
        }

    def stop_process(self, process: Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=self.grace_s)
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group (a model server child)
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()
        self.processes.remove(process)

    def stop(self) -> None:
        """Every process group at once: SIGTERM to all, then each waited for within one grace period."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for process in reversed(list(self.processes)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for process in list(self.processes):  # whatever is left of each group (a model server child) after the grace
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()
            self.processes.remove(process)
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / STATE_FILE).unlink()


def running_client(state_dir: Path) -> str | None:
    """The URL of the client of a market already up from `state_dir`, if it answers."""
    try:
        url = json.loads((state_dir / STATE_FILE).read_text())["client"]
        httpx.get(url + "health", timeout=3).raise_for_status()
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None
    return url


def market_table(http: httpx.Client) -> str:
    """The market as the client sees it: one line per contractor."""
    rows = http.get("/v1/market", timeout=10).json()["contractors"]
    lines = [
        f"{'contractor':<22} {'skills':>6} {'quote $':>9} {'load':>9} {'reliab.':>8} {'hires':>6} {'e2e':>4} signed"
    ]
    for row in sorted(rows, key=lambda r: r["name"]):
        load = row.get("load") or {}
        lines.append(
            f"{row['name'][:22]:<22} {len(row['skills']):>6} {row['quoteUsd'] or 0:>9.5f} "
            f"{load.get('running', 0)}+{load.get('queued', 0)}/{load.get('maxConcurrent', 0):<5} "
            f"{row['reliability']:>8.3f} {row['hires']:>6} {'yes' if row.get('endToEnd') else 'no':>4} "
            f"{'yes' if row.get('signingKey') else 'no'}"
        )
    return "\n".join(lines)


def trusting(attestor: Ed25519PrivateKey) -> str:
    """The client's argument that trusts `attestor`, in one word: a key id may begin with "-" (base64url), which
    argparse would take for an option if it came as a word of its own."""
    return f"--trust-attestor={attestor_id(attestor)}"
