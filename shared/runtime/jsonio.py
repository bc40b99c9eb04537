"""The services' JSON encoder: orjson (many times the standard library's speed on large bodies), with the
standard library for the values orjson refuses (integers beyond 64 bits, keys that are not strings, numpy
scalars), so that nothing that encoded before fails now. Output is compact; orjson writes NaN and infinities as
null (the standard library writes `NaN`, which is not JSON).

Decoding gives what the standard library's decoder gives, faster: orjson first, the standard library where orjson
refuses the text (NaN, lone surrogates, deep nesting: the standard library then answers, or raises its own error)
or where orjson may have read an integer beyond 64 bits as a float (a number would change in transit).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

BEYOND_INT64 = 2.0**63  # orjson reads an integer beyond 64 bits as a float at least this large


def dumps(value: Any) -> bytes:
    """`value` as compact JSON, UTF-8."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """`value` as compact JSON text."""
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    """`data` decoded as `json.loads` decodes it (the same value, or the same error)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
    return json.loads(data) if _has_float_beyond_int64(value) else value


def _has_float_beyond_int64(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float) and not -BEYOND_INT64 < item < BEYOND_INT64:
            return True
    return False
