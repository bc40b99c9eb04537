"""What an answer says, read out of its artifacts: its text, its data, the one label it names, the figures it
states, and the numbers a numeric skill returns. Used to grade probes, to compare agents' answers and to check
answers against their input."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from shared.a2a.models import Artifact

NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")
# the vector a numeric skill's answer is compared on
NUMERIC_FIELDS = {
    "risk-assessment": ("var", "cvar"),
    "portfolio-optimisation": ("weights",),
    "similarity-search": ("scores",),
}


def text_of(artifacts: list[Artifact]) -> str:
    return "\n".join(p.text for a in artifacts for p in a.parts if p.kind == "text" and p.text).strip()


def data_of(artifacts: list[Artifact]) -> dict[str, Any] | None:
    for artifact in artifacts:
        for part in artifact.parts:
            if part.kind == "data" and isinstance(part.data, dict):
                return part.data
    return None


def label_of(artifacts: list[Artifact], labels: list[str]) -> str | None:
    """The one label the answer names (None when it names none or several)."""
    text = text_of(artifacts)
    data = data_of(artifacts) or {}
    text += " " + " ".join(str(v) for v in data.values() if isinstance(v, str))
    found = {label for label in labels if re.search(rf"\b{re.escape(label)}\b", text, re.I)}
    return found.pop() if len(found) == 1 else None


def figures_of(text: str) -> list[float]:
    """Every number the text states; `1.25 billion` also as 1250 (millions)."""
    numbers = []
    for match in NUMBER.finditer(text):
        value = float(match.group().replace(",", ""))
        numbers.append(value)
        if re.match(r"\s*(billion|bn)\b", text[match.end() : match.end() + 10], re.I):
            numbers.append(value * 1000)
    return numbers


def vector_of(skill: str, artifacts: list[Artifact]) -> np.ndarray | None:
    """The numbers a numeric skill's answer is compared on, or None when the answer has none."""
    data = data_of(artifacts)
    if data is None or skill not in NUMERIC_FIELDS:
        return None
    values: list[float] = []
    for name in NUMERIC_FIELDS[skill]:
        field = data.get(name)
        items = field if isinstance(field, list) else [field]
        numbers = [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
        if not numbers or len(numbers) != len(items):
            return None
        values.extend(numbers)
    vector = np.asarray(values)
    return vector if np.all(np.isfinite(vector)) else None
