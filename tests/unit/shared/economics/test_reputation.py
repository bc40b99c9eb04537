"""Reliability (eq. 14) with a Beta prior and decay, and security risk (eq. 15)."""

from __future__ import annotations

import math

import pytest

from shared.economics.reputation import SECONDS_PER_MONTH, ReputationBook, paper_reliability, security_risk


def test_paper_reliability_by_hand():
    # (14): (1 + 8) / (1 + 1 + 10) × e^(−0.1 × 2)
    assert paper_reliability(8, 10, months_since_last=2) == pytest.approx(9 / 12 * math.exp(-0.2))


def test_reliability_is_the_beta_posterior_mean():
    book = ReputationBook()
    for outcome in [True] * 8 + [False] * 2:
        book.record("gpu", "llm", outcome, at=0.0)
    assert book.reliability("gpu", "llm", at=0.0) == pytest.approx(9 / 12)
    assert book.posterior("gpu", "llm", at=0.0) == pytest.approx((9.0, 3.0))
    assert book.reliability("unknown", "llm", at=0.0) == 0.5  # the prior


def test_old_evidence_fades_back_to_the_prior_instead_of_to_zero():
    book = ReputationBook()
    for _ in range(20):
        book.record("edge", "sentiment", True, at=0.0)
    fresh = book.reliability("edge", "sentiment", at=0.0)
    year = book.reliability("edge", "sentiment", at=12 * SECONDS_PER_MONTH)
    decade = book.reliability("edge", "sentiment", at=120 * SECONDS_PER_MONTH)
    assert fresh > year > decade > 0.5  # the paper's form would give 21/22 × e^(−12) ≈ 0.00 after 10 years
    assert decade == pytest.approx(0.5, abs=0.01)
    a, b = book.posterior("edge", "sentiment", at=SECONDS_PER_MONTH)
    assert (a, b) == pytest.approx((1 + 20 * math.exp(-0.1), 1.0))


def test_new_failures_outweigh_old_successes():
    book = ReputationBook()
    for _ in range(10):
        book.record("budget", "llm", True, at=0.0)
    for _ in range(5):
        book.record("budget", "llm", False, at=24 * SECONDS_PER_MONTH)
    assert book.reliability("budget", "llm", at=24 * SECONDS_PER_MONTH) < 0.5


def test_skills_are_tracked_apart_and_pooled_on_request():
    book = ReputationBook()
    book.record("cloud", "var", True, at=0)
    book.record("cloud", "llm", False, at=0)
    assert book.reliability("cloud", "var", at=0) == pytest.approx(2 / 3)
    assert book.reliability("cloud", "llm", at=0) == pytest.approx(1 / 3)
    assert book.reliability("cloud", None, at=0) == pytest.approx(2 / 4)
    assert book.observations("cloud") == 2


def test_snapshot_round_trip():
    book = ReputationBook()
    book.record("gpu", "llm", True, at=10.0)
    book.record("gpu", "llm", False, at=20.0)
    copy = ReputationBook()
    copy.restore(book.snapshot())
    assert copy.posterior("gpu", "llm", at=30.0) == book.posterior("gpu", "llm", at=30.0)


def test_security_risk_by_hand():
    # (15) with restricted data in plaintext (scale 1): 1 − (1 − 0.1)(1 − 0.2)
    assert security_risk([0.1, 0.2], "restricted", "plaintext") == pytest.approx(1 - 0.9 * 0.8)
    # confidential (0.8) over an end-to-end encrypted channel (0.1): scale 0.08
    assert security_risk([0.1, 0.2], "confidential", "e2e") == pytest.approx(1 - (1 - 0.008) * (1 - 0.016))
    assert security_risk([], "restricted", "plaintext") == 0.0
    assert security_risk([0.5], "public", "e2e") < security_risk([0.5], "public", "plaintext")
