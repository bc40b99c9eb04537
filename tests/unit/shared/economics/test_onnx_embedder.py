"""The lean images' skill matching: all-MiniLM-L6-v2 exported for ONNX Runtime gives the embeddings the
sentence-transformers model gives, so decisions do not depend on which image runs them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from shared.economics.skills import (
    ONNX_FILE,
    TOKENIZER_FILE,
    OnnxEmbedder,
    SkillIndex,
    SkillRequirement,
    skill_profiles,
)
from tests.conftest import CARDS, card_named


def test_the_exported_model_embeds_as_sentence_transformers_does(tmp_path, embedder):
    done = subprocess.run(
        [sys.executable, "-m", "coalesce.cli", "embeddings", "export", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / ONNX_FILE).stat().st_size > 80e6 and (tmp_path / TOKENIZER_FILE).exists()
    onnx = OnnxEmbedder(tmp_path)
    texts = [p.text for path in sorted(CARDS.glob("*.json")) for p in skill_profiles("x", card_named(path.stem))]
    texts += ["", "a " * 400, "Value at risk of a 1 000 000 USD portfolio at 99 %"]  # empty, truncated, figures
    ours, reference = onnx.embed(texts), embedder.embed(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert np.min(np.sum(ours * reference, axis=1)) > 1 - 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert onnx.embed([]).shape == (0, 0)

    profiles = [p for path in sorted(CARDS.glob("*.json")) for p in skill_profiles(path.stem, card_named(path.stem))]
    matches = []
    for model in (onnx, embedder):  # skill matching (12) scores the market alike either way
        index = SkillIndex(model)
        index.add(profiles)
        matches.append(index.match(SkillRequirement(text=texts[-1])).compatibility)
    assert np.allclose(matches[0], matches[1], atol=1e-5)
