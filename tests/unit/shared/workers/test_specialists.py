"""The workers without a language model (the finance lexicon, the report extractor) and the premium tier's vote,
on text written here (not by the data generator)."""

from __future__ import annotations

import pytest

from shared.a2a.models import AgentSkill, Message, Part
from shared.workers.base import StatelessWorker, WorkerError, WorkRequest, WorkResult, text_artifact
from shared.workers.extraction import DocumentExtractorWorker, money_figures, read_report
from shared.workers.lexicon import LexiconSentimentWorker, sentiment_label
from shared.workers.tiers import VotingWorker, consensus, few_shot_prompt

SKILL = AgentSkill(id="sentiment-analysis", name="Sentiment", description="sentiment")


def request(text: str, labels: list[str] | None = None) -> WorkRequest:
    metadata = {"coalesce": {"answerOneOf": labels}} if labels else None
    return WorkRequest("t1", SKILL, [Message(role="user", parts=[Part.of_text(text)], metadata=metadata)])


@pytest.mark.parametrize(
    ("headline", "label"),
    [
        ("Zephyr Rail profits soar as passenger numbers hit a record", "positive"),
        ("Zephyr Rail shares tumble after auditors flag accounting fraud", "negative"),
        ("Zephyr Rail will publish its results on Thursday", "neutral"),
        ("Zephyr Rail did not miss its targets", "positive"),  # negation (VADER looks three words back)
    ],
)
def test_the_lexicon_reads_finance_headlines(headline: str, label: str):
    assert sentiment_label(headline) == label


async def test_the_lexicon_worker_answers_a_label_and_meters_its_cpu():
    worker = LexiconSentimentWorker()
    result = await worker.run(
        request("Classify this headline: Orbis Bank slashes its dividend", ["positive", "negative", "neutral"])
    )
    assert isinstance(result, WorkResult)
    assert result.artifacts[0].parts[0].text == "negative"
    assert 0 <= result.usage.compute_seconds < 0.5
    with pytest.raises(WorkerError, match="not one of"):
        await worker.run(request("Classify: Orbis Bank slashes its dividend", ["bullish", "bearish"]))


def test_money_figures_in_digits_scales_currencies_and_words():
    assert money_figures("Revenue was 1.25 billion dollars") == [1250.0]
    assert money_figures("It earned $48.4 million, up 12 percent") == [48.4]
    assert money_figures("It has 3 plants") == []  # no scale, no currency: not money


def test_the_extractor_skips_earlier_periods_and_reads_losses_and_words():
    report = (
        "Tallis Foods said its quarterly sales were two hundred and twelve million dollars. "
        "A year earlier sales had been 198 million dollars. It posted a net loss of 4.5 million dollars. "
        "Management expects weaker demand in the coming months."
    )
    reading = read_report(report)
    assert (reading.revenue_musd, reading.net_income_musd, reading.outlook) == (212.0, -4.5, "negative")


async def test_the_extractor_worker_reads_the_document_after_the_instruction():
    text = (
        "State the revenue, the net income and the outlook.\n\n"
        "Revenue reached 80 million dollars. Net income was 6 million dollars."
    )
    result = await DocumentExtractorWorker().run(request(text))
    assert isinstance(result, WorkResult)
    assert result.artifacts[0].parts[0].text.startswith("Revenue: 80 million USD. Net income: 6 million USD.")


class Answers(StatelessWorker):
    """A worker that gives the answers it is handed, one per call (to count the vote)."""

    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    async def run(self, request: WorkRequest) -> WorkResult:
        answer = self.answers.pop(0)
        if answer == "error":
            raise WorkerError("no answer")
        return WorkResult(artifacts=[text_artifact("answer", answer)])


async def test_the_premium_tier_runs_k_samples_and_returns_the_majority():
    labels = ["positive", "negative", "neutral"]
    voting = VotingWorker(Answers(["negative", "positive", "negative"]), k=3)
    result = await voting.run(request("Classify: x", labels))
    assert isinstance(result, WorkResult) and result.artifacts[0].parts[0].text == "negative"
    assert consensus(["Revenue 12, income 3", "Revenue 12, income 3, positive", "Revenue 99"], None) in (0, 1)
    with pytest.raises(WorkerError, match="none of the 2"):
        await VotingWorker(Answers(["error", "error"]), k=2).run(request("Classify: x", labels))


def test_the_few_shot_prompt_ends_where_the_answer_starts():
    prompt = few_shot_prompt("sentiment-analysis", "Classify the sentiment of this headline: Orbis Bank fined")
    assert prompt.endswith("Headline: Orbis Bank fined\nAnswer:") and prompt.count("Answer:") == 5
