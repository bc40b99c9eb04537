"""Makes coalesce/data/risk.json and portfolio.json: synthetic market data from fixed seeds, with ground truth.

    .venv/bin/python scripts/make_datasets.py

Risk: daily returns of a portfolio (250 trading days, Student-t shocks: fatter tails than the normal), the value and
horizon; ground truth is the 99 % value at risk of the normal closed form on the sample's log returns (what a
parametric model gives) and the historical-simulation VaR (the sample's own quantile). Portfolio: expected returns
and a covariance made from random factor loadings; ground truth is the long-only mean-variance optimum (risk
aversion 3) found by SciPy's SLSQP from 20 starting points, and its utility.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import norm

from coalesce.datagen import GAMMA, optimum

OUT = Path(__file__).resolve().parent.parent / "coalesce" / "data"


def risk_cases() -> list[dict]:
    cases = []
    for seed, (value, horizon, vol) in enumerate([(1_000_000, 10, 0.011), (250_000, 1, 0.02), (5_000_000, 5, 0.007)]):
        rng = np.random.default_rng(100 + seed)
        returns = (0.0004 + vol * rng.standard_t(5, 250) / math.sqrt(5 / 3)).round(6)
        logs = np.log1p(returns)
        mu, sigma = float(logs.mean()), float(logs.std(ddof=1))
        parametric = -value * math.expm1(mu * horizon + sigma * math.sqrt(horizon) * norm.ppf(0.01))
        historical = -value * math.expm1(float(np.quantile(logs, 0.01)) * math.sqrt(horizon))
        cases.append(
            {
                "name": f"fund-{seed + 1}",
                "input": {
                    "portfolio_value": value,
                    "returns": returns.tolist(),
                    "horizon_days": horizon,
                    "confidence": 0.99,
                },
                "truth": {"var_parametric": round(parametric, 2), "var_historical": round(historical, 2)},
            }
        )
    return cases


def portfolio_cases() -> list[dict]:
    cases = []
    for seed, n in enumerate([4, 6, 8]):
        rng = np.random.default_rng(200 + seed)
        loadings = rng.normal(size=(n, 3)) * 0.12
        covariance = loadings @ loadings.T + np.diag(rng.uniform(0.005, 0.03, n))
        mu = rng.uniform(0.02, 0.14, n)

        weights = optimum(mu, covariance, 20, rng)
        utility = float(mu @ weights - GAMMA / 2 * weights @ covariance @ weights)
        cases.append(
            {
                "name": f"book-{seed + 1}",
                "input": {
                    "expected_returns": mu.round(6).tolist(),
                    "covariance": covariance.round(8).tolist(),
                    "risk_aversion": GAMMA,
                },
                "truth": {"weights": weights.round(6).tolist(), "utility": round(utility, 8)},
            }
        )
    return cases


def main() -> None:
    about = "Synthetic market data from fixed seeds, made by scripts/make_datasets.py (public domain)."
    (OUT / "risk.json").write_text(json.dumps({"about": about, "items": risk_cases()}, indent=1) + "\n")
    (OUT / "portfolio.json").write_text(json.dumps({"about": about, "items": portfolio_cases()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
