"""Seeded generators of the four task types' items, each with its ground truth and what a right answer contains.

Written for COALESCE (templates and procedures of our own; the facts are invented). Every item is made from a
seed, so a bank or a set is reproducible and two seeds give different items: the client's gold probes come from
one seed, evaluation sets from others, and a probe is never the same text twice for long (numbers, companies and
wording vary). Hard items are mixed in: negated and hedged headlines, reports with distractor figures (last
year's revenue, costs) and figures written as billions.

- sentiment: a financial headline and its label (positive, negative, neutral);
- documents: a short quarterly report; revenue and net income in millions of US dollars and the outlook's label;
- risk: 250 daily returns (Student-t shocks), a value and a horizon; the 99 % VaR of the normal closed form on
  the sample's log returns;
- portfolio: expected returns and a factor covariance; the long-only mean-variance optimum (risk aversion 3),
  found by SciPy's SLSQP from several starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

SENTIMENT_LABELS = ["positive", "negative", "neutral"]
GAMMA = 3.0  # risk aversion of the portfolio problems
Item = dict[str, Any]  # {"name", "kind", "subtask": SubtaskSpec fields, "truth", "expect": Expectation fields}

NAMES = (
    "Northwind",
    "Alder",
    "Bluefield",
    "Copperline",
    "Granite",
    "Meridian",
    "Sable",
    "Orchard",
    "Pinecrest",
    "Riverton",
    "Summit",
    "Tidewater",
    "Vantage",
    "Westbrook",
    "Ironbridge",
    "Larkspur",
    "Redfern",
    "Stonegate",
    "Harrow",
    "Kestrel",
    "Brightwater",
    "Ashdown",
    "Fairhaven",
    "Quarry",
)
TRADES = (
    "Components",
    "Logistics",
    "Health",
    "Energy",
    "Bank",
    "Motors",
    "Foods",
    "Software",
    "Airlines",
    "Insurance",
    "Retail",
    "Mining",
    "Chemicals",
    "Telecom",
    "Shipping",
    "Pharma",
)
CITIES = (
    "Denver",
    "Rotterdam",
    "Lyon",
    "Osaka",
    "Leeds",
    "Porto",
    "Calgary",
    "Malmo",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
QUARTERS = ("first", "second", "third", "fourth")

HEADLINES = {
    "positive": (
        "{co} shares jump {n} percent after record quarterly profit",
        "{co} beats earnings estimates and raises its dividend",
        "{co} lifts its full-year forecast as orders surge",
        "{co} wins a {m} million dollar contract",
        "{co} swings to a profit as costs fall",
        "{co} says fears of a slowdown were overdone as sales grow {n} percent",
        "{co} sales rise {n} percent, slightly ahead of forecasts",
        "Analysts upgrade {co} after a strong quarter",
        "{co} reports its best quarter in a decade",
        "{co} is no longer expected to cut jobs as demand recovers",
    ),
    "negative": (
        "{co} shares plunge {n} percent after a profit warning",
        "{co} misses estimates and cuts its dividend",
        "{co} recalls {m} thousand vehicles over brake faults",
        "{co} reports a wider loss as demand weakens",
        "{co} lays off {n} percent of its staff",
        "{co} fails to meet its growth target for a second year",
        "Regulators fine {co} {m} million dollars",
        "{co} revenue edges up but margins collapse",
        "{co} warns that sales will fall {n} percent next year",
        "{co} does not expect a recovery before {month}",
    ),
    "neutral": (
        "{co} schedules its annual shareholder meeting for {month}",
        "{co} appoints a new chief financial officer",
        "{co} moves its headquarters to {city}",
        "{co} results in line with expectations; guidance unchanged",
        "{co} will report quarterly earnings in {month}",
        "{co} completes a previously announced share split",
        "{co} names {k} new board members",
        "{co} opens a regional office in {city}",
        "{co} keeps its dividend at last year's level",
        "{co} publishes its regular monthly sales report",
    ),
}

OUTLOOKS = {
    "positive": (
        "Management expects demand to keep rising next year.",
        "The company raised its outlook for the full year.",
        "Executives said the order book has never been stronger.",
        "The board does not expect the recent growth to slow.",
    ),
    "negative": (
        "The company warned that conditions will worsen in the coming months.",
        "Management cut its forecast and expects weaker demand.",
        "Executives do not expect a recovery before next year.",
        "The board said that margins will remain under pressure.",
    ),
    "neutral": (
        "The company expects stable business conditions.",
        "Guidance for the year was left unchanged.",
        "Management expects results next quarter to be similar.",
        "The company did not change its outlook.",
    ),
}


def _company(rng: np.random.Generator) -> str:
    return f"{rng.choice(NAMES)} {rng.choice(TRADES)}"


def sentiment_item(rng: np.random.Generator, index: int) -> Item:
    label = SENTIMENT_LABELS[index % 3]
    template = str(rng.choice(HEADLINES[label]))
    text = template.format(
        co=_company(rng),
        n=int(rng.integers(2, 40)),
        m=int(rng.integers(3, 900)),
        k=int(rng.integers(2, 5)),
        month=rng.choice(MONTHS),
        city=rng.choice(CITIES),
    )
    text = text[0].upper() + text[1:]
    subtask = {
        "skill": "sentiment-analysis",
        "description": f"Classify the sentiment of this financial headline as positive, negative or neutral: {text}",
        "required_skills": ["skill:sentiment-analysis"],
        "verification": {"kind": "labels", "labels": SENTIMENT_LABELS},
    }
    return {"name": text, "subtask": subtask, "truth": label, "expect": {"label": label}}


def _money(value_musd: float, rng: np.random.Generator) -> str:
    """A figure as a report writes it: millions, or billions for large ones now and then."""
    if value_musd >= 1000 and rng.random() < 0.5:
        return f"{value_musd / 1000:.2f} billion dollars"
    return f"{value_musd:g} million dollars"


def document_item(rng: np.random.Generator, index: int) -> Item:
    company, outlook = _company(rng), SENTIMENT_LABELS[index % 3]
    revenue = round(float(rng.uniform(40, 3000)), 1)
    if revenue >= 1000:
        revenue = round(revenue / 10) * 10.0  # billions are written with two decimals
    margin = float(rng.uniform(-0.05, 0.2))
    income = round(revenue * margin, 1) or 0.1
    change = int(rng.integers(1, 25))
    previous = round(revenue / (1 + change / 100) if outlook != "negative" else revenue * (1 + change / 100), 1)
    income_text = (
        f"Net income was {_money(income, rng)}." if income > 0 else f"The net loss was {_money(-income, rng)}."
    )
    sentences = [
        f"{company} reported revenue of {_money(revenue, rng)} for the {rng.choice(QUARTERS)} quarter.",
        income_text,
    ]
    if rng.random() < 0.5:  # a distractor figure
        sentences.append(f"A year earlier revenue had been {previous:g} million dollars.")
    if rng.random() < 0.3:
        sentences.append(f"Operating costs came to {round(revenue - income * 1.3, 1):g} million dollars.")
    sentences.append(str(rng.choice(OUTLOOKS[outlook])))
    text = " ".join(sentences)
    instruction = (
        "Read this quarterly report. State the revenue and the net income in millions of US dollars, and whether "
        "the outlook is positive, negative or neutral.\n\n"
    )
    subtask = {
        "skill": "financial-document-analysis",
        "description": "Financial document analysis of a quarterly report: revenue, net income and outlook",
        "required_skills": ["skill:financial-document-analysis"],
        "input_text": instruction + text,
    }
    truth = {"revenue_musd": revenue, "net_income_musd": income, "outlook": outlook}
    expect = {"figures": [revenue, abs(income)], "label": outlook, "labels": SENTIMENT_LABELS}
    return {"name": company, "subtask": subtask, "truth": truth, "expect": expect}


def risk_item(rng: np.random.Generator, index: int) -> Item:
    value = float(rng.choice([250_000, 1_000_000, 2_500_000, 5_000_000]))
    horizon = int(rng.choice([1, 5, 10]))
    volatility = float(rng.uniform(0.006, 0.025))
    returns = (float(rng.uniform(-0.0002, 0.0008)) + volatility * rng.standard_t(5, 250) / math.sqrt(5 / 3)).round(6)
    logs = np.log1p(returns)
    mu, sigma = float(logs.mean()), float(logs.std(ddof=1))
    var = -value * math.expm1(mu * horizon + sigma * math.sqrt(horizon) * norm.ppf(0.01))
    data = {"portfolio_value": value, "returns": returns.tolist(), "horizon_days": horizon, "confidence": 0.99}
    subtask = {
        "skill": "risk-assessment",
        "description": "Monte Carlo value at risk and expected shortfall of the fund",
        "required_skills": ["skill:risk-assessment"],
        "input_data": data,
    }
    truth = {"var_parametric": round(var, 2)}
    return {"name": f"fund-{index}", "subtask": subtask, "truth": truth, "expect": {"fields": {"var": var}}}


def optimum(mu: np.ndarray, covariance: np.ndarray, starts: int, rng: np.random.Generator) -> np.ndarray:
    """The long-only mean-variance optimum by SLSQP, the best of several starting points."""

    def negative_utility(w: np.ndarray) -> float:
        return float(-(mu @ w - GAMMA / 2 * w @ covariance @ w))

    n, best = len(mu), None
    for _ in range(starts):
        start = rng.dirichlet(np.ones(n))
        found = minimize(
            negative_utility,
            start,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * n,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
            options={"ftol": 1e-14, "maxiter": 1000},
        )
        if found.success and (best is None or found.fun < best.fun):
            best = found
    if best is None:
        raise ValueError("SLSQP found no optimum from any start")
    return np.asarray(best.x)


def portfolio_item(rng: np.random.Generator, index: int) -> Item:
    n = int(rng.integers(3, 8))
    loadings = rng.normal(size=(n, 3)) * 0.12
    covariance = loadings @ loadings.T + np.diag(rng.uniform(0.005, 0.03, n))
    mu = rng.uniform(0.02, 0.14, n)
    weights = optimum(mu, covariance, 8, rng)
    utility = float(mu @ weights - GAMMA / 2 * weights @ covariance @ weights)
    data = {
        "expected_returns": mu.round(6).tolist(),
        "covariance": covariance.round(8).tolist(),
        "risk_aversion": GAMMA,
    }
    subtask = {
        "skill": "portfolio-optimisation",
        "description": "Mean-variance optimal long-only weights of the book",
        "required_skills": ["skill:portfolio-optimisation"],
        "input_data": data,
    }
    truth = {"weights": weights.round(6).tolist(), "utility": round(utility, 8), "input": data}
    return {
        "name": f"book-{index}",
        "subtask": subtask,
        "truth": truth,
        "expect": {"fields": {"weights": weights.tolist()}},
    }


GENERATORS: dict[str, Callable[[np.random.Generator, int], Item]] = {
    "sentiment-analysis": sentiment_item,
    "financial-document-analysis": document_item,
    "risk-assessment": risk_item,
    "portfolio-optimisation": portfolio_item,
}


def generate(skill: str, count: int, seed: int) -> list[Item]:
    """`count` items of a task type from `seed` (the same seed, the same items)."""
    rng = np.random.default_rng([seed, list(GENERATORS).index(skill)])
    return [{"kind": skill, **GENERATORS[skill](rng, index)} for index in range(count)]


GOLD_SEED = 1_000  # the client's probes; evaluation sets use other seeds


def gold_bank(per_skill: int = 60, seed: int = GOLD_SEED) -> list[dict[str, Any]]:
    """The default gold bank: known-answer items per skill, in the form `client_agent.gold.GoldItem` reads."""
    return [
        {"id": f"gold-{skill}-{seed}-{i}", "skill": skill, "subtask": item["subtask"], "expect": item["expect"]}
        for skill in GENERATORS
        for i, item in enumerate(generate(skill, per_skill, seed))
    ]
