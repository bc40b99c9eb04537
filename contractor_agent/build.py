"""A contractor from its card file: the card, and which worker kind serves which skill."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from shared.a2a.models import AgentCard


def load_card(path: str | Path) -> AgentCard:
    """Read and validate a card file; a clear ValueError when it is not a valid card."""
    try:
        return AgentCard.model_validate(json.loads(Path(path).read_text()))
    except (OSError, ValueError, ValidationError) as error:
        raise ValueError(f"{path}: not a valid agent card: {error}") from error


def worker_kinds(card: AgentCard, override: str | None = None) -> dict[str, str]:
    """skill id -> worker kind: the card's COALESCE block says, `llm` by default, `override` for all."""
    assigned = card.coalesce.workers if card.coalesce else {}
    return {skill.id: override or assigned.get(skill.id, "llm") for skill in card.skills}
