"""TOPSIS (paper section III.F) over the criteria [cost, reliability, latency, security risk], for a batch of
problems at once (arrays of shape (B, n, c)). No I/O.
"""

from __future__ import annotations

import numpy as np

CRITERIA = ("cost", "reliability", "latency", "security_risk")
BENEFIT = np.array([False, True, False, False])
NO_SCORE = -1.0  # the TOPSIS score of a candidate that is not eligible


class DecisionError(ValueError):
    """A decision input that has no defined answer (shapes that do not fit, NaN, negative weights)."""


def masked_columns(matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, c, n), contiguous (reductions over the candidates run over contiguous memory): each problem's criteria
    of the candidates in `mask`, 0 for the others. Free of a copy when `matrix` is a (B, c, n) array seen as
    (B, n, c), as `criteria_matrix` makes it."""
    return np.where(mask[:, None, :], np.ascontiguousarray(np.swapaxes(matrix, 1, 2)), 0.0)


def masked_topsis(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """TOPSIS closeness for a batch: matrix (B, n, c), weights (B, c) summing to 1, mask (B, n) of the
    alternatives that take part; the others score NO_SCORE. Inputs are trusted (see `topsis`)."""
    cells = masked_columns(matrix, mask)
    m = mask[:, None, :]
    norms = np.sqrt(np.einsum("bcn,bcn->bc", cells, cells))
    scale = np.divide(weights, norms, out=np.zeros_like(weights), where=norms > 0)
    weighted = cells * scale[:, :, None]  # vector-normalised, then weighted
    high = np.where(m, weighted, -np.inf).max(axis=2, initial=-np.inf)
    low = np.where(m, weighted, np.inf).min(axis=2, initial=np.inf)
    high, low = np.where(np.isfinite(high), high, 0.0), np.where(np.isfinite(low), low, 0.0)
    to_ideal = weighted - np.where(benefit, high, low)[:, :, None]
    to_anti = weighted - np.where(benefit, low, high)[:, :, None]
    d_plus = np.sqrt(np.einsum("bcn,bcn->bn", to_ideal, to_ideal))
    d_minus = np.sqrt(np.einsum("bcn,bcn->bn", to_anti, to_anti))
    total = d_plus + d_minus
    scores = np.divide(d_minus, total, out=np.full(total.shape, 0.5), where=total > 1e-15)
    return np.where(mask, scores, NO_SCORE)


def topsis(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray) -> np.ndarray:
    """Closeness to the ideal of each row (alternative) over the columns (criteria), in [0, 1].

    Vector normalisation, weights normalised to sum 1, ideal and anti-ideal per column, score D− / (D+ + D−).
    Degenerate inputs have defined answers: an all-zero column, or a column equal in every row, cannot tell
    alternatives apart and adds nothing; an alternative that is at once ideal and anti-ideal (one alternative,
    or all alike) scores 0.5. NaN, infinities, negative weights or shapes that do not fit raise DecisionError.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    benefit = np.asarray(benefit, dtype=bool)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise DecisionError("the decision matrix must be 2-D with at least one alternative and one criterion")
    if weights.shape != (matrix.shape[1],) or benefit.shape != (matrix.shape[1],):
        raise DecisionError("weights and benefit need one entry per criterion (column)")
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(weights)):
        raise DecisionError("the decision matrix and the weights must be finite (no NaN or infinity)")
    if np.any(weights < 0) or weights.sum() <= 0:
        raise DecisionError("weights must be non-negative and not all zero")
    mask = np.ones((1, matrix.shape[0]), dtype=bool)
    return masked_topsis(matrix[None], (weights / weights.sum())[None], benefit, mask)[0]
