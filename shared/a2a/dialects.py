"""The three A2A wire generations COALESCE speaks, and the checks their params share.

- legacy (A2A 0.1/0.2): `tasks/send`, parts tagged `type`, task ids chosen by the client, `sessionId`;
- v0.3: `message/send`, objects tagged `kind`, server-made task ids, `contextId`;
- v1.0: `SendMessage`, protobuf-JSON (enum strings, untagged parts, `{task}`/`{statusUpdate}` stream wrappers).

The current generation's shapes are `shared.a2a.v1`; the older ones are kept apart in `shared.a2a.compat`;
`shared.a2a.wire` parses and renders by generation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.a2a.models import (
    A2AError,
    ErrorCode,
)


class Dialect(StrEnum):
    LEGACY = "legacy"
    V0_3 = "0.3"
    V1_0 = "1.0"


SUPPORTED_VERSIONS = frozenset({"0.2", "0.3", "1.0"})


def check_version_header(value: str | None) -> None:
    """`A2A-Version` (v1.0): a missing header means 0.3; an unknown one is refused with -32009."""
    if value is None or not value.strip():
        return
    major_minor = ".".join(value.strip().split(".")[:2])
    if major_minor not in SUPPORTED_VERSIONS:
        raise A2AError(
            ErrorCode.VERSION_NOT_SUPPORTED,
            f"A2A-Version {value!r} is not supported; supported: {', '.join(sorted(SUPPORTED_VERSIONS))}",
        )


def invalid_params(error: ValidationError | str) -> A2AError:
    if isinstance(error, ValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in error.errors()[:5])
        return A2AError(ErrorCode.INVALID_PARAMS, f"invalid params: {details}")
    return A2AError(ErrorCode.INVALID_PARAMS, f"invalid params: {error}")


def validated(model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise invalid_params(error) from None


def require_dict(params: Any, field: str) -> dict[str, Any]:
    value = params.get(field) if isinstance(params, dict) else None
    if not isinstance(value, dict):
        raise invalid_params(f"'{field}' must be an object")
    return value


def require_str(params: dict[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    raise invalid_params(f"'{names[0]}' is required and must be a non-empty string")


def optional_int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"'{name}' must be a non-negative integer")
    return value
