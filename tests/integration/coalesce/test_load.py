"""Load: 1 000 tasks submitted at once to a client hiring real (echo) contractors over A2A. Every task ends, none
is lost, no 5xx. (Throughput, latency and memory are measured by `bench/load.py`, not asserted here.)"""

from __future__ import annotations

import asyncio

import pytest

from coalesce.loadgen import load
from contractor_agent.admission import Limits
from shared.workers.base import EchoWorker
from tests.conftest import StartContractor, card_named, subtask

TASKS = 1000


def test_a_thousand_tasks_at_once_all_end_and_nothing_is_lost(make_client, start_contractor: StartContractor):
    card = card_named("edge_computing")
    echo = {skill.id: EchoWorker() for skill in card.skills}
    contractors = [start_contractor(card, workers=echo, limits=Limits(max_concurrent=32, max_queued=64)) for _ in "ab"]
    client = make_client(own_skills=set())
    for url in contractors:
        client.register(url)
    body = {
        "description": "Tone of a headline",
        "subtasks": [subtask("sentiment-analysis", "Sentiment (one word, e.g. positive) of: shares soar")],
        "budget_usd": 1.0,
    }
    report = asyncio.run(load(client.url, [body] * TASKS))
    assert report.http_5xx == 0 and report.refused == 0
    assert report.submitted == TASKS and report.lost == 0
    assert report.statuses["completed"] == TASKS, report.statuses
    ledger = client.http.get("/v1/ledger").json()
    assert sum(ledger["balances"].values()) == pytest.approx(0.0, abs=1e-9)
    assert ledger["balances"]["escrow"] == pytest.approx(0.0, abs=1e-9)
