"""A sentiment specialist with no language model: VADER (a lexicon and rules for negation, hedges, intensifiers
and contrast; MIT licence, `vaderSentiment`) with a vocabulary of finance words added, so that "plunge", "profit
warning" or "beats estimates" carry the weight they have in market news. It costs microseconds of CPU, not
seconds of a model.

The added words are general financial vocabulary with valences on VADER's scale (-4 to +4), chosen as a finance
desk reads them, not fitted to any data set.
"""

from __future__ import annotations

import time
from functools import cache

from shared.workers.base import StatelessWorker, Usage, WorkerError, WorkRequest, WorkResult, text_artifact
from shared.workers.llm import answer_labels

FINANCE_VALENCE = {
    # results and guidance
    "beat": 1.8, "beats": 1.8, "exceeds": 1.5, "exceeded": 1.5, "outperform": 1.8, "outperforms": 1.8,
    "miss": -1.8, "misses": -1.8, "missed": -1.8, "underperform": -1.8, "underperforms": -1.8,
    "profit": 1.2, "profits": 1.2, "profitable": 1.5, "record": 1.0, "dividend": 0.6, "buyback": 1.2,
    "loss": -1.8, "losses": -1.8, "deficit": -1.5, "writedown": -2.0, "impairment": -1.8, "shortfall": -1.8,
    "raise": 1.0, "raises": 1.0, "raised": 1.0, "lifts": 1.2, "lifted": 1.2, "boost": 1.5, "boosts": 1.5,
    "cut": -1.5, "cuts": -1.5, "slash": -2.2, "slashes": -2.2, "lower": -1.0, "lowers": -1.2, "lowered": -1.2,
    "upgrade": 1.8, "upgrades": 1.8, "upgraded": 1.8, "downgrade": -1.8, "downgrades": -1.8, "downgraded": -1.8,
    "warning": -1.8, "warns": -1.8, "warned": -1.8,
    # prices and demand
    "surge": 2.0, "surges": 2.0, "soar": 2.2, "soars": 2.2, "jump": 1.6, "jumps": 1.6, "rally": 1.8,
    "rallies": 1.8, "climb": 1.2, "climbs": 1.2, "rise": 1.2, "rises": 1.2, "rose": 1.2, "gain": 1.4,
    "gains": 1.4, "grow": 1.2, "grows": 1.2, "growth": 1.4, "expand": 1.2, "expands": 1.2, "rebound": 1.5,
    "rebounds": 1.5, "recover": 1.2, "recovers": 1.2, "recovery": 1.2, "strong": 1.5, "stronger": 1.5,
    "robust": 1.5, "demand": 0.3, "orders": 0.4, "upbeat": 1.8, "tailwinds": 1.2,
    "plunge": -2.5, "plunges": -2.5, "plummet": -2.6, "plummets": -2.6, "tumble": -2.2, "tumbles": -2.2,
    "slump": -2.2, "slumps": -2.2, "sink": -1.8, "sinks": -1.8, "fall": -1.4, "falls": -1.4, "fell": -1.4,
    "drop": -1.4, "drops": -1.4, "decline": -1.5, "declines": -1.5, "declined": -1.5, "slide": -1.6,
    "slides": -1.6, "shrink": -1.5, "shrinks": -1.5, "weak": -1.6, "weaker": -1.6, "weakens": -1.6,
    "slowdown": -1.6, "headwinds": -1.4, "pressure": -1.0, "volatile": -0.8, "sluggish": -1.6,
    # events
    "layoffs": -2.0, "redundancies": -2.0, "recall": -1.8, "recalls": -1.8, "fine": -1.4, "fined": -1.8,
    "fines": -1.6, "lawsuit": -1.6, "sued": -1.6, "probe": -1.2, "investigation": -1.2, "fraud": -3.0,
    "bankruptcy": -3.2, "insolvency": -3.0, "default": -2.5, "defaults": -2.5, "delisted": -2.4,
    "strike": -1.4, "outage": -1.6, "breach": -1.8, "restatement": -1.8,
    "wins": 1.5, "awarded": 1.5, "contract": 0.5, "approval": 1.5, "approved": 1.5, "partnership": 0.8,
    "acquires": 0.4, "merger": 0.3, "stake": 0.1, "breakthrough": 2.0,
}  # fmt: skip
NEUTRAL_BAND = 0.05  # VADER's own threshold on the compound score


@cache
def _analyzer() -> object:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(FINANCE_VALENCE)
    return analyzer


def polarity(text: str) -> float:
    """VADER's compound score in [-1, 1] with the finance vocabulary."""
    return float(_analyzer().polarity_scores(text)["compound"])  # type: ignore[attr-defined]


def sentiment_label(text: str) -> str:
    score = polarity(text)
    return "positive" if score >= NEUTRAL_BAND else "negative" if score <= -NEUTRAL_BAND else "neutral"


def subject_text(request: WorkRequest) -> str:
    """The text to classify: what follows the instruction's colon ("Classify ...: TEXT"), else all of it."""
    text = request.text()
    head, colon, tail = text.partition(":")
    return tail.strip() if colon and len(head) < 200 and tail.strip() else text


class LexiconSentimentWorker(StatelessWorker):
    """Sentiment from the lexicon: positive, negative or neutral (or the client's own label set, when it names
    those three)."""

    name = "lexicon"

    async def run(self, request: WorkRequest) -> WorkResult:
        started = time.process_time()
        text = subject_text(request)
        if not text:
            raise WorkerError("the task has no text to classify")
        label = sentiment_label(text)
        labels = answer_labels(request)
        if labels is not None and label not in labels:
            raise WorkerError(f"this worker answers positive, negative or neutral, not one of {labels}")
        usage = Usage(input_tokens=len(text) // 4 + 1, compute_seconds=time.process_time() - started)
        return WorkResult(artifacts=[text_artifact("answer", label)], usage=usage, summary="classified")
