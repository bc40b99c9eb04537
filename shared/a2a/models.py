"""A2A protocol models: the one source of truth for cards, tasks, messages, events and JSON-RPC envelopes.

The models hold the protocol in its canonical (legacy + v0.3) JSON form, camelCase on the wire and snake_case
in Python. `shared.a2a.dialects` renders them for each wire generation (legacy `tasks/send`, v0.3 `message/send`,
v1.0 `SendMessage`) and parses each generation back into them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from pydantic.alias_generators import to_camel

COALESCE_EXTENSION_URI = "urn:coalesce:market:v1"


class A2AModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored (forward compatible)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- error codes


class ErrorCode(IntEnum):
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    TASK_NOT_FOUND = -32001
    TASK_NOT_CANCELABLE = -32002
    PUSH_NOT_SUPPORTED = -32003
    UNSUPPORTED_OPERATION = -32004
    CONTENT_TYPE_NOT_SUPPORTED = -32005
    INVALID_AGENT_RESPONSE = -32006
    EXTENDED_CARD_NOT_CONFIGURED = -32007
    VERSION_NOT_SUPPORTED = -32009
    # COALESCE: the contractor is at capacity; `data.retryAfterSeconds` says when to try again.
    OVER_CAPACITY = -32050
    # COALESCE: an end-to-end envelope refused; `data.reason` names why (tampered, replay, reordered, ...).
    E2E_REFUSED = -32051
    # COALESCE: no or wrong API key, or over its rate limit (HTTP 401 / 429 carry it).
    UNAUTHORIZED = -32052


class A2AError(Exception):
    """An error that becomes a JSON-RPC error object; raised anywhere below the transport."""

    def __init__(self, code: ErrorCode, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> JSONRPCError:
        return JSONRPCError(code=int(self.code), message=self.message, data=self.data)


# ---------------------------------------------------------------- JSON-RPC envelopes


class JSONRPCError(BaseModel):
    code: int
    message: str
    data: Any = None


class JSONRPCRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jsonrpc: Literal["2.0"]
    method: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] | None = None
    id: str | int | None = None


def rpc_result(request_id: str | int | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def rpc_error(request_id: str | int | None, error: JSONRPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.model_dump(exclude_none=True)}


# ---------------------------------------------------------------- tasks, messages, parts


class TaskState(StrEnum):
    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
    REJECTED = "rejected"
    AUTH_REQUIRED = "auth-required"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def interrupted(self) -> bool:
        """A state that ends a stream without ending the task (it waits for the client)."""
        return self in (TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED)


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.CANCELED, TaskState.FAILED, TaskState.REJECTED})

# The task state machine: every legal move; anything else is refused.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.SUBMITTED: frozenset({TaskState.WORKING, TaskState.CANCELED, TaskState.FAILED, TaskState.REJECTED}),
    TaskState.WORKING: frozenset({TaskState.INPUT_REQUIRED, TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED}),
    TaskState.INPUT_REQUIRED: frozenset({TaskState.WORKING, TaskState.CANCELED, TaskState.FAILED}),
    TaskState.AUTH_REQUIRED: frozenset({TaskState.WORKING, TaskState.CANCELED, TaskState.FAILED}),
}


def can_transition(current: TaskState, new: TaskState) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class FileContent(A2AModel):
    name: str | None = None
    mime_type: str | None = None
    bytes: str | None = None  # base64
    uri: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FileContent:
        if (self.bytes is None) == (self.uri is None):
            raise ValueError("a file needs exactly one of 'bytes' (base64) or 'uri'")
        return self


class Part(A2AModel):
    """A message or artifact part: text, structured data or a file. Legacy tags it `type`, v0.3 `kind`."""

    kind: Literal["text", "data", "file"]
    text: str | None = None
    data: Any = None
    file: FileContent | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_legacy_tag(cls, value: Any) -> Any:
        if isinstance(value, dict) and "kind" not in value and "type" in value:
            value = {**value, "kind": value["type"]}
        return value

    @model_validator(mode="after")
    def _content_matches_kind(self) -> Part:
        present = {
            "text": self.text is not None,
            "data": self.data is not None,
            "file": self.file is not None,
        }
        if not present[self.kind]:
            raise ValueError(f"a {self.kind} part needs its '{self.kind}' field")
        return self

    @classmethod
    def of_text(cls, text: str) -> Part:
        return cls(kind="text", text=text)

    @classmethod
    def of_data(cls, data: Any) -> Part:
        return cls(kind="data", data=data)

    @property
    def mime_type(self) -> str:
        if self.kind == "text":
            return "text/plain"
        if self.kind == "data":
            return "application/json"
        return (self.file.mime_type if self.file else None) or "application/octet-stream"


class Message(A2AModel):
    role: Literal["user", "agent"]
    parts: list[Part] = Field(min_length=1)
    message_id: str = Field(default_factory=new_id)
    context_id: str | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None

    def text(self) -> str:
        return "\n".join(p.text for p in self.parts if p.kind == "text" and p.text)

    def data(self) -> dict[str, Any]:
        """All data parts merged, later keys winning."""
        merged: dict[str, Any] = {}
        for part in self.parts:
            if part.kind == "data" and isinstance(part.data, dict):
                merged.update(part.data)
        return merged


def agent_message(text: str | None = None, data: Any = None, **ids: Any) -> Message:
    """An agent's message with a text and/or a data part."""
    parts = ([Part.of_text(text)] if text is not None else []) + ([Part.of_data(data)] if data is not None else [])
    return Message(role="agent", parts=parts, **ids)


class TaskStatus(A2AModel):
    state: TaskState
    message: Message | None = None
    timestamp: str = Field(default_factory=utc_now)


class Artifact(A2AModel):
    artifact_id: str = Field(default_factory=new_id)
    name: str | None = None
    description: str | None = None
    parts: list[Part] = Field(min_length=1)
    index: int = 0
    append: bool | None = None
    last_chunk: bool | None = None
    metadata: dict[str, Any] | None = None


class Task(A2AModel):
    id: str
    context_id: str
    status: TaskStatus
    artifacts: list[Artifact] = Field(default_factory=list)
    history: list[Message] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TaskStatusUpdateEvent(A2AModel):
    task_id: str
    context_id: str
    status: TaskStatus
    final: bool = False
    metadata: dict[str, Any] | None = None


class TaskArtifactUpdateEvent(A2AModel):
    task_id: str
    context_id: str
    artifact: Artifact
    append: bool | None = None
    last_chunk: bool | None = None
    metadata: dict[str, Any] | None = None


StreamEvent = Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent


# ---------------------------------------------------------------- push notifications


class PushAuthentication(A2AModel):
    schemes: list[str] = Field(default_factory=lambda: ["Bearer"])
    credentials: str | None = None


class PushNotificationConfig(A2AModel):
    id: str = Field(default_factory=new_id)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    token: str | None = Field(default=None, max_length=4096)
    authentication: PushAuthentication | None = None


# ---------------------------------------------------------------- requests, in canonical form


class SendRequest(BaseModel):
    """A message sent to a task, whichever generation spelled it."""

    message: Message
    task_id: str | None = None
    context_id: str | None = None
    accepted_output_modes: list[str] | None = None
    push_config: PushNotificationConfig | None = None
    history_length: int | None = Field(default=None, ge=0)
    blocking: bool = True
    metadata: dict[str, Any] | None = None
    # legacy `tasks/send` lets the client choose the id of a new task
    client_chooses_id: bool = False


# ---------------------------------------------------------------- agent card


class AgentProvider(A2AModel):
    organization: str
    url: str | None = None


class AgentExtension(A2AModel):
    uri: str
    description: str | None = None
    required: bool = False
    params: dict[str, Any] | None = None


class AgentCapabilities(A2AModel):
    streaming: bool = True
    push_notifications: bool = True
    state_transition_history: bool = True
    extensions: list[AgentExtension] = Field(default_factory=list)


class AgentSkill(A2AModel):
    id: str = Field(min_length=1)
    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_modes: list[str] | None = None
    output_modes: list[str] | None = None


class AgentInterface(A2AModel):
    """A v1.0 interface: where, in which binding and protocol version, the agent is served."""

    url: str
    protocol_binding: str = "JSONRPC"
    protocol_version: str


class AdditionalInterface(A2AModel):
    """A v0.3 `additionalInterfaces` entry: the agent served at `url` over `transport`."""

    url: str
    transport: str


class AgentCardSignature(A2AModel):
    protected: str
    signature: str
    header: dict[str, Any] | None = None


class Price(A2AModel):
    """A contractor's price list, in US dollars."""

    base_usd: float = Field(ge=0, description="P_base: the price of one task before load and complexity")
    per_1k_input_tokens_usd: float = Field(default=0.0, ge=0)
    per_1k_output_tokens_usd: float = Field(default=0.0, ge=0)
    per_compute_second_usd: float = Field(default=0.0, ge=0)
    surge_alpha: float = Field(default=0.5, ge=0, description="alpha of eq. (7): how price follows demand")


class Resources(A2AModel):
    gpu_type: str | None = None
    gpu_count: int = Field(default=0, ge=0)
    memory_gb: float = Field(default=0, ge=0)
    peak_tflops: float = Field(default=0, ge=0)
    region: str | None = None


class CoalesceProfile(A2AModel):
    """The COALESCE block of a card, carried as the params of the `urn:coalesce:market:v1` extension."""

    price: Price
    resources: Resources = Field(default_factory=Resources)
    ontology: list[str] = Field(default_factory=list, description="ontology skill terms, e.g. hasResource:GPU")
    max_concurrent_tasks: int = Field(default=4, ge=1)
    max_queued_tasks: int = Field(default=16, ge=0)
    typical_latency_s: float = Field(default=1.0, ge=0)
    workers: dict[str, str] = Field(
        default_factory=dict,
        description="skill id -> worker kind (llm, anthropic, var, portfolio, similarity, echo)",
    )
    skill_certificate: dict[str, Any] | None = Field(
        default=None, description="an attestor's signed Merkle root and one inclusion proof per skill"
    )


class AgentCard(A2AModel):
    name: str = Field(min_length=1)
    description: str
    url: str = ""  # v0.3 and older; a v1.0 card may carry only `supported_interfaces`
    version: str
    protocol_version: str | None = None  # v0.3 cards say "0.3.x"; older ones say nothing
    preferred_transport: str = "JSONRPC"
    additional_interfaces: list[AdditionalInterface] = Field(default_factory=list)
    supported_interfaces: list[AgentInterface] = Field(default_factory=list)
    provider: AgentProvider | None = None
    documentation_url: str | None = None
    capabilities: AgentCapabilities = Field(default_factory=AgentCapabilities)
    security_schemes: dict[str, dict[str, Any]] | None = None
    security: list[dict[str, list[str]]] | None = None
    default_input_modes: list[str] = Field(default_factory=lambda: ["text/plain", "application/json"])
    default_output_modes: list[str] = Field(default_factory=lambda: ["text/plain", "application/json"])
    skills: list[AgentSkill] = Field(min_length=1)
    signatures: list[AgentCardSignature] | None = None
    _coalesce: tuple[dict[str, Any] | None, CoalesceProfile | None] | None = PrivateAttr(None)  # (params, profile)

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> AgentCard:
        if not self.url:
            urls = [i.url for i in self.supported_interfaces if i.url]
            if not urls:
                raise ValueError("a card needs a 'url' or at least one entry in 'supportedInterfaces'")
            self.url = urls[0]
        return self

    @property
    def coalesce(self) -> CoalesceProfile | None:
        """The card's COALESCE profile, read from its extension's params once (again only if they change)."""
        params = next(
            (
                e.params
                for e in self.capabilities.extensions
                if e.uri == COALESCE_EXTENSION_URI and e.params is not None
            ),
            None,
        )
        cached = self._coalesce
        if cached is None or cached[0] is not params:
            cached = self._coalesce = (params, None if params is None else CoalesceProfile.model_validate(params))
        return cached[1]

    def skill(self, skill_id: str) -> AgentSkill | None:
        return next((s for s in self.skills if s.id == skill_id), None)

    def served_at(self, base_url: str) -> AgentCard:
        """The card as served from `base_url`: its URLs follow the address actually bound."""
        url = base_url.rstrip("/") + "/"
        interfaces = [
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ]
        update = {"url": url, "protocol_version": "0.3.0", "supported_interfaces": interfaces}
        return self.model_copy(update=update)
