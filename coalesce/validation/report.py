"""The validation's report: `results.csv` (one row per strategy and seed), `results.md` (means with 95 %
confidence intervals, the goals, every agent as measured, the live check) and the plots."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from client_agent.state import LOCAL
from coalesce.validation.recording import Recording
from coalesce.validation.replay import LEARNING, STRATEGY_ORDER, Result

COLUMNS = (
    "strategy",
    "seed",
    "subtasks",
    "spend_usd",
    "probe_usd",
    "value_lost_usd",
    "total_cost_usd",
    "quality",
    "correct",
    "cost_per_correct_usd",
    "time_s",
    "outsourcing_rate",
    "exploration_rate",
    "probes",
)
ORACLE_SHARE_GOAL = 0.9
ROBUST_SAVING_GOAL = 0.15
NO_RANDOM_EXPLORATION = "paper-deterministic"  # the learning strategy that never explores at random


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def text(self, fmt: str = ".4f") -> str:
        if math.isclose(self.low, self.high):
            return f"{self.mean:{fmt}}"
        return f"{self.mean:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def interval(values: list[float], level: float = 0.95) -> Interval:
    """The mean and its t confidence interval over seeds."""
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2 or float(data.std(ddof=1)) == 0.0:
        return Interval(mean, mean, mean)
    half = float(stats.t.ppf((1 + level) / 2, len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data)))
    return Interval(mean, mean - half, mean + half)


def by_strategy(results: list[Result]) -> dict[str, list[Result]]:
    grouped: dict[str, list[Result]] = {}
    for r in results:
        grouped.setdefault(r.strategy, []).append(r)
    return {s: grouped[s] for s in STRATEGY_ORDER if s in grouped}


def write_csv(results: list[Result], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerow(r.row())


def savings(results: list[Result]) -> dict[str, Interval]:
    """Each strategy's saving in total cost against all-local, seed by seed (all-local is deterministic)."""
    grouped = by_strategy(results)
    base = float(np.mean([r.total_cost_usd for r in grouped["all-local"]]))
    return {s: interval([1 - r.total_cost_usd / base for r in rs]) for s, rs in grouped.items()}


def goals(results: list[Result]) -> list[tuple[str, bool, str]]:
    """The issue's goals: (goal, met, how it went)."""
    grouped, saved = by_strategy(results), savings(results)
    best = max(LEARNING, key=lambda s: saved[s].mean)
    oracle = saved["oracle"].mean
    share = saved[best].mean / oracle if oracle else 0.0
    per_correct = {s: interval([r.cost_per_correct_usd for r in rs]) for s, rs in grouped.items()}
    cheaper = all(per_correct[best].mean < per_correct[s].mean for s in ("always-cheapest", "always-best"))
    robust = saved[NO_RANDOM_EXPLORATION]
    return [
        (
            f"the best learning strategy reaches {ORACLE_SHARE_GOAL:.0%} of the oracle's saving",
            share >= ORACLE_SHARE_GOAL,
            f"{best}: {saved[best].text('.1%')} against the oracle's {oracle:.1%}, {share:.1%} of it",
        ),
        (
            "its cost per correct answer is below always-cheapest's and always-best's",
            cheaper,
            f"{best} ${per_correct[best].mean:.7f}, always-cheapest ${per_correct['always-cheapest'].mean:.7f}, "
            f"always-best ${per_correct['always-best'].mean:.7f}",
        ),
        (
            f"more than {ROBUST_SAVING_GOAL:.0%} saving without random exploration",
            robust.mean > ROBUST_SAVING_GOAL,
            f"{NO_RANDOM_EXPLORATION}: {robust.text('.1%')}",
        ),
    ]


def agent_table(recording: Recording) -> list[dict[str, Any]]:
    """Every agent per skill, as measured on the evaluation items: quality, mean cost, mean seconds."""
    rows = []
    for skill in recording.skills():
        items = [i for i in recording.evaluation if i.skill == skill]
        for agent in recording.agents_for(skill):
            attempts = [i.attempts[agent] for i in items]
            rows.append(
                {
                    "skill": skill,
                    "agent": agent,
                    "name": "the client's own worker" if agent == LOCAL else recording.agents.get(agent, agent),
                    "quality": float(np.mean([a.delivered_grade() for a in attempts])),
                    "passed": float(np.mean([a.passed for a in attempts])),
                    "cost_usd": float(np.mean([a.cost_usd for a in attempts])),
                    "seconds": float(np.mean([a.seconds for a in attempts])),
                    "items": len(attempts),
                }
            )
    return rows


def markdown(
    results: list[Result], recording: Recording, command: str, live: list[dict[str, Any]] | None = None
) -> str:
    grouped, saved = by_strategy(results), savings(results)
    seeds = len(next(iter(grouped.values())))
    counts: dict[str, int] = {}
    for item in recording.evaluation:
        counts[item.skill] = counts.get(item.skill, 0) + 1
    lines = [
        "# Validation: the paper's Table II on the local market",
        "",
        f"Made by `{command}`. Every agent answered every held-out item once (the recording: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; and {len(recording.gold)} gold-bank items for probes); each strategy was replayed on it for "
        f"{seeds} seeds, the items in the same order. Means with 95 % confidence intervals over seeds.",
        "",
        "| strategy | saving vs all-local | total cost $ | spend $ (probes) | value lost $ | quality "
        "| $ per correct answer | outsourced | explored | time s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy, rs in grouped.items():

        def iv(name: str, rs: list[Result] = rs) -> Interval:
            return interval([float(r.row()[name]) for r in rs])  # type: ignore[arg-type]

        lines.append(
            f"| {strategy} | {saved[strategy].text('.1%')} | {iv('total_cost_usd').text('.2f')} "
            f"| {iv('spend_usd').mean:.5f} ({iv('probe_usd').mean:.5f}) | {iv('value_lost_usd').text('.2f')} "
            f"| {iv('quality').text('.3f')} | {iv('cost_per_correct_usd').mean:.7f} "
            f"| {iv('outsourcing_rate').mean:.0%} | {iv('exploration_rate').mean:.1%} | {iv('time_s').mean:.0f} |"
        )
    lines += ["", "## Goals", ""]
    lines += [f"- {'met' if met else 'MISSED'}: {goal}. {how}." for goal, met, how in goals(results)]
    lines += [
        "",
        "## The agents, as measured on the held-out items",
        "",
        "| skill | agent | quality (delivered) | check passed | mean cost $ | mean s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['skill']} | {r['name']} | {r['quality']:.3f} | {r['passed']:.0%} | {r['cost_usd']:.7f} "
        f"| {r['seconds']:.2f} |"
        for r in agent_table(recording)
    ]
    if live:
        lines += [
            "",
            "## The live check",
            "",
            "The same strategies run live (a fresh client each, no agreement rounds, which the replay does not "
            "model) on the first items of the stream, beside the replay of the same items:",
            "",
            "| strategy | items | live quality | replay quality | live total $ | replay total $ | live spend $ "
            "| replay spend $ | agrees |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {x['strategy']} | {x['items']} | {x['live_quality']:.3f} | {x['replay_quality']} "
            f"| {x['live_total_usd']:.3f} | {x['replay_total_usd']} | {x['live_spend_usd']:.6f} "
            f"| {x['replay_spend_usd']} | {'yes' if x['agrees'] else 'NO'} |"
            for x in live
        ]
    lines += ["", "Plots: `cost-quality.png` (every strategy and every agent), `learning.png` (over the stream)."]
    return "\n".join(lines) + "\n"


def plots(results: list[Result], recording: Recording, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = by_strategy(results)
    n = len(recording.evaluation)
    figure, axis = plt.subplots(figsize=(8, 5.5))
    for strategy, rs in grouped.items():
        cost = [r.spend_usd / n for r in rs]
        quality = [r.quality for r in rs]
        axis.errorbar(np.mean(cost), np.mean(quality), xerr=np.std(cost), yerr=np.std(quality), fmt="o", capsize=3)
        axis.annotate(
            strategy, (np.mean(cost), np.mean(quality)), fontsize=8, xytext=(4, 4), textcoords="offset points"
        )
    for row in agent_table(recording):
        axis.scatter(row["cost_usd"], row["quality"], marker="x", color="grey")
        axis.annotate(
            f"{row['name'][:18]} ({row['skill'][:9]})",
            (row["cost_usd"], row["quality"]),
            fontsize=6,
            color="grey",
            xytext=(3, -8),
            textcoords="offset points",
        )
    axis.set_xscale("symlog", linthresh=1e-6)
    axis.set_xlabel("spend per subtask, $ (strategies: all skills; agents: their skill)")
    axis.set_ylabel("quality against the truth")
    axis.set_title("Cost and quality: strategies (o) and agents (x)")
    figure.tight_layout()
    figure.savefig(out_dir / "cost-quality.png", dpi=120)
    plt.close(figure)

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for strategy, rs in grouped.items():
        points = np.array([[p[0], p[1], p[2]] for p in rs[0].curve])
        quality = np.mean([[p[1] for p in r.curve] for r in rs], axis=0)
        cost = np.mean([[p[2] for p in r.curve] for r in rs], axis=0)
        left.plot(points[:, 0], quality, label=strategy)
        right.plot(points[:, 0], cost, label=strategy)
    left.set_xlabel("items of the stream")
    left.set_ylabel("quality so far")
    right.set_xlabel("items of the stream")
    right.set_ylabel("total cost so far, $ (spend + value lost)")
    left.legend(fontsize=7)
    figure.suptitle("Learning over the stream (mean over seeds)")
    figure.tight_layout()
    figure.savefig(out_dir / "learning.png", dpi=120)
    plt.close(figure)


def write(
    results: list[Result],
    recording: Recording,
    out_dir: Path,
    command: str,
    live: list[dict[str, Any]] | None = None,
    with_plots: bool = True,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results, out_dir / "results.csv")
    (out_dir / "results.md").write_text(markdown(results, recording, command, live))
    if with_plots:
        plots(results, recording, out_dir)
