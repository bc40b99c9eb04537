"""Observability: the dashboard in a real headless Chromium, Prometheus metrics that parse and move, and JSON logs
that follow one subtask across the client and a contractor."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.workers.base import EchoWorker
from tests.conftest import CARDS, RISK, ROOT, StartContractor, card_named, subtask

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url + "metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_parse_and_move_when_a_task_runs(cpu_contractor: str, make_client):
    client = make_client(own_skills=set())
    client.register(cpu_contractor)
    before, contractor_before = samples(client.url), samples(cpu_contractor)
    task = client.run(
        {
            "description": "Risk",
            "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=RISK)],
            "budget_usd": 1.0,
        }
    )
    assert task["status"] == "completed"
    after, contractor_after = samples(client.url), samples(cpu_contractor)

    def moved(old: dict, new: dict, name: str, **labels: str) -> float:
        return value(new, name, **labels) - value(old, name, **labels)

    assert moved(before, after, "coalesce_client_tasks_total", status="completed") == 1
    assert (
        moved(before, after, "coalesce_client_decisions_total", strategy="ucb1", action="outsource", outcome="ok") == 1
    )
    assert moved(before, after, "coalesce_client_money_usd_total", kind="reserved") > 0
    assert moved(before, after, "coalesce_client_money_usd_total", kind="released") > 0
    assert moved(before, after, "coalesce_client_subtask_seconds_count", where="contractor") == 1
    posts = moved(before, after, "coalesce_client_http_requests_total", method="POST", route="/v1/tasks", status="202")
    assert posts == 1  # by route template: bounded label values
    assert moved(contractor_before, contractor_after, "coalesce_contractor_tasks_total", state="completed") == 1
    assert moved(contractor_before, contractor_after, "coalesce_contractor_worker_seconds_total", worker="var") > 0
    assert moved(contractor_before, contractor_after, "coalesce_contractor_charged_usd_total") > 0
    assert (
        value(contractor_after, "coalesce_contractor_http_requests_total", method="POST", route="/", status="200") > 0
    )


def start_logged(args: list[str], log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "coalesce.cli", "--log-level", "info", "--log-format", "json", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, **env},
    )
    assert process.stdout is not None
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", process.stdout.readline())
    assert match, log.read_text()[-2000:]
    return process, match.group(1)


def json_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_json_logs_follow_one_subtask_across_services(tmp_path, local_llm):
    env = {"COALESCE_LLM_BASE_URL": local_llm.base_url or "", "COALESCE_LLM_MODEL": local_llm.model}
    contractor_log, client_log = tmp_path / "contractor.log", tmp_path / "client.log"
    card = ["--card", str(CARDS / "cpu_optimised.json"), "--port", "0", "--key-dir", str(tmp_path / "keys")]
    contractor, contractor_url = start_logged(["contractor", "serve", *card], contractor_log, env)
    try:
        client_args = ["client", "serve", "--port", "0", "--db", f"sqlite:///{tmp_path}/c.db", "--local-skills", "llm"]
        client, client_url = start_logged([*client_args, "--allow-private-contractors"], client_log, env)
        try:
            with httpx.Client(base_url=client_url, timeout=60) as http:
                assert http.post("/v1/contractors", json={"card_url": contractor_url}).status_code == 201
                body = {
                    "description": "Risk",
                    "subtasks": [subtask("risk-assessment", "Monte Carlo value at risk", input_data=RISK)],
                    "budget_usd": 1.0,
                }
                task_id = http.post("/v1/tasks", json=body).json()["id"]
                deadline = time.monotonic() + 60
                while http.get(f"/v1/tasks/{task_id}").json()["status"] != "completed":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                a2a_task = http.get(f"/v1/tasks/{task_id}").json()["subtasks"][0]["a2aTaskId"]
        finally:
            client.terminate()
            client.wait(timeout=30)
    finally:
        contractor.terminate()
        contractor.wait(timeout=30)
    client_lines, contractor_lines = json_lines(client_log), json_lines(contractor_log)
    assert client_lines and contractor_lines and all("level" in line for line in client_lines + contractor_lines)
    assert any(line["taskId"] == task_id and line["a2aTaskId"] == a2a_task for line in client_lines)
    followed = [line for line in contractor_lines if line["a2aTaskId"] == a2a_task]
    assert followed and all(line["taskId"] == task_id for line in followed)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_dashboard_shows_a_task_flow_live_in_chromium(start_contractor: StartContractor, make_client, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    card = card_named("edge_computing")
    echo = {skill.id: EchoWorker() for skill in card.skills}
    contractors = [start_contractor(card, workers=echo), start_contractor(card, workers=echo)]
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(ROOT / "docs/results/sensitivity/regret_over_time.png", results)
    client = make_client(own_skills=set(), results_dir=results)
    for url in contractors:
        client.register(url)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(client.url + "dashboard")
            expect(page.locator("#live")).to_have_text("live", timeout=15_000)
            expect(page.locator("#contractors tbody tr")).to_have_count(2)
            expect(page.locator("#results img")).to_have_count(1)

            body = {
                "description": "Tone of the day's headline",
                "subtasks": [
                    subtask(
                        "sentiment-analysis", "Sentiment (one word, e.g. positive) of: shares soar on record profits"
                    )
                ],
                "budget_usd": 1.0,
            }
            task_id = client.http.post("/v1/tasks", json=body).json()["id"]
            row = page.locator(f'#tasks tr[data-task="{task_id}"]')
            expect(row).to_be_visible(timeout=15_000)  # it appears live, over SSE
            expect(row.locator(".status")).to_have_text("completed", timeout=30_000)
            expect(page.locator("#decisions tbody tr").first).to_contain_text("outsource")
            expect(page.locator("#t-subtasks")).to_have_text("1", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            row.locator("a").click()
            expect(page.locator("#task-status")).to_have_text("completed", timeout=15_000)
            expect(page.locator(".subtask")).to_have_count(1)
            expect(page.locator("#ledger tbody tr")).not_to_have_count(0)
            expect(page.locator("#events tbody tr").last).to_contain_text("completed", timeout=15_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-task.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
