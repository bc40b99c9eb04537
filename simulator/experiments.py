"""Presets of runs, run in parallel processes, written as CSV, a Markdown table and PNG plots.

coalesce simulate --preset paper-table1 --out results/ [--runs 20] [--workers N]
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from scipy.stats import t as student

from shared.economics.decision.strategies import STRATEGIES
from simulator.market import MONEY
from simulator.run import RunConfig, hours, metrics, regret_series, simulate_runs

OURS = tuple(STRATEGIES)
DURATIONS = (1, 3, 5, 7, 10, 14, 20, 25, 30)
SCALES = (5, 10, 15, 20, 25, 30, 40, 50)
COLUMNS = (
    "config",
    "strategy",
    "run",
    "seed",
    "cost_reduction",
    "time_savings",
    "outsourcing_rate",
    "exploration_rate",
    "success_rate",
    "regret",
    "mean_topsis",
    "throughput",
    "tasks",
    "market",
    "clients",
    "contractors",
    "days",
    "deadline_penalty",
    "quality",
    "breach_rate",
    *(f"{name}_usd" for name in MONEY),
    "total_usd",
)
SWEEPS = {
    "epsilon": ("decision", "epsilon", (0.05, 0.1, 0.25)),
    "theta_skill": ("decision", "skill_threshold", (0.5, 0.7, 0.9)),
    "beta": ("decision", "market_beta", (0.3, 0.7, 0.9)),
    "alpha": ("decision", "correlation_alpha", (0.1, 0.3, 0.5)),
}
PRESETS = ("paper-table1", "local-market", "reference-market", "sensitivity", "smoke")
SPLIT_SHOWN = ("duration-7d", "penalty-7d", "live-size", "scale-1000c", "reference-7d", "smoke-2d")  # money plots
BATCH_CELLS = 2_000_000  # clients x contractors of the runs simulated in lock step in one process

# The paper's Table I and text, for the README's side-by-side table (fractions).
PAPER_CLAIMS = {"cost_reduction": (0.418, 0.105), "time_savings": (0.435, 0.041), "outsourcing_rate": (0.33, None)}


def preset(name: str) -> list[RunConfig]:
    """The configurations of a preset (one run each; `expand` makes the runs)."""
    if name == "paper-table1":
        durations = [RunConfig(f"duration-{d}d", days=d) for d in DURATIONS]
        scales = [RunConfig(f"scale-{c}c", clients=c, contractors=2 * c, days=7) for c in SCALES]
        penalty = RunConfig("penalty-7d", days=7, outcomes={"deadline_penalty": True})  # as scored before
        return durations + scales + [penalty]
    if name == "local-market":
        # the live market's size (one client, each of the nine agents once, ~300 tasks like the validation's
        # 300 held-out items), then scales it cannot run live
        return [
            RunConfig("live-size", market="local-market", clients=1, contractors=9, days=5),
            RunConfig("scale-10c", market="local-market", clients=10, contractors=90, days=2),
            RunConfig("scale-100c", market="local-market", clients=100, contractors=900, days=1),
            RunConfig("scale-1000c", market="local-market", clients=1000, contractors=2000, days=2 / 24),
        ]
    if name == "reference-market":
        return [RunConfig("reference-7d", market="reference", days=7, strategies=(*OURS, "reference-code"))]
    if name == "sensitivity":
        configs = []
        for sweep, (group, key, values) in SWEEPS.items():
            for value in values:
                overrides: dict[str, Any] = {group: {key: value}}
                configs.append(
                    RunConfig(
                        f"{sweep}={value}",
                        days=7,
                        strategies=("paper-epsilon-greedy", "ucb1", "thompson", "oracle"),
                        **overrides,
                    )
                )
        return configs
    if name == "smoke":
        return [
            RunConfig("smoke-2d", clients=3, contractors=6, days=2),
            RunConfig(
                "smoke-reference",
                market="reference",
                clients=15,
                contractors=12,
                days=2,
                strategies=(*OURS, "reference-code"),
            ),
        ]
    raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")


def expand(configs: list[RunConfig], runs: int, base_seed: int = 2025) -> list[RunConfig]:
    """Every configuration `runs` times; run r has the same seed in every configuration (same market draws)."""
    return [replace(config, run=r, seed=base_seed + r) for config in configs for r in range(runs)]


def run_group(configs: list[RunConfig]) -> list[tuple[list[dict[str, Any]], dict[str, list[float]]]]:
    """Runs of one family (the same configuration but for its length), simulated in lock step once, to the
    longest length: each shorter configuration's runs are read off on the way (`simulate_runs`). One result per
    entry of `configs`, in order."""
    longest = max(config.days for config in configs)
    runs = list({config.run: config for config in configs if config.days == longest}.values())
    tallies = simulate_runs(runs, tuple({hours(config) for config in configs}))
    position = {config.run: i for i, config in enumerate(runs)}
    out = []
    for config in configs:
        run = tallies[hours(config)][position[config.run]]
        out.append((metrics(config, run), regret_series(run)))
    return out


def family(config: RunConfig) -> str:
    """What runs simulated in lock step share: everything but the name, the run and the length."""
    return repr(replace(config, name="", run=0, seed=0, days=0))


def run_all(
    configs: list[RunConfig],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[list[float]]]]]:
    rows: list[dict[str, Any]] = []
    series: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    families: dict[str, dict[int, list[RunConfig]]] = defaultdict(lambda: defaultdict(list))
    for config in configs:
        families[family(config)][config.run].append(config)
    chunks = []  # the runs of one family in lock step, as many as memory allows, each with all its lengths
    for by_run in families.values():
        runs = list(by_run.values())
        size = max(1, BATCH_CELLS // (runs[0][0].clients * runs[0][0].contractors))
        chunks += [[c for run in runs[i : i + size] for c in run] for i in range(0, len(runs), size)]
    # the longest first, so that the pool ends together
    ordered = sorted(
        chunks, key=lambda g: -len({c.run for c in g}) * max(c.days for c in g) * g[0].clients * g[0].contractors
    )
    done = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_group, group): group for group in ordered}
        for future in as_completed(futures):
            for config, (result_rows, regrets) in zip(futures[future], future.result(), strict=True):
                rows.extend(result_rows)
                for strategy, values in regrets.items():
                    series[config.name][strategy].append(values)
            done += len(futures[future])
            if progress is not None:
                progress(done, len(configs))
    rows.sort(key=lambda r: (_config_order(r["config"]), _strategy_order(r["strategy"]), r["run"]))
    return rows, series


def summarise(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(config, strategy) -> mean, standard deviation, count of `key` over runs (NaN values skipped)."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        value = row[key]
        if not (isinstance(value, float) and math.isnan(value)):
            groups[(row["config"], row["strategy"])].append(float(value))
    out = {}
    for group, values in groups.items():
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        out[group] = (mean, std, len(values))
    return out


def interval(std: float, count: int) -> float:
    """The half width of the 95 % confidence interval of a mean over `count` runs (Student's t)."""
    return float(student.ppf(0.975, count - 1) * std / math.sqrt(count)) if count > 1 else float("nan")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


def markdown(rows: list[dict[str, Any]]) -> str:
    """A preset's tables: cost reduction per configuration and strategy with its 95 % interval; every rate (mean ±
    standard deviation over runs); the runs of every configuration pooled; where the money went (USD per task)."""
    metrics_shown = ("time_savings", "outsourcing_rate", "exploration_rate", "success_rate", "quality", "regret")
    tables = {key: summarise(rows, key) for key in ("cost_reduction", *metrics_shown)}
    money = {key: summarise(rows, key) for key in (*(f"{name}_usd" for name in MONEY), "total_usd")}
    configs = sorted({r["config"] for r in rows}, key=_config_order)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    pairs = [(c, s) for c in configs for s in strategies if (c, s) in tables["cost_reduction"]]
    rates = [
        "| config | strategy | runs | cost reduction [95 % CI] | time savings | outsourcing | exploration "
        "| hires passing the check | quality | regret |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config, strategy in pairs:
        mean, std, runs = tables["cost_reduction"][(config, strategy)]
        reduction = with_interval(mean, std, runs)
        cells = []
        for key in metrics_shown:
            value, spread, _ = tables[key].get((config, strategy), (float("nan"), 0.0, 0))
            cells.append("-" if math.isnan(value) else f"{value:.1%} ± {spread:.1%}")
        rates.append(f"| {config} | {strategy} | {runs} | {reduction} | " + " | ".join(cells) + " |")
    split = [
        "| config | strategy | compute | paid | overhead | penalty | value lost | breaches | total |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config, strategy in pairs:
        cells = [f"{money[key][(config, strategy)][0]:.3g}" for key in money]
        split.append(f"| {config} | {strategy} | " + " | ".join(cells) + " |")
    return (
        "Cost reduction against all-local, mean [95 % CI] over runs:\n\n"
        + pivot(tables["cost_reduction"], configs, strategies)
        + "\nEvery rate, mean ± standard deviation over runs:\n\n"
        + "\n".join(rates)
        + "\n\nOver the runs of every configuration, per market and deadline option:\n\n"
        + pooled(rows)
        + "\n\nWhere the money went, mean USD per task (compute: the client's own runs; paid: prices paid to"
        " contractors; overhead: communication, verification, integration and gold probes; penalty: deadline"
        " penalties, where the market has them; value lost: wrong answers; breaches: data value × sensitivity):\n\n"
        + "\n".join(split)
        + "\n"
    )


def with_interval(mean: float, std: float, runs: int) -> str:
    """A share with its 95 % confidence interval, when there is one."""
    half = interval(std, runs)
    return f"{mean:.1%}" + ("" if math.isnan(half) else f" [{mean - half:.1%}, {mean + half:.1%}]")


def pivot(table: dict[tuple[str, str], tuple[float, float, int]], configs: list[str], strategies: list[str]) -> str:
    """One row per configuration, one column per strategy: mean [95 % CI]."""
    lines = ["| config | " + " | ".join(strategies) + " |", "| --- |" + " ---: |" * len(strategies)]
    for config in configs:
        cells = []
        for strategy in strategies:
            mean, std, runs = table.get((config, strategy), (float("nan"), 0.0, 0))
            cells.append("-" if math.isnan(mean) else with_interval(mean, std, runs))
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pooled(rows: list[dict[str, Any]]) -> str:
    """Per market, deadline option and strategy, mean ± standard deviation over the runs of every configuration."""
    keys = ("cost_reduction", "time_savings", "outsourcing_rate", "quality", "regret", "total_usd")
    lines = [
        "| market | strategy | runs | cost reduction [95 % CI] | time savings | outsourcing | quality "
        "| regret | USD per task |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    relabelled = [{**r, "config": f"{r['market']}{', deadline penalty' * r['deadline_penalty']}"} for r in rows]
    tables = {key: summarise(relabelled, key) for key in keys}
    for market, strategy in sorted(tables["cost_reduction"], key=lambda k: (k[0], _strategy_order(k[1]))):
        mean, std, runs = tables["cost_reduction"][(market, strategy)]
        cells = [with_interval(mean, std, runs)]
        for key in keys[1:]:
            value, spread, _ = tables[key][(market, strategy)]
            cells.append(f"{value:.3g} ± {spread:.2g}" if key == "total_usd" else f"{value:.1%} ± {spread:.1%}")
        lines.append(f"| {market} | {strategy} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _strategy_order(name: str) -> int:
    order = (*OURS, "reference-code")
    return order.index(name) if name in order else len(order)


def _config_order(name: str) -> tuple[str, float]:
    prefix, _, rest = name.partition("-")
    digits = "".join(ch for ch in rest if ch.isdigit() or ch == ".")
    return prefix, float(digits) if digits else 0.0


def plots(rows: list[dict[str, Any]], series: dict[str, dict[str, list[list[float]]]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    means = summarise(rows, "cost_reduction")
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    for prefix, label, file in (
        ("duration", "simulated days", "cost_by_duration.png"),
        ("scale", "clients", "cost_by_scale.png"),
    ):
        configs = sorted({c for c, _ in means if c.startswith(prefix + "-")}, key=_config_order)
        if not configs:
            continue
        x = [_config_order(c)[1] for c in configs]
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for strategy in strategies:
            found = [means.get((c, strategy)) for c in configs]
            points = [p for p in found if p is not None]
            if len(points) == len(found):
                axis.errorbar(
                    x, [p[0] for p in points], yerr=[p[1] for p in points], marker="o", capsize=3, label=strategy
                )
        axis.set_xlabel(label)
        axis.set_ylabel("cost reduction vs all-local")
        axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / file, dpi=120)
        plt.close(figure)
        made.append(out / file)
    if series:
        name = "duration-30d" if "duration-30d" in series else sorted(series)[0]
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for strategy, runs in series[name].items():
            length = min(len(r) for r in runs)
            mean = [sum(r[i] for r in runs) / len(runs) for i in range(length)]
            axis.plot(range(1, length + 1), mean, label=strategy)
        axis.set_xlabel("day")
        axis.set_ylabel("cumulative regret vs the oracle (share of all-local cost)")
        axis.set_title(name)
        axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "regret_over_time.png", dpi=120)
        plt.close(figure)
        made.append(out / "regret_over_time.png")
    made.append(money_plot(rows, out / "money_split.png"))
    return made


def money_plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Per strategy, the money split of a few configurations as stacked bars (mean USD per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = sorted({r["config"] for r in rows}, key=_config_order)
    shown = [c for c in configs if c in SPLIT_SHOWN] or configs[:1]
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    means = {name: summarise(rows, f"{name}_usd") for name in MONEY}
    figure, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown) + 1, 4.4), squeeze=False)
    for axis, config in zip(axes[0], shown, strict=True):
        bottom = [0.0] * len(strategies)
        for name in MONEY:
            heights = [means[name].get((config, s), (0.0, 0.0, 0))[0] for s in strategies]
            axis.bar(strategies, heights, bottom=bottom, label=name.replace("_", " "))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        axis.set_title(config)
        axis.set_ylabel("USD per task")
        axis.tick_params(axis="x", labelrotation=60, labelsize=7)
        axis.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main(preset_name: str, out: Path, runs: int, workers: int | None = None, quiet: bool = False) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    configs = expand(preset(preset_name), runs)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    with Progress(
        TextColumn(f"simulating {preset_name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=quiet
    ) as bar:
        job = bar.add_task("runs", total=len(configs))
        rows, series = run_all(configs, workers, lambda done, total: bar.update(job, completed=done))
    seconds = time.perf_counter() - started
    write_csv(rows, out / "results.csv")
    table = markdown(rows)
    (out / "results.md").write_text(f"# {preset_name}: {runs} runs per configuration, {seconds:.1f} s\n\n{table}")
    figures = plots(rows, series, out)
    return {"rows": rows, "seconds": seconds, "table": table, "figures": figures}
