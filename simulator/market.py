"""The simulated market: contractors with hidden reliabilities, tasks arriving hour by hour, and everything a
decision needs about each task, with the randomness of every possible outcome drawn up front, so that every
strategy meets the same tasks and the same luck (common random numbers).

Two markets, both described in `markets.json` with their sources: `paper` (public cloud prices and hardware
specs) and `reference` (the paper's public reference code, as PAPER.md reads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.economics.cost_model import dynamic_price, latency_penalty, risk_cost
from shared.economics.reputation import SENSITIVITY_WEIGHT, security_risk

SPECS = json.loads((Path(__file__).resolve().parent / "markets.json").read_text())
TASK_TYPES = ("financial_rag", "risk_assessment", "sentiment_analysis", "portfolio_optimization")
SENSITIVITIES = ("public", "internal", "confidential")


@dataclass
class Step:
    """The tasks of one hour: per task (B,) and per task and contractor (B, n). Times in seconds."""

    task_type: np.ndarray
    value: np.ndarray
    deadline_s: np.ndarray
    urgency: np.ndarray
    risk_level: np.ndarray
    budget: np.ndarray
    local_cost: np.ndarray  # one local run
    local_latency_s: np.ndarray
    local_failure: np.ndarray  # the client's own chance of an unusable result
    local_fails: np.ndarray  # drawn: this task's local run fails (and is redone once)
    ontological: np.ndarray
    embedding: np.ndarray
    price: np.ndarray
    latency_s: np.ndarray  # what the client expects
    actual_latency_s: np.ndarray  # what happens
    overhead: np.ndarray  # communication + verification + integration
    p_security: np.ndarray
    available: np.ndarray
    succeeds: np.ndarray  # drawn: the contractor would deliver a good result

    def __len__(self) -> int:
        return len(self.value)

    def take(self, rows: np.ndarray) -> Step:
        """The tasks selected by `rows` (a mask or indices)."""
        return Step(**{name: getattr(self, name)[rows] for name in Step.__dataclass_fields__})

    def value_at_stake(self) -> np.ndarray:
        """What a failed hire costs: the local redo and the extra delay it brings."""
        return self.local_cost + latency_penalty(self.local_latency_s * 1.5, self.deadline_s, self.value, self.urgency)

    def local_outcome(self) -> tuple[np.ndarray, np.ndarray]:
        """(cost, time) of doing each task locally, with one redo where the local result fails."""
        runs = 1.0 + self.local_fails
        time = self.local_latency_s * runs
        return self.local_cost * runs + latency_penalty(time, self.deadline_s, self.value, self.urgency), time

    def hired_outcome(self, rows: np.ndarray, hires: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cost, time, success) of hiring contractor `hires[k]` for task `rows[k]`. A failure is not paid
        (escrow) and the task is redone locally after the time the hire took."""
        success = self.succeeds[rows, hires]
        redo_runs = np.where(success, 0.0, 1.0 + self.local_fails[rows])
        time = self.actual_latency_s[rows, hires] + redo_runs * self.local_latency_s[rows]
        penalty = latency_penalty(time, self.deadline_s[rows], self.value[rows], self.urgency[rows])
        cost = (
            np.where(success, self.price[rows, hires], 0.0)
            + self.overhead[rows, hires]
            + redo_runs * self.local_cost[rows]
            + penalty
        )
        return cost, time, success


def bounds(pair: Any) -> tuple[float, float]:
    """A (low, high) range from the market file."""
    low, high = pair
    return float(low), float(high)


class Market:
    """One run's market: `n` contractor instances of the spec's types and the clients' task stream."""

    def __init__(self, name: str, clients: int, contractors: int, seed: int) -> None:
        self.name = name
        self.spec: dict[str, Any] = SPECS[name]
        self.clients = clients
        self.rng = np.random.default_rng([seed, 1])
        types = list(self.spec["contractor_types"])
        shares = np.array([self.spec["contractor_types"][t]["share"] for t in types])
        self.type_names = types
        self.kind = self.rng.choice(len(types), size=contractors, p=shares / shares.sum())
        self.ids = [f"{types[k]}-{i}" for i, k in enumerate(self.kind)]
        self._setup()

    def _type(self, index: int) -> dict[str, Any]:
        return self.spec["contractor_types"][self.type_names[index]]

    def _setup(self) -> None:
        n = len(self.kind)
        if self.name == "paper":
            ranges = np.array([self._type(k)["reliability"] for k in self.kind])
            self.reliability = self.rng.uniform(ranges[:, 0], ranges[:, 1])
            windows = np.array([self._type(k)["availability"] for k in self.kind])
            self.availability = self.rng.uniform(windows[:, 0], windows[:, 1])
        else:
            self.reliability = np.array([self._type(k)["reliability"] for k in self.kind])
            self.availability = self.rng.uniform(0.6, 1.0, n)
        self.price_level = self.rng.uniform(0.9, 1.1, n)  # each instance's own price level, ±10 %
        if self.name == "paper":  # per task type and contractor: how well its skills fit (static for a run)
            self.fit = np.array(
                [
                    [
                        np.array(self._type(k)["fit"][t]) * (t in self._type(k).get("only", TASK_TYPES))
                        for k in self.kind
                    ]
                    for t in TASK_TYPES
                ]
            )
        quality_risk = 0.0 if self.name == "paper" else 0.01 + 0.05 * (1.0 - self.reliability)
        self.true_success = self.reliability * (1.0 - quality_risk)  # hidden from every strategy but the oracle

    def arrivals(self, hour: int) -> int:
        arrivals = self.spec["arrivals"]
        if "per_client_per_hour" in arrivals:
            rate = arrivals["per_client_per_hour"] * self.clients
        else:
            business = 9 <= hour % 24 < 17 and (hour // 24) % 7 < 5
            demand = arrivals["demand_business_hours"] if business else arrivals["demand_off_hours"]
            rate = arrivals["market_per_hour"] * demand * self.clients / arrivals["per_clients"]
        return int(self.rng.poisson(rate))

    def step(self, hour: int) -> Step:
        count = self.arrivals(hour)
        mix = np.array([self.spec["task_types"][t]["mix"] for t in TASK_TYPES])
        task_type = self.rng.choice(len(TASK_TYPES), size=count, p=mix / mix.sum())
        demand = self.rng.uniform(0.75, 1.25)  # the market's demand this hour, ±25 %
        available = self.rng.random((count, len(self.kind))) < self.availability
        build = self._paper_step if self.name == "paper" else self._reference_step
        return build(task_type, demand, available)

    # ------------------------------------------------------------ the paper preset

    def _paper_step(self, task_type: np.ndarray, demand: float, available: np.ndarray) -> Step:
        spec, rng = self.spec, self.rng
        b, n = len(task_type), len(self.kind)
        tasks = [spec["task_types"][TASK_TYPES[t]] for t in task_type]
        value = np.array([rng.uniform(*t["value_usd"]) for t in tasks]).reshape(b)
        tflop = np.array([t["tflop"] for t in tasks], dtype=float).reshape(b) * rng.uniform(0.5, 2.0, b)
        client = spec["client"]
        local_latency = tflop / client["effective_tflops"]
        contractor = [self._type(k) for k in self.kind]
        speed = np.array([c["effective_tflops"] for c in contractor])
        exec_s = tflop[:, None] / speed[None, :]
        network = np.array([c["network_min"] for c in contractor]) * 60.0
        hourly = np.array([c["usd_per_hour"] * c["markup"] for c in contractor])
        fee = np.array([c["fee_usd"] for c in contractor])
        share_free = available.mean(axis=1, keepdims=True)
        alpha = np.array([c["surge_alpha"] for c in contractor])
        base = (exec_s / 3600.0 * hourly + fee) * self.price_level
        # eq. (7), as shares of capacity: demand 60 % at the mean, ±25 %; free slots follow availability
        price = dynamic_price(base, alpha, 0.6 * demand, share_free, 1.0) * rng.uniform(0.9, 1.1, (b, n))
        fit = self.fit[task_type]  # (B, n, 2): ontological and embedding similarity, zero where a type does not serve
        data_gb = np.array([rng.uniform(*t["data_gb"]) for t in tasks]).reshape(b)
        extras = spec["extras"]
        overhead = (
            data_gb * extras["egress_usd_per_gb"]
            + extras["protocol_overhead_usd"]
            + extras["verification_usd"]
            + extras["integration_usd"]
        )
        sensitivity = rng.choice(len(SENSITIVITIES), size=b)
        breach = np.array([c["breach"] for c in contractor])
        weights = np.array([SENSITIVITY_WEIGHT[name] for name in SENSITIVITIES])[sensitivity]
        p_security = security_risk(breach[None, :, None], weights[:, None], "e2e")  # (B, n), one path each
        expected = exec_s + network
        return Step(
            task_type=task_type,
            value=value,
            deadline_s=np.array([t["deadline_min"] for t in tasks], dtype=float).reshape(b) * 60.0,
            urgency=np.full(b, 0.5),
            risk_level=np.array([SENSITIVITY_WEIGHT[SENSITIVITIES[s]] for s in sensitivity]),
            budget=np.full(b, np.inf),
            local_cost=local_latency / 3600.0 * client["usd_per_hour"],
            local_latency_s=local_latency,
            local_failure=np.array([t["local_failure"] for t in tasks], dtype=float).reshape(b),
            local_fails=rng.random(b) < np.array([t["local_failure"] for t in tasks]).reshape(b),
            ontological=fit[..., 0],
            embedding=fit[..., 1],
            price=price,
            latency_s=expected,
            actual_latency_s=expected * rng.normal(1.0, 0.15, (b, n)).clip(0.5),
            overhead=np.broadcast_to(overhead[:, None], (b, n)).copy(),
            p_security=p_security,
            available=available,
            succeeds=rng.random((b, n)) < self.true_success,
        )

    # ------------------------------------------------------------ the reference-code preset

    def _reference_step(self, task_type: np.ndarray, demand: float, available: np.ndarray) -> Step:
        spec, rng = self.spec, self.rng
        b, n = len(task_type), len(self.kind)
        tasks = [spec["task_types"][TASK_TYPES[t]] for t in task_type]
        complexity = rng.uniform(*bounds(spec["complexity"]), b)
        value = rng.uniform(*bounds(spec["value_usd"]), b)
        contractor = [self._type(k) for k in self.kind]
        price = np.array([c["price_usd"] for c in contractor]) * self.price_level
        price = price[None, :] * rng.normal(1.0, spec["noise"]["price"], (b, n)).clip(0.5)
        latency = np.array([c["latency_min"] for c in contractor])[None, :] * 60.0
        actual = latency * rng.normal(1.0, spec["noise"]["latency"], (b, n)).clip(0.3)
        required = [set(t["skills"]) for t in tasks]
        offered = [set(c["skills"]) for c in contractor]
        ontological = np.array([[len(r & o) / len(r | o) for o in offered] for r in required]).reshape(b, n)
        table = spec["embedding"]
        embedding = np.array(
            [
                [table.get(TASK_TYPES[t], {}).get(self.type_names[k], table["default"]) for k in self.kind]
                for t in task_type
            ]
        ).reshape(b, n)
        extras = spec["extras"]
        data_gb = rng.uniform(*bounds(spec["data_gb"]), b)
        overhead = (
            data_gb * extras["transfer_usd_per_gb"]
            + extras["transfer_fixed_usd"]
            + rng.uniform(*bounds(extras["verification_usd"]), b)
            + extras["integration_usd"]
        )
        local_latency = np.array([t["local_latency_min"] for t in tasks], dtype=float).reshape(b) * 60.0 * complexity
        public = 1.0 - self.reliability
        return Step(
            task_type=task_type,
            value=value,
            deadline_s=np.array([t["deadline_min"] for t in tasks], dtype=float).reshape(b) * 60.0,
            urgency=np.full(b, 0.5),
            risk_level=np.full(b, 0.4),
            budget=value * rng.uniform(*bounds(spec["budget_share"]), b),
            local_cost=local_latency / 3600.0 * spec["client"]["usd_per_hour"],
            local_latency_s=local_latency,
            local_failure=np.full(b, spec["local_failure"]),
            local_fails=rng.random(b) < spec["local_failure"],
            ontological=ontological,
            embedding=embedding,
            price=price,
            latency_s=np.broadcast_to(latency, (b, n)).copy(),
            actual_latency_s=actual,
            overhead=np.broadcast_to(overhead[:, None], (b, n)).copy(),
            p_security=np.broadcast_to(0.02 + 0.1 * public, (b, n)).copy(),
            available=available,
            succeeds=rng.random((b, n)) < self.true_success,
        )

    def reference_risk(self, step: Step) -> np.ndarray:
        """The expected loss the reference code prices into each hire (its contractors' public reliability)."""
        public = 1.0 - self.reliability
        return risk_cost(step.value[:, None], public, 0.02 + 0.1 * public, 0.01 + 0.05 * public)
