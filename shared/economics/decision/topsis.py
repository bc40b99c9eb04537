"""TOPSIS (paper section III.F) over the criteria [cost, reliability, latency, security risk], for a batch of
problems at once (arrays of shape (B, n, c)). No I/O.
"""

from __future__ import annotations

import numba
import numpy as np

CRITERIA = ("cost", "reliability", "latency", "security_risk")
BENEFIT = np.array([False, True, False, False])
NO_SCORE = -1.0  # the TOPSIS score of a candidate that is not eligible
# The compiled kernels may reorder a sum over candidates (so that it vectorises): a last-bit difference, no more;
# no other fast-math licence (infinities and NaN keep their meaning).
REDUCTIONS = {"reassoc", "nsz"}


class DecisionError(ValueError):
    """A decision input that has no defined answer (shapes that do not fit, NaN, negative weights)."""


def masked_topsis(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """TOPSIS closeness for a batch: matrix (B, n, c), weights (B, c) summing to 1, mask (B, n) of the
    alternatives that take part; the others score NO_SCORE. Inputs are trusted (see `topsis`)."""
    scores = np.empty(mask.shape)
    _masked_topsis(np.ascontiguousarray(np.swapaxes(matrix, 1, 2)), weights, benefit, mask, scores)
    return scores


@numba.njit(cache=True, nogil=True, fastmath=REDUCTIONS)
def _masked_topsis(
    columns: np.ndarray, weights: np.ndarray, benefit: np.ndarray, mask: np.ndarray, scores: np.ndarray
) -> None:  # pragma: no cover - compiled (run through masked_topsis)
    """Per problem of `columns` (B, c, n), written into `scores` (B, n). Free of branches on the mask (selects,
    not jumps), so that the loops over candidates vectorise."""
    batch, criteria, n = columns.shape
    d_plus, d_minus = np.empty(n), np.empty(n)
    for b in range(batch):
        d_plus[:], d_minus[:] = 0.0, 0.0
        for c in range(criteria):
            squares, high, low = 0.0, -np.inf, np.inf
            for j in range(n):
                x = columns[b, c, j]
                squares += x * x if mask[b, j] else 0.0
                high = max(high, x if mask[b, j] else -np.inf)
                low = min(low, x if mask[b, j] else np.inf)
            norm = np.sqrt(squares)
            scale = weights[b, c] / norm if norm > 0 else 0.0  # vector-normalised, then weighted
            high = high * scale if np.isfinite(high) else 0.0
            low = low * scale if np.isfinite(low) else 0.0
            ideal, anti = (high, low) if benefit[c] else (low, high)
            for j in range(n):
                weighted = columns[b, c, j] * scale
                d_plus[j] += (weighted - ideal) ** 2
                d_minus[j] += (weighted - anti) ** 2
        for j in range(n):
            total = np.sqrt(d_plus[j]) + np.sqrt(d_minus[j])
            score = np.sqrt(d_minus[j]) / total if total > 1e-15 else 0.5
            scores[b, j] = score if mask[b, j] else NO_SCORE


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
