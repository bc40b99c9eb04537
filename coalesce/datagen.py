"""Seeded generators of the four task types' items, each with its ground truth and what a right answer contains.

Written for COALESCE (templates and procedures of our own; the facts are invented).
Templates come in two families (even and odd): the gold bank is generated from one, the held-out evaluation
set from the other. Every item is made from a
seed, so a bank or a set is reproducible and two seeds give different items: the client's gold probes come from
one seed, evaluation sets from others, and a probe is never the same text twice for long (numbers, companies and
wording vary). Hard items are mixed in: negated, hedged and mixed headlines ("despite", "no longer", "might"),
reports whose sentences come in several forms and orders, with distractor figures (last year's revenue, costs,
cash, debt) and figures written as billions, with a dollar sign or in words.

- sentiment: a financial headline and its label (positive, negative, neutral);
- documents: a short quarterly report; revenue and net income in millions of US dollars and the outlook's label;
- risk: 250 daily returns (Student-t shocks), a value and a horizon; the 99 % VaR of the normal closed form on
  the sample's log returns;
- portfolio: expected returns and a factor covariance; the long-only mean-variance optimum (risk aversion 3),
  found by SciPy's SLSQP from several starts;
- similarity: a corpus of vectors and a query near one of them; the indices of the k most cosine-similar vectors.
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

# Templates alternate between two families: the gold bank is written from the even ones, the evaluation sets
# from the odd ones, so that no agent's competence is measured on the wording it was probed with.
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
        "Despite a weak market, {co} grows revenue {n} percent",
        "{co} clears the last regulatory hurdle for its new plant",
        "Investors cheer as {co} doubles its buyback to {m} million dollars",
        "{co} margins widen for a {ordinal} straight quarter",
        "Order intake at {co} hits an all-time high",
        "{co} did not disappoint: profit up {n} percent",
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
        "{co} suspends its outlook after a cyberattack",
        "Rating agency cuts {co} to junk",
        "{co} might breach its loan covenants, auditors say",
        "{co} writes down {m} million dollars on its {city} unit",
        "Shares of {co} sink as its chief executive resigns abruptly",
        "{co} profit halves on weaker prices",
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
        "{co} confirms talks with {co2}; no decision has been made",
        "{co} renames its {city} division",
        "{co} to present at an industry conference in {month}",
        "{co} files its annual report with the regulator",
        "{co} prices a bond at par, as expected",
        "{co} says its {city} plant will close for {k} days of routine maintenance",
    ),
}

OUTLOOKS = {
    "positive": (
        "Management expects demand to keep rising next year.",
        "The company raised its outlook for the full year.",
        "Executives said the order book has never been stronger.",
        "The board does not expect the recent growth to slow.",
        "It now sees full-year sales at the top of its range.",
        "Looking ahead, management sees margins improving further.",
        "The chief executive said the worst is clearly behind the company.",
        "Guidance was raised for the second time this year.",
    ),
    "negative": (
        "The company warned that conditions will worsen in the coming months.",
        "Management cut its forecast and expects weaker demand.",
        "Executives do not expect a recovery before next year.",
        "The board said that margins will remain under pressure.",
        "It withdrew its full-year guidance, citing falling orders.",
        "Management sees sales shrinking again next quarter.",
        "The chief executive warned of job cuts if demand does not pick up.",
        "The company expects another loss in the coming quarter.",
    ),
    "neutral": (
        "The company expects stable business conditions.",
        "Guidance for the year was left unchanged.",
        "Management expects results next quarter to be similar.",
        "The company did not change its outlook.",
        "It reaffirmed the targets it set in the spring.",
        "Management gave no new guidance for the year.",
        "Executives expect the coming quarter to look much like this one.",
        "The outlook for the full year is unchanged.",
    ),
}
REVENUE_SENTENCES = (
    "{co} reported revenue of {revenue} for the {quarter} quarter.",
    "Sales at {co} came to {revenue} in the {quarter} quarter.",
    "In the {quarter} quarter, {co} had revenue of {revenue}.",
    "{co} said its {quarter}-quarter turnover was {revenue}.",
    "Revenue for the {quarter} quarter reached {revenue}, {co} said.",
    "{co} booked sales of {revenue} over the quarter.",
)
INCOME_SENTENCES = (
    ("Net income was {income}.", "The net loss was {income}."),
    ("The quarter's net profit came to {income}.", "It posted a net loss of {income}."),
    ("After taxes it earned {income}.", "After taxes it lost {income}."),
    ("Net income for the period stood at {income}.", "The bottom line showed a loss of {income}."),
)
DISTRACTORS = (
    "A year earlier revenue had been {previous}.",
    "Operating costs came to {costs}.",
    "In the same quarter last year sales were {previous}.",
    "It spent {capex} on new equipment.",
    "The company has {cash} of cash on hand.",
    "Debt stood at {debt} at the end of the quarter.",
)
ORDINALS = ("second", "third", "fourth", "fifth")
WORDS_BELOW_20 = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

Family = str | None  # "gold" (even templates), "evaluation" (odd ones) or None (all)


def in_family(options: tuple[Any, ...], family: Family) -> tuple[Any, ...]:
    """The templates of a family: the even ones for the gold bank, the odd ones for evaluation."""
    if family is None:
        return options
    return options[{"gold": 0, "evaluation": 1}[family] :: 2]


def in_words(number: int) -> str:
    """A whole number below a million in English words ("two hundred and forty")."""
    if number < 20:
        return WORDS_BELOW_20[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return TENS[tens - 2] + (f"-{WORDS_BELOW_20[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{WORDS_BELOW_20[hundreds]} hundred" + (f" and {in_words(rest)}" if rest else "")
    thousands, rest = divmod(number, 1000)
    return f"{in_words(thousands)} thousand" + (f" {in_words(rest)}" if rest else "")


def _company(rng: np.random.Generator) -> str:
    return f"{rng.choice(NAMES)} {rng.choice(TRADES)}"


def sentiment_item(rng: np.random.Generator, index: int, family: Family = None) -> Item:
    label = SENTIMENT_LABELS[index % 3]
    template = str(rng.choice(in_family(HEADLINES[label], family)))
    text = template.format(
        co=_company(rng),
        co2=_company(rng),
        n=int(rng.integers(2, 40)),
        m=int(rng.integers(3, 900)),
        k=int(rng.integers(2, 5)),
        month=rng.choice(MONTHS),
        city=rng.choice(CITIES),
        ordinal=rng.choice(ORDINALS),
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
    """A figure as a report writes it: millions, billions for large ones now and then, words for some whole
    ones."""
    if value_musd >= 1000 and rng.random() < 0.5:
        return f"{value_musd / 1000:.2f} billion dollars"
    if value_musd == int(value_musd) and value_musd < 1000 and rng.random() < 0.5:
        return f"{in_words(int(value_musd))} million dollars"
    if rng.random() < 0.2:
        return f"${value_musd:g} million"
    return f"{value_musd:g} million dollars"


def document_item(rng: np.random.Generator, index: int, family: Family = None) -> Item:
    company, outlook = _company(rng), SENTIMENT_LABELS[index % 3]
    revenue = round(float(rng.uniform(40, 3000)), 1)
    if revenue >= 1000:
        revenue = round(revenue / 10) * 10.0  # billions are written with two decimals
    elif rng.random() < 0.3:
        revenue = float(round(revenue))  # a whole number, perhaps written in words
    margin = float(rng.uniform(-0.05, 0.2))
    income = round(revenue * margin, 1) or 0.1
    change = int(rng.integers(1, 25))
    previous = round(revenue / (1 + change / 100) if outlook != "negative" else revenue * (1 + change / 100), 1)
    gain, loss = in_family(INCOME_SENTENCES, family)[int(rng.integers(len(in_family(INCOME_SENTENCES, family))))]
    income_sentence = (gain if income > 0 else loss).format(income=_money(abs(income), rng))
    revenue_sentence = str(rng.choice(in_family(REVENUE_SENTENCES, family))).format(
        co=company, revenue=_money(revenue, rng), quarter=rng.choice(QUARTERS)
    )
    sentences = [revenue_sentence, income_sentence]
    figures = {
        "previous": f"{previous:g} million dollars",
        "costs": f"{round(revenue - income * 1.3, 1):g} million dollars",
        "capex": f"{round(revenue * float(rng.uniform(0.02, 0.1)), 1):g} million dollars",
        "cash": f"{round(revenue * float(rng.uniform(0.1, 0.8)), 1):g} million dollars",
        "debt": f"{round(revenue * float(rng.uniform(0.2, 1.5)), 1):g} million dollars",
    }
    for distractor in in_family(DISTRACTORS, family):  # distractor figures, in random places
        if rng.random() < 0.3:
            sentences.insert(int(rng.integers(1, len(sentences) + 1)), distractor.format(**figures))
    sentences.append(str(rng.choice(in_family(OUTLOOKS[outlook], family))))
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


def risk_item(rng: np.random.Generator, index: int, family: Family = None) -> Item:
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


def portfolio_item(rng: np.random.Generator, index: int, family: Family = None) -> Item:
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


def similarity_item(rng: np.random.Generator, index: int, family: Family = None) -> Item:
    rows, width, k = int(rng.integers(24, 97)), int(rng.integers(8, 33)), int(rng.integers(3, 6))
    corpus = rng.normal(size=(rows, width)).round(4)
    query = (corpus[rng.integers(rows)] + rng.normal(scale=0.5, size=width)).round(4)
    cosine = corpus @ query / (np.linalg.norm(corpus, axis=1) * np.linalg.norm(query))
    nearest = [int(i) for i in np.argsort(-cosine, kind="stable")[:k]]
    data = {"corpus": corpus.tolist(), "query": query.tolist(), "k": k}
    subtask = {
        "skill": "similarity-search",
        "description": f"The {k} documents whose embeddings are closest to the query's (cosine similarity)",
        "required_skills": ["skill:similarity-search"],
        "input_data": data,
    }
    return {
        "name": f"search-{index}",
        "subtask": subtask,
        "truth": {"indices": nearest},
        "expect": {"fields": {"indices": [float(i) for i in nearest]}, "tolerance": 0.5},
    }


GENERATORS: dict[str, Callable[[np.random.Generator, int, Family], Item]] = {
    "sentiment-analysis": sentiment_item,
    "financial-document-analysis": document_item,
    "risk-assessment": risk_item,
    "portfolio-optimisation": portfolio_item,
    "similarity-search": similarity_item,
}


def generate(skill: str, count: int, seed: int, family: Family = None) -> list[Item]:
    """`count` items of a task type from `seed` (the same seed, the same items), from one family's templates."""
    rng = np.random.default_rng([seed, list(GENERATORS).index(skill)])
    return [{"kind": skill, **GENERATORS[skill](rng, index, family)} for index in range(count)]


GOLD_SEED = 1_000  # the client's probes, from the gold family of templates
EVALUATION_SEED = 2_000  # the held-out evaluation set, from the other family; the client never sees it
EVALUATION_SIZES = {  # the full held-out evaluation set (the gold bank adds 100 items per type)
    "sentiment-analysis": 300,
    "financial-document-analysis": 200,
    "risk-assessment": 50,
    "portfolio-optimisation": 50,
}


def gold_bank(per_skill: int = 100, seed: int = GOLD_SEED) -> list[dict[str, Any]]:
    """The default gold bank: known-answer items per skill, in the form `client_agent.gold.GoldItem` reads."""
    return [
        {"id": f"gold-{skill}-{seed}-{i}", "skill": skill, "subtask": item["subtask"], "expect": item["expect"]}
        for skill in GENERATORS
        for i, item in enumerate(generate(skill, per_skill, seed, "gold"))
    ]


def evaluation_set(sizes: dict[str, int] | None = None, seed: int = EVALUATION_SEED) -> list[Item]:
    """The held-out items, every task type interleaved in a fixed order (the stream every strategy sees)."""
    sizes = sizes or EVALUATION_SIZES
    streams = {skill: generate(skill, count, seed, "evaluation") for skill, count in sizes.items()}
    order = np.random.default_rng(seed).permutation([s for s, n in sizes.items() for _ in range(n)])
    cursor = dict.fromkeys(sizes, 0)
    items = []
    for skill in order:
        items.append({**streams[skill][cursor[skill]], "id": f"eval-{skill}-{cursor[skill]}"})
        cursor[skill] += 1
    return items
