"""The services' JSON encoder: orjson (many times the standard library's speed on large bodies), with the
standard library for the values orjson refuses (integers beyond 64 bits, keys that are not strings, numpy
scalars), so that nothing that encoded before fails now. Output is compact; orjson writes NaN and infinities as
null (the standard library writes `NaN`, which is not JSON).

Decoding stays with the standard library: orjson reads an integer beyond 64 bits as a float, so a number would
change in transit.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """`value` as compact JSON, UTF-8."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """`value` as compact JSON text."""
    return dumps(value).decode()
