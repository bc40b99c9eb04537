"""Gold probes: graded exactly against what a right answer contains; handed out in rotation; bad files refused."""

from __future__ import annotations

import json

import pytest

from client_agent.gold import Expectation, GoldItem, ProbeBank, grade, load_file, load_items
from shared.a2a.models import Artifact, Part


def answer(text: str = "", data: dict | None = None) -> list[Artifact]:
    parts = ([Part.of_text(text)] if text else []) + ([Part.of_data(data)] if data is not None else [])
    return [Artifact(name="answer", parts=parts)]


def item(i: int, skill: str = "sentiment-analysis") -> GoldItem:
    return GoldItem.model_validate(
        {
            "id": f"g{i}",
            "skill": skill,
            "subtask": {"skill": skill, "description": f"headline {i}"},
            "expect": {"label": "positive", "labels": ["positive", "negative", "neutral"]},
        }
    )


def test_labels_figures_and_fields_are_graded_against_the_truth():
    label = Expectation(label="negative", labels=["positive", "negative", "neutral"])
    assert grade(label, answer("Negative.")) == 1.0
    assert grade(label, answer("positive")) == 0.0
    assert grade(label, answer("negative, or maybe neutral")) == 0.0  # two labels: not an answer
    report = Expectation(figures=[1160.0, 111.0], label="positive", labels=["positive", "negative", "neutral"])
    assert grade(report, answer("Revenue 1.16 billion dollars, net income 111 million; outlook positive")) == 1.0
    assert grade(report, answer("Revenue 1115.4 million (last year's), net income 111; positive")) == pytest.approx(
        2 / 3
    )
    numbers = Expectation(fields={"var": 100.0, "weights": [0.5, 0.5]}, tolerance=0.1)
    assert grade(numbers, answer(data={"var": 105.0, "weights": [0.55, 0.45]})) == 1.0
    assert grade(numbers, answer(data={"var": 125.0, "weights": [0.5]})) == 0.0
    assert grade(numbers, answer(data={"var": float("nan"), "weights": [0.5, 0.5]})) == 0.5
    with pytest.raises(ValueError):
        Expectation()


def test_each_agent_gets_every_item_once_before_any_again():
    bank = ProbeBank([item(i) for i in range(5)], seed=3)
    first = [bank.next("sentiment-analysis", "a").id for _ in range(5)]
    assert sorted(first) == [f"g{i}" for i in range(5)]
    assert bank.next("sentiment-analysis", "a").id in first  # then again
    assert sorted(bank.next("sentiment-analysis", "b").id for _ in range(5)) == sorted(first)  # b has its own round
    assert bank.next("risk-assessment", "a") is None
    bank.add([item(0)])  # the same id replaces, it does not duplicate
    assert bank.counts() == {"sentiment-analysis": 5}


def test_bad_gold_files_are_refused_with_what_is_wrong(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read a gold file"):
        load_file(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"items": [{"id": "x", "skill": "s", "subtask": {"description": "d"}, "expect": {}}]}))
    with pytest.raises(ValueError, match="expect"):
        load_file(wrong)
    with pytest.raises(ValueError, match="a list of items"):
        load_items({"items": "nope"})
    mismatch = {"id": "x", "skill": "a", "subtask": {"skill": "b", "description": "d"}, "expect": {"label": "p"}}
    with pytest.raises(ValueError, match="skill"):
        load_items([mismatch])
