"""`coalesce market validate`: record every agent on the held-out items (or load a recording), replay every
strategy on it for several seeds, run the main strategies live beside the replay, and write the report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from client_agent.build import build_service
from client_agent.gold import Expectation, grade
from client_agent.quality import QualityConfig
from client_agent.service import ClientConfig
from client_agent.state import LOCAL
from coalesce.client import Exchange
from coalesce.datagen import EVALUATION_SIZES, evaluation_set, generate
from coalesce.datagen import GOLD_SEED as GOLD
from coalesce.demo import run_task
from coalesce.market import Market, market_services
from coalesce.validation import report
from coalesce.validation.recording import Attempt, Item, Recording, record_items
from coalesce.validation.replay import STRATEGY_ORDER, Result, replay
from shared.a2a.models import Artifact
from shared.workers.llm import LLMSettings

GOLD_SAMPLE = {  # gold-bank items recorded per skill (probes rotate through them)
    "sentiment-analysis": 40,
    "financial-document-analysis": 40,
    "risk-assessment": 10,
    "portfolio-optimisation": 10,
}
LIVE_STRATEGIES = ("all-local", "thompson")
LIVE_NAMES = {"all-local": "local-only"}  # the live client's name for the strategy
AGREEMENT_TOLERANCE = 0.08  # live and replay quality may differ this much (sampled answers differ run to run)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress("[progress.description]{task.description}", *columns) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def gold_rows(sizes: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {**item, "id": f"gold-{skill}-{i}"}
        for skill, count in sizes.items()
        for i, item in enumerate(generate(skill, count, GOLD, "gold"))
    ]


async def make_recording(market: Market, rows: list[dict[str, Any]], gold: list[dict[str, Any]]) -> Recording:
    """Every agent of the running `market` on every row, through an in-process client (no probes, no learning)."""
    env = market.llm_env
    llm = LLMSettings(model=env["COALESCE_LLM_MODEL"], base_url=env["COALESCE_LLM_BASE_URL"], schema_style="llama.cpp")
    config = ClientConfig(allow_private_contractors=True, quality=QualityConfig(probes=False, agreement_rate=0.0))
    urls = list(market.contractor_urls().values())
    service = build_service(f"sqlite:///{market.state_dir / 'recording.db'}", llm, config, contractors=urls)
    await service.start()
    try:
        deadline = time.monotonic() + 120
        while len(service.registry.active()) < len(urls):
            if time.monotonic() > deadline:
                raise RuntimeError("the recording client did not register every contractor")
            await asyncio.sleep(0.25)
        agents = {c.id: c.card.name for c in service.registry.active()}
        with progress_bar("recording: gold sample", len(gold)) as advance:
            gold_items = await record_items(service, gold, advance=advance)
        with progress_bar("recording: evaluation set", len(rows)) as advance:
            evaluation = await record_items(service, rows, advance=advance)
    finally:
        await service.close()
    return Recording(agents, evaluation, gold_items, {"recordedAt": time.strftime("%Y-%m-%d %H:%M:%S")})


def live_attempt(sub: dict[str, Any], item: Item) -> Attempt:
    """A live subtask's delivered answer, graded like a recorded one."""
    artifacts = [Artifact.model_validate(a) for a in sub.get("artifacts") or []]
    expect = Expectation.model_validate(item.expect)
    passed = sub["status"] == "completed"
    return Attempt(
        agent=sub.get("where") or LOCAL,
        answered=passed,
        passed=passed,
        checked=False,
        grade=grade(expect, artifacts) if passed else 0.0,
        cost_usd=float(sub["cost"]["actualUsd"] or 0.0),
        raw_price_usd=0.0,
        compatibility=0.0,
        latency_s=0.0,
        seconds=sum(a.get("seconds", 0.0) for a in sub.get("attempts") or []),
    )


def live_run(market: Market, strategy: str, items: list[Item]) -> Result:
    """`strategy` on a fresh client process of the market, one subtask per task, the items in order."""
    args = list(next(s for s in market_services(str(market.cards_dir)) if s.name == "client").args)
    args[args.index("--strategy") + 1] = LIVE_NAMES.get(strategy, strategy)
    database = market.state_dir / f"live-{strategy}.db"
    database.unlink(missing_ok=True)
    client = market.start_client([*args, "--agreement-rate", "0"], database, name=f"client-{strategy}")
    result = Result(strategy, 0)
    try:
        market.wait_ready(client.url)
        with (
            Exchange(client.url, timeout_s=60) as exchange,
            progress_bar(f"live: {strategy}", len(items)) as advance,
        ):
            for item in items:
                subtask = {**item.subtask, "value_usd": item.value_usd}
                body = {"description": item.subtask["description"][:1000], "subtasks": [subtask], "budget_usd": 20.0}
                task = run_task(exchange, body)
                final = live_attempt(task.subtasks[0].model_dump(by_alias=True), item)
                result.count(item, [final], final)
                advance()
            time.sleep(2.0)  # the last probes settle
            stats = exchange.stats()
            result.probe_usd = float(stats["probeUsd"])
            result.probes = int(stats["spend"]["probes"])
    finally:
        market.stop_process(client)
    return result


def live_check(market: Market, recording: Recording, items: int, seeds: int) -> list[dict[str, Any]]:
    """The main strategies live on the first `items` of the stream, beside their replay on the same items."""
    head = Recording(recording.agents, recording.evaluation[:items], recording.gold, recording.meta)
    rows = []
    for strategy in LIVE_STRATEGIES:
        live = live_run(market, strategy, head.evaluation)
        replayed = replay(head, (strategy,), seeds)
        quality = report.interval([r.quality for r in replayed])
        total = report.interval([r.total_cost_usd for r in replayed])
        spend = report.interval([r.spend_usd for r in replayed])
        rows.append(
            {
                "strategy": strategy,
                "items": len(head.evaluation),
                "live_quality": live.quality,
                "replay_quality": quality.text(".3f"),
                "live_total_usd": live.total_cost_usd,
                "replay_total_usd": total.text(".3f"),
                "live_spend_usd": live.spend_usd,
                "replay_spend_usd": spend.text(".6f"),
                "agrees": abs(live.quality - quality.mean) <= AGREEMENT_TOLERANCE,
            }
        )
    return rows


def validate(
    state_dir: Path,
    out_dir: Path,
    command: str,
    sizes: dict[str, int] | None = None,
    gold_sizes: dict[str, int] | None = None,
    seeds: int = 5,
    live_items: int = 40,
    recording_path: Path | None = None,
    plots: bool = True,
) -> list[Result]:
    """The whole validation; the recording is kept in `out_dir/recording.json` (reused with `recording_path`)."""
    rows = evaluation_set(sizes or EVALUATION_SIZES)
    gold = gold_rows(gold_sizes or GOLD_SAMPLE)
    recording = Recording.load(recording_path) if recording_path else None
    with Market(state_dir, with_client=False) as market:
        if recording is None:
            recording = asyncio.run(make_recording(market, rows, gold))
            recording.save(out_dir / "recording.json")
        with progress_bar("replay", len(STRATEGY_ORDER) * seeds) as advance:
            results = replay(recording, STRATEGY_ORDER, seeds, advance)
        live = live_check(market, recording, min(live_items, len(recording.evaluation)), seeds) if live_items else None
    report.write(results, recording, out_dir, command, live, plots)
    return results
