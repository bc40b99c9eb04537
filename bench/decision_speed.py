"""Decision engine speed: one decision over N candidates, and the embedding model's throughput.

    python bench/decision_speed.py [--repeat 200]

For each N: `decide` alone (candidate arrays built), and skill matching (eq. 12 over N indexed skills, the
requirement's embedding cached) plus building the candidate arrays plus `decide`, the whole per-subtask path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from shared.economics.cost_model import Offer, TaskProfile
from shared.economics.decision.engine import DecisionEngine
from shared.economics.decision.problem import CandidateOffer, LocalOption, Problem
from shared.economics.decision.strategies import make_strategy
from shared.economics.skills import (
    CachedEmbedder,
    SentenceTransformerEmbedder,
    SkillIndex,
    SkillProfile,
    SkillRequirement,
)

WORDS = [
    "risk",
    "portfolio",
    "sentiment",
    "news",
    "document",
    "summary",
    "gpu",
    "llm",
    "optimisation",
    "monte",
    "carlo",
    "finance",
    "market",
]


def market(n: int, embedder: CachedEmbedder, rng: np.random.Generator) -> tuple[SkillIndex, list[CandidateOffer]]:
    index = SkillIndex(embedder)
    profiles = [
        SkillProfile(
            f"c{i}",
            "skill",
            frozenset({f"skill:{rng.choice(WORDS)}", f"tag:{rng.choice(WORDS)}"}),
            " ".join(rng.choice(WORDS, 6)),
        )
        for i in range(n)
    ]
    index.add(profiles)
    offers = [
        CandidateOffer(
            f"c{i}",
            "skill",
            0.0,
            Offer(float(rng.uniform(1, 20)), float(rng.uniform(1, 120)), p_security=float(rng.uniform(0, 0.1))),
        )
        for i in range(n)
    ]
    return index, offers


def timed(function, repeat: int) -> float:
    """Median seconds of one call."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    embedder = CachedEmbedder(SentenceTransformerEmbedder())
    task = TaskProfile(flops=1e15, value_usd=100)
    requirement = SkillRequirement(frozenset({"skill:risk"}), "monte carlo risk of a finance portfolio")
    embedder.embed([requirement.text])
    print("\n| candidates | strategy | decide ms | decisions/s | match + arrays + decide ms |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for n in (10, 100, 1_000, 10_000):
        index, offers = market(n, embedder, rng)
        for name in ("paper-epsilon-greedy", "ucb1", "thompson"):
            engine = DecisionEngine(make_strategy(name), seed=1)
            local = LocalOption(cost_usd=15.0, latency_s=60.0)

            def build(
                index: SkillIndex = index,
                offers: list = offers,
                engine: DecisionEngine = engine,
                local: LocalOption = local,
            ) -> Problem:
                matches = index.match(requirement)
                rows = [
                    CandidateOffer(o.contractor, o.skill, float(c), o.offer)
                    for o, c in zip(offers, matches.compatibility + 0.5, strict=True)
                ]
                return Problem(100.0, 20.0, local, engine.candidates(rows, task, 0.0))

            problem = build()
            decide = timed(lambda p=problem, e=engine: e.decide(p), args.repeat)
            whole = timed(lambda e=engine: e.decide(build()), max(5, args.repeat // 10))
            print(f"| {n} | {name} | {decide * 1000:.3f} | {1 / decide:,.0f} | {whole * 1000:.2f} |")
    sentences = [" ".join(rng.choice(WORDS, 8)) for _ in range(512)]
    model = embedder.inner
    model.embed(sentences[:16])
    started = time.perf_counter()
    model.embed(sentences)
    rate = len(sentences) / (time.perf_counter() - started)
    print(f"\nembedding model all-MiniLM-L6-v2 on the CPU: {rate:,.0f} sentences/s (512 sentences of 8 words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
