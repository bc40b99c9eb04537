"""The client API's request and response bodies (pydantic at the boundary; unknown fields are refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Sensitivity = Literal["public", "internal", "confidential", "restricted"]
MAX_SECONDS = 1e8  # about three years: a deadline or latency bound beyond that is a mistake
MAX_USD = 1e9


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceNeeds(Strict):
    flops: float | None = Field(default=None, ge=0, description="estimated floating-point operations")
    memory_gb: float | None = Field(default=None, ge=0)
    libraries: list[str] = Field(default_factory=list, max_length=32)


class VerificationSpec(Strict):
    """How the result is checked. `auto`: by the skill (numeric re-checks for compute skills; a non-empty
    answer, and one of `labels` when given, for text)."""

    kind: Literal["auto", "schema", "numeric", "labels", "judge"] = "auto"
    labels: list[str] | None = Field(default=None, max_length=50)
    tolerance: float = Field(default=0.25, gt=0, le=10, description="relative tolerance of numeric re-checks")


class SubtaskSpec(Strict):
    """A requirement spec (paper section III): skills, resources, input, output, verification, constraints."""

    description: str = Field(min_length=1, max_length=4000)
    skill: str | None = Field(default=None, max_length=128, description="a market skill id, e.g. risk-assessment")
    required_skills: list[str] = Field(default_factory=list, max_length=32, description="ontology terms")
    input_text: str | None = Field(default=None, max_length=200_000)
    input_data: dict[str, Any] | None = None
    resources: ResourceNeeds = Field(default_factory=ResourceNeeds)
    output_format: Literal["text", "json"] | None = None
    verification: VerificationSpec = Field(default_factory=VerificationSpec)
    max_latency_s: float | None = Field(default=None, ge=0.001, le=MAX_SECONDS)
    max_budget_usd: float | None = Field(default=None, ge=0, le=MAX_USD)
    privacy: Sensitivity | None = None
    value_usd: float | None = Field(default=None, ge=0, le=MAX_USD)
    geography: str | None = Field(default=None, max_length=64)


class TaskSubmission(Strict):
    description: str = Field(min_length=1, max_length=20_000)
    subtasks: list[SubtaskSpec] | None = Field(default=None, min_length=1, max_length=32)
    data: dict[str, Any] | None = Field(default=None, description="inputs the planner may hand to subtasks")
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_USD)
    deadline_s: float | None = Field(default=None, ge=0.001, le=MAX_SECONDS)
    sensitivity: Sensitivity = "internal"
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    strategy: str | None = Field(default=None, max_length=64, description="override the decision strategy")


class TaskAccepted(BaseModel):
    id: str
    status: str


class ContractorRegistration(Strict):
    card_url: str = Field(min_length=8, max_length=2048)
    price_usd: float | None = Field(
        default=None,
        ge=0,
        le=1_000,
        allow_inf_nan=False,
        description="the operator's price per task, for an agent whose card publishes no price",
    )

    @field_validator("card_url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("card_url must be an http(s) URL")
        return value


class InputAnswer(Strict):
    """The answer to a contractor's (or the local worker's) input-required."""

    subtask_id: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, max_length=200_000)
    data: dict[str, Any] | None = None


class Feedback(Strict):
    """A grade for a delivered subtask: `correct`, or a `grade` in [0, 1] (one of the two)."""

    subtask_id: str | None = Field(default=None, max_length=64, description="which subtask (needed when several)")
    correct: bool | None = None
    grade: float | None = Field(default=None, ge=0, le=1)
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_grade(self) -> Feedback:
        if (self.correct is None) == (self.grade is None):
            raise ValueError("give either 'correct' or 'grade'")
        return self


class ErrorBody(BaseModel):
    error: str
    detail: Any = None
