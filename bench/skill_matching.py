"""Discovery at scale: skill matching (eq. 12) of one subtask against N registered skills, and picking each
contractor's best skill, the per-subtask work of discovery (issue 18's goal: under 10 ms at 100 000 skills).

    python bench/skill_matching.py [--repeat 50]

Four skills per contractor, six ontology terms each from a vocabulary of 2 000, 384-dimensional unit vectors. The
vectors are made from each text's hash, not by the model (embedding 100 000 texts takes minutes, and matching costs
the same whichever model made its vectors); vectors are cached, as the client caches them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from functools import partial

import numpy as np
from decision_speed import timed

from shared.economics.skills import CachedEmbedder, SkillIndex, SkillProfile, SkillRequirement

DIMENSIONS = 384


class HashVectors:
    """A stand-in for the embedding model: a unit vector per text, from its hash (see the module's docstring)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        vectors = np.stack([np.random.default_rng(s).standard_normal(DIMENSIONS) for s in seeds]).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def best_rows(index: SkillIndex, requirement: SkillRequirement) -> np.ndarray:
    return index.match(requirement).best_per_contractor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vocabulary = [f"term:{i}" for i in range(2000)]
    print("\n| skills | contractors | index build s | match ms | best per contractor ms | both ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in (1_000, 10_000, 100_000):
        profiles = [
            SkillProfile(f"c{i // 4}", f"s{i % 4}", frozenset(rng.choice(vocabulary, 6)), f"skill {i}")
            for i in range(n)
        ]
        index = SkillIndex(CachedEmbedder(HashVectors(), max_entries=2 * n))
        started = time.perf_counter()
        index.add(profiles)
        build = time.perf_counter() - started
        requirement = SkillRequirement(frozenset(rng.choice(vocabulary, 3)), "monte carlo risk of a portfolio")
        matches = index.match(requirement)  # its vector now cached
        match = timed(partial(index.match, requirement), args.repeat) * 1000
        best = timed(matches.best_per_contractor, args.repeat) * 1000
        both = timed(partial(best_rows, index, requirement), args.repeat) * 1000
        print(f"| {n:,} | {n // 4:,} | {build:.1f} | {match:.2f} | {best:.2f} | {both:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
