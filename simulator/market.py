"""The simulated market: contractors whose quality the clients do not know, tasks arriving hour by hour, and
everything a decision needs about each task, with the randomness of every possible outcome drawn up front, so
that every strategy meets the same tasks and the same luck (common random numbers).

Outcomes are graded like the live market's: per hire, an answer comes back or not (reliability), passes the
client's check or not, and is right or wrong (quality per contractor instance and task type, lower where its
skills fit the task worse); a check catches only some wrong answers, and a wrong answer that gets through is
paid and loses the task's value; a hire may leak the task's data (a breach costs its value times its
sensitivity). Where the money goes is kept apart (`Money`): compute, prices paid, overheads, deadline penalties
(an option of a market), value lost, breaches.

Three markets, described in `markets.json` with their sources: `paper` (public cloud prices and hardware specs),
`reference` (the paper's public reference code, as PAPER.md reads it) and `local-market` (the live market's
agents as the validation recorded them, `simulator.recorded`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.economics.cost_model import dynamic_price, latency_penalty, risk_cost
from shared.economics.reputation import SENSITIVITY_WEIGHT, security_risk
from shared.economics.skills import CompatibilityWeights
from simulator.recorded import live_market

SPECS = json.loads((Path(__file__).resolve().parent / "markets.json").read_text())
TASK_TYPES = ("financial_rag", "risk_assessment", "sentiment_analysis", "portfolio_optimization")
SENSITIVITIES = ("public", "internal", "confidential")
LOCAL_MARKET = "local-market"


MONEY = ("compute", "paid", "overhead", "penalty", "value_lost", "breach")


@dataclass
class Money:
    """Where each task's money went (USD, arrays of one shape). The total is what a strategy is scored on."""

    compute: np.ndarray  # the client's own runs
    paid: np.ndarray  # prices paid to contractors (a hire whose answer fails the check is not paid: escrow)
    overhead: np.ndarray  # communication, verification, integration, gold probes
    penalty: np.ndarray  # deadline penalties, where the market has them
    value_lost: np.ndarray  # the value of every answer that came out wrong
    breach: np.ndarray  # the data's value times its sensitivity, where a hire leaked it

    @property
    def total(self) -> np.ndarray:
        return np.sum([getattr(self, name) for name in MONEY], axis=0)


@dataclass
class Step:
    """The tasks of one hour: per task (B,) and per task and contractor (B, n). Times in seconds. The fields
    below `available` are drawn before any strategy decides (common random numbers)."""

    task_type: np.ndarray
    value: np.ndarray
    deadline_s: np.ndarray  # NaN where the market has no deadline penalty
    urgency: np.ndarray
    risk_level: np.ndarray  # the data's sensitivity weight
    budget: np.ndarray
    detection: np.ndarray  # the share of wrong answers the client's check catches
    local_cost: np.ndarray  # one local run
    local_latency_s: np.ndarray
    local_failure: np.ndarray  # the chance the client's own result is wrong or fails its check
    local_redo: np.ndarray  # a local result that fails its check is redone once
    ontological: np.ndarray
    embedding: np.ndarray
    price: np.ndarray
    latency_s: np.ndarray  # what the client expects
    actual_latency_s: np.ndarray  # what happens
    overhead: np.ndarray  # communication + verification + integration
    p_security: np.ndarray
    true_success: np.ndarray  # the chance of a right answer that passes the check: the oracle's knowledge
    available: np.ndarray
    local_passes: np.ndarray  # (B, 2): the first local run and its redo pass the check
    local_right: np.ndarray  # (B, 2): ... and are right (meaningful where they pass)
    delivers: np.ndarray  # an answer comes back
    passes: np.ndarray  # it passes the client's check
    right: np.ndarray  # it is right (meaningful where it passes)
    breach: np.ndarray  # the hire leaks the task's data
    probed: np.ndarray  # (B,): a learning client sends a gold probe beside the work and learns its true grade

    def __len__(self) -> int:
        return len(self.value)

    def take(self, rows: np.ndarray) -> Step:
        """The tasks selected by `rows` (a mask or indices)."""
        return Step(**{name: getattr(self, name)[rows] for name in Step.__dataclass_fields__})

    def value_at_stake(self) -> np.ndarray:
        """What a bad hire costs: caught by the check, the local redo and its delay; missed, the task's value."""
        redo = self.local_cost + latency_penalty(self.local_latency_s * 1.5, self.deadline_s, self.value, self.urgency)
        return self.detection * redo + (1.0 - self.detection) * self.value

    def local_outcome(self) -> tuple[Money, np.ndarray, np.ndarray]:
        """(money, time, right) of doing each task locally, redone once where the market redoes a failed check."""
        redo = ~self.local_passes[:, 0] & self.local_redo
        final = redo.astype(int)
        rows = np.arange(len(self))
        right = self.local_passes[rows, final] & self.local_right[rows, final]
        runs = 1.0 + redo
        time = self.local_latency_s * runs
        none = np.zeros(len(self))
        money = Money(
            compute=self.local_cost * runs,
            paid=none,
            overhead=none,
            penalty=latency_penalty(time, self.deadline_s, self.value, self.urgency),
            value_lost=self.value * ~right,
            breach=none,
        )
        return money, time, right

    def local_observed(self, probing: bool) -> tuple[np.ndarray, np.ndarray]:
        """(observed, probe cost) of each task's first local run: what the client learns of its own worker (the
        check's verdict, or the truth where a gold probe, one more local run, went beside it)."""
        passed = self.local_passes[:, 0]
        if not probing:
            return passed, np.zeros(len(self))
        return np.where(self.probed, passed & self.local_right[:, 0], passed), self.probed * self.local_cost

    def hired_outcome(
        self, rows: np.ndarray, hires: np.ndarray, local: tuple[Money, np.ndarray, np.ndarray], probing: bool = False
    ) -> tuple[Money, np.ndarray, np.ndarray, np.ndarray]:
        """(money, time, observed, right) of hiring contractor `hires[k]` for task `rows[k]`, given every task's
        `local_outcome()`. An answer that does not come back or fails the check is not paid and the task is done
        locally after the time the hire took; one that passes is paid, right or wrong. `observed` is what the
        client learns: the check's verdict, or, for a `probing` client, the truth where a gold probe (paid like
        the hire) went beside it."""
        local_money, local_time, local_right = local
        ok = self.delivers[rows, hires] & self.passes[rows, hires]
        right = np.where(ok, self.right[rows, hires], local_right[rows])
        time = self.actual_latency_s[rows, hires] + np.where(ok, 0.0, local_time[rows])
        price = self.price[rows, hires]
        probed = self.probed[rows] & probing
        money = Money(
            compute=np.where(ok, 0.0, local_money.compute[rows]),
            paid=np.where(ok, price, 0.0),
            overhead=self.overhead[rows, hires] + probed * price,
            penalty=latency_penalty(time, self.deadline_s[rows], self.value[rows], self.urgency[rows]),
            value_lost=self.value[rows] * ~right,
            breach=self.breach[rows, hires] * self.value[rows] * self.risk_level[rows],
        )
        observed = np.where(probed, ok & self.right[rows, hires], ok)
        return money, time, observed, right


def checked(p_right: np.ndarray, detection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chance an answer passes the check, chance an answer that passes is right), for answers right with
    `p_right` and a check that catches a wrong one with `detection` (right ones always pass)."""
    passes = p_right + (1.0 - p_right) * (1.0 - detection)
    return passes, np.divide(p_right, passes, out=np.zeros(np.shape(passes)), where=passes > 0)


def bounds(pair: Any) -> tuple[float, float]:
    """A (low, high) range from the market file."""
    low, high = pair
    return float(low), float(high)


class Market:
    """One run's market: `n` contractor instances of the spec's types and the clients' task stream."""

    def __init__(
        self, name: str, clients: int, contractors: int, seed: int, outcomes: dict[str, Any] | None = None
    ) -> None:
        self.name = name
        self.spec: dict[str, Any] = SPECS[name]
        self.outcomes: dict[str, Any] = {**self.spec["outcomes"], **(outcomes or {})}
        self.clients = clients
        self.rng = np.random.default_rng([seed, 1])
        if name == LOCAL_MARKET:
            self.live = live_market()
            self.type_names = list(self.live.agents)
            self.kind = np.arange(contractors) % len(self.type_names)  # every measured agent in turn
        else:
            self.type_names = list(self.spec["contractor_types"])
            shares = np.array([self.spec["contractor_types"][t]["share"] for t in self.type_names])
            self.kind = self.rng.choice(len(shares), size=contractors, p=shares / shares.sum())
        self.ids = [f"{self.type_names[k]}-{i}" for i, k in enumerate(self.kind)]
        self.price_level = self.rng.uniform(0.9, 1.1, contractors)  # each instance's own price level, ±10 %
        {"paper": self._paper_setup, "reference": self._reference_setup, LOCAL_MARKET: self._local_setup}[name]()

    def _type(self, index: int | np.integer) -> dict[str, Any]:
        return self.spec["contractor_types"][self.type_names[index]]

    def _paper_setup(self) -> None:
        self.task_table = self._task_table()
        contractor = [self._type(k) for k in self.kind]
        self.contractor_table = {
            key: np.array([c[key] for c in contractor], dtype=float)
            for key in ("effective_tflops", "fee_usd", "surge_alpha", "breach")
        }
        self.contractor_table["usd_per_hour"] = np.array([c["usd_per_hour"] * c["markup"] for c in contractor])
        self.contractor_table["network_s"] = np.array([c["network_min"] for c in contractor]) * 60.0
        ranges = np.array([self._type(k)["reliability"] for k in self.kind])
        self.reliability = self.rng.uniform(ranges[:, 0], ranges[:, 1])
        windows = np.array([self._type(k)["availability"] for k in self.kind])
        self.availability = self.rng.uniform(windows[:, 0], windows[:, 1])
        # per task type and contractor: how well its skills fit (static for a run), (T, n, 2)
        self.fit = np.array(
            [
                [np.array(self._type(k)["fit"][t]) * (t in self._type(k).get("only", TASK_TYPES)) for k in self.kind]
                for t in TASK_TYPES
            ]
        )
        # quality on a fitting task: the reference code's quality risk; a worse fit, fewer right answers
        fitting = 1.0 - (0.01 + 0.05 * (1.0 - self.reliability))
        mean = np.clip(fitting[None, :] * self.fit.mean(axis=2) ** self.outcomes["fit_exponent"], 1e-3, 1 - 1e-3)
        concentration = self.outcomes["quality_concentration"]
        self.p_right = self.rng.beta(mean * concentration, (1.0 - mean) * concentration)  # (T, n), this instance's

    def _task_table(self) -> dict[str, np.ndarray]:
        """Per task type (in TASK_TYPES order), the numbers a paper-market task draws from."""
        types = [self.spec["task_types"][t] for t in TASK_TYPES]
        table = {
            key: np.array([t[key] for t in types], dtype=float)
            for key in ("tflop", "detection", "local_failure", "deadline_min")
        }
        for key in ("value_usd", "data_gb"):
            ranges = np.array([bounds(t[key]) for t in types])
            table[f"{key.removesuffix('_usd')}_low"], table[f"{key.removesuffix('_usd')}_high"] = (
                ranges[:, 0],
                ranges[:, 1],
            )
        return table

    def _reference_setup(self) -> None:
        self.reliability = np.array([self._type(k)["reliability"] for k in self.kind])
        self.availability = self.rng.uniform(0.6, 1.0, len(self.kind))
        quality_risk = 0.01 + 0.05 * (1.0 - self.reliability)
        self.p_right = np.broadcast_to(1.0 - quality_risk, (len(TASK_TYPES), len(self.kind)))

    def _local_setup(self) -> None:
        """Each instance draws its own rates from the posterior of its agent's record, per task type."""
        n, live, rng = len(self.kind), self.live, self.rng
        shape = (len(TASK_TYPES), n)
        self.reliability, self.pass_rate, self.p_right = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.cost, self.seconds, self.expected_s = np.zeros(shape), np.ones(shape), np.ones(shape)
        self.fit = np.zeros((*shape, 2))
        prior = CompatibilityWeights().performance * 0.5  # the skill match was recorded with no track record
        for t, task_type in enumerate(TASK_TYPES):
            for i, k in enumerate(self.kind):
                record = live.measured[self.type_names[k]].get(task_type)
                if record is None:
                    continue  # it lacks the skill: no fit, never eligible
                # Jeffreys posteriors, Beta(x + 1/2, n − x + 1/2), of the three rates
                self.reliability[t, i] = rng.beta(record.answered + 0.5, record.attempts - record.answered + 0.5)
                self.pass_rate[t, i] = rng.beta(record.passed + 0.5, record.answered - record.passed + 0.5)
                self.p_right[t, i] = rng.beta(record.grade_passed + 0.5, record.passed - record.grade_passed + 0.5)
                self.cost[t, i], self.seconds[t, i] = record.cost_usd, record.seconds
                self.expected_s[t, i] = record.latency_s
                self.fit[t, i] = (record.compatibility - prior) / (1.0 - CompatibilityWeights().performance)
        self.availability = np.ones(n)  # the live agents were up for the whole recording

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
        mix = self._mix()
        task_type = self.rng.choice(len(TASK_TYPES), size=count, p=mix / mix.sum())
        demand = self.rng.uniform(0.75, 1.25)  # the market's demand this hour, ±25 %
        available = self.rng.random((count, len(self.kind))) < self.availability
        build = {"paper": self._paper_step, "reference": self._reference_step, LOCAL_MARKET: self._local_step}
        return build[self.name](task_type, demand, available)

    def _mix(self) -> np.ndarray:
        if self.name == LOCAL_MARKET:
            return np.array([self.live.mix.get(t, 0.0) for t in TASK_TYPES])
        return np.array([self.spec["task_types"][t]["mix"] for t in TASK_TYPES])

    def _deadline(self, minutes: np.ndarray) -> np.ndarray:
        """Deadlines in seconds, or NaN (no penalty) in a market without deadline penalties."""
        return minutes * 60.0 if self.outcomes["deadline_penalty"] else np.full(len(minutes), np.nan)

    def _draws(
        self,
        task_type: np.ndarray,
        answers: tuple[np.ndarray, np.ndarray],
        local: tuple[np.ndarray, np.ndarray],
        p_security: np.ndarray,
    ) -> dict[str, Any]:
        """Every outcome of the hour's tasks, drawn up front. `answers`: per task and contractor (B, n), the
        chance an answer passes the check and the chance one that passes is right; `local`: the same per task
        (B,) for the client's own runs; breaches at `p_security`."""
        rng = self.rng
        (p_pass, quality), (local_pass, local_quality) = answers, local
        b, n = p_pass.shape
        delivers = self.reliability[task_type] if self.reliability.ndim == 2 else self.reliability[None, :]
        return {
            "local_failure": 1.0 - local_pass * local_quality,
            "local_redo": np.full(b, bool(self.outcomes["local_redo"])),
            "p_security": p_security,
            "true_success": delivers * p_pass * quality,
            "local_passes": rng.random((b, 2)) < local_pass[:, None],
            "local_right": rng.random((b, 2)) < local_quality[:, None],
            "delivers": rng.random((b, n)) < delivers,
            "passes": rng.random((b, n)) < p_pass,
            "right": rng.random((b, n)) < quality,
            "breach": rng.random((b, n)) < p_security,
            "probed": rng.random(b) < self.outcomes["probe_share"],
        }

    # ------------------------------------------------------------ the paper preset

    def _paper_step(self, task_type: np.ndarray, demand: float, available: np.ndarray) -> Step:
        spec, rng, types, contractor = self.spec, self.rng, self.task_table, self.contractor_table
        b, n = len(task_type), len(self.kind)
        value = rng.uniform(types["value_low"][task_type], types["value_high"][task_type])
        tflop = types["tflop"][task_type] * rng.uniform(0.5, 2.0, b)
        client = spec["client"]
        local_latency = tflop / client["effective_tflops"]
        exec_s = tflop[:, None] / contractor["effective_tflops"][None, :]
        share_free = available.mean(axis=1, keepdims=True)
        base = (exec_s / 3600.0 * contractor["usd_per_hour"] + contractor["fee_usd"]) * self.price_level
        # eq. (7), as shares of capacity: demand 60 % at the mean, ±25 %; free slots follow availability
        price = dynamic_price(base, contractor["surge_alpha"], 0.6 * demand, share_free, 1.0) * rng.uniform(
            0.9, 1.1, (b, n)
        )
        fit = self.fit[task_type]  # (B, n, 2): ontological and embedding similarity, zero where a type does not serve
        data_gb = rng.uniform(types["data_gb_low"][task_type], types["data_gb_high"][task_type])
        extras = spec["extras"]
        overhead = (
            data_gb * extras["egress_usd_per_gb"]
            + extras["protocol_overhead_usd"]
            + extras["verification_usd"]
            + extras["integration_usd"]
        )
        sensitivity = rng.choice(len(SENSITIVITIES), size=b)
        weights = np.array([SENSITIVITY_WEIGHT[name] for name in SENSITIVITIES])[sensitivity]
        p_security = security_risk(contractor["breach"][None, :, None], weights[:, None], "e2e")  # (B, n), a path each
        expected = exec_s + contractor["network_s"]
        detection = types["detection"][task_type]
        local_right = 1.0 - types["local_failure"][task_type]
        return Step(
            task_type=task_type,
            value=value,
            deadline_s=self._deadline(types["deadline_min"][task_type]),
            urgency=np.full(b, 0.5),
            risk_level=weights,
            budget=np.full(b, np.inf),
            detection=detection,
            local_cost=local_latency / 3600.0 * client["usd_per_hour"],
            local_latency_s=local_latency,
            ontological=fit[..., 0],
            embedding=fit[..., 1],
            price=price,
            latency_s=expected,
            actual_latency_s=expected * rng.normal(1.0, 0.15, (b, n)).clip(0.5),
            overhead=np.broadcast_to(overhead[:, None], (b, n)).copy(),
            available=available,
            **self._draws(
                task_type,
                checked(self.p_right[task_type], detection[:, None]),
                checked(local_right, detection),
                p_security,
            ),
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
        detection = np.full(b, float(self.outcomes["detection"]))
        return Step(
            task_type=task_type,
            value=value,
            deadline_s=self._deadline(np.array([t["deadline_min"] for t in tasks], dtype=float).reshape(b)),
            urgency=np.full(b, 0.5),
            risk_level=np.full(b, 0.4),
            budget=value * rng.uniform(*bounds(spec["budget_share"]), b),
            detection=detection,
            local_cost=local_latency / 3600.0 * spec["client"]["usd_per_hour"],
            local_latency_s=local_latency,
            ontological=ontological,
            embedding=embedding,
            price=price,
            latency_s=np.broadcast_to(latency, (b, n)).copy(),
            actual_latency_s=actual,
            overhead=np.broadcast_to(overhead[:, None], (b, n)).copy(),
            available=available,
            **self._draws(
                task_type,
                checked(self.p_right[task_type], detection[:, None]),
                checked(np.full(b, 1.0 - spec["local_failure"]), detection),
                np.broadcast_to(0.02 + 0.1 * public, (b, n)).copy(),
            ),
        )

    # ------------------------------------------------------------ the live market, as recorded

    def _local_step(self, task_type: np.ndarray, demand: float, available: np.ndarray) -> Step:
        """The recorded agents' prices (±10 % per instance and per task), latencies (±15 %) and rates; the
        client's own worker as recorded; no deadlines (the live market has none)."""
        rng, live, spec = self.rng, self.live, self.spec
        b, n = len(task_type), len(self.kind)
        local = [live.local[TASK_TYPES[t]] for t in task_type]
        value = np.array([live.value_usd[TASK_TYPES[t]] for t in task_type], dtype=float).reshape(b)
        price = self.cost[task_type] * self.price_level * rng.uniform(0.9, 1.1, (b, n))
        expected = self.expected_s[task_type]
        fit = self.fit[task_type]
        p_security = security_risk([spec["breach_probability"]] * 2, spec["sensitivity"], "e2e")
        return Step(
            task_type=task_type,
            value=value,
            deadline_s=np.full(b, np.nan),
            urgency=np.full(b, 0.25),
            risk_level=np.full(b, SENSITIVITY_WEIGHT[spec["sensitivity"]]),
            budget=np.full(b, np.inf),
            detection=np.array([live.detection[TASK_TYPES[t]] for t in task_type], dtype=float).reshape(b),
            local_cost=np.array([m.cost_usd for m in local], dtype=float).reshape(b),
            local_latency_s=np.array([m.seconds for m in local], dtype=float).reshape(b),
            ontological=fit[..., 0],
            embedding=fit[..., 1],
            price=price,
            latency_s=expected.copy(),
            actual_latency_s=self.seconds[task_type] * rng.normal(1.0, 0.15, (b, n)).clip(0.3),
            overhead=np.full((b, n), spec["overhead_usd"]),
            available=available & (self.reliability[task_type] > 0),
            **self._draws(
                task_type,
                (self.pass_rate[task_type], self.p_right[task_type]),
                (
                    np.array([m.pass_rate for m in local], dtype=float).reshape(b),
                    np.array([m.quality for m in local], dtype=float).reshape(b),
                ),
                np.full((b, n), p_security),
            ),
        )

    def reference_risk(self, step: Step) -> np.ndarray:
        """The expected loss the reference code prices into each hire (its contractors' public reliability)."""
        public = 1.0 - self.reliability
        return risk_cost(step.value[:, None], public, 0.02 + 0.1 * public, 0.01 + 0.05 * public)
