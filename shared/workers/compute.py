"""Compute work for the paper's non-LLM task types, with checkable numeric results.

- `value_at_risk`: Monte Carlo value at risk and expected shortfall of a portfolio;
- `optimise_portfolio`: mean-variance portfolio weights (scipy's SLSQP);
- `similarity_search`: top-k cosine similarity of a query against a corpus of vectors.

Array work runs on torch with CUDA when a GPU is present (or `COALESCE_COMPUTE_BACKEND=torch`), on numpy
otherwise; both paths give the same numbers and both are tested on the CPU.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from shared.runtime.settings import compute_backend
from shared.workers.base import NeedsInput, StatelessWorker, Usage, WorkerError, WorkRequest, WorkResult, data_artifact

MAX_SIMULATIONS = 5_000_000
MAX_ASSETS = 500
MAX_CORPUS = 200_000
SIMULATION_CHUNK = 100_000


class MissingInput(Exception):
    """Raised by a compute function whose input lacks fields; the task asks the client for them."""

    def __init__(self, missing: dict[str, str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing  # field -> what it is


ComputeFunction = Callable[[dict[str, Any], threading.Event], dict[str, Any]]


class ComputeWorker(StatelessWorker):
    """Runs a numeric function of the task's data in a thread; the function stops when the task is cancelled."""

    def __init__(self, name: str, function: ComputeFunction) -> None:
        self.name = name
        self._function = function

    async def run(self, request: WorkRequest) -> WorkResult | NeedsInput:
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(self._function, request.data(), request.cancelled)
        except MissingInput as missing:
            wanted = "; ".join(f"'{key}' ({what})" for key, what in missing.missing.items())
            return NeedsInput(prompt=f"Send a data part with {wanted}.", missing=list(missing.missing))
        except (ValueError, TypeError, KeyError) as error:
            raise WorkerError(f"{self.name}: {error}") from error
        usage = Usage(compute_seconds=time.perf_counter() - started)
        return WorkResult(artifacts=[data_artifact(self.name, result)], usage=usage, summary=f"{self.name} done")


class Cancelled(Exception):
    """The task was cancelled while the computation ran."""


@dataclass(frozen=True)
class Backend:
    """numpy, or torch on a device; `name` is what the result reports."""

    name: str
    device: str | None = None


def choose_backend(preference: str | None = None) -> Backend:
    preference = (preference or compute_backend()).lower()
    if preference == "numpy":
        return Backend("numpy")
    try:
        import torch
    except ImportError:
        if preference == "torch":
            raise
        return Backend("numpy")
    if torch.cuda.is_available():
        return Backend("torch", "cuda")
    return Backend("torch", "cpu") if preference == "torch" else Backend("numpy")


def _number(data: dict[str, Any], key: str, *, low: float | None = None, high: float | None = None) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"'{key}' must be a finite number")
    if (low is not None and value <= low) or (high is not None and value >= high):
        raise ValueError(f"'{key}' must lie in ({low}, {high})")
    return float(value)


def _vector(data: dict[str, Any], key: str, *, max_len: int) -> np.ndarray:
    array = np.asarray(data[key], dtype=np.float64)
    if array.ndim != 1 or not 1 <= array.size <= max_len or not np.all(np.isfinite(array)):
        raise ValueError(f"'{key}' must be a list of 1 to {max_len} finite numbers")
    return array


def _simulated_log_returns(
    backend: Backend, rng_seed: int, mu: float, sigma: float, horizon: int, count: int
) -> np.ndarray:
    """Sum of `horizon` daily normal log returns, `count` times."""
    if backend.name == "torch":
        import torch

        generator = torch.Generator(device=backend.device).manual_seed(rng_seed)
        draws = torch.randn((count, horizon), generator=generator, device=backend.device, dtype=torch.float64)
        return (draws * sigma + mu).sum(dim=1).cpu().numpy()
    rng = np.random.default_rng(rng_seed)
    return (rng.standard_normal((count, horizon)) * sigma + mu).sum(axis=1)


def value_at_risk(data: dict[str, Any], cancelled: threading.Event, backend: Backend | None = None) -> dict:
    """Monte Carlo VaR and CVaR (expected shortfall) of a portfolio over `horizon_days`.

    Input: `portfolio_value`, and either `returns` (daily simple returns, from which mu and sigma of the log
    returns are estimated) or `mu` and `sigma` (of daily log returns); optional `confidence` (0.99),
    `horizon_days` (1), `simulations` (100 000), `seed` (0).
    """
    missing = {}
    if "portfolio_value" not in data:
        missing["portfolio_value"] = "the portfolio's value in dollars"
    if "returns" not in data and not {"mu", "sigma"} <= data.keys():
        missing["returns"] = "a list of daily returns, or 'mu' and 'sigma' of daily log returns"
    if missing:
        raise MissingInput(missing)
    backend = backend or choose_backend()
    value = _number(data, "portfolio_value", low=0)
    confidence = _number({"confidence": data.get("confidence", 0.99)}, "confidence", low=0, high=1)
    horizon = int(_number({"horizon_days": data.get("horizon_days", 1)}, "horizon_days", low=0, high=3651))
    simulations = int(_number({"simulations": data.get("simulations", 100_000)}, "simulations", low=99))
    if simulations > MAX_SIMULATIONS:
        raise ValueError(f"'simulations' must be at most {MAX_SIMULATIONS}")
    seed = int(data.get("seed", 0))
    if "returns" in data:
        log_returns = np.log1p(_vector(data, "returns", max_len=100_000))
        if log_returns.size < 2 or not np.all(np.isfinite(log_returns)):
            raise ValueError("'returns' needs at least two values, each above -1")
        mu, sigma = float(log_returns.mean()), float(log_returns.std(ddof=1))
    else:
        mu, sigma = _number(data, "mu"), _number(data, "sigma", low=-1e-300)
    losses = []
    for chunk, start in enumerate(range(0, simulations, SIMULATION_CHUNK)):
        if cancelled.is_set():
            raise Cancelled()
        count = min(SIMULATION_CHUNK, simulations - start)
        sums = _simulated_log_returns(backend, seed * 1_000_003 + chunk, mu, sigma, horizon, count)
        losses.append(-value * np.expm1(sums))
    loss = np.concatenate(losses)
    var = float(np.quantile(loss, confidence))
    tail = loss[loss >= var]
    return {
        "var": var,
        "cvar": float(tail.mean()),
        "confidence": confidence,
        "horizon_days": horizon,
        "simulations": simulations,
        "mu": mu,
        "sigma": sigma,
        "backend": backend.name,
    }


def optimise_portfolio(data: dict[str, Any], cancelled: threading.Event) -> dict:
    """Mean-variance weights: maximise mu'w - (gamma / 2) w'Sigma w subject to sum(w) = 1 (and w >= 0).

    Input: `expected_returns` (n), `covariance` (n x n); optional `risk_aversion` (3), `long_only` (true),
    `max_weight` (1), `risk_free_rate` (0).
    """
    missing = {
        key: what
        for key, what in (
            ("expected_returns", "a list of the assets' expected returns"),
            ("covariance", "the assets' covariance matrix, a list of rows"),
        )
        if key not in data
    }
    if missing:
        raise MissingInput(missing)
    mu = _vector(data, "expected_returns", max_len=MAX_ASSETS)
    sigma = np.asarray(data["covariance"], dtype=np.float64)
    n = mu.size
    if sigma.shape != (n, n) or not np.all(np.isfinite(sigma)):
        raise ValueError(f"'covariance' must be a {n} x {n} matrix of finite numbers")
    if not np.allclose(sigma, sigma.T, atol=1e-10) or np.linalg.eigvalsh(sigma).min() < -1e-10:
        raise ValueError("'covariance' must be symmetric positive semi-definite")
    gamma = _number({"risk_aversion": data.get("risk_aversion", 3.0)}, "risk_aversion", low=0)
    long_only = bool(data.get("long_only", True))
    max_weight = _number({"max_weight": data.get("max_weight", 1.0)}, "max_weight", low=0)
    if long_only and max_weight * n < 1 - 1e-9:
        raise ValueError("'max_weight' times the number of assets must reach 1")
    risk_free = float(data.get("risk_free_rate", 0.0))

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        if cancelled.is_set():
            raise Cancelled()
        return -(mu @ w - gamma / 2 * w @ sigma @ w), -(mu - gamma * sigma @ w)

    bounds = [(0.0, max_weight) if long_only else (-max_weight, max_weight)] * n
    solution = minimize(
        objective,
        np.full(n, 1.0 / n),
        jac=True,
        method="SLSQP",
        bounds=bounds,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    if not solution.success:
        raise ValueError(f"the optimiser did not converge: {solution.message}")
    weights = solution.x
    expected = float(mu @ weights)
    volatility = float(np.sqrt(max(weights @ sigma @ weights, 0.0)))
    return {
        "weights": [float(w) for w in weights],
        "expected_return": expected,
        "volatility": volatility,
        "sharpe": (expected - risk_free) / volatility if volatility > 0 else None,
        "risk_aversion": gamma,
    }


def similarity_search(data: dict[str, Any], cancelled: threading.Event, backend: Backend | None = None) -> dict:
    """Top-k cosine similarity of `query` (a vector) against `corpus` (a list of vectors); optional `k` (5)."""
    missing = {
        key: what
        for key, what in (("query", "the query vector"), ("corpus", "a list of vectors to search"))
        if key not in data
    }
    if missing:
        raise MissingInput(missing)
    query = _vector(data, "query", max_len=8192)
    corpus = np.asarray(data["corpus"], dtype=np.float64)
    if corpus.ndim != 2 or corpus.shape[1] != query.size or not 1 <= corpus.shape[0] <= MAX_CORPUS:
        raise ValueError(f"'corpus' must be a list of 1 to {MAX_CORPUS} vectors of length {query.size}")
    if not np.all(np.isfinite(corpus)):
        raise ValueError("'corpus' must hold finite numbers")
    k = min(int(data.get("k", 5)), corpus.shape[0])
    if k < 1:
        raise ValueError("'k' must be at least 1")
    if cancelled.is_set():
        raise Cancelled()
    backend = backend or choose_backend()
    if backend.name == "torch":
        import torch

        q = torch.as_tensor(query, device=backend.device)
        c = torch.as_tensor(corpus, device=backend.device)
        scores = (torch.nn.functional.cosine_similarity(c, q.unsqueeze(0), dim=1, eps=1e-12)).cpu().numpy()
    else:
        norms = np.linalg.norm(corpus, axis=1) * np.linalg.norm(query)
        scores = (corpus @ query) / np.maximum(norms, 1e-12)
    top = np.argsort(-scores, kind="stable")[:k]
    return {
        "indices": [int(i) for i in top],
        "scores": [float(scores[i]) for i in top],
        "backend": backend.name,
    }


COMPUTE_FUNCTIONS: dict[str, Callable] = {
    "var": value_at_risk,
    "portfolio": optimise_portfolio,
    "similarity": similarity_search,
}
