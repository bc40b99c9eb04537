"""Gold probes: known-answer items per skill, mixed into the client's traffic to grade agents exactly.

An item is a subtask as any user would send it (the same skill, format and channel as real work) and what a
right answer contains. The bank hands items out in rotation: each agent gets every item of a skill once before it
sees any again, and items come from seeded generators that vary numbers, names and wording, so an agent cannot
tell probes from work by their text or memorise their answers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, ValidationError, model_validator

from client_agent.answers import data_of, figures_of, label_of, text_of
from client_agent.models import Strict, SubtaskSpec
from shared.a2a.models import Artifact

MAX_BANK_ITEMS = 20_000
FIGURE_TOLERANCE = 0.005  # a stated figure is right within 0.5 %


class Expectation(Strict):
    """What a right answer contains; its grade is the share of these that it gets right."""

    label: str | None = Field(default=None, max_length=64, description="the one label the answer must name")
    labels: list[str] | None = Field(default=None, max_length=50, description="the labels to choose among")
    figures: list[float] = Field(default_factory=list, max_length=50, description="numbers its text must state")
    fields: dict[str, float | list[float]] = Field(default_factory=dict, description="data fields and right values")
    tolerance: float = Field(default=0.1, gt=0, le=10, description="relative tolerance of fields (absolute for lists)")

    @model_validator(mode="after")
    def _something_to_grade(self) -> Expectation:
        if self.label is None and not self.figures and not self.fields:
            raise ValueError("an expectation needs a label, figures or fields")
        return self


class GoldItem(Strict):
    id: str = Field(min_length=1, max_length=200)
    skill: str = Field(min_length=1, max_length=128)
    subtask: SubtaskSpec
    expect: Expectation

    @model_validator(mode="after")
    def _skill_matches(self) -> GoldItem:
        if self.subtask.skill not in (None, self.skill):
            raise ValueError(f"the subtask's skill {self.subtask.skill!r} is not the item's {self.skill!r}")
        return self


class GoldItems(Strict):
    items: list[GoldItem] = Field(min_length=1, max_length=1000)


def _close(value: Any, right: float | list[float], tolerance: float) -> bool:
    if isinstance(right, list):
        values = np.asarray(value if isinstance(value, list) else [], dtype=float)
        return values.shape == (len(right),) and bool(np.all(np.abs(values - np.asarray(right)) <= tolerance))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return abs(value - right) <= tolerance * max(abs(right), 1e-9)


def grade(expect: Expectation, artifacts: list[Artifact]) -> float:
    """The share of the expectation the answer gets right, in [0, 1]."""
    marks: list[bool] = []
    if expect.label is not None:
        labels = expect.labels or [expect.label]
        marks.append(label_of(artifacts, labels) == expect.label)
    if expect.figures:
        stated = figures_of(text_of(artifacts))
        marks.extend(
            any(math.isclose(abs(n), abs(f), rel_tol=FIGURE_TOLERANCE) for n in stated) for f in expect.figures
        )
    if expect.fields:
        data = data_of(artifacts) or {}
        marks.extend(_close(data.get(name), right, expect.tolerance) for name, right in expect.fields.items())
    return sum(marks) / len(marks) if marks else 0.0


class ProbeBank:
    """Gold items by skill, handed out in rotation per agent."""

    def __init__(self, items: list[GoldItem] | None = None, seed: int = 0) -> None:
        self._items: dict[str, list[GoldItem]] = {}
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._rng = np.random.default_rng(seed)
        self.add(items or [])

    def add(self, items: list[GoldItem]) -> int:
        """Adds items (an id already in the bank is replaced); returns how many the bank holds."""
        if self.size() + len(items) > MAX_BANK_ITEMS:
            raise ValueError(f"the gold bank holds at most {MAX_BANK_ITEMS} items")
        for item in items:
            bucket = self._items.setdefault(item.skill, [])
            bucket[:] = [known for known in bucket if known.id != item.id]
            bucket.insert(int(self._rng.integers(len(bucket) + 1)), item)
        return self.size()

    def size(self) -> int:
        return sum(len(items) for items in self._items.values())

    def counts(self) -> dict[str, int]:
        return {skill: len(items) for skill, items in sorted(self._items.items())}

    def has(self, skill: str) -> bool:
        return bool(self._items.get(skill))

    def next(self, skill: str, agent: str) -> GoldItem | None:
        """An item of `skill` this agent has not had yet (all of them once, then again)."""
        items = self._items.get(skill)
        if not items:
            return None
        seen = self._seen.setdefault((skill, agent), set())
        fresh = [item for item in items if item.id not in seen] or items
        if len(fresh) == len(items):
            seen.clear()
        item = fresh[int(self._rng.integers(len(fresh)))]
        seen.add(item.id)
        return item


def load_items(raw: Any) -> list[GoldItem]:
    """Items from parsed JSON (a list, or {"items": [...]}); ValueError saying what is wrong otherwise."""
    rows = raw.get("items") if isinstance(raw, dict) else raw
    if not isinstance(rows, list):
        raise ValueError("a gold file is a list of items or an object with 'items'")
    try:
        return [GoldItem.model_validate(row) for row in rows]
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"not a valid gold item ({where}: {first['msg']})") from None


def load_file(path: str | Path) -> list[GoldItem]:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read a gold file: {error}") from None
    try:
        return load_items(raw)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
