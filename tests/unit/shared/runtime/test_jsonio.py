import json
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.runtime import jsonio


def test_encodes_the_compact_json_the_standard_library_would():
    value = {"text": 'é \u2028 "quoted" \\ \n', "n": [1, 2.5, -3, True, None], "nested": {"k": []}}
    encoded = jsonio.dumps(value)
    assert encoded == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsonio.dumps_text(value) == encoded.decode()


def test_values_orjson_refuses_still_encode_without_loss():
    big = 2**70 + 1  # beyond 64 bits: orjson refuses it, the standard library writes it exactly
    for value in ({"id": big}, {1: "a key that is not a string"}, {"score": np.float64(0.25)}):
        assert json.loads(jsonio.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(jsonio.dumps({"id": big}))["id"] == big


def test_non_finite_numbers_become_null():
    assert jsonio.dumps({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec="utf-8")),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_decodes_what_the_standard_library_decodes(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)  # big integers, NaN, escaped surrogates: what orjson refuses
    decoded = jsonio.loads(text.encode())
    assert json.dumps(decoded) == json.dumps(json.loads(text))  # compared as text: NaN is not equal to itself


def test_an_integer_beyond_64_bits_arrives_exactly():
    big = -(2**64) - 3
    assert jsonio.loads(json.dumps({"id": [big]}))["id"][0] == big


def outcome(decode: Callable[[bytes], object], text: bytes) -> object:
    try:
        return decode(text)
    except (json.JSONDecodeError, RecursionError) as error:
        return type(error), str(error)


@pytest.mark.parametrize("text", [b"{", b'{"a":}', b"[1,]", b"\xef\xbb\xbf{}", b"[" * 1100 + b"]" * 1100])
def test_where_orjson_refuses_the_standard_library_answers(text):
    assert outcome(jsonio.loads, text) == outcome(json.loads, text)  # its value or its error
