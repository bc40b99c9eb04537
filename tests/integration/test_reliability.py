"""Reliability: kill -9 either side mid-task and restart it; faults a contractor can show (a cut network, a hang,
wrong or malformed artifacts, an over-charge); load; hostile input. Nothing is lost, nothing is paid twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from contractor_agent.store import SqlTaskStore
from shared.a2a.models import Artifact, Part
from shared.workers.base import EchoWorker, StatelessWorker, Usage, Worker, WorkRequest, WorkResult, data_artifact
from shared.workers.compute import ComputeWorker, value_at_risk
from shared.workers.local_model import free_port
from tests.conftest import CARDS, RISK, StartContractor, card_named, rpc, subtask

SLOW_RISK = {**RISK, "simulations": 5_000_000, "horizon_days": 250}
TERMINAL = ("completed", "failed", "canceled")


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """`coalesce ARGS` in its own process; returns it and its URL once it printed it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "coalesce.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    assert match, line
    return process, match.group(1)


def contractor_process(tmp_path: Path, port: int, db: str) -> subprocess.Popen[str]:
    return serve(
        "contractor", "serve", "--card", str(CARDS / "cpu_optimised.json"), "--port", str(port),
        "--db", db, "--key-dir", str(tmp_path / "keys"),
    )[0]  # fmt: skip


def kill9(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def send(url: str, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Legacy `tasks/send` (blocking), the client choosing the task id."""
    message = {"role": "user", "messageId": f"m-{task_id}", "parts": [{"kind": "data", "data": data}]}
    return rpc(url, "tasks/send", {"id": task_id, "message": message, "metadata": {"skill": "risk-assessment"}})


def start(url: str, data: dict[str, Any]) -> str:
    """v0.3 `message/send`, non-blocking: the new task's id as soon as it is accepted."""
    message = {"role": "user", "messageId": "m-start", "kind": "message", "parts": [{"kind": "data", "data": data}]}
    params = {"message": message, "configuration": {"blocking": False}, "metadata": {"skill": "risk-assessment"}}
    return rpc(url, "message/send", params)["result"]["id"]


# ---------------------------------------------------------------- crashes


def test_contractor_killed_mid_task_keeps_finished_tasks_and_fails_the_unfinished_one(tmp_path, database):
    port, db = free_port(), database("contractor")
    url = f"http://127.0.0.1:{port}/"
    contractor = contractor_process(tmp_path, port, db)
    try:
        done = send(url, "before-crash", RISK)["result"]
        assert done["status"]["state"] == "completed"
        slow = start(url, SLOW_RISK)
        wait_for(lambda: rpc(url, "tasks/get", {"id": slow})["result"]["status"]["state"] == "working")
        kill9(contractor)  # mid-task
        contractor = contractor_process(tmp_path, port, db)  # the same database, the same address
        again = rpc(url, "tasks/get", {"id": "before-crash"})["result"]
        assert again["status"]["state"] == "completed" and again["artifacts"] == done["artifacts"]
        lost = rpc(url, "tasks/get", {"id": slow})["result"]
        assert lost["status"]["state"] == "failed"
        assert "restarted" in json.dumps(lost["status"]["message"]) and lost["metadata"]["coalesce"]["costUsd"] == 0
        refused = send(url, "before-crash", RISK)["error"]  # the same task id again: no second execution
        assert refused["code"] == -32004
    finally:
        contractor.terminate()
        contractor.wait(timeout=30)


def test_every_task_answered_survives_a_kill_right_after_its_answer(tmp_path, database):
    """Group commit: answers wait for the batch that holds their task to be on disk, so a kill -9 the moment the
    last of many concurrent answers arrives loses none of them."""
    port, db = free_port(), database("contractor")
    url = f"http://127.0.0.1:{port}/"
    contractor = contractor_process(tmp_path, port, db)
    try:
        with ThreadPoolExecutor(16) as pool:  # within the card's 4 running + 16 queued
            answers = list(pool.map(lambda i: send(url, f"burst-{i}", RISK)["result"], range(48)))
        kill9(contractor)
        assert {a["status"]["state"] for a in answers} == {"completed"}
        contractor = contractor_process(tmp_path, port, db)
        for answer in answers:
            again = rpc(url, "tasks/get", {"id": answer["id"]})["result"]
            assert again["status"]["state"] == "completed" and again["artifacts"] == answer["artifacts"]
    finally:
        contractor.terminate()
        contractor.wait(timeout=30)


def test_every_task_acknowledged_at_once_survives_a_kill_right_after_its_acknowledgement(tmp_path, database):
    """A non-blocking send is answered once its new task is on disk: a kill -9 the moment the last answer arrives
    loses none of them, the queued ones included (they come back failed and uncharged: the restart ended them)."""
    port, db = free_port(), database("contractor")
    url = f"http://127.0.0.1:{port}/"
    contractor = contractor_process(tmp_path, port, db)
    try:
        with ThreadPoolExecutor(16) as pool:  # 4 run, 12 wait for a place: the card's 4 running + 16 queued
            ids = list(pool.map(lambda i: start(url, SLOW_RISK), range(16)))
        kill9(contractor)
        contractor = contractor_process(tmp_path, port, db)
        states = [rpc(url, "tasks/get", {"id": task_id}).get("result", {}).get("status", {}) for task_id in ids]
        assert [s.get("state") for s in states] == ["failed"] * 16, states
    finally:
        contractor.terminate()
        contractor.wait(timeout=30)


def test_client_killed_mid_hire_resumes_and_settles_every_escrow_exactly_once(tmp_path, local_llm, database):
    port, contractor_db = free_port(), database("contractor")
    contractor = contractor_process(tmp_path, port, contractor_db)
    db = database("client")
    env = {"COALESCE_LLM_BASE_URL": local_llm.base_url or "", "COALESCE_LLM_MODEL": local_llm.model}
    client_args = (
        "client",
        "serve",
        "--port",
        "0",
        "--db",
        db,
        "--local-skills",
        "llm",
        "--allow-private-contractors",
        "--no-probes",
    )
    client, url = serve(*client_args, "--contractor", f"http://127.0.0.1:{port}/", env=env)
    try:
        wait_for(lambda: httpx.get(url + "v1/contractors", timeout=5).json()["contractors"], timeout=60)
        body = {
            "description": "Risk of the big fund",
            "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=SLOW_RISK)],
            "budget_usd": 1.0,
            "idempotency_key": "big-fund-1",
        }
        task_id = httpx.post(url + "v1/tasks", json=body, timeout=10).json()["id"]
        wait_for(lambda: _events(url, task_id, "dispatch"))
        wait_for(lambda: (_task(url, task_id)["subtasks"] or [{}])[0].get("a2aTaskId"))  # the contractor named it
        kill9(client)  # mid-hire: escrow reserved, nothing settled
        client, url = serve(*client_args, env=env)  # the same database; the contractor is remembered
        task = wait_for(lambda: (t := _task(url, task_id))["status"] in TERMINAL and t, timeout=120)
        assert task["status"] == "completed", task
        (sub,) = task["subtasks"]
        attempts = sub["attempts"]
        assert attempts[0]["ok"] is False and "restart" in attempts[0]["reason"] and attempts[-1]["ok"] is True
        ledger = httpx.get(url + "v1/ledger", timeout=10).json()
        kinds = Counter(e["kind"] for e in ledger["entries"] if e["account"] == "escrow")
        assert kinds["reserve"] == len(attempts) and kinds["refund"] == len(attempts) - 1 and kinds["release"] == 1
        assert sum(ledger["balances"].values()) == pytest.approx(0.0, abs=1e-9)
        assert ledger["balances"]["escrow"] == pytest.approx(0.0, abs=1e-9)
        again = httpx.post(url + "v1/tasks", json=body, timeout=10)  # the same idempotency key: the same task
        assert again.status_code == 202 and again.json()["id"] == task_id
        assert len(httpx.get(url + "v1/ledger", timeout=10).json()["entries"]) == len(ledger["entries"])
        assert any(e["kind"] == "recovered" for e in _events(url, task_id))
        # the interrupted hire, on the end-to-end channel, was canceled at the contractor with the channel's owner
        # token the client kept (and never shows)
        assert "a2aChannelToken" not in json.dumps(task) and len(attempts) == 2
        store = SqlTaskStore(contractor_db)
        rows = {row["id"]: row for row in store.load(10)}
        store.close()
        second = rows.pop(sub["a2aTaskId"])
        ((_, first),) = rows.items()
        recovered = next(e for e in _events(url, task_id) if e["kind"] == "recovered")
        assert second["task"]["status"]["state"] == "completed"
        # canceled, unless it had finished before the restarted client could cancel it (it runs about 17 s)
        assert first["task"]["status"]["state"] == "canceled" or first["updated_at"] < recovered["at"]
    finally:
        for process in (client, contractor):
            process.terminate()
            process.wait(timeout=30)


def _task(url: str, task_id: str) -> dict[str, Any]:
    return httpx.get(f"{url}v1/tasks/{task_id}", timeout=10).json()


def _events(url: str, task_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    events = []
    with httpx.stream("GET", f"{url}v1/tasks/{task_id}/events", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if kind is not None and event["kind"] == kind:
                    return events
    return [] if kind is not None else events


# ---------------------------------------------------------------- faults


class Proxy:
    """A TCP proxy on loopback between the client and a contractor; `cut()` drops every connection and refuses new
    ones: the network between them fails mid-task."""

    def __init__(self) -> None:
        self.target_port = 0  # set once the contractor behind it listens
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.sockets: list[socket.socket] = []
        self.cut_done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_done.is_set():
            try:
                inbound, _ = self.listener.accept()
            except OSError:
                return
            outbound = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            self.sockets += [inbound, outbound]
            for source, sink in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.cut_done.set()
        self.listener.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
                end.close()


class Hangs(StatelessWorker):
    name = "hang"

    async def run(self, request: WorkRequest) -> WorkResult:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class WrongAnswer(StatelessWorker):
    name = "wrong"

    async def run(self, request: WorkRequest) -> WorkResult:
        return WorkResult(artifacts=[data_artifact("var", {"var": 1.0, "cvar": 2.0})])


class Malformed(StatelessWorker):
    name = "malformed"

    async def run(self, request: WorkRequest) -> WorkResult:
        return WorkResult(artifacts=[Artifact(name="var", parts=[Part.of_text("{not json, no numbers")])])


class OverCharges(StatelessWorker):
    """Does the work right, then bills a million compute seconds."""

    name = "greedy"

    async def run(self, request: WorkRequest) -> WorkResult:
        result = value_at_risk(request.data(), threading.Event())
        return WorkResult(artifacts=[data_artifact("var", result)], usage=Usage(compute_seconds=1e6))


def cheap_card(name: str):
    """The CPU contractor's card, cheaper and faster: the engine tries it first."""
    card = card_named("cpu_optimised")
    params = dict(card.capabilities.extensions[0].params or {})
    params["price"] = {**params["price"], "baseUsd": 0.0000005, "perComputeSecondUsd": 0.00001}
    params["typicalLatencyS"] = 0.1
    extension = card.capabilities.extensions[0].model_copy(update={"params": params})
    capabilities = card.capabilities.model_copy(update={"extensions": [extension]})
    return card.model_copy(update={"name": name, "capabilities": capabilities})


@pytest.mark.parametrize("fault", ["network-cut", "hang", "wrong-answer", "malformed"])
def test_a_faulty_contractor_is_refunded_reassigned_and_trusted_less(
    fault, start_contractor: StartContractor, make_client
):
    good = start_contractor(card_named("cpu_optimised"))
    compute = {"risk-assessment": ComputeWorker("var", value_at_risk)}
    workers = {
        "network-cut": compute,
        "hang": {"risk-assessment": Hangs()},
        "wrong-answer": {"risk-assessment": WrongAnswer()},
        "malformed": {"risk-assessment": Malformed()},
    }[fault]
    workers = {**{s: EchoWorker() for s in ("portfolio-optimisation", "similarity-search")}, **workers}
    proxy = None
    if fault == "network-cut":
        proxy = Proxy()
        behind = start_contractor(cheap_card("Faulty"), workers=workers, public_url=proxy.url)
        proxy.target_port = int(behind.rstrip("/").rsplit(":", 1)[1])
        faulty = proxy.url
    else:
        faulty = start_contractor(cheap_card("Faulty"), workers=workers)
    client = make_client(own_skills=set(), hire_timeout_s=5)
    faulty_id, good_id = client.register(faulty)["id"], client.register(good)["id"]
    body = {
        "description": "Risk",
        "subtasks": [
            subtask("risk-assessment", "Monte Carlo value at risk", input_data=SLOW_RISK | {"horizon_days": 10})
        ],
        "budget_usd": 1.0,
    }
    if proxy is not None:  # cut the line once the faulty contractor is at work
        response = client.http.post("/v1/tasks", json=body)
        task_id = response.json()["id"]
        wait_for(lambda: _subtask_field(client, task_id, "a2aTaskId"))
        wait_for(lambda: rpc(proxy.url, "tasks/get", {"id": _subtask_field(client, task_id, "a2aTaskId")})
                 ["result"]["status"]["state"] == "working")  # fmt: skip
        proxy.cut()
        task = wait_for(lambda: (t := client.http.get(f"/v1/tasks/{task_id}").json())["status"] in TERMINAL and t)
    else:
        task = client.run(body)
    (sub,) = task["subtasks"]
    first, *rest = sub["attempts"]
    assert first["where"] == faulty_id and first["ok"] is False, sub["attempts"]
    assert task["status"] == "completed" and sub["where"] == good_id and rest[-1]["ok"] is True, sub
    ledger = client.http.get("/v1/ledger").json()
    paid_faulty = ledger["balances"].get(f"contractor:{faulty_id}", 0.0)
    assert paid_faulty == 0.0 and any(e["kind"] == "refund" for e in ledger["entries"])
    assert sum(ledger["balances"].values()) == pytest.approx(0.0, abs=1e-9)
    market = {c["id"]: c for c in client.http.get("/v1/market").json()["contractors"]}
    assert market[faulty_id]["reliability"] < market[good_id]["reliability"]


def test_an_over_charge_is_capped_at_the_price_list_and_counted_against_the_contractor(
    start_contractor: StartContractor, make_client
):
    good = start_contractor(card_named("cpu_optimised"))
    echo = {s: EchoWorker() for s in ("portfolio-optimisation", "similarity-search")}
    workers: dict[str, Worker] = {"risk-assessment": OverCharges(), **echo}
    greedy = start_contractor(cheap_card("Greedy"), workers=workers)
    client = make_client(own_skills=set())
    greedy_id, good_id = client.register(greedy)["id"], client.register(good)["id"]
    body = {
        "description": "Risk",
        "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=RISK)],
        "budget_usd": 1.0,
    }
    task = client.run(body)
    (sub,) = task["subtasks"]
    assert task["status"] == "completed" and sub["where"] == greedy_id  # the work was right: it is delivered
    charged = rpc(greedy, "tasks/get", {"id": sub["a2aTaskId"]})["result"]["metadata"]["coalesce"]
    assert charged["usage"]["computeSeconds"] == 1e6
    settlement = [e for e in client.events(task["id"]) if e["kind"] == "settlement"][-1]["data"]
    seconds = sub["attempts"][0]["seconds"]
    price = cheap_card("Greedy").coalesce.price  # type: ignore[union-attr]
    assert settlement["chargedUsd"] > 1000 * settlement["paidUsd"]  # what it asked for: a million seconds
    assert settlement["paidUsd"] == pytest.approx(settlement["allowedUsd"], abs=1e-6)
    assert settlement["allowedUsd"] <= charged["quoteUsd"] + (seconds + 0.01) * price.per_compute_second_usd + 1e-6
    ledger = client.http.get("/v1/ledger").json()
    assert ledger["balances"][f"contractor:{greedy_id}"] == pytest.approx(settlement["paidUsd"], abs=1e-6)
    assert sum(ledger["balances"].values()) == pytest.approx(0.0, abs=1e-9)
    assert any(s["kind"] == "charge" and s["agent"] == greedy_id and s["grade"] == 0 for s in sub["signals"])
    assert "overcharge" in [e["kind"] for e in client.events(task["id"])]
    market = {c["id"]: c for c in client.http.get("/v1/market").json()["contractors"]}
    (risk,) = [c for c in market[greedy_id]["competence"] if c["skill"] == "risk-assessment"]
    assert risk["evidence"] == {"check": 1, "charge": 1}  # a right answer, and an over-charge against it
    assert risk["quality"] < 2 / 3  # what the right answer alone would give it (Beta(2, 1))
    assert good_id in market


def _subtask_field(client, task_id: str, name: str) -> Any:
    subtasks = client.http.get(f"/v1/tasks/{task_id}").json()["subtasks"]
    return subtasks[0].get(name) if subtasks else None


def test_a_client_killed_with_minus_nine_leaves_no_model_server_behind(tmp_path):
    """The embedded model server is the client's child: when the client dies, however it dies, so does it."""
    client = subprocess.Popen(
        [sys.executable, "-m", "coalesce.cli", "client", "serve", "--port", "0", "--db", f"sqlite:///{tmp_path}/c.db"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert client.stdout is not None
        while "client agent at" not in (line := client.stdout.readline()):  # the model starts first
            assert line, "the client stopped before it served"
        children = psutil.Process(client.pid).children(recursive=True)
        servers = [p for p in children if "llama_cpp.server" in " ".join(p.cmdline())]
        assert servers, [p.cmdline() for p in children]
        kill9(client)
        _, alive = psutil.wait_procs(servers, timeout=20)
        assert not alive, [p.pid for p in alive]
    finally:
        if client.poll() is None:
            client.kill()
