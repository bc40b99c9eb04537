"""Agreement: Dawid-Skene recovers agents' accuracies without any known label; the numeric consensus is robust."""

from __future__ import annotations

import numpy as np
import pytest

from shared.economics.agreement import MISSING, dawid_skene, number_consensus


def simulated(accuracies: list[float], items: int, classes: int, seed: int, coverage: float = 1.0) -> tuple:
    rng = np.random.default_rng(seed)
    truth = rng.integers(classes, size=items)
    labels = np.empty((items, len(accuracies)), dtype=np.int64)
    for agent, accuracy in enumerate(accuracies):
        right = rng.random(items) < accuracy
        wrong = (truth + rng.integers(1, classes, size=items)) % classes
        labels[:, agent] = np.where(right, truth, wrong)
    labels[rng.random(labels.shape) > coverage] = MISSING
    return truth, labels


def test_dawid_skene_recovers_each_agents_accuracy_without_labels():
    accuracies = [0.95, 0.8, 0.34, 0.34]  # two good agents, two answering at random among three labels
    truth, labels = simulated(accuracies, items=400, classes=3, seed=1)
    consensus = dawid_skene(labels, classes=3)
    assert np.allclose(consensus.accuracy, accuracies, atol=0.06)
    assert (consensus.posterior.argmax(axis=1) == truth).mean() > 0.93
    majority = np.array([np.bincount(row, minlength=3).argmax() for row in labels])
    assert (consensus.posterior.argmax(axis=1) == truth).mean() >= (majority == truth).mean()


def test_dawid_skene_copes_with_sparse_answers_and_rejects_bad_input():
    _, labels = simulated([0.9, 0.6, 0.33], items=120, classes=3, seed=2, coverage=0.7)
    consensus = dawid_skene(labels, classes=3)
    assert consensus.accuracy[0] > consensus.accuracy[1] > consensus.accuracy[2]
    assert np.allclose(consensus.posterior.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        dawid_skene(np.array([[0, 3]]), classes=3)
    with pytest.raises(ValueError):
        dawid_skene(np.array([0, 1]), classes=3)


def test_the_median_decides_numbers_and_two_that_differ_decide_nothing():
    three = number_consensus(np.array([100.0, 101.0, 180.0]), rel_tol=0.05)
    assert three.value.tolist() == [101.0] and three.agrees.tolist() == [True, True, False] and three.decided
    vectors = number_consensus(np.array([[0.5, 0.5], [0.51, 0.49], [0.9, 0.1]]), rel_tol=0.05)
    assert vectors.agrees.tolist() == [True, True, False] and vectors.decided
    two = number_consensus(np.array([100.0, 180.0]), rel_tol=0.05)
    assert not two.decided and not two.agrees.any()
    same = number_consensus(np.array([100.0, 102.0]), rel_tol=0.05)
    assert same.decided and same.agrees.all()
    with pytest.raises(ValueError):
        number_consensus(np.array([1.0]), rel_tol=0.1)


def test_what_is_known_of_two_agents_anchors_their_accuracies_on_few_items():
    known = {"known_accuracy": np.array([0.95, 0.4]), "known_strength": np.array([10, 10])}
    blind_error, anchored_error = [], []
    for seed in range(4, 9):  # eight items each: too few for agreement alone
        _, labels = simulated([0.95, 0.34], items=8, classes=3, seed=seed)
        blind = dawid_skene(labels, classes=3)
        anchored = dawid_skene(labels, classes=3, **known)
        blind_error.append(np.abs(blind.accuracy - [0.95, 0.34]).max())
        anchored_error.append(np.abs(anchored.accuracy - [0.95, 0.34]).max())
    assert max(anchored_error) < 0.1 < max(blind_error)
