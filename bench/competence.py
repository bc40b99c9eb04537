"""What competence estimation adds to a decision: the per-subtask work of the quality machinery beside the decision
itself, on a market of N agents with a track record.

    python bench/competence.py [--repeat 300]

Per decision the client builds the candidate arrays from each candidate's quality posterior (as it built them from
the record before), and now also writes the chosen agent's competence with its 90 % interval into the record and
chooses whom to probe (the posterior deviation of every agent): "added" is those two against one UCB1 decision
over the same N candidates. When an item is answered by several agents, Dawid-Skene runs over the skill's last
500 such items. Medians of `--repeat` calls.
"""

from __future__ import annotations

import argparse

import numpy as np
from decision_speed import timed

from shared.economics.agreement import dawid_skene
from shared.economics.cost_model import Offer, TaskProfile
from shared.economics.decision.engine import DecisionEngine
from shared.economics.decision.problem import CandidateOffer, LocalOption, Problem
from shared.economics.decision.strategies import make_strategy
from shared.economics.reputation import ReputationBook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    task = TaskProfile(flops=1e12, value_usd=1.0)
    print("\n| agents | UCB1 decision ms | candidate arrays ms | competence record ms | probe choice ms | added |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in (3, 10, 100, 1_000):
        book = ReputationBook()
        for agent in range(n):
            for _ in range(20):
                book.record(f"a{agent}", "skill", float(rng.random() < 0.8), 0.0, 1.0, "probe")
        engine = DecisionEngine(make_strategy("ucb1"), seed=1, reputation=book)
        offers = [
            CandidateOffer(f"a{i}", "skill", 0.9, Offer(float(rng.uniform(0.001, 0.01)), 5.0, p_security=0.01))
            for i in range(n)
        ]
        local = LocalOption(cost_usd=0.0001, latency_s=2.0, p_failure=0.2, quality_a=17.0, quality_b=5.0)
        problem = Problem(1.0, 1.0, local, engine.candidates(offers, task, 0.0))
        decide = timed(lambda e=engine, p=problem: e.decide(p), args.repeat)
        posteriors = timed(lambda e=engine, o=offers: e.candidates(o, task, 0.0), args.repeat)
        record = timed(lambda b=book: b.competence("a0", "skill", 0.0), args.repeat)
        names = [f"a{i}" for i in range(n)]
        probe = timed(lambda b=book, a=names: sorted(a, key=lambda x: -b.deviation(x, "skill", 0.0)), args.repeat)
        added = record + probe  # the candidate arrays were built from the record before competence, too
        print(
            f"| {n} | {decide * 1e3:.3f} | {posteriors * 1e3:.3f} | {record * 1e3:.3f} | {probe * 1e3:.3f} "
            f"| {added / decide:.0%} |"
        )
    print("\n| items x agents | Dawid-Skene ms (one-coin EM, 3 labels) |")
    print("| --- | ---: |")
    for items, agents in ((100, 3), (500, 3), (500, 10)):
        labels = rng.integers(3, size=(items, agents))
        print(f"| {items} x {agents} | {timed(lambda m=labels: dawid_skene(m, 3), 30) * 1e3:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
