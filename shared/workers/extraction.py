"""A document specialist with no language model: reads a report's revenue and net income by rules and its
outlook with the finance lexicon.

- Figures written in words ("two hundred and forty million") become digits first (`text2num`, MIT licence).
- A money figure is a number with a scale (thousand, million, billion, bn, m) or a currency (dollars, USD, $);
  it is stated in millions.
- Revenue is the first figure of a sentence about revenue, sales or turnover that does not speak of an earlier
  period (a year earlier, last year, previously, prior); net income likewise from a sentence about net income,
  profit or earnings, negative when the sentence speaks of a loss.
- The outlook is the lexicon's sentiment of the sentences that look ahead (expects, outlook, forecast, guidance,
  next ...), or of the sentences without figures when none does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from shared.workers.base import StatelessWorker, Usage, WorkerError, WorkRequest, WorkResult, text_artifact
from shared.workers.lexicon import sentiment_label

SCALES = {"thousand": 1e-3, "k": 1e-3, "million": 1.0, "m": 1.0, "mn": 1.0, "billion": 1e3, "bn": 1e3}
MONEY = re.compile(
    r"(?P<dollar>\$|usd\s*)?(?P<number>\d[\d,]*(?:\.\d+)?)\s*"
    r"(?P<scale>thousand|million|billion|mn|bn|m|k|1000000000|1000000|1000)?\b\s*(?P<currency>dollars|usd)?",
    re.I,
)
NUMERIC_SCALES = {"1000": 1e-3, "1000000": 1.0, "1000000000": 1e3}
SENTENCE = re.compile(r"(?<=[.!?;])\s+")
REVENUE = re.compile(r"\b(revenue|revenues|sales|turnover|top line)\b", re.I)
INCOME = re.compile(r"\b(net income|net profit|net earnings|net result|profit|earnings|net loss|loss)\b", re.I)
LOSS = re.compile(r"\b(loss|losses|lost|deficit)\b", re.I)
EARLIER = re.compile(
    r"\b(a year earlier|year earlier|last year|a year ago|previous|previously|prior|before that|had been)\b", re.I
)
AHEAD = re.compile(r"\b(expect\w*|outlook|forecast\w*|guidance|next|coming|ahead|future|will|anticipat\w*)\b", re.I)
COSTS = re.compile(r"\b(costs?|expenses?|spending|capex|debt)\b", re.I)


@dataclass(frozen=True)
class Reading:
    revenue_musd: float | None
    net_income_musd: float | None
    outlook: str

    def text(self) -> str:
        revenue = "unknown" if self.revenue_musd is None else f"{self.revenue_musd:g} million USD"
        income = "unknown" if self.net_income_musd is None else f"{self.net_income_musd:g} million USD"
        return f"Revenue: {revenue}. Net income: {income}. Outlook: {self.outlook}."


def _digits(text: str) -> str:
    from text_to_num import alpha2digit

    return str(alpha2digit(text, "en"))


def money_figures(sentence: str) -> list[float]:
    """The money figures of a sentence, in millions (a bare number counts only with a scale or a currency)."""
    figures = []
    for match in MONEY.finditer(sentence):
        scale_word = (match.group("scale") or "").lower()
        if not (scale_word or match.group("dollar") or match.group("currency")):
            continue
        value = float(match.group("number").replace(",", ""))
        scale = NUMERIC_SCALES.get(scale_word) or SCALES.get(scale_word)
        figures.append(round(value * scale if scale else value / 1e6, 6))
    return figures


def read_report(text: str) -> Reading:
    sentences = [s for s in SENTENCE.split(_digits(text)) if s.strip()]
    revenue = income = None
    for sentence in sentences:
        figures = money_figures(sentence)
        if not figures or EARLIER.search(sentence):
            continue
        if revenue is None and REVENUE.search(sentence) and not COSTS.search(sentence.split(",")[0]):
            revenue = figures[0]
            figures = figures[1:]
        if income is None and figures and INCOME.search(sentence):
            income = -figures[0] if LOSS.search(sentence) else figures[0]
    ahead = [s for s in sentences if AHEAD.search(s)] or [s for s in sentences if not money_figures(s)]
    return Reading(revenue, income, sentiment_label(" ".join(ahead)) if ahead else "neutral")


class DocumentExtractorWorker(StatelessWorker):
    name = "extractor"

    async def run(self, request: WorkRequest) -> WorkResult:
        started = time.process_time()
        text = request.text().rsplit("\n\n", 1)[-1]  # the document follows the instruction after a blank line
        if not text.strip():
            raise WorkerError("the task has no document to read")
        reading = read_report(text)
        usage = Usage(input_tokens=len(text) // 4 + 1, compute_seconds=time.process_time() - started)
        return WorkResult(artifacts=[text_artifact("answer", reading.text())], usage=usage, summary="extracted")
