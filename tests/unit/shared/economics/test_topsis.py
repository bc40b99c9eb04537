"""TOPSIS: a worked example, its invariants (hypothesis), degenerate inputs, and an independent library."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pymcdm.methods import TOPSIS as PymcdmTopsis
from pymcdm.normalizations import vector_normalization

from shared.economics.decision.topsis import BENEFIT, NO_SCORE, DecisionError, masked_topsis, topsis
from shared.economics.decision.weights import correlation_adjusted_weights, masked_correlation_weights, normalised

finite = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)


def matrices(min_rows: int = 2):
    return st.integers(min_rows, 12).flatmap(
        lambda rows: st.integers(1, 6).flatmap(
            lambda cols: st.tuples(
                arrays(np.float64, (rows, cols), elements=finite),
                arrays(np.float64, (cols,), elements=st.floats(0.01, 1.0)),
                arrays(np.bool_, (cols,)),
            )
        )
    )


def test_worked_example():
    # Three alternatives, criteria: cost (lower better), reliability (higher better).
    matrix = np.array([[10.0, 0.9], [20.0, 0.99], [15.0, 0.5]])
    norms = np.sqrt((matrix**2).sum(axis=0))
    weighted = matrix / norms * 0.5
    ideal = np.array([weighted[:, 0].min(), weighted[:, 1].max()])
    anti = np.array([weighted[:, 0].max(), weighted[:, 1].min()])
    d_plus = np.sqrt(((weighted - ideal) ** 2).sum(axis=1))
    d_minus = np.sqrt(((weighted - anti) ** 2).sum(axis=1))
    expected = d_minus / (d_plus + d_minus)
    scores = topsis(matrix, np.array([1.0, 1.0]), np.array([False, True]))
    assert np.allclose(scores, expected)
    assert np.argmax(scores) == 0  # cheap and reliable enough beats expensive and perfect


@settings(max_examples=200, deadline=None)
@given(matrices())
def test_scores_lie_in_the_unit_interval(case):
    matrix, weights, benefit = case
    scores = topsis(matrix, weights, benefit)
    assert np.all((scores >= 0) & (scores <= 1))


@settings(max_examples=200, deadline=None)
@given(matrices(), st.data())
def test_a_dominant_alternative_scores_one(case, data):
    matrix, weights, benefit = case
    best = np.where(benefit, matrix.max(axis=0), matrix.min(axis=0))
    row = data.draw(st.integers(0, len(matrix) - 1))
    matrix = matrix.copy()
    matrix[row] = best
    spread = matrix.max(axis=0) - matrix.min(axis=0)
    assume(np.any(spread > 1e-9 * matrix.max(axis=0)))  # alike (to rounding) is the defined 0.5 case
    assert topsis(matrix, weights, benefit)[row] == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(matrices(), st.data())
def test_positive_scaling_of_a_column_changes_nothing(case, data):
    matrix, weights, benefit = case
    column = data.draw(st.integers(0, matrix.shape[1] - 1))
    factor = data.draw(st.floats(0.001, 1000))
    scaled = matrix.copy()
    scaled[:, column] *= factor
    assert np.allclose(topsis(matrix, weights, benefit), topsis(scaled, weights, benefit), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(matrices(), st.floats(0.001, 1000))
def test_weights_are_normalised(case, factor):
    matrix, weights, benefit = case
    assert np.allclose(topsis(matrix, weights, benefit), topsis(matrix, weights * factor, benefit), atol=1e-9)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None)
@given(matrices(min_rows=3))
def test_agrees_with_pymcdm(case):
    matrix, weights, benefit = case
    assume(np.all(matrix.max(axis=0) - matrix.min(axis=0) > 1e-6 * matrix.max(axis=0)))
    theirs = PymcdmTopsis(normalization_function=vector_normalization)(
        matrix, weights / weights.sum(), np.where(benefit, 1, -1)
    )
    assert np.allclose(topsis(matrix, weights, benefit), theirs, atol=1e-9)


def test_degenerate_inputs_have_defined_answers():
    benefit = np.array([False, True])
    assert topsis(np.array([[3.0, 0.9]]), np.ones(2), benefit).tolist() == [0.5]  # one candidate
    assert topsis(np.array([[3.0, 0.9]] * 4), np.ones(2), benefit).tolist() == [0.5] * 4  # all alike
    zeros = topsis(np.array([[0.0, 0.9], [0.0, 0.5]]), np.ones(2), benefit)  # an all-zero column
    assert zeros.tolist() == [1.0, 0.0]
    equal_column = topsis(np.array([[5.0, 0.9], [5.0, 0.5]]), np.ones(2), benefit)
    assert equal_column.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("matrix", "weights", "benefit"),
    [
        (np.array([[np.nan, 1.0]]), np.ones(2), np.array([True, True])),
        (np.array([[np.inf, 1.0]]), np.ones(2), np.array([True, True])),
        (np.array([[1.0, 1.0]]), np.array([1.0, np.nan]), np.array([True, True])),
        (np.array([[1.0, 1.0]]), np.array([-1.0, 2.0]), np.array([True, True])),
        (np.array([[1.0, 1.0]]), np.zeros(2), np.array([True, True])),
        (np.array([[1.0, 1.0]]), np.ones(3), np.array([True, True])),
        (np.zeros((0, 2)), np.ones(2), np.array([True, True])),
        (np.array([1.0, 2.0]), np.ones(2), np.array([True, True])),
    ],
)
def test_bad_inputs_are_clear_errors(matrix, weights, benefit):
    with pytest.raises(DecisionError):
        topsis(matrix, weights, benefit)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_a_masked_batch_scores_each_problem_as_its_candidates_alone(batch, n, seed):
    # the compiled kernels over a batch (B, n, 4) with a mask against the one-problem functions on each problem's
    # masked rows: TOPSIS scores (NO_SCORE outside the mask) and the correlation-adjusted weights (11)
    rng = np.random.default_rng(seed)
    matrix = rng.random((batch, n, 4)) * np.array([10.0, 1.0, 100.0, 0.1])
    matrix[:, : n // 2, 3] = 0.05  # a criterion that does not vary among some candidates
    mask = rng.random((batch, n)) < 0.6
    weights = normalised(rng.random((batch, 4)))
    scores = masked_topsis(matrix, weights, BENEFIT, mask)
    adjusted = masked_correlation_weights(matrix, weights, 0.3, mask)
    for b in range(batch):
        rows = matrix[b][mask[b]]
        assert np.all(scores[b][~mask[b]] == NO_SCORE)
        if len(rows):
            assert np.allclose(scores[b][mask[b]], topsis(rows, weights[b], BENEFIT), atol=1e-12)
            assert np.allclose(adjusted[b], correlation_adjusted_weights(rows, weights[b], 0.3), atol=1e-12)
